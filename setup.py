"""The build. pydsbase's one decoder of R's serialization (``pydsbase/rserialize.py``) is also compiled to a
C extension by mypyc from the same source, where it can be: about 1.5x faster per study summary
(docs/PERFORMANCE.md), the same outcome on every input (tests/test_rserialize.py compares the two).
``PYDSBASE_COMPILE=0``, or no C compiler, gives the pure-Python package, which behaves the same."""

from __future__ import annotations

import os
import shutil
import sysconfig
from typing import Any

from setuptools import setup


def compiled() -> list[Any]:
    if os.environ.get("PYDSBASE_COMPILE", "1") == "0":
        return []
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return []
    from mypyc.build import mypycify

    return list(mypycify(["pydsbase/rserialize.py"], opt_level="3"))


setup(ext_modules=compiled())
