"""R's arithmetic order for the few matrix operations metafor's intercept-only model needs.

Every function works on a batch: axis 0 indexes independent problems (rows), the last axis the
studies. The results are the doubles R 4.2.2 with Debian's reference BLAS/LAPACK 3.11 computes:

- ``sum()`` and ``colMeans()`` accumulate in C ``long double`` (x87 80-bit, numpy.longdouble on
  x86_64 Linux), left to right, and ``sum()`` maps results beyond DBL_MAX to +-Inf.
- ``%*%``, ``crossprod`` and ``tcrossprod`` go to reference BLAS (dgemm/dgemv/dsyrk) or, when an
  operand has a non-finite value, to R's ``simple_matprod``; both add the products one by one, in
  index order, in double, starting from +0 (the BLAS skip of zero multipliers changes nothing for
  finite operands).
- ``qr.solve`` uses LINPACK ``dqrdc2``/``dqrsl`` with reference BLAS ``dnrm2`` (the 3.10+ version
  with Blue's scaling), ``dscal``, ``ddot`` and ``daxpy``; for a one-column model matrix the
  Householder step reduces to the closed expressions in :func:`invcalc_intercept`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DBL_MAX: Final = np.finfo(np.float64).max
# Blue's constants of reference BLAS dnrm2 for IEEE double.
_TSML: Final = 2.0**-511
_TBIG: Final = 2.0**486
_SSML: Final = 2.0**537
_SBIG: Final = 2.0**-538

# Errors R raises inside metafor's .invcalc (qr() on a non-finite matrix; qr.solve on rank 0).
ERR_NONFINITE: Final = "NA/NaN/Inf in foreign function call (arg 1)"
ERR_SINGULAR: Final = "singular matrix 'a' in solve"


def seq_dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Sum of a*b over the last axis, one product at a time, in double (R's matrix products)."""
    prod = a * b
    acc = prod[..., 0] + 0.0
    for j in range(1, prod.shape[-1]):
        acc += prod[..., j]
    return acc


def matmul(a: FloatArray, b: FloatArray) -> FloatArray:
    """Batched ``a %*% b`` for (n, r, m) x (n, m, c) arrays in R's order."""
    acc = a[:, :, 0, None] * b[:, None, 0, :] + 0.0
    for j in range(1, a.shape[2]):
        acc += a[:, :, j, None] * b[:, None, j, :]
    return acc


def r_sum(a: FloatArray) -> FloatArray:
    """R's ``sum()`` over the last axis: long double accumulation, then +-Inf beyond DBL_MAX."""
    la = a.astype(np.longdouble)
    acc = la[..., 0] + np.longdouble(0.0)
    for j in range(1, a.shape[-1]):
        acc += la[..., j]
    out = acc.astype(np.float64)
    out[acc > DBL_MAX] = np.inf
    out[acc < -DBL_MAX] = -np.inf
    return out


def r_mean(a: FloatArray) -> FloatArray:
    """R's ``colMeans()`` (and ``mean()``'s first pass) over the last axis: long double sum / n."""
    acc = np.zeros(a.shape[:-1], dtype=np.longdouble)
    for j in range(a.shape[-1]):
        acc = acc + a[..., j].astype(np.longdouble)
    return (acc / np.longdouble(a.shape[-1])).astype(np.float64)


def dnrm2(x: FloatArray) -> FloatArray:
    """Reference BLAS 3.11 ``dnrm2`` of each row (three accumulators, Blue's scaling)."""
    with np.errstate(all="ignore"):
        return _dnrm2(x)


def _dnrm2(x: FloatArray) -> FloatArray:
    ax = np.abs(x)
    if ((ax >= _TSML) & (ax <= _TBIG)).all():
        return np.sqrt(seq_dot(ax, ax))  # every value mid-range: only the amed accumulator is used
    n = x.shape[0]
    abig = np.zeros(n)
    amed = np.zeros(n)
    asml = np.zeros(n)
    notbig = np.ones(n, dtype=bool)
    for j in range(x.shape[1]):
        ax = np.abs(x[:, j])
        big = ax > _TBIG
        small = ~big & (ax < _TSML)
        med = ~big & ~small
        scaled = ax * _SBIG
        abig = np.where(big, abig + scaled * scaled, abig)
        notbig = notbig & ~big
        up = ax * _SSML
        asml = np.where(small & notbig, asml + up * up, asml)
        amed = np.where(med, amed + ax * ax, amed)
    amed_used = (amed > 0.0) | (amed > DBL_MAX) | np.isnan(amed)
    # abig > 0
    big_sum = np.where(amed_used, abig + (amed * _SBIG) * _SBIG, abig)
    res_big = (1.0 / _SBIG) * np.sqrt(big_sum)
    # asml > 0
    rmed = np.sqrt(amed)
    rsml = np.sqrt(asml) / _SSML
    ymin = np.where(rsml > rmed, rmed, rsml)
    ymax = np.where(rsml > rmed, rsml, rmed)
    ratio = ymin / ymax
    mixed = 1.0 * np.sqrt(ymax * ymax * (1.0 + ratio * ratio))
    res_sml = np.where(amed_used, mixed, (1.0 / _SSML) * np.sqrt(asml))
    res_med = 1.0 * np.sqrt(amed)
    return np.where(abig > 0.0, res_big, np.where(asml > 0.0, res_sml, res_med))


def invcalc_intercept(w: FloatArray) -> tuple[FloatArray, FloatArray, list[str | None]]:
    """metafor's ``.invcalc(X, diag(w), k)`` for X = a column of ones, per row.

    Returns ``(st, b, errors)``: ``st`` the 1x1 inverse ``tcrossprod(qr.solve(sqrt(W) %*% X,
    diag(k)))``, ``b`` the row ``qr.solve(...)`` itself, and R's error message for rows where
    R stops (non-finite weights, or all weights zero), else None.
    """
    n, k = w.shape
    s = np.sqrt(w)
    errors: list[str | None] = [None] * n
    finite = np.asarray(np.isfinite(s).all(axis=1), dtype=bool)
    safe = np.where(finite[:, None], s, 1.0)
    nrm = dnrm2(safe)
    for i in range(n):
        if not finite[i]:
            errors[i] = ERR_NONFINITE
        elif nrm[i] == 0.0:
            errors[i] = ERR_SINGULAR
    nrm = np.where(nrm == 0.0, 1.0, nrm)
    if k == 1:
        b = 1.0 / safe
    else:
        # dqrdc2: x <- x / nrm (dscal by 1/nrm), qraux = 1 + x[1], x[1,1] <- -nrm.
        v = (1.0 / nrm)[:, None] * safe
        q1 = 1.0 + v[:, 0]
        neg_nrm = -nrm
        b = np.empty_like(safe)
        # dqrsl on column 1 of diag(k): t = -(q1/q1) = -1, qty1 = 1 + t*q1.
        b[:, 0] = (1.0 + (-(q1 / q1)) * q1) / neg_nrm
        # other columns: t = -(v_j/q1), qty1 = 0 + t*q1.
        t = -(v[:, 1:] / q1[:, None])
        b[:, 1:] = (0.0 + t * q1[:, None]) / neg_nrm[:, None]
    st = seq_dot(b, b)
    return st, b, errors


def _log1(x: float) -> float:
    if x > 0.0:
        return math.log(x)  # C library log(), as R's log(); numpy's SIMD log differs in the last bit
    if x == 0.0:
        return -math.inf
    return math.nan


def r_log(a: FloatArray) -> FloatArray:
    """R's ``log()`` elementwise (glibc ``log``), for non-negative or NaN input."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    out = np.fromiter((_log1(float(v)) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(a))
