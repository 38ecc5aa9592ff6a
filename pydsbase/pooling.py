"""Study-level meta-analysis pooling, as dsBaseClient 6.3.0's ds.lmerSLMA does it.

For every coefficient row p of the valid studies' beta and standard-error tables, ds.lmerSLMA
calls ``metafor::rma(yi = betas[p, ], sei = ses[p, ], method = m)`` for m = "ML", "REML", "FE"
(in that order, row by row) and fills ``SLMA.pooled.ests.matrix`` with each fit's ``beta`` and
``se``. An error in any fit stops the whole call (R's message, via
:class:`pydsbase.meta.MetaAnalysisError`); warnings are signalled in R's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from pydsbase.meta import METHODS, Outcome, RmaResult, rma_rows
from pydsbase.rvalue import NA, RAtomic

__all__ = ["POOLED_COLUMNS", "PooledEstimates", "pool_slma"]

#: The columns of ds.lmerSLMA's ``SLMA.pooled.ests.matrix`` (the one list of them in pydsbase).
POOLED_COLUMNS: Final = tuple(f"{column}.{method}" for method in METHODS for column in ("pooled", "se"))


@dataclass(frozen=True)
class PooledEstimates:
    """``SLMA.pooled.ests.matrix`` as an R double matrix, and every fit behind it.

    ``outcomes[m][p]`` is metafor's fit (result or error, with its warnings) of row p under method m,
    on ``yis[p]`` and ``seis[p]``; ``outcome(yi, sei, m)`` finds the fit of given inputs, bit for bit.
    """

    matrix: RAtomic
    results: dict[str, list[RmaResult]]
    yis: list[list[float]] = field(default_factory=list)
    seis: list[list[float]] = field(default_factory=list)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def outcome(self, yi: Sequence[float], sei: Sequence[float], method: str) -> Outcome | None:
        """The fit of exactly these inputs (every double bit for bit) under ``method``, if one was made."""
        key = (_bits(yi), _bits(sei))
        for p, row in enumerate(self.outcomes.get(method, [])):
            if (_bits(self.yis[p]), _bits(self.seis[p])) == key:
                return row
        return None


def _bits(values: Sequence[float]) -> tuple[str, ...]:
    return tuple(float(v).hex() for v in values)


def _as_float(value: object) -> float:
    if value is NA or value is None:
        return float("nan")
    return float(value)  # type: ignore[arg-type]


def pool_slma(terms: Sequence[str] | None, betas: Sequence[Sequence[object]],
              ses: Sequence[Sequence[object]]) -> PooledEstimates:
    """Pool a terms-by-studies table of coefficients (NA or NaN for missing values).

    ``terms`` names the rows (None when ds.lmerSLMA's beta matrix has no row names, as with a
    single valid study); ``betas[p][s]`` and ``ses[p][s]`` are coefficient p of valid study s.
    """
    yis = [[_as_float(v) for v in row] for row in betas]
    seis = [[_as_float(v) for v in row] for row in ses]
    if len(yis) != len(seis):
        raise ValueError("betas and ses must have the same number of rows")
    if terms is not None and len(terms) != len(yis):
        raise ValueError("terms must name every row")
    fits: dict[str, list[Outcome]] = {m: rma_rows(yis, seis, m) for m in METHODS}
    results: dict[str, list[RmaResult]] = {m: [] for m in METHODS}
    for p in range(len(yis)):
        for m in METHODS:
            results[m].append(fits[m][p].replay())
    nrow = len(yis)
    data: list[float] = []  # column-major: pooled.ML, se.ML, pooled.REML, se.REML, pooled.FE, se.FE
    for m in METHODS:
        data.extend(r.beta for r in results[m])
        data.extend(r.se for r in results[m])
    matrix = RAtomic(type="double", data=data, dim=[nrow, len(POOLED_COLUMNS)],
                     dimnames=[list(terms) if terms is not None else None, list(POOLED_COLUMNS)])
    return PooledEstimates(matrix=matrix, results=results, yis=yis, seis=seis, outcomes=fits)
