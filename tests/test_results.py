"""SLMAResult: studies by server name, coefficients aligned by term, reasons for every exclusion.

The pooling itself is ``pydsbase.meta.rma`` (tested bit for bit against metafor elsewhere); here a
recording stand-in checks exactly which (yi, sei) pairs go into each pooling, and
``test_results_metafor.py`` checks the extended statistics against metafor run in R.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pydsbase.results import METHODS, SLMAResult, aligned_terms, slma_result, study_fit
from pydsbase.rvalue import RAtomic, RList, from_node, r_character, r_double


class RecordingRma:
    """Stands in for pydsbase.meta.rma: records its inputs; answers with values derived from them."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[float], list[float], str]] = []

    def __call__(self, yi: list[float], sei: list[float], method: str) -> Any:
        self.calls.append((list(yi), list(sei), method))
        offset = METHODS.index(method) * 1e-3
        fields = {
            "beta": sum(yi) / len(yi) + offset,
            "se": min(sei),
            "zval": 1.5,
            "pval": 0.25,
            "ci_lb": min(yi),
            "ci_ub": max(yi),
            "tau2": 0.0,
            "se_tau2": math.nan if method == "FE" else 0.125,
            "QE": 2.0,
            "QEp": 0.5,
            "I2": 10.0,
            "H2": 1.25,
            "k": len(yi),
        }
        return type("Fit", (), fields)()


def golden(golden_dir: Path, case: str) -> tuple[RList, list[str]]:
    case_json = json.loads((golden_dir / f"{case}.json").read_text())
    value = from_node(case_json["result"])
    assert isinstance(value, RList)
    return value, list(case_json["call"]["effective_arguments"]["datasources"]["servers"])


def summaries(value: RList) -> RList:
    inner = value["output.summary"]
    assert isinstance(inner, RList)
    return inner


def coefficient_matrix(summary: Any) -> tuple[list[str], list[float], list[float]]:
    matrix = summary["coefficients"]
    nrow = matrix.dim[0]
    return list(matrix.dimnames[0]), matrix.data[:nrow], matrix.data[nrow : 2 * nrow]


def without_term(summary: RList, term: str) -> RList:
    """A copy of a study summary whose coefficient table lacks ``term`` (as when lme4 drops it)."""
    matrix = summary["coefficients"]
    assert isinstance(matrix, RAtomic) and matrix.dim and matrix.dimnames
    nrow, ncol = matrix.dim
    rows = list(matrix.dimnames[0] or [])
    keep = [i for i, name in enumerate(rows) if name != term]
    data = [matrix.data[j * nrow + i] for j in range(ncol) for i in keep]
    reduced = RAtomic(
        "double",
        data,
        dim=[len(keep), ncol],
        dimnames=[[rows[i] for i in keep], list(matrix.dimnames[1] or [])],
    )
    items = [reduced if name == "coefficients" else item for name, item in summary.items()]
    return RList(items, names=summary.names, r_class=list(summary.r_class))


def dropped_coefficient_value(golden_dir: Path, study: int, term: str) -> tuple[RList, list[str]]:
    """int_bmi_ri's per-study summaries with ``term`` missing in one study (an output.summary list)."""
    value, names = golden(golden_dir, "int_bmi_ri")
    inner = summaries(value)
    items = list(inner.data)
    items[study] = without_term(items[study], term)  # type: ignore[arg-type]
    return RList(items, names=inner.names), names


# -- all studies valid -------------------------------------------------------------------------------


def test_studies_are_named_and_every_term_pooled_from_the_coefficient_tables(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_bmi_ri")
    rma = RecordingRma()
    result = slma_result(value, names, formula="BMI ~ trtGrp + Male + (1|idDoctor)", rma=rma)

    assert result.study_names == ["cluster.int1", "cluster.int2", "cluster.int3"]
    assert result.included_studies == names
    assert result.terms == ("(Intercept)", "trtGrp", "Male")
    assert result.exclusions == ()
    assert result.r_value is value
    # exactly the Estimate / Std. Error columns of each study, in server order, per term and method
    tables = [coefficient_matrix(summaries(value)[f"study{i}"]) for i in (1, 2, 3)]
    expected = [
        ([t[1][row] for t in tables], [t[2][row] for t in tables], method) for row in range(3) for method in METHODS
    ]
    assert rma.calls == expected
    row = result.get("trtGrp", "REML")
    assert row.studies == tuple(names)
    assert row.estimate == sum(expected[3][0]) / 3 + 1e-3
    assert row.k == 3


def test_counts_and_convergence_messages_come_from_each_study(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "slo_nonconvergence_default_tol")
    result = slma_result(value, names, rma=RecordingRma())
    first = result.study("cluster.slo1")
    assert first.convergence == (
        "unable to evaluate scaled gradient",
        "Model failed to converge: degenerate  Hessian with 1 negative eigenvalues",
    )
    assert first.n_valid == 5637 and first.n_missing == 0
    assert result.study("cluster.slo2").convergence == ()
    assert "unable to evaluate scaled gradient" in repr(result)


def test_output_summary_style_list_gives_the_same_result(golden_dir: Path) -> None:
    full, names = golden(golden_dir, "int_bmi_ri")
    no_metafor, names2 = golden(golden_dir, "int_no_metafor")
    assert names == names2
    a = slma_result(full, names, rma=RecordingRma())
    b = slma_result(no_metafor, names, rma=RecordingRma())
    assert a.to_dict() == b.to_dict()
    assert b.r_value is no_metafor


# -- exclusions -------------------------------------------------------------------------------------------


def test_disclosure_refusal_names_the_study_and_its_cause(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_disclosure_binary_x_study1")
    rma = RecordingRma()
    result = slma_result(value, names, rma=rma)
    assert result.included_studies == ["cluster.int2", "cluster.int3"]
    (exclusion,) = result.exclusions
    assert exclusion.study == "cluster.int1" and exclusion.term is None and exclusion.kind == "disclosure"
    assert exclusion.message == (
        "ERROR: at least one column in X matrix is binary with one category less than filter threshold"
        " for table cell size"
    )
    assert result.terms == ("(Intercept)", "trtGrp", "Male", "rare")
    # the refused study contributes nothing; rare is pooled over the two others
    assert all(len(yi) == 2 for yi, _, _ in rma.calls)
    assert result.get("rare", "FE").studies == ("cluster.int2", "cluster.int3")


def test_oversaturated_study_reason(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_disclosure_oversaturated_study2")
    result = slma_result(value, names, rma=RecordingRma())
    (exclusion,) = result.exclusions
    assert exclusion.study == "cluster.int2" and exclusion.kind == "disclosure"
    assert exclusion.message.startswith("ERROR: Model is oversaturated")
    assert "you need 9 observations" in exclusion.message


def test_fit_error_in_every_study_gives_reasons_and_no_pooling(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_no_random_effect")
    rma = RecordingRma()
    result = slma_result(value, names, rma=rma)
    assert rma.calls == []
    assert result.pooled == () and result.terms == ()
    assert [(e.study, e.kind, e.message) for e in result.exclusions] == [
        (name, "fit_error", "No random effects terms specified in formula") for name in names
    ]
    assert result.study("cluster.int2").n_total == 991
    assert result.to_frame().empty


def test_server_error_is_a_reason_not_a_crash() -> None:
    fit = study_fit("s1", RuntimeError("object 'diab_dis' not found"))
    assert fit.exclusion is not None
    assert (fit.exclusion.kind, fit.exclusion.message) == ("server_error", "object 'diab_dis' not found")


def test_dropped_coefficient_is_named_and_the_others_pooled(golden_dir: Path) -> None:
    value, names = dropped_coefficient_value(golden_dir, study=1, term="Male")
    rma = RecordingRma()
    result = slma_result(value, names, rma=rma)

    assert result.terms == ("(Intercept)", "trtGrp", "Male")
    assert result.included_studies == names
    (exclusion,) = result.exclusions
    assert (exclusion.study, exclusion.term, exclusion.kind) == ("cluster.int2", "Male", "missing_coefficient")
    assert "cluster.int2 has no coefficient 'Male'" in exclusion.message
    assert result.get("trtGrp", "ML").studies == tuple(names)
    assert result.get("Male", "ML").studies == ("cluster.int1", "cluster.int3")
    originals = [coefficient_matrix(summaries(golden(golden_dir, "int_bmi_ri")[0])[f"study{i}"]) for i in (1, 3)]
    male_calls = [c for c in rma.calls if len(c[0]) == 2]
    assert male_calls == [([t[1][2] for t in originals], [t[2][2] for t in originals], m) for m in METHODS]
    assert result.exclusions_for("Male") == [exclusion] and result.exclusions_for("trtGrp") == []
    assert "'Male' in cluster.int2: missing coefficient" in repr(result)


def test_dropped_first_study_coefficient_keeps_model_order(golden_dir: Path) -> None:
    value, names = dropped_coefficient_value(golden_dir, study=0, term="trtGrp")
    result = slma_result(value, names, rma=RecordingRma())
    assert result.terms == ("(Intercept)", "trtGrp", "Male")
    assert [(e.study, e.term) for e in result.exclusions] == [("cluster.int1", "trtGrp")]


def test_rank_deficiency_message_is_quoted_in_the_reason(golden_dir: Path) -> None:
    value, names = dropped_coefficient_value(golden_dir, study=2, term="Male")
    items = list(value.data)
    study3 = items[2]
    assert isinstance(study3, RList)
    message = "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient"
    items[2] = RList(
        [r_character([message]) if n == "fitMsgs" else v for n, v in study3.items()],
        names=study3.names,
        r_class=list(study3.r_class),
    )
    result = slma_result(RList(items, names=value.names), names, rma=RecordingRma())
    (exclusion,) = result.exclusions
    assert exclusion.message == f"cluster.int3 has no coefficient 'Male' (lme4: {message})"


def test_non_finite_standard_error_is_not_pooled(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_bmi_ri")
    items = list(summaries(value).data)
    study1 = items[0]
    assert isinstance(study1, RList)
    matrix = study1["coefficients"]
    assert isinstance(matrix, RAtomic)
    data = list(matrix.data)
    data[3 + 1] = math.nan  # se of trtGrp
    broken = RAtomic("double", data, dim=matrix.dim, dimnames=matrix.dimnames)
    items[0] = RList(
        [broken if n == "coefficients" else v for n, v in study1.items()], names=study1.names, r_class=study1.r_class
    )
    result = slma_result(RList(items, names=summaries(value).names), names, rma=RecordingRma())
    (exclusion,) = result.exclusions
    assert (exclusion.study, exclusion.term, exclusion.kind) == ("cluster.int1", "trtGrp", "not_estimable")
    assert result.get("trtGrp", "REML").k == 2


def test_aligned_terms_merges_in_model_order() -> None:
    assert aligned_terms([["a", "b", "c"], ["a", "x", "c"]]) == ["a", "b", "x", "c"]
    assert aligned_terms([["a", "c"], ["a", "b", "c"], ["b", "d"]]) == ["a", "b", "c", "d"]
    assert aligned_terms([["x", "y"], ["w", "x"]]) == ["w", "x", "y"]
    assert aligned_terms([]) == []


def test_bad_inputs_are_refused(golden_dir: Path) -> None:
    value, names = golden(golden_dir, "int_bmi_ri")
    with pytest.raises(ValueError, match="holds 3 study summaries, not the 4"):
        slma_result(value, [*names, "extra"], rma=RecordingRma())
    with pytest.raises(ValueError, match="unique"):
        slma_result(value, ["a", "a", "b"], rma=RecordingRma())
    with pytest.raises(ValueError, match="unknown pooling methods"):
        slma_result(value, names, methods=["DL"], rma=RecordingRma())
    with pytest.raises(TypeError):
        slma_result(r_double([1.0]), names, rma=RecordingRma())  # type: ignore[arg-type]


# -- views ------------------------------------------------------------------------------------------------


def dropped(golden_dir: Path) -> SLMAResult:
    value, names = dropped_coefficient_value(golden_dir, study=1, term="Male")
    return slma_result(value, names, formula="BMI ~ trtGrp + Male + (1|idDoctor)", rma=RecordingRma())


def test_to_frame_holds_every_pooled_value(golden_dir: Path) -> None:
    result = dropped(golden_dir)
    frame = result.to_frame()
    assert list(frame.columns) == [
        "estimate",
        "se",
        "z",
        "p",
        "ci_lb",
        "ci_ub",
        "tau2",
        "se_tau2",
        "Q",
        "Q_p",
        "I2",
        "H2",
        "k",
    ]
    assert len(frame) == 9
    for row in result.pooled:
        for column, expected in row.as_row().items():
            got: Any = frame.loc[(row.term, row.method), column]
            assert got == expected or (math.isnan(got) and math.isnan(expected))
    assert list(result.to_frame("FE").index.get_level_values("method")) == ["FE"] * 3
    studies = result.study_frame()
    missing: Any = studies.loc[("cluster.int2", "Male"), "estimate"]
    assert math.isnan(missing)
    assert not studies.loc[("cluster.int2", "Male"), "pooled"]
    assert studies.loc[("cluster.int1", "Male"), "pooled"]
    assert list(result.exclusion_frame()["kind"]) == ["missing_coefficient"]


def test_json_round_trips_every_double_bit_for_bit(golden_dir: Path) -> None:
    result = dropped(golden_dir)
    data = json.loads(result.to_json())
    assert data["terms"] == ["(Intercept)", "trtGrp", "Male"]
    assert [s["name"] for s in data["studies"]] == result.study_names
    assert data["studies"][1]["estimates"] == result.study("cluster.int2").estimates
    for got, row in zip(data["pooled"], result.pooled, strict=True):
        assert got["estimate"].hex() == row.estimate.hex()
        assert got["se_tau2"] is None if row.method == "FE" else got["se_tau2"] == row.se_tau2
    assert data["exclusions"] == [
        {
            "study": "cluster.int2",
            "term": "Male",
            "kind": "missing_coefficient",
            "message": "cluster.int2 has no coefficient 'Male' (the term is not in this study's fitted model)",
        }
    ]


def test_repr_and_html_name_studies_terms_and_reasons(golden_dir: Path) -> None:
    result = dropped(golden_dir)
    text = repr(result)
    assert text.splitlines()[0] == "SLMAResult(BMI ~ trtGrp + Male + (1|idDoctor): 3 of 3 studies)"
    assert "cluster.int1: pooled, n=1056" in text
    male_reml = result.get("Male", "REML")
    assert f"{male_reml.estimate:.6g}" in text
    page = result._repr_html_()
    assert "<table" in page and "cluster.int2" in page and "missing coefficient" in page
    assert "BMI ~ trtGrp + Male + (1|idDoctor)" in page


def test_studies_that_failed_under_exclude_are_listed_with_their_error(golden_dir: Path) -> None:
    """A ds_lmer_slma(on_study_failure="exclude") value names its survivors and its failed studies."""
    import json

    from pydsbase.rvalue import from_node, r_character

    value = from_node(json.loads((golden_dir / "int_two_studies.json").read_text())["result"])
    assert isinstance(value, RList)
    value.attributes["failed.studies"] = r_character(["cannot reach the study server"], names=["cluster.int1"])
    value.attributes["datasources"] = r_character(["cluster.int2", "cluster.int3"])
    result = slma_result(value)
    assert [e.study for e in result.exclusions if e.term is None] == ["cluster.int1"]
    (failure,) = [e for e in result.exclusions if e.study == "cluster.int1"]
    assert failure.kind == "server_error" and failure.message == "cannot reach the study server"
    pooled = value["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic)
    frame = result.to_frame()
    assert frame.loc[("(Intercept)", "REML"), "estimate"] == pooled.data[2 * 3]  # pooled.REML, first row
