"""``--backend docker``: every study of a case runs in a study container of its own (``pydsbase.studies``).

Per case, a temporary folder per study holds a copy of only that study's CSV (as TABLE.csv); the
launcher starts one container per study from the study image (built from the repository's Dockerfile
when missing) and yields token logins for ``pydsbase.HTTPDriver``. Everything is removed after the case.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydsbase.studies import Engine, studies_up

__all__ = ["federation_logins", "logins"]


@contextlib.contextmanager
def federation_logins(case: Any, data_root: Path, engine: Engine, **options: Any) -> Iterator[list[Any]]:
    """The case's studies stood up by the launcher with ``engine``; yields their login records."""
    root = Path(tempfile.mkdtemp(prefix=f"pydsbase-{case.case_id}-"))
    try:
        root.chmod(0o755)
        folders: dict[str, Path] = {}
        for i, study in enumerate(case.studies, start=1):
            folder = root / f"study{i}"
            folder.mkdir()
            folder.chmod(0o755)
            source = (data_root / study.csv).resolve()
            if not source.is_file():
                raise FileNotFoundError(f"study data not found: {source}")
            target = folder / f"{study.table}.csv"
            shutil.copyfile(source, target)
            target.chmod(0o644)  # the container's unprivileged user reads it
            folders[study.server] = folder
        with studies_up(folders, engine, **options) as federation:
            yield federation.logins
    finally:
        shutil.rmtree(root, ignore_errors=True)


def logins(case: Any, data_root: Path) -> contextlib.AbstractContextManager[list[Any]]:
    """The runner's login factory for ``--backend docker``."""
    return federation_logins(case, data_root, "docker")
