"""The contract suite's ``federation`` fixture: module-scoped, one instance per registered backend."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, STUDIES, Federation


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=b.marks, id=name) for name, b in BACKENDS.items()],
)
def federation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               data_dir: Path) -> Iterator[Federation]:
    backend = BACKENDS[request.param]
    root = tmp_path_factory.mktemp(f"contract-{backend.name}")
    root.chmod(0o755)
    folders: dict[str, Path] = {}
    csv: dict[str, Path] = {}
    for study, relative in STUDIES.items():
        source = data_dir / relative
        folder = root / study
        folder.mkdir()
        folder.chmod(0o755)
        target = folder / source.name
        shutil.copyfile(source, target)  # the study's only file
        target.chmod(0o644)
        folders[study], csv[study] = folder, source
    with backend.logins(folders) as logins:
        yield Federation(backend.name, logins, csv)
