"""PyPI ``mixedlm-rs`` (statsmodels' MixedLM API, fitted in Rust) as a conformance plug-in:
``--impl pydsbase.conformance.adapters.mixedlm_rs``. The same models as the statsmodels adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from pydsbase.conformance.adapters.statsmodels_mixedlm import fit_with

__all__ = ["fit_study"]


def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    import warnings

    import mixedlm_rs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_with(mixedlm_rs.mixedlm, data, spec)
