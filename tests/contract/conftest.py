"""The contract suite's ``federation`` fixture: module-scoped, one instance per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, STUDIES, Backend, Federation

from pydsbase.studies import copied_studies, studies_up


@pytest.fixture(scope="module", params=[pytest.param(b, marks=b.marks, id=b.name) for b in BACKENDS])
def federation(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Federation]:
    backend: Backend = request.param
    csv = {study: data_dir / relative for study, relative in STUDIES.items()}
    tables = {study: {source.stem: source} for study, source in csv.items()}
    with copied_studies(tables, prefix=f"contract-{backend.name}-") as folders, \
            studies_up(folders, backend.engine, api=backend.api) as federation:
        yield Federation(backend.name, federation.logins, csv)
