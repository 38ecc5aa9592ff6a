"""pydsbase: dsBaseClient's ds.lmerSLMA in Python, with results identical to R.

Importing this package never starts or needs R.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names and the private modules that define them; loaded on first use.
_EXPORTS = {
    "ArmadilloDriver": "pydsbase.drivers.armadillo",
    "DataSHIELDErrors": "pydsbase.errors",
    "HTTPDriver": "pydsbase.drivers.http",
    "InexactResultWarning": "pydsbase.errors",
    "OpalDriver": "pydsbase.drivers.http",
    "LocalDriver": "pydsbase.drivers.local",
    "MetaAnalysisError": "pydsbase.errors",
    "PydsbaseError": "pydsbase.errors",
    "RError": "pydsbase.errors",
    "RockJSONError": "pydsbase.errors",
    "SLMAResult": "pydsbase.results",
    "SLMAValue": "pydsbase.lmer",
    "Session": "pydsbase.session",
    "SessionCallError": "pydsbase.errors",
    "StudyAuthError": "pydsbase.errors",
    "StudyCallError": "pydsbase.errors",
    "StudyLaunchError": "pydsbase.errors",
    "StudyRFailedError": "pydsbase.errors",
    "StudyRejectedError": "pydsbase.errors",
    "StudySessionError": "pydsbase.errors",
    "StudyTimeoutError": "pydsbase.errors",
    "StudyUnreachableError": "pydsbase.errors",
    "UnknownStudyError": "pydsbase.errors",
    "ds_as_character": "pydsbase.workflow",
    "ds_as_data_matrix": "pydsbase.workflow",
    "ds_as_integer": "pydsbase.workflow",
    "ds_as_list": "pydsbase.workflow",
    "ds_as_logical": "pydsbase.workflow",
    "ds_boole": "pydsbase.workflow",
    "ds_c": "pydsbase.workflow",
    "ds_complete_cases": "pydsbase.workflow",
    "ds_data_frame": "pydsbase.workflow",
    "ds_data_frame_subset": "pydsbase.workflow",
    "ds_dim": "pydsbase.workflow",
    "ds_length": "pydsbase.workflow",
    "ds_levels": "pydsbase.workflow",
    "ds_list": "pydsbase.workflow",
    "ds_lmer_slma": "pydsbase.lmer",
    "ds_ls": "pydsbase.workflow",
    "ds_make": "pydsbase.workflow",
    "ds_names": "pydsbase.workflow",
    "ds_num_na": "pydsbase.workflow",
    "ds_rm": "pydsbase.workflow",
    "ds_summary": "pydsbase.workflow",
    "lmer_slma_result": "pydsbase.results",
    "slma_result": "pydsbase.results",
    "study_error": "pydsbase.errors",
}

__all__ = [  # the names of _EXPORTS (tests/test_errors.py checks they agree)
    "ArmadilloDriver",
    "DataSHIELDErrors",
    "HTTPDriver",
    "InexactResultWarning",
    "LocalDriver",
    "OpalDriver",
    "MetaAnalysisError",
    "PydsbaseError",
    "RError",
    "RockJSONError",
    "SLMAResult",
    "SLMAValue",
    "Session",
    "SessionCallError",
    "StudyAuthError",
    "StudyCallError",
    "StudyLaunchError",
    "StudyRFailedError",
    "StudyRejectedError",
    "StudySessionError",
    "StudyTimeoutError",
    "StudyUnreachableError",
    "UnknownStudyError",
    "ds_as_character",
    "ds_as_data_matrix",
    "ds_as_integer",
    "ds_as_list",
    "ds_as_logical",
    "ds_boole",
    "ds_c",
    "ds_complete_cases",
    "ds_data_frame",
    "ds_data_frame_subset",
    "ds_dim",
    "ds_length",
    "ds_levels",
    "ds_list",
    "ds_lmer_slma",
    "ds_ls",
    "ds_make",
    "ds_names",
    "ds_num_na",
    "ds_rm",
    "ds_summary",
    "lmer_slma_result",
    "slma_result",
    "study_error",
]

if TYPE_CHECKING:  # type checkers see the real names; at run time they load on first use
    from pydsbase.drivers.armadillo import ArmadilloDriver
    from pydsbase.drivers.http import HTTPDriver, OpalDriver
    from pydsbase.drivers.local import LocalDriver
    from pydsbase.errors import (
        DataSHIELDErrors,
        InexactResultWarning,
        MetaAnalysisError,
        PydsbaseError,
        RError,
        RockJSONError,
        SessionCallError,
        StudyAuthError,
        StudyCallError,
        StudyLaunchError,
        StudyRejectedError,
        StudyRFailedError,
        StudySessionError,
        StudyTimeoutError,
        StudyUnreachableError,
        UnknownStudyError,
        study_error,
    )
    from pydsbase.lmer import SLMAValue, ds_lmer_slma
    from pydsbase.results import SLMAResult, lmer_slma_result, slma_result
    from pydsbase.session import Session
    from pydsbase.workflow import (
        ds_as_character,
        ds_as_data_matrix,
        ds_as_integer,
        ds_as_list,
        ds_as_logical,
        ds_boole,
        ds_c,
        ds_complete_cases,
        ds_data_frame,
        ds_data_frame_subset,
        ds_dim,
        ds_length,
        ds_levels,
        ds_list,
        ds_ls,
        ds_make,
        ds_names,
        ds_num_na,
        ds_rm,
        ds_summary,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pydsbase' has no attribute {name!r}")
    return getattr(import_module(module), name)
