"""The comparer's rules: exact where runs are reproducible, the golden's own tolerances where not."""

from __future__ import annotations

import copy
import math
from typing import Any

from pydsbase.conformance.compare import compare
from pydsbase.rvalue import RAtomic, r_character, r_list, to_node


def _case(beta: float, feval: int, message: str, bitwise: bool = True) -> dict[str, Any]:
    matrix = RAtomic("double", [beta, 2.0], dim=[2, 1], dimnames=[["(Intercept)", "x"], ["betas study 1"]])
    summary = r_list({"optinfo": r_list({"feval": RAtomic("integer", [feval])}), "sigma": RAtomic("double", [1.5])})
    result = r_list({
        "output.summary": r_list({"study1": summary}),
        "betamatrix.all": matrix,
        "Convergence.error.message": r_character([message]),
    })
    return {
        "outcome": "returned", "result": to_node(result), "error": None, "datashield_errors": None,
        "stdout": [], "messages": ["m\n"], "warnings": [], "printed": ["ignored"],
        "reproducibility": {
            "bitwise_identical_in_all_runs": bitwise, "max_rel_diff_betamatrix.all": 1e-5,
            "max_rel_diff_sematrix.all": 1e-4, "max_rel_diff_SLMA.pooled.ests.matrix": 1e-4,
        },
    }


def test_identical_outputs_pass_and_ignored_keys_are_ignored() -> None:
    golden = _case(20.5, 30, "Study1: no convergence error reported")
    ours = copy.deepcopy(golden)
    ours["printed"] = ["different"]
    ours["messages"] = []
    result = compare(golden, ours)
    assert result.ok and any("messages" in n for n in result.notes)


def test_one_ulp_fails_when_bitwise() -> None:
    golden = _case(20.5, 30, "a")
    ours = _case(math.nextafter(20.5, 21.0), 30, "a")
    assert ours["result"] != golden["result"]
    result = compare(golden, ours)
    assert not result.ok and "betamatrix.all" in result.failures[0]


def test_tolerances_apply_only_when_not_reproducible() -> None:
    golden = _case(20.5, 30, "Study1: max|grad| 0.0031 (tol = 0.002)", bitwise=False)
    near = _case(20.5 * (1 + 1.5e-5), 35, "Study1: max|grad| 0.0029 (tol = 0.002)", bitwise=False)
    result = compare(golden, near)
    assert result.ok, result.failures
    assert any("optinfo" in n for n in result.notes) and any("numbers in text" in n for n in result.notes)
    far = _case(20.5 * (1 + 3e-5), 30, "Study1: max|grad| 0.0031 (tol = 0.002)", bitwise=False)
    assert not compare(golden, far).ok  # beyond 2x max_rel_diff_betamatrix.all


def test_outcome_error_message_and_stdout_fail() -> None:
    golden = _case(1.0, 1, "a")
    ours = copy.deepcopy(golden)
    ours["outcome"], ours["error"], ours["stdout"] = "error", {"message": "boom", "class": []}, ["x"]
    failures = compare(golden, ours).failures
    assert any(f.startswith("outcome") for f in failures)
    assert any(f.startswith("error.message") for f in failures)
    assert any(f.startswith("stdout") for f in failures)
