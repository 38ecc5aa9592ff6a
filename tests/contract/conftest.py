"""The contract suite's ``federation`` fixture: module-scoped, one instance per backend.

Backends on the ``process`` engine (Opal's API and Armadillo's) share one stand-up for the whole test
session: the same servers answer both APIs, so only the login records differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, STUDIES, Backend, Federation

from pydsbase.studies import StudiesUp, copied_studies, studies_up


def _tables(data_dir: Path) -> tuple[dict[str, Path], dict[str, dict[str, Path]]]:
    csv = {study: data_dir / relative for study, relative in STUDIES.items()}
    return csv, {study: {source.stem: source} for study, source in csv.items()}


@pytest.fixture(scope="session")
def process_studies(data_dir: Path) -> Iterator[StudiesUp]:
    """The process engine's studies, stood up when a backend first asks and kept until the session ends."""
    with copied_studies(_tables(data_dir)[1], prefix="contract-process-") as folders, \
            studies_up(folders, "process") as federation:
        yield federation


@pytest.fixture(scope="module", params=[pytest.param(b, marks=b.marks, id=b.name) for b in BACKENDS])
def federation(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Federation]:
    backend: Backend = request.param
    csv, tables = _tables(data_dir)
    if backend.engine == "process":
        shared: StudiesUp = request.getfixturevalue("process_studies")
        yield Federation(backend.name, shared.logins_for(backend.api), csv)
        return
    with copied_studies(tables, prefix=f"contract-{backend.name}-") as folders, \
            studies_up(folders, backend.engine, api=backend.api) as federation:
        yield Federation(backend.name, federation.logins, csv)
