"""The build. pydsbase's one decoder of R's serialization (``pydsbase/rserialize.py``) is also compiled to a
C extension by mypyc from the same source, where it can be: about 1.5x faster per study summary
(docs/PERFORMANCE.md), the same outcome on every input (tests/test_rserialize.py compares the two).
``PYDSBASE_COMPILE=0``, or no C compiler, gives the pure-Python package, which behaves the same."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from typing import Any

from setuptools import setup

# mypyc analyses and translates the module each time this file runs (~70 s), and pip runs it once per
# PEP 517 hook: build requirements (egg_info), metadata (dist_info), then the build itself. Only a build
# needs the extension.
BUILDS = frozenset({"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install", "bdist_egg"})


def compiled() -> list[Any]:
    if os.environ.get("PYDSBASE_COMPILE", "1") == "0" or not BUILDS & set(sys.argv[1:]):
        return []
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return []
    from mypyc.build import mypycify

    return list(mypycify(["pydsbase/rserialize.py"], opt_level="3"))


setup(ext_modules=compiled())
