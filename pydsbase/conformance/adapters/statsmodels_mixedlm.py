"""statsmodels' ``MixedLM`` as a conformance plug-in: ``--impl pydsbase.conformance.adapters.statsmodels_mixedlm``
(pooled by pydsbase's metafor port) or ``...statsmodels_mixedlm:WITH_PYMARE`` (pooled by PyMARE's
ML/REML likelihood estimators and its weighted least squares with tau2 = 0 for FE).

MixedLM has one grouping factor, correlated random effects within it, no prior weights and no offset:
other models raise ``NotImplementedError`` (graded ``unsupported``). ``mixedlm_rs`` reuses this with
its own ``MixedLM`` (the same API).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pydsbase.conformance.adapters._lme4formula import split_formula

__all__ = ["WITH_PYMARE", "fit_study", "fit_with", "pymare_pool"]


def _r_term(name: str) -> str:
    return "(Intercept)" if name in ("Intercept", "Group", "Group Var") else name


def fit_with(mixedlm: Callable[..., Any], data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fit with a statsmodels-style ``mixedlm(formula, data, groups=, re_formula=, missing=)``."""
    if spec.get("weights") is not None or spec.get("offset") is not None:
        raise NotImplementedError("MixedLM has no prior weights or offset")
    if spec.get("control_type") is not None:
        raise NotImplementedError("lme4's control settings are not mapped")
    formula = split_formula(str(spec["formula"]))
    if len(formula.bars) != 1 or formula.bars[0].double:
        raise NotImplementedError("one grouping factor with correlated random effects only")
    bar = formula.bars[0]
    if "/" in bar.group or ":" in bar.group:
        raise NotImplementedError("nested grouping factors")
    re_terms = [t.strip() for t in bar.terms.split("+")]
    if "0" in re_terms or "-1" in re_terms:
        raise NotImplementedError("random effects without an intercept")
    slopes = [t for t in re_terms if t != "1"]
    used = [formula.response, bar.group, *slopes]
    frame = data.dropna(subset=[c for c in data.columns if c in used or c in formula.fixed]).copy()
    model = mixedlm(f"{formula.response} ~ {formula.fixed}", frame, groups=frame[bar.group],
                    re_formula="~" + " + ".join(slopes) if slopes else "1")
    fit = model.fit(reml=bool(spec["REML"]))
    names = list(fit.model.exog_names)
    estimates, ses = np.asarray(fit.fe_params, dtype=float), np.asarray(fit.bse_fe, dtype=float)
    coefficients = {_r_term(n): {"estimate": float(estimates[i]), "se": float(ses[i])} for i, n in enumerate(names)}
    sigma = math.sqrt(float(fit.scale))
    cov = np.asarray(fit.cov_re, dtype=float)
    columns = getattr(fit.cov_re, "columns", None)
    re_names = [_r_term(str(n)) for n in (columns if columns is not None else fit.model.data.exog_re_names)]
    components: dict[str, float] = {}
    for i, term in enumerate(re_names):
        components[f"{bar.group}:{term}"] = math.sqrt(cov[i, i])
    for j in range(len(re_names)):
        for i in range(j + 1, len(re_names)):
            components[f"{bar.group}:{re_names[j]}:{re_names[i]}"] = cov[i, j] / math.sqrt(cov[i, i] * cov[j, j])
    components["Residual"] = sigma
    return {
        "coefficients": coefficients,
        "sigma": sigma,
        "logLik": float(fit.llf),
        "variance_components": components,
        "converged": bool(fit.converged),
        "Nvalid": float(fit.nobs),
    }


def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    import warnings

    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_with(smf.mixedlm, data, spec)


def pymare_pool(yi: list[float], sei: list[float], method: str) -> dict[str, float]:
    """PyMARE: ML/REML by ``VarianceBasedLikelihoodEstimator``, FE by ``WeightedLeastSquares(tau2=0)``."""
    from pymare import Dataset
    from pymare.estimators import VarianceBasedLikelihoodEstimator, WeightedLeastSquares

    dataset = Dataset(y=np.asarray(yi, dtype=float), v=np.asarray(sei, dtype=float) ** 2)
    estimator = WeightedLeastSquares(tau2=0) if method == "FE" else VarianceBasedLikelihoodEstimator(method=method)
    summary = estimator.fit_dataset(dataset).summary()
    fe = summary.get_fe_stats()
    het = summary.get_heterogeneity_stats()
    h = float(np.ravel(het["H"])[0])
    return {
        "b": float(np.ravel(fe["est"])[0]), "se": float(np.ravel(fe["se"])[0]), "zval": float(np.ravel(fe["z"])[0]),
        "pval": float(np.ravel(fe["p"])[0]), "ci.lb": float(np.ravel(fe["ci_l"])[0]),
        "ci.ub": float(np.ravel(fe["ci_u"])[0]), "tau2": float(np.ravel(summary.tau2)[0]),
        "QE": float(np.ravel(het["Q"])[0]), "QEp": float(np.ravel(het["p(Q)"])[0]),
        "I2": float(np.ravel(het["I^2"])[0]), "H2": h * h,
    }


class _WithPymare:
    """statsmodels' fits, PyMARE's pooling."""

    fit_study = staticmethod(fit_study)
    pool = staticmethod(pymare_pool)


WITH_PYMARE = _WithPymare()
