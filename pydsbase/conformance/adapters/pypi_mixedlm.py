"""PyPI ``mixedlm`` (a port of lme4's ``lmer``) as a conformance plug-in: ``--impl
pydsbase.conformance.adapters.pypi_mixedlm``. Pooling: pydsbase's metafor port (no ``pool`` here)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pydsbase.results import SINGULAR_NOTE

__all__ = ["fit_study"]


def _group(name: str, names: list[str]) -> str:
    match = re.fullmatch(r"(.+)\.(\d+)", name)
    return match.group(1) if match and match.group(1) in names else name


def _value(attribute: Any) -> Any:
    return attribute() if callable(attribute) else attribute


def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    import mixedlm

    if spec.get("control_type") is not None:
        raise NotImplementedError("lme4's control settings (xtol_rel, check.conv.grad) are not mapped")
    fit = mixedlm.lmer(spec["formula"], data, REML=bool(spec["REML"]), weights=spec.get("weights"),
                       offset=spec.get("offset"))
    fixef = fit.fixef()
    ses = [math.sqrt(v) for v in fit.vcov().diagonal()]
    coefficients = {str(t): {"estimate": float(b), "se": float(s)}
                    for (t, b), s in zip(fixef.items(), ses, strict=True)}
    components: dict[str, float] = {}
    groups = fit.VarCorr().groups
    for name, block in groups.items():
        group = _group(str(name), [str(n) for n in groups])
        terms = list(block.term_names)
        for term in terms:
            components.setdefault(f"{group}:{term}", float(block.stddev[term]))
        if block.corr is not None and len(terms) > 1:
            for j in range(len(terms)):
                for i in range(j + 1, len(terms)):
                    components.setdefault(f"{group}:{terms[j]}:{terms[i]}", float(block.corr[i][j]))
    sigma = float(fit.sigma)
    components["Residual"] = sigma
    loglik = fit.logLik()
    answer: dict[str, Any] = {
        "coefficients": coefficients,
        "sigma": sigma,
        "logLik": float(getattr(loglik, "value", loglik)),
        "variance_components": components,
        "converged": bool(fit.converged),
        # lme4's convergence messages: of those, mixedlm tells the singular fit (its optimizer's own
        # status text is not one of lme4's messages)
        "messages": [SINGULAR_NOTE] if fit.isSingular() else [],
        "Nvalid": float(_value(fit.nobs)),
    }
    if spec["REML"]:
        answer["REMLcrit"] = float(_value(fit.REMLcrit))
    else:
        answer["deviance"] = float(_value(fit.deviance))
    return answer
