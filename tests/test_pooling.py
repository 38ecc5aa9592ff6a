"""pydsbase.pooling.pool_slma against the golden ds.lmerSLMA outputs, and its contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pydsbase.meta import MetaAnalysisError, MetaAnalysisWarning
from pydsbase.pooling import POOLED_COLUMNS, pool_slma
from pydsbase.rvalue import RAtomic, from_node, to_node


def _golden_pooling_cases(golden: Path) -> list[tuple[str, RAtomic, RAtomic, RAtomic]]:
    cases = []
    for path in sorted(golden.glob("*.json")):
        result = json.loads(path.read_text())["result"]
        if not result or result.get("type") != "list" or not isinstance(result["data"], dict):
            continue
        data = result["data"]
        if "SLMA.pooled.ests.matrix" not in data:
            continue
        betas, ses, pooled = (from_node(data[key]) for key in
                              ("betamatrix.valid", "sematrix.valid", "SLMA.pooled.ests.matrix"))
        assert isinstance(betas, RAtomic) and isinstance(ses, RAtomic) and isinstance(pooled, RAtomic)
        cases.append((path.stem, betas, ses, pooled))
    return cases


def _rows(mat: RAtomic) -> tuple[list[str] | None, list[list[object]]]:
    """Rows of ds.lmerSLMA's betamatrix.valid as its pooling loop sees them (as.matrix(x)[p, ])."""
    if mat.dim is None:  # one valid study: a named vector, as.matrix() makes it one column
        return None, [[v] for v in mat.data]
    nrow, ncol = mat.dim
    names = mat.dimnames[0] if mat.dimnames else None
    rows = [[mat.data[i + j * nrow] for j in range(ncol)] for i in range(nrow)]
    return (list(names) if names is not None else None), rows  # type: ignore[arg-type]


def test_pooling_reproduces_every_golden_matrix_bit_for_bit(golden_dir: Path) -> None:
    cases = _golden_pooling_cases(golden_dir)
    assert len(cases) >= 30
    for case_id, betas, ses, expected in cases:
        terms, beta_rows = _rows(betas)
        _, se_rows = _rows(ses)
        pooled = pool_slma(terms, beta_rows, se_rows)
        assert to_node(pooled.matrix) == to_node(expected), case_id
        assert pooled.matrix == expected, case_id  # every double to the bit


def test_matrix_layout_and_results() -> None:
    pooled = pool_slma(["(Intercept)", "x"], [[1.0, 1.2, 0.9], [0.1, -0.2, 0.05]],
                       [[0.1, 0.2, 0.15], [0.05, 0.04, 0.06]])
    mat = pooled.matrix
    assert mat.type == "double" and mat.dim == [2, 6] and mat.r_class == ["matrix", "array"]
    assert mat.dimnames == [["(Intercept)", "x"], list(POOLED_COLUMNS)]
    for j, method in enumerate(("ML", "REML", "FE")):
        fits = pooled.results[method]
        assert [f.method for f in fits] == [method, method]
        assert mat.data[2 * j * 2:2 * j * 2 + 2] == [f.beta for f in fits]
        assert mat.data[(2 * j + 1) * 2:(2 * j + 1) * 2 + 2] == [f.se for f in fits]
    fe = pooled.results["FE"][0]
    w = [1 / 0.1**2, 1 / 0.2**2, 1 / 0.15**2]
    assert math.isclose(fe.beta, sum(wi * yi for wi, yi in zip(w, [1.0, 1.2, 0.9], strict=True)) / sum(w),
                        rel_tol=1e-12)


def test_rows_without_names_and_na_values() -> None:
    with pytest.warns(MetaAnalysisWarning, match="Studies with NAs omitted"):
        pooled = pool_slma(None, [[1.0, float("nan"), 2.0]], [[0.5, 0.5, 0.5]])
    assert pooled.matrix.dimnames == [None, list(POOLED_COLUMNS)]
    assert pooled.results["FE"][0].k == 2
    # metafor's QR-based inverse gives 1.4999999999999996, not the 1.5 of plain arithmetic
    assert pooled.matrix.data[4] == float.fromhex("0x1.7fffffffffffep+0")


def test_errors_propagate_with_metafor_message() -> None:
    with pytest.warns(MetaAnalysisWarning) as record, pytest.raises(MetaAnalysisError) as info:
        pool_slma(["a"], [[1.0, 2.0]], [[0.0, 0.5]])
    # ML and REML fit (each warning twice, as in R); FE then divides by zero
    nonpos = "There are outcomes with non-positive sampling variances."
    noq = "Cannot compute Q-test, I^2, or H^2 when there are non-positive sampling variances in the data."
    assert [str(w.message) for w in record] == [nonpos, noq, nonpos, noq, nonpos]
    assert str(info.value) == "Division by zero when computing the inverse variance weights."
