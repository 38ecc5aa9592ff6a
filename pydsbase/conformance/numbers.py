"""The numbers of a conformance case: canonical keys, hex doubles, pooling by term, and grading.

One key names every reference number: ``(study, method, term, quantity)``. Per study (``method``
None): ``estimate`` and ``se`` per term; ``sigma``; ``logLik`` (lme4's: the restricted one for a
REML fit); ``REMLcrit`` (REML fits) or ``deviance`` (ML fits); ``variance_component`` under
``group:term`` (an SD), ``group:t1:t2`` (a correlation) or ``Residual``; ``Ntotal``, ``Nvalid``,
``Nmissing``. Pooled (``study`` None, ``method`` ML/REML/FE, per term): metafor's ``b``, ``se``,
``zval``, ``pval``, ``ci.lb``, ``ci.ub``, ``tau2``, ``se.tau2``, ``QE``, ``QEp``, ``I2``, ``H2`` and
``k`` (terms pooled by :func:`pydsbase.results.pool_terms`, the one pooling loop). Groups are named
as lme4 names them (``h:g`` for ``(1|g/h)``); the blocks lme4 numbers ``g.1``, ``g.2`` for ``(x||g)``
are merged back into ``g``.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydsbase.meta import RmaResult
from pydsbase.rvalue import NA, RAtomic, RList, RValue

__all__ = [
    "LRE_MAX",
    "POOLED_QUANTITIES",
    "TIERS",
    "Grade",
    "Key",
    "PoolFunction",
    "metafor_pool",
    "from_hex",
    "grade",
    "lre",
    "read_table",
    "rma_numbers",
    "table_answer",
    "study_numbers",
    "to_hex",
    "ulp_distance",
    "write_table",
]

Key = tuple[str | None, str | None, str | None, str]
"""(study, method, term, quantity); study None for pooled numbers, method None for a study's."""

POOLED_QUANTITIES = ("b", "se", "zval", "pval", "ci.lb", "ci.ub", "tau2", "se.tau2", "QE", "QEp", "I2", "H2")
TIERS = ("identical", "ulp4", "lre10", "lre6", "lre3", "worse", "not_reported", "unsupported", "error", "structure")
LRE_MAX = 17.0
"""LRE of an exact answer (a double carries fewer than 17 significant digits); every LRE is clipped to
``[0, LRE_MAX]``."""

_HEADER = "study\tmethod\tterm\tquantity\tvalue"


# -- doubles ----------------------------------------------------------------------------------------


def to_hex(value: float) -> str:
    """C99 hex (``float.hex``, R's ``sprintf("%a")`` up to trailing zeros); ``NaN``, ``Inf``, ``-Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return float(value).hex()


def from_hex(text: str) -> float:
    return {"NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf}.get(text) or float.fromhex(text)


def _ordinal(value: float) -> int:
    """Doubles in order as integers: adjacent doubles differ by 1, and -0.0 and 0.0 are both 0."""
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def ulp_distance(reference: float, value: float) -> int | None:
    """How many doubles lie between the two, plus one (0 when equal); None when either is not finite
    (0 when both are the same non-finite value: NaN and NaN, or the same infinity)."""
    if not (math.isfinite(reference) and math.isfinite(value)):
        same = (math.isnan(reference) and math.isnan(value)) or reference == value
        return 0 if same else None
    return abs(_ordinal(reference) - _ordinal(value))


def lre(reference: float, value: float) -> float:
    """Log relative error (NIST StRD): the number of correct significant digits, in ``[0, LRE_MAX]``.

    ``-log10(|value - reference| / |reference|)``; when the reference is 0, ``-log10(|value|)`` (the
    absolute error, as StRD does for a certified value of 0). Equal values give ``LRE_MAX``. A
    reference that is not finite gives ``LRE_MAX`` for the same value (NaN for NaN, the same infinity)
    and 0 for anything else; a value that is not finite against a finite reference gives 0.
    """
    if not (math.isfinite(reference) and math.isfinite(value)):
        return LRE_MAX if ulp_distance(reference, value) == 0 else 0.0
    if value == reference:
        return LRE_MAX
    error = abs(value - reference) if reference == 0 else abs(value - reference) / abs(reference)
    if error == 0.0:  # underflow of the quotient: closer than any double can say
        return LRE_MAX
    return min(LRE_MAX, max(0.0, -math.log10(error)))


@dataclass(frozen=True)
class Grade:
    ulp: int | None
    lre: float
    tier: str


def grade(reference: float, value: float) -> Grade:
    """``identical`` (0 ulp), ``ulp4`` (1-4 ulp), else by LRE: ``lre10``, ``lre6``, ``lre3``, ``worse``."""
    ulp = ulp_distance(reference, value)
    digits = lre(reference, value)
    if ulp == 0:
        tier = "identical"
    elif ulp is not None and ulp <= 4:
        tier = "ulp4"
    elif digits >= 10:
        tier = "lre10"
    elif digits >= 6:
        tier = "lre6"
    elif digits >= 3:
        tier = "lre3"
    else:
        tier = "worse"
    return Grade(ulp, digits, tier)


# -- the flat table -----------------------------------------------------------------------------------


def _cell(text: str | None) -> str:
    if text is not None and any(c in text for c in "\t\n\r"):
        raise ValueError(f"a key part holds a tab or newline: {text!r}")
    return "" if text is None else text


def write_table(numbers: Mapping[Key, float]) -> str:
    """The table as text: a header, then one ``study method term quantity hex`` line per number (tabs;
    an empty cell is None), in the order given."""
    lines = [_HEADER]
    for (study, method, term, quantity), value in numbers.items():
        lines.append("\t".join([_cell(study), _cell(method), _cell(term), _cell(quantity), to_hex(value)]))
    return "\n".join(lines) + "\n"


def read_table(text: str) -> dict[Key, float]:
    lines = text.splitlines()
    if not lines or lines[0] != _HEADER:
        raise ValueError("not a reference table (bad header)")
    out: dict[Key, float] = {}
    for line in lines[1:]:
        study, method, term, quantity, value = line.split("\t")
        out[(study or None, method or None, term or None, quantity)] = from_hex(value)
    return out


# -- a study's numbers from its lmerSLMADS2 summary ----------------------------------------------------


def _doubles(value: RValue | None) -> list[float]:
    if not isinstance(value, RAtomic):
        return []
    return [math.nan if v is NA else float(v) for v in value.data]


def _merged_group(name: str, names: Sequence[str]) -> str:
    """lme4 names the blocks of ``(x||g)`` ``g``, ``g.1``...: the grouping factor is ``g``."""
    match = re.fullmatch(r"(.+)\.(\d+)", name)
    return match.group(1) if match and match.group(1) in names else name


def variance_components(varcor: RValue | None) -> dict[str, float]:
    """lme4's VarCorr as canonical keys: ``group:term`` SDs, ``group:t1:t2`` correlations, ``Residual``."""
    out: dict[str, float] = {}
    if not isinstance(varcor, RList) or varcor.names is None:
        return out
    names = list(varcor.names)
    for name, block in zip(names, varcor.data, strict=True):
        if not isinstance(block, RAtomic):
            continue
        group = _merged_group(name, names)
        attrs = block.attributes or {}
        stddev = attrs.get("stddev")
        terms = [str(t) for t in (stddev.names or [])] if isinstance(stddev, RAtomic) else []
        for term, sd in zip(terms, _doubles(stddev), strict=True):
            out.setdefault(f"{group}:{term}", sd)
        corr = _doubles(attrs.get("correlation"))
        n = len(terms)
        for j in range(n):
            for i in range(j + 1, n):
                if len(corr) == n * n:
                    out.setdefault(f"{group}:{terms[j]}:{terms[i]}", corr[j * n + i])
    sc = _doubles((varcor.attributes or {}).get("sc"))
    if sc:
        out["Residual"] = sc[0]
    return out


def study_numbers(summary: RValue | None) -> dict[tuple[str | None, str], float]:
    """``(term, quantity) -> value`` for one study's lmerSLMADS2 answer (empty when it has none)."""
    if not isinstance(summary, RList):
        return {}
    out: dict[tuple[str | None, str], float] = {}
    coefficients = summary.get("coefficients")
    risk = _doubles(summary.get("disclosure.risk"))
    if risk == [0.0] and isinstance(coefficients, RAtomic) and coefficients.dim and coefficients.dimnames:
        nrow = coefficients.dim[0]
        terms = [str(t) for t in coefficients.dimnames[0] or []]
        values = _doubles(coefficients)
        for i, term in enumerate(terms):
            out[(term, "estimate")] = values[i]
            out[(term, "se")] = values[nrow + i]
        sigma = _doubles(summary.get("sigma"))
        if sigma:
            out[(None, "sigma")] = sigma[0]
        loglik = _doubles(summary.get("logLik"))
        if loglik:
            out[(None, "logLik")] = loglik[0]
        aic = summary.get("AICtab")
        if isinstance(aic, RAtomic) and aic.names == ["REML"]:
            out[(None, "REMLcrit")] = _doubles(aic)[0]
        elif isinstance(aic, RAtomic) and aic.names and "deviance" in aic.names:
            out[(None, "deviance")] = _doubles(aic)[list(aic.names).index("deviance")]
        for key, value in variance_components(summary.get("varcor")).items():
            out[(key, "variance_component")] = value
    for count in ("Ntotal", "Nvalid", "Nmissing"):
        found = _doubles(summary.get(count))
        if found:
            out[(None, count)] = found[0]
    return out


def table_answer(table: Mapping[Key, float], study: str) -> dict[str, Any]:
    """One study's numbers of a table as a plug-in answer (``coefficients``, ``variance_components`` and
    the scalars under their quantity names)."""
    answer: dict[str, Any] = {"coefficients": {}, "variance_components": {}}
    for (name, method, term, quantity), value in table.items():
        if name != study or method is not None:
            continue
        if quantity in ("estimate", "se"):
            answer["coefficients"].setdefault(term, {})[quantity] = value
        elif quantity == "variance_component":
            answer["variance_components"][term] = value
        else:
            answer[quantity] = value
    return answer


# -- pooling -------------------------------------------------------------------------------------

PoolFunction = Callable[[list[float], list[float], str], Mapping[str, float]]
"""``pool(yi, sei, method) -> {metafor name: value}``, the plug-in contract."""


def rma_numbers(fit: RmaResult) -> dict[str, float]:
    """An rma fit under metafor's names."""
    return {
        "b": fit.beta, "se": fit.se, "zval": fit.zval, "pval": fit.pval, "ci.lb": fit.ci_lb, "ci.ub": fit.ci_ub,
        "tau2": fit.tau2, "se.tau2": fit.se_tau2, "QE": fit.QE, "QEp": fit.QEp, "I2": fit.I2, "H2": fit.H2,
    }


def metafor_pool(yi: list[float], sei: list[float], method: str) -> dict[str, float]:
    """pydsbase.meta's port of ``metafor::rma(yi, sei = sei, method = method)`` under metafor's names (raises
    where rma stops): the ``rma`` that :func:`pydsbase.results.pool_terms` pools the kit's terms with."""
    from pydsbase.results import _metafor_rma

    return rma_numbers(_metafor_rma()(yi, sei, method))


def as_float(value: Any) -> float:
    """A plug-in's number as a float (None and R's NA become NaN)."""
    if value is None or value is NA:
        return math.nan
    return float(value)
