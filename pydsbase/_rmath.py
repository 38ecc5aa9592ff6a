"""R's normal and chi-square tail probabilities, as metafor 3.8-1 uses them (no R needed).

- :func:`pnorm_upper` is a port of the upper tail of R 4.2's ``pnorm_both`` (Cody's algorithm,
  ``src/nmath/pnorm.c``), elementwise over a numpy array, so it gives R's doubles.
- :func:`pchisq_upper` evaluates the chi-square upper tail in closed form (Poisson sum for even
  degrees of freedom, ``erfc`` plus a series for odd ones). It is not R's ``pgamma`` code path:
  it agrees with R to about 1e-14 relative where the value is not tiny (values below ~1e-300 come
  out as 0 or a tiny number), which is the tolerance the project accepts for p-values.
- ``QNORM_0975_UPPER`` is R's ``qnorm(0.025, lower.tail = FALSE)``, the critical value metafor
  uses for 95% intervals. It is one ulp above ``qnorm(0.975)``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

QNORM_0975_UPPER: Final = float.fromhex("0x1.f5c0331eeff83p+0")

_A: Final = (2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582, 18154.981253343561249,
             0.065682337918207449113)
_B: Final = (47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956)
_C: Final = (0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979, 597.27027639480026226,
             2494.5375852903726711, 6848.1904505362823326, 11602.651437647350124, 9842.7148383839780218,
             1.0765576773720192317e-8)
_D: Final = (22.266688044328115691, 235.38790178262499861, 1519.377599407554805, 6485.558298266760755,
             18615.571640885098091, 34900.952721145977266, 38912.003286093271411, 19685.429676859990727)
_P: Final = (0.21589853405795699, 0.1274011611602473639, 0.022235277870649807, 0.001421619193227893466,
             2.9112874951168792e-5, 0.02307344176494017303)
_Q: Final = (1.28426009614491121, 0.468238212480865118, 0.0659881378689285515, 0.00378239633202758244,
             7.29751555083966205e-5)
_M_SQRT_32: Final = 5.656854249492380195206754896838
_M_1_SQRT_2PI: Final = 0.398942280401432677939946059934
_EPS_HALF: Final = 2.220446049250313e-16 * 0.5


def _pnorm_upper_scalar(x: float) -> float:
    """R's ``pnorm(x, lower.tail = FALSE)`` for one double (pnorm_both with i_tail = 1)."""
    if math.isnan(x):
        return x
    y = abs(x)
    if y <= 0.67448975:
        if y > _EPS_HALF:
            xsq = x * x
            xnum = _A[4] * xsq
            xden = xsq
            for i in range(3):
                xnum = (xnum + _A[i]) * xsq
                xden = (xden + _B[i]) * xsq
        else:
            xnum = xden = 0.0
        temp = x * (xnum + _A[3]) / (xden + _B[3])
        return 0.5 - temp
    if y <= _M_SQRT_32:
        xnum = _C[8] * y
        xden = y
        for i in range(7):
            xnum = (xnum + _C[i]) * y
            xden = (xden + _D[i]) * y
        temp = (xnum + _C[7]) / (xden + _D[7])
        return _tail(x, y, temp)
    if -8.2924 < x < 37.5193:
        xsq = 1.0 / (x * x)
        xnum = _P[5] * xsq
        xden = xsq
        for i in range(4):
            xnum = (xnum + _P[i]) * xsq
            xden = (xden + _Q[i]) * xsq
        temp = xsq * (xnum + _P[4]) / (xden + _Q[4])
        temp = (_M_1_SQRT_2PI - temp) / y
        return _tail(x, x, temp)
    return 0.0 if x > 0 else 1.0


def _tail(x: float, arg: float, temp: float) -> float:
    """The ``do_del`` and ``swap_tail`` steps of R's pnorm_both, upper tail, not on log scale."""
    xsq = math.trunc(arg * 16) / 16
    delta = (arg - xsq) * (arg + xsq)
    cum = math.exp(-xsq * (xsq * 0.5)) * math.exp(-(delta * 0.5)) * temp
    ccum = 1.0 - cum
    return cum if x > 0.0 else ccum


def pnorm_upper(x: FloatArray) -> FloatArray:
    """R's ``pnorm(x, lower.tail = FALSE)`` elementwise (mean 0, sd 1)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    out = np.fromiter((_pnorm_upper_scalar(float(v)) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(x))


def _pchisq_upper_scalar(q: float, df: int) -> float:
    if math.isnan(q):
        return q
    if q <= 0.0:
        return 1.0
    if math.isinf(q):
        return 0.0
    x = q / 2.0
    half = df // 2
    odd = df % 2 == 1
    head = math.erfc(math.sqrt(x)) if odd else 0.0
    # Q(a, x) = head + exp(-x) * sum_j x^e_j / Gamma(e_j + 1), e_j = j (even df) or j + 1/2 (odd df),
    # j = 0 .. half-1 for odd df (none when df = 1) and j = 0 .. half-1 for even df.
    exponents = [j + 0.5 for j in range(half)] if odd else [float(j) for j in range(half)]
    if not exponents:
        return head
    if x < 700.0:
        total = 0.0
        term = 2.0 * math.sqrt(x / math.pi) if odd else 1.0
        for j, e in enumerate(exponents):
            if j > 0:
                term *= x / e
            total += term
        return head + math.exp(-x) * total
    logs = [e * math.log(x) - math.lgamma(e + 1.0) for e in exponents]
    top = max(logs)
    log_total = top + math.log(sum(math.exp(v - top) for v in logs))
    return head + math.exp(-x + log_total)


def pchisq_upper(q: FloatArray, df: int) -> FloatArray:
    """``pchisq(q, df, lower.tail = FALSE)`` elementwise for an integer df >= 1 (see module notes)."""
    flat = np.asarray(q, dtype=np.float64).ravel()
    out = np.fromiter((_pchisq_upper_scalar(float(v), df) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(q))
