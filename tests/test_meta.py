"""pydsbase.meta without R: values recorded from metafor 3.8-1, errors, warnings, R-free import."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from pydsbase._rlinalg import dnrm2
from pydsbase._rmath import pchisq_upper
from pydsbase.meta import MetaAnalysisError, MetaAnalysisWarning, RmaResult, rma, rma_rows

H = float.fromhex

# metafor::rma(yi = c(1, 2, 3, 5), sei = c(1, 0.5, 1, 2), method = "REML"), printed with sprintf("%a").
# Fisher scoring stops after 11 iterations at tau2 = 2.7e-6, not at the optimum 0 (absolute stop rule).
REML_CASE = {
    "beta": H("0x1.0f5c30316dc53p+1"), "se": H("0x1.999a032c74103p-2"), "tau2": H("0x1.6d4ee7008cdd1p-19"),
    "se_tau2": H("0x1.3ad4670181fd3p-1"), "QE": H("0x1.0a3d70a3d70a4p+2"), "I2": H("0x1.3fa4ca44e530ep-12"),
    "H2": H("0x1.00003324a575dp+0"), "zval": H("0x1.5332e4d040808p+2"), "ci_lb": H("0x1.5604e501f7c32p+0"),
    "ci_ub": H("0x1.73b5ede1dfa8dp+1"),
}


def test_reml_matches_recorded_metafor_doubles() -> None:
    res = rma([1, 2, 3, 5], [1, 0.5, 1, 2], method="REML")
    for name, expected in REML_CASE.items():
        assert getattr(res, name).hex() == expected.hex(), name
    assert res.iterations == 11 and res.k == 4 and res.method == "REML"
    assert math.isclose(res.pval, H("0x1.f16b6d9411522p-24"), rel_tol=1e-12)
    assert math.isclose(res.QEp, H("0x1.f523d90c20258p-3"), rel_tol=1e-12)


def test_ml_matches_recorded_metafor_doubles() -> None:
    res = rma([0.3, -0.1, 0.8, 1.2, 0.4], [0.2, 0.3, 0.25, 0.4, 0.1], method="ML")
    assert [res.beta.hex(), res.se.hex(), res.tau2.hex(), res.se_tau2.hex()] == [
        H(h).hex() for h in ("0x1.af39f087c354ep-2", "0x1.457dcbe9082bdp-4", "0x1.0f9fdf3f24348p-22",
                             "0x1.b8fb84833b4c9p-7")]


def test_fe_and_single_study() -> None:
    assert rma([1, 2], [0.5, 0.5], method="FE").beta == H("0x1.7fffffffffffep+0")
    one = rma([1.5], [0.3], method="ML")
    assert (one.k, one.tau2, one.iterations, one.QE, one.QEp, one.I2, one.H2) == (1, 0.0, 0, 0.0, 1.0, 0.0, 1.0)
    assert math.isnan(one.se_tau2)


def test_errors_carry_metafor_messages() -> None:
    with pytest.warns(MetaAnalysisWarning, match="^Studies with NAs omitted from model fitting.$"):
        with pytest.raises(MetaAnalysisError, match=r"^Processing terminated since k = 0\.$"):
            rma([math.nan, 1.0], [1.0, math.nan], method="REML")
    with pytest.raises(MetaAnalysisError, match="^Unknown 'method' specified.$"):
        rma([1.0, 2.0], [1.0, 1.0], method="XYZ")
    with pytest.raises(MetaAnalysisError, match=r"^singular matrix 'a' in solve$"):
        rma([1.0, 2.0, 3.0], [math.inf] * 3, method="FE")
    with pytest.raises(MetaAnalysisError, match=r"^missing value where TRUE/FALSE needed$"):
        rma([1.0, math.inf, 3.0], [1.0, 1.0, 1.0], method="ML")


def test_warnings_are_metafor_text_in_order() -> None:
    with pytest.warns(MetaAnalysisWarning) as record:
        res = rma([1.0, 2.0, 3.0], [0.0, 0.5, 1.0], method="REML")
    assert [str(w.message) for w in record] == [
        "There are outcomes with non-positive sampling variances.",
        "Cannot compute Q-test, I^2, or H^2 when there are non-positive sampling variances in the data.",
    ]
    assert math.isnan(res.QE) and math.isnan(res.I2)


def _bits(res: RmaResult) -> tuple[object, ...]:
    return tuple(v.hex() if isinstance(v, float) else v for v in dataclasses.astuple(res))


def test_batch_equals_single_calls() -> None:
    rng = np.random.default_rng(3)
    yis = [rng.normal(0, 1, k).tolist() for k in (2, 5, 5, 5, 9, 9)]
    seis = [rng.uniform(0.1, 1, len(y)).tolist() for y in yis]
    for method in ("ML", "REML", "FE"):
        batch = rma_rows(yis, seis, method)
        for y, s, out in zip(yis, seis, batch, strict=True):
            assert out.result is not None
            assert _bits(out.result) == _bits(rma(y, s, method=method))


def test_import_and_fit_without_r() -> None:
    code = ("import sys, pydsbase.meta as m; r = m.rma([1, 2, 3, 5], [1, 0.5, 1, 2]);"
            "assert 'rpy2' not in sys.modules; print(r.beta.hex())")
    env = {k: v for k, v in os.environ.items() if k not in ("R_HOME", "R_LIBS", "R_LIBS_USER")}
    env["PATH"] = ""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == REML_CASE["beta"].hex()


def _libblas_dnrm2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    for name in ("libblas.so.3", ctypes.util.find_library("blas")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).dnrm2_
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_double
        return fn
    return None


def test_dnrm2_matches_reference_blas() -> None:
    fn = _libblas_dnrm2()
    if fn is None:
        pytest.skip("no reference BLAS library to compare with")
    rng = np.random.default_rng(11)
    rows = [rng.uniform(0, 1, 7) * 10.0 ** rng.uniform(-320, 300, 7) for _ in range(300)]
    rows += [np.array([1e200, 1e-200, 3.0]), np.array([1e-300, 2e-300, 0.0]), np.array([1e300, 1e300, 1e300])]
    for row in rows:
        mine = dnrm2(row[None, :])[0]
        x = (ctypes.c_double * len(row))(*row)
        theirs = fn(ctypes.byref(ctypes.c_int(len(row))), x, ctypes.byref(ctypes.c_int(1)))
        assert mine.hex() == float(theirs).hex()


def test_chi_square_tail_for_huge_q() -> None:
    # R: pchisq(c(1e40, 2000, 3), 29, lower.tail = FALSE) is 0, 0 and 0.99999999973639409
    out = pchisq_upper(np.array([1e40, 2000.0, 3.0]), 29)
    assert out[0] == 0.0 and out[1] < 1e-300 and math.isclose(out[2], 0.99999999973639409, rel_tol=1e-14)
