"""An exact port of ``metafor::rma`` (metafor 3.8-1, ``rma.uni``) for the intercept-only model.

``rma(yi, sei, method)`` with method "FE", "ML" or "REML" and metafor's defaults gives the same
doubles as R 4.2.2 with reference BLAS/LAPACK: it replays metafor's arithmetic in R's order
(see :mod:`pydsbase._rlinalg`), including the Fisher scoring path with its absolute stopping
rule, the step halving and the ``ll0check``. Where metafor stops, :class:`MetaAnalysisError`
carries R's message; where metafor warns, a :class:`MetaAnalysisWarning` carries R's text.

No R is needed. :func:`rma_rows` fits many independent problems at once (vectorised over rows
with the same number of studies); :func:`rma` is the one-problem form.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from pydsbase._rlinalg import (
    FloatArray,
    invcalc_intercept,
    matmul,
    r_log,
    r_mean,
    r_sum,
    seq_dot,
)
from pydsbase._rmath import QNORM_0975_UPPER, pchisq_upper, pnorm_upper
from pydsbase.errors import MetaAnalysisError

__all__ = ["METHODS", "MetaAnalysisError", "MetaAnalysisWarning", "RmaResult", "rma", "rma_rows"]

Method = Literal["FE", "ML", "REML"]
#: The ported methods, in the order ds.lmerSLMA pools with them (the one list of them in pydsbase).
METHODS: Final = ("ML", "REML", "FE")
_OTHER_METHODS: Final = ("EE", "CE", "HS", "HSk", "HE", "DL", "DLIT", "GENQ", "GENQM", "SJ", "SJIT", "PM", "MP",
                         "PMM", "EB")

# metafor's control defaults for rma.uni.
_THRESHOLD: Final = 1e-5
_MAXITER: Final = 100
_LL0_TOL: Final = float.fromhex("0x1p-13")  # .Machine$double.eps^0.25
_EVTOL_INV: Final = 1 / 1e-7
_LOG_2PI: Final = math.log(2 * math.pi)

# R's messages.
MSG_NA_OMIT: Final = "Studies with NAs omitted from model fitting."
MSG_K0: Final = "Processing terminated since k = 0."
MSG_NONPOS: Final = "There are outcomes with non-positive sampling variances."
MSG_RATIO: Final = ("Ratio of largest to smallest sampling variance extremely large. "
                    "May not be able to obtain stable results.")
MSG_DIVZERO: Final = "Division by zero when computing the inverse variance weights."
MSG_NOCONV: Final = "Fisher scoring algorithm did not converge. See 'help(rma)' for possible remedies."
MSG_LL0: Final = ("Fisher scoring algorithm may have gotten stuck at a local maximum.\n"
                  "Setting tau^2 = 0. Check the profile likelihood plot with profile().")
MSG_NOQ: Final = "Cannot compute Q-test, I^2, or H^2 when there are non-positive sampling variances in the data."
MSG_NAN: Final = "NaNs produced"
MSG_NA_COND: Final = "missing value where TRUE/FALSE needed"
MSG_LENGTH: Final = "Length of 'yi' and 'vi' (or 'sei') is not the same."
MSG_METHOD: Final = "Unknown 'method' specified."


class MetaAnalysisWarning(UserWarning):
    """metafor warned; the message is R's text."""


@dataclass(frozen=True)
class RmaResult:
    """The numbers of an ``rma.uni`` fit (NaN where metafor gives NA or NULL)."""

    method: str
    k: int
    beta: float
    se: float
    zval: float
    pval: float
    ci_lb: float
    ci_ub: float
    tau2: float
    se_tau2: float
    QE: float
    QEp: float
    I2: float
    H2: float
    iterations: int
    warnings: tuple[str, ...] = field(default=(), compare=False)


@dataclass
class Outcome:
    """What one rma call produced: a result, or R's error, and the warnings before either."""

    result: RmaResult | None
    error: str | None
    warnings: list[str]

    def replay(self) -> RmaResult:
        """Emit the warnings (as R signals them) and return the result or raise the error."""
        for text in self.warnings:
            warnings.warn(text, MetaAnalysisWarning, stacklevel=3)
        if self.error is not None:
            raise MetaAnalysisError(self.error)
        assert self.result is not None
        return self.result


def rma(yi: Sequence[float], sei: Sequence[float], method: str = "REML") -> RmaResult:
    """``metafor::rma(yi = yi, sei = sei, method = method)``; NaN marks NA."""
    return rma_rows([yi], [sei], method)[0].replay()


def rma_rows(yis: Sequence[Sequence[float]], seis: Sequence[Sequence[float]], method: str) -> list[Outcome]:
    """Fit one rma per row (row i: ``yi = yis[i]``, ``sei = seis[i]``); never raises for a row."""
    if method not in METHODS:
        if method in _OTHER_METHODS:
            raise ValueError(f"method {method!r} is not ported; use one of {METHODS}")
        raise MetaAnalysisError(MSG_METHOD)
    if len(yis) != len(seis):
        raise ValueError("yis and seis must have the same number of rows")
    outcomes: list[Outcome | None] = [None] * len(yis)
    groups: dict[int, list[tuple[int, FloatArray, FloatArray, bool, list[str]]]] = {}
    with np.errstate(all="ignore"):
        for row, (yi_row, sei_row) in enumerate(zip(yis, seis, strict=True)):
            y = np.asarray(yi_row, dtype=np.float64).ravel()
            sei = np.asarray(sei_row, dtype=np.float64).ravel()
            prepared = _prepare(y, sei)
            if isinstance(prepared, Outcome):
                outcomes[row] = prepared
                continue
            y, v, vi0, notes = prepared
            groups.setdefault(y.size, []).append((row, y, v, vi0, notes))
        for k, members in groups.items():
            rows = [m[0] for m in members]
            y2 = np.stack([m[1] for m in members])
            v2 = np.stack([m[2] for m in members])
            flags = np.array([m[3] for m in members], dtype=bool)
            row_notes = [m[4] for m in members]
            for row, outcome in zip(rows, _fit(y2, v2, flags, row_notes, method, k), strict=True):
                outcomes[row] = outcome
    return [o for o in outcomes if o is not None]


def _prepare(y: FloatArray, sei: FloatArray) -> Outcome | tuple[FloatArray, FloatArray, bool, list[str]]:
    """rma.uni's input handling: vi = sei^2, the vi0 flag, NA removal, k = 0."""
    if y.size != sei.size:
        return Outcome(None, MSG_LENGTH, [])
    v = sei * sei
    if v.size == 1 and math.isnan(v[0]):
        return Outcome(None, MSG_NA_COND, [])  # `(length(vi) == 1L && vi == 0) || ...` is NA
    vi0 = bool((v.size == 1 and v[0] == 0.0) or (not np.isnan(v).any() and (v == 0.0).all()))
    notes: list[str] = []
    keep = ~(np.isnan(y) | np.isnan(v))
    if not keep.all():
        notes.append(MSG_NA_OMIT)
        y, v = y[keep], v[keep]
    if y.size < 1:
        return Outcome(None, MSG_K0, notes)
    return y, v, vi0, notes


class _Rows:
    """Per-row errors and warnings of a batch; a row stops at its first error."""

    def __init__(self, notes: list[list[str]]) -> None:
        self.warnings = [list(n) for n in notes]
        self.errors: list[str | None] = [None] * len(notes)

    def alive(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)

    def warn(self, mask: npt.ArrayLike, text: str, rows: np.ndarray | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask) if rows is None else rows[mask]
        for i in idx:
            if self.errors[i] is None:
                self.warnings[i].append(text)

    def fail(self, mask: npt.ArrayLike, text: str, rows: np.ndarray | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask) if rows is None else rows[mask]
        for i in idx:
            if self.errors[i] is None:
                self.errors[i] = text

    def fail_each(self, messages: list[str | None], rows: np.ndarray) -> None:
        for i, text in zip(rows, messages, strict=True):
            if text is not None and self.errors[i] is None:
                self.errors[i] = text


def _r_max0(x: FloatArray) -> FloatArray:
    """R's ``max(0, x)`` elementwise: NaN stays NaN, otherwise the larger (0 on ties)."""
    return np.where(np.isnan(x), x, np.where(x > 0.0, x, 0.0))


def _p_matrix(w: FloatArray, st: FloatArray) -> FloatArray:
    """``W - W %*% X %*% stXWX %*% crossprod(X, W)`` for X = ones: P[i,j] = d_ij w_i - w_j*(w_i*st)."""
    a = w * st[:, None]
    prod = w[:, None, :] * a[:, :, None]
    k = w.shape[1]
    return np.where(np.eye(k, dtype=bool)[None, :, :], w[:, :, None] - prod, -prod)


def _quad(u: FloatArray, m: FloatArray) -> FloatArray:
    """``crossprod(u, M) %*% u`` in R's order."""
    return seq_dot(matmul(u[:, None, :], m)[:, 0, :], u)


def _diag(m: FloatArray) -> FloatArray:
    return np.diagonal(m, axis1=1, axis2=2)


def _loglik(v: FloatArray, tau2: FloatArray, w: FloatArray, st: FloatArray, ymc: FloatArray,
            method: str) -> FloatArray:
    """metafor's ll (ML or REML) of the ll0check, for weights w = 1/(vi + tau2)."""
    k = v.shape[1]
    beta = seq_dot(w * st[:, None], ymc)
    d = ymc - beta[:, None]
    rss = r_sum(w * (d * d))
    slog = r_sum(r_log(v + tau2[:, None]))
    if method == "ML":
        ml: npt.NDArray[np.float64] = (-0.5 * k) * _LOG_2PI - 0.5 * slog - 0.5 * rss
        return ml
    logdet = r_log(seq_dot(w, np.ones_like(w)))
    reml: npt.NDArray[np.float64] = (
        (-0.5 * (k - 1)) * _LOG_2PI - 0.5 * slog - 0.5 * logdet - 0.5 * rss)
    return reml


def _fit(y: FloatArray, v: FloatArray, vi0: np.ndarray, notes: list[list[str]], method: str,
         k: int) -> list[Outcome]:
    n = y.shape[0]
    rows = _Rows(notes)
    allvipos = (v > 0.0).all(axis=1)
    rows.warn(~allvipos & ~vi0, MSG_NONPOS)
    ratio = v.max(axis=1) / v.min(axis=1)
    rows.warn(np.isfinite(ratio) & (ratio >= _EVTOL_INV), MSG_RATIO)
    ymc = y - r_mean(y)[:, None]

    tau2 = np.zeros(n)
    se_tau2 = np.full(n, np.nan)
    iters = np.zeros(n, dtype=np.int64)
    if method != "FE" and k >= 2:
        tau2, iters = _fisher_scoring(y, v, ymc, method, rows)
        tau2 = _ll0check(v, ymc, tau2, allvipos, method, rows)
        alive = rows.alive()
        idx = np.flatnonzero(alive)
        w = 1.0 / (v[idx] + tau2[idx, None])
        rows.fail(np.isinf(w).any(axis=1), MSG_DIVZERO, idx)
        st, _, errs = invcalc_intercept(w)
        rows.fail_each(errs, idx)
        tau2 = _r_max0(tau2)
        if method == "ML":
            se_tau2[idx] = np.sqrt(2.0 / r_sum(w * w))
        else:
            p = _p_matrix(w, st)
            se_tau2[idx] = np.sqrt(2.0 / r_sum(p.transpose(0, 2, 1).reshape(len(idx), k * k) ** 2))

    # The model fit.
    idx = np.flatnonzero(rows.alive())
    w = 1.0 / (v[idx] + tau2[idx, None])
    rows.fail(np.isinf(w).any(axis=1), MSG_DIVZERO, idx)
    st, _, errs = invcalc_intercept(w)
    rows.fail_each(errs, idx)
    beta = np.full(n, np.nan)
    vb = np.full(n, np.nan)
    beta[idx] = seq_dot(w * st[:, None], y[idx])
    vb[idx] = st
    se = np.sqrt(vb)
    zval = beta / se
    pval = 2.0 * pnorm_upper(np.abs(zval))
    ci_lb = beta - QNORM_0975_UPPER * se
    ci_ub = beta + QNORM_0975_UPPER * se

    # Heterogeneity statistics.
    qe = np.full(n, np.nan)
    qep = np.full(n, np.nan)
    i2 = np.full(n, np.nan)
    h2 = np.full(n, np.nan)
    alive = rows.alive()
    if k > 1:
        idx = np.flatnonzero(alive & allvipos)
        w = 1.0 / v[idx]
        st, _, errs = invcalc_intercept(w)
        rows.fail_each(errs, idx)
        p = _p_matrix(w, st)
        qe[idx] = _r_max0(_quad(ymc[idx], p))
        qep[idx] = pchisq_upper(qe[idx], k - 1)
        vt = (k - 1) / r_sum(_diag(p))
        if method == "FE":
            i2[idx] = _r_max0(100.0 * (qe[idx] - (k - 1)) / qe[idx])
            h2[idx] = qe[idx] / (k - 1)
        else:
            t = tau2[idx]
            i2[idx] = 100.0 * t / (vt + t)
            h2[idx] = t / vt + 1.0
    else:
        ok = alive & allvipos
        qe[ok], qep[ok], i2[ok], h2[ok] = 0.0, 1.0, 0.0, 1.0
    rows.warn(~allvipos & ~vi0, MSG_NOQ)
    if k > 1:
        # dnorm(yi, mean = yi, sd = sqrt(vi), log = TRUE) is NaN for infinite yi with finite vi.
        rows.warn(allvipos & (np.isinf(y) & np.isfinite(v)).any(axis=1), MSG_NAN)

    outcomes: list[Outcome] = []
    for i in range(n):
        if rows.errors[i] is not None:
            outcomes.append(Outcome(None, rows.errors[i], rows.warnings[i]))
            continue
        res = RmaResult(method=method, k=k, beta=float(beta[i]), se=float(se[i]), zval=float(zval[i]),
                        pval=float(pval[i]), ci_lb=float(ci_lb[i]), ci_ub=float(ci_ub[i]),
                        tau2=float(tau2[i]), se_tau2=float(se_tau2[i]), QE=float(qe[i]), QEp=float(qep[i]),
                        I2=float(i2[i]), H2=float(h2[i]), iterations=int(iters[i]),
                        warnings=tuple(rows.warnings[i]))
        outcomes.append(Outcome(res, None, rows.warnings[i]))
    return outcomes


def _fisher_scoring(y: FloatArray, v: FloatArray, ymc: FloatArray, method: str,
                    rows: _Rows) -> tuple[FloatArray, np.ndarray]:
    """Hedges start and metafor's Fisher scoring loop, replayed per row; returns (tau2, iter)."""
    n, k = y.shape
    # Start: tau2 = max(0, (RSS - tr(PV)) / (k - p)) with P = I - X (X'X)^-1 X'.
    st0, _, _ = invcalc_intercept(np.ones((1, k)))
    p0 = np.eye(k)[None, :, :] - st0[0]
    rss = _quad(ymc, np.broadcast_to(p0, (n, k, k)))
    trpv = r_sum(_diag(p0) * v)
    tau2 = _r_max0((rss - trpv) / (k - 1))
    iters = np.zeros(n, dtype=np.int64)
    active = rows.alive()
    while active.any():
        idx = np.flatnonzero(active)
        iters[idx] += 1
        t = tau2[idx]
        old2 = t
        rows.fail(np.isnan(t), MSG_NA_COND, idx)  # any(tau2 + vi < 0) is NA
        vv = v[idx]
        w = 1.0 / (vv + t[:, None])
        rows.fail(np.isinf(w).any(axis=1), MSG_DIVZERO, idx)
        st, _, errs = invcalc_intercept(np.where(np.isfinite(w), w, 1.0))
        rows.fail_each(errs, idx)
        p = _p_matrix(w, st)
        pp = matmul(p, p)
        q = _quad(ymc[idx], pp)
        if method == "ML":
            adj = (q - r_sum(w)) / r_sum(w * w)
        else:
            adj = (q - r_sum(_diag(p))) / r_sum(_diag(pp))
        adj = np.where(np.isnan(adj), 0.0, adj)
        adj = _halve_steps(t, adj, idx, rows)
        t = t + adj
        change = np.abs(old2 - t)
        live = np.array([rows.errors[i] is None for i in idx], dtype=bool)
        tau2[idx] = np.where(live, t, tau2[idx])
        rows.fail(live & (iters[idx] > _MAXITER), MSG_NOCONV, idx)
        rows.fail(np.isnan(change), MSG_NA_COND, idx)
        still = ~(change <= _THRESHOLD)
        active[idx] = still
        active &= rows.alive()
    return tau2, iters


def _halve_steps(t: FloatArray, adj: FloatArray, idx: np.ndarray, rows: _Rows) -> FloatArray:
    """``while (tau2 + adj < tau2.min) adj <- adj / 2`` per row (plain floats: same IEEE doubles)."""
    need = np.flatnonzero((t + adj) < 0.0)
    if need.size == 0:
        return adj
    adj = adj.copy()
    for j in need:
        tj, aj = float(t[j]), float(adj[j])
        if aj == -math.inf:
            rows.fail(np.array([True]), "step halving does not terminate (R would loop forever)", idx[j:j + 1])
            adj[j] = 0.0
            continue
        while tj + aj < 0.0:
            aj /= 2
        adj[j] = aj
    return adj


def _ll0check(v: FloatArray, ymc: FloatArray, tau2: FloatArray, allvipos: npt.ArrayLike, method: str,
              rows: _Rows) -> FloatArray:
    """metafor's check against tau2 = 0: may set tau2 to 0 with a warning."""
    idx = np.flatnonzero(rows.alive() & np.asarray(allvipos, dtype=bool))
    if idx.size == 0:
        return tau2
    vv = v[idx]
    w0 = 1.0 / vv
    st0, _, errs = invcalc_intercept(w0)
    rows.fail_each(errs, idx)
    ll0 = _loglik(vv, np.zeros(idx.size), w0, st0, ymc[idx], method)
    t = tau2[idx]
    w = 1.0 / (vv + t[:, None])
    rows.fail(np.isinf(w).any(axis=1), MSG_DIVZERO, idx)
    st, _, errs = invcalc_intercept(np.where(np.isfinite(w), w, 1.0))
    rows.fail_each(errs, idx)
    ll = _loglik(vv, t, w, st, ymc[idx], method)
    diff = ll0 - ll
    big = t > _THRESHOLD
    rows.fail(np.isnan(diff) & big, MSG_NA_COND, idx)  # `NA && TRUE` in if()
    reset = (diff > _LL0_TOL) & big
    rows.warn(reset, MSG_LL0, idx)
    live = np.array([rows.errors[i] is None for i in idx], dtype=bool)
    out = tau2.copy()
    out[idx] = np.where(reset & live, 0.0, t)
    return out
