"""pydsbase: dsBaseClient's ds.lmerSLMA in Python, with results identical to R.

Importing this package never starts or needs R.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public names and the private modules that define them; loaded on first use.
_EXPORTS = {
    "HTTPDriver": "pydsbase.drivers.http",
    "LocalDriver": "pydsbase.drivers.local",
    "SLMAResult": "pydsbase.results",
    "Session": "pydsbase.session",
    "ds_boole": "pydsbase.workflow",
    "ds_complete_cases": "pydsbase.workflow",
    "ds_data_frame": "pydsbase.workflow",
    "ds_data_frame_subset": "pydsbase.workflow",
    "ds_lmer_slma": "pydsbase.lmer",
    "ds_make": "pydsbase.workflow",
    "lmer_slma_result": "pydsbase.results",
    "slma_result": "pydsbase.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pydsbase' has no attribute {name!r}")
    return getattr(import_module(module), name)
