"""``--backend http``: every study of a case is a ``python -m r_server`` process on 127.0.0.1.

Per case, a temporary folder per study holds a copy of only that study's CSV (as TABLE.csv); the
launcher (``pydsbase.studies``, engine ``process``) starts one HTTP study server per study on a free
loopback port and yields token logins for ``pydsbase.HTTPDriver``. Everything is stopped afterwards.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pydsbase.conformance.docker_backend import federation_logins

__all__ = ["logins"]


def logins(case: Any, data_root: Path) -> contextlib.AbstractContextManager[list[Any]]:
    """The runner's login factory for ``--backend http``."""
    return federation_logins(case, data_root, "process")
