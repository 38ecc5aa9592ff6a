"""ds_lmer_slma and the workflow calls against a fake session: call texts, values, quirks, printed text."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
from datashield.interface import DSError

from pydsbase import console
from pydsbase.dsi import DSI_ERRORS_MESSAGE, DataSHIELDErrors
from pydsbase.errors import RError
from pydsbase.formula import checks_terms, encoded_formula_text
from pydsbase.lmer import ds_lmer_slma
from pydsbase.rtext import as_character_double, cat_text, format_double
from pydsbase.rvalue import NA, RAtomic, RList, r_character, r_double, r_integer, r_list, r_logical
from pydsbase.workflow import ds_boole, ds_complete_cases, ds_data_frame, ds_data_frame_subset, ds_make

Answer = Callable[[str, str, str], Any]  # (study, kind, text) -> value


class FakeSession:
    """The DSSession surface pydsbase uses; answers come from a function, every call is recorded."""

    def __init__(self, names: list[str], answer: Answer) -> None:
        self.names = names
        self.answer = answer
        self.calls: list[tuple[str, str, str]] = []
        self.errors: dict[str, Exception] = {}

    def get_connection_names(self) -> list[str]:
        return list(self.names)

    def get_errors(self) -> dict[str, Exception]:
        return self.errors

    def _fan(self, kind: str, text: str, conn_names: list[str] | None) -> dict[str, Any]:
        self.errors = {}
        out: dict[str, Any] = {}
        for name in reversed(conn_names or self.names):  # completion order is not connection order
            self.calls.append((kind, name, text))
            try:
                out[name] = self.answer(name, kind, text)
            except Exception as exc:
                self.errors[name] = exc
        if self.errors:
            raise DSError("some studies failed")
        return out

    def aggregate(self, expr: str, conn_names: list[str] | None = None) -> dict[str, Any]:
        return self._fan("aggregate", expr, conn_names)

    def assign_expr(self, symbol: str, expr: str, conn_names: list[str] | None = None) -> None:
        self._fan("assign", f"{symbol} <- {expr}", conn_names)


TERMS = ["(Intercept)", "trtGrp", "Male"]
ESTIMATES = {
    "s1": ([20.5, 8.0, 5.1], [0.40, 0.60, 0.09]),
    "s2": ([20.7, 7.8, 5.0], [0.39, 0.61, 0.092]),
    "s3": ([20.9, 8.2, 4.9], [0.41, 0.63, 0.087]),
}


def coefficient_matrix(betas: list[float], ses: list[float], terms: list[str]) -> RAtomic:
    tvals = [b / s for b, s in zip(betas, ses, strict=True)]
    return RAtomic(
        "double", [*betas, *ses, *tvals], dim=[len(betas), 3],
        dimnames=[list(terms), ["Estimate", "Std. Error", "t value"]],
    )


def valid_summary(study: str, messages: list[str] | None = None, terms: list[str] = TERMS) -> RList:
    betas, ses = ESTIMATES[study]
    n = len(terms)
    lme4 = r_list({"messages": r_character(messages)}) if messages else RList([])
    optinfo = r_list({"optimizer": r_character(["nloptwrap"]), "conv": r_list({"opt": r_integer([0]), "lme4": lme4})})
    return r_list({
        "coefficients": coefficient_matrix(betas[:n], ses[:n], terms),
        "optinfo": optinfo,
        "disclosure.risk": r_double([0]),
    })


def disclosive_summary() -> RList:
    return RList(
        [
            r_list({"errorMessage.1": r_character(["ERROR: Model failed in this source"])}),
            r_list({"errorMessage.2": r_character(["The following message(s) identify the cause"])}),
            None, None,
            r_list({"errorMessage.x": r_character(["ERROR: binary X column"])}),
            None, None,
            r_double([1]),
        ],
        names=["", "", "", "", "", "", "", "disclosure.risk"],
    )


def failed_fit_summary() -> RList:
    return r_list({
        "errorMessage": r_character(["No random effects terms specified in formula"]),
        "disclosure.risk": r_double([1]),
        "Ntotal": r_integer([1056]), "Nvalid": r_integer([1056]), "Nmissing": r_integer([0]),
    })


def server(summaries: dict[str, Any]) -> Answer:
    def answer(study: str, kind: str, text: str) -> Any:
        if kind == "assign":
            return None
        if text.startswith("exists("):
            return r_logical([True])
        if text.startswith("lmerSLMADS2("):
            value = summaries[study]
            if isinstance(value, Exception):
                raise value
            return value
        raise AssertionError(f"unexpected call {text}")

    return answer


def run(session: FakeSession, **kwargs: Any) -> tuple[Any, str, console.Conditions]:
    out = io.StringIO()
    with console.capture_conditions() as conditions, contextlib.redirect_stdout(out):
        result = ds_lmer_slma(session, **kwargs)
    return result, out.getvalue(), conditions


def three_valid() -> FakeSession:
    return FakeSession(["s1", "s2", "s3"], server({s: valid_summary(s) for s in ESTIMATES}))


# -- R text forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e5, "1e+05"), (123456.0, "123456"), (0.1, "0.1"), (1 / 3, "0.333333333333333"), (1e-10, "1e-10"),
     (0.0001, "1e-04"), (0.001, "0.001"), (1e15, "1e+15"), (100.0, "100"), (-0.5, "-0.5"), (0.1 + 0.2, "0.3"),
     (2.0**52, "4503599627370496"), (1.5e100, "1.5e+100")],
)
def test_doubles_are_formatted_as_r_does(value: float, text: str) -> None:
    assert as_character_double(value) == text


def test_cat_uses_seven_digits_and_r_separators() -> None:
    assert format_double(1 / 3, 7) == "0.3333333"
    assert cat_text(None, "\n") == " \n"
    assert cat_text("a", None) == "a"
    assert cat_text("\n", "x", 1.0, "\n") == "\n x 1 \n"
    assert cat_text(r_list({"a": r_character(["m"]), "b": r_double([1.5])}), "\n") == "m 1.5 \n"


def test_formula_encoding_matches_r_deparse() -> None:
    assert encoded_formula_text("BMI ~ trtGrp + Male + (1|idDoctor)") == "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz"
    assert encoded_formula_text("BMI ~ age + (1+age|g) + (x||h) + (1|a/b) + (1|a:b)") == (
        "BMI ~ age + yyy1 + agexxxgzzz + yyyxxxxxxxhzzz + yyy1xxxapppbzzz + yyy1xxxaqqqbzzz"
    )
    assert encoded_formula_text("D$y ~ x*z + 1e-3*w^2") == "D$y ~ x * z + 0.001 * w^2"
    with pytest.raises(RError, match="unexpected symbol"):
        encoded_formula_text("y ~ (x-1|g)")


def test_glm_checks_terms() -> None:
    assert checks_terms("BMI ~ trtGrp + (1|idDoctor) + (0+x||g)") == ["BMI", "trtGrp", "1", "idDoctor", "0", "x", "g"]


# -- ds_lmer_slma: calls ------------------------------------------------------------------------


def test_exact_call_texts_in_connection_order() -> None:
    session = three_valid()
    run(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)", data_name="D", control_type="xtol_rel",
        control_value=1e-10, verbose=1)
    texts = [(kind, text) for kind, _study, text in session.calls]
    assert texts[:3] == [("aggregate", 'exists("D")')] * 3
    assert texts[3] == (
        "aggregate",
        'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, "xtol_rel", "1e-10", NULL, 1)',
    )


def test_assign_sends_lmer_assign_and_notify_prints_like_r() -> None:
    session = three_valid()
    _, stdout, _ = run(session, formula="BMI ~ trtGrp + (1|g)", offset="off", weights="D2$w", data_name="D",
                       reml=False, control_type="check.conv.grad", control_value=0.1, assign=True,
                       newobj="lmer.fit", notify_of_progress=True)
    assigns = [text for kind, _s, text in session.calls if kind == "assign"]
    assert assigns[0] == (
        'lmer.fit <- lmerSLMADS.assign(BMI ~ trtGrp + yyy1xxxgzzz, "off", "D2$w", "D", FALSE, "check.conv.grad", '
        '"0.1", NULL, 0)'
    )
    assert stdout.split("\n") == [
        "", "", "SAVING SERVERSIDE lmerMod OBJECT AS: < lmer.fit >", "", "",
        "All studies passed disclosure tests", "Please check for convergence warnings in the study summaries", "", "",
        "Convergence information",
        "Study1: no convergence error reported ", "Study2: no convergence error reported ",
        "Study3: no convergence error reported ", "",
    ]


def test_results_follow_datasource_order_not_completion_order() -> None:
    session = three_valid()
    result, _, _ = run(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)", datasources=["s3", "s1"])
    beta = result["betamatrix.all"]
    assert beta.dimnames[1] == ["betas study 1", "betas study 2"]
    assert beta.data[:3] == ESTIMATES["s3"][0] and beta.data[3:] == ESTIMATES["s1"][0]
    assert result["output.summary"].names[:2] == ["study1", "study2"]


# -- ds_lmer_slma: values -----------------------------------------------------------------------


def test_three_valid_studies_give_the_eight_element_list() -> None:
    result, stdout, conditions = run(three_valid(), formula="BMI ~ trtGrp + Male + (1|idDoctor)", data_name="D")
    assert stdout == "" and conditions.warnings == []
    assert result.names == [
        "output.summary", "num.valid.studies", "betamatrix.all", "sematrix.all", "betamatrix.valid",
        "sematrix.valid", "SLMA.pooled.ests.matrix", "Convergence.error.message",
    ]
    assert result["num.valid.studies"] == r_double([3])
    beta = result["betamatrix.all"]
    assert beta.dim == [3, 3] and beta.dimnames == [TERMS, ["betas study 1", "betas study 2", "betas study 3"]]
    assert beta.data == [*ESTIMATES["s1"][0], *ESTIMATES["s2"][0], *ESTIMATES["s3"][0]]
    assert result["sematrix.valid"].dimnames == [TERMS, ["ses study 1", "ses study 2", "ses study 3"]]
    pooled = result["SLMA.pooled.ests.matrix"]
    assert pooled.dimnames == [TERMS, ["pooled.ML", "se.ML", "pooled.REML", "se.REML", "pooled.FE", "se.FE"]]
    for p in range(3):  # fixed effect = inverse-variance weighted mean
        weights = [1 / ESTIMATES[s][1][p] ** 2 for s in ESTIMATES]
        fe = sum(w * ESTIMATES[s][0][p] for w, s in zip(weights, ESTIMATES, strict=True)) / sum(weights)
        assert math.isclose(pooled.data[4 * 3 + p], fe, rel_tol=1e-12)
        assert math.isclose(pooled.data[5 * 3 + p], math.sqrt(1 / sum(weights)), rel_tol=1e-12)
    assert result["Convergence.error.message"] == r_character(
        [f"Study{q}: no convergence error reported" for q in (1, 2, 3)]
    )


def test_failed_first_study_takes_row_names_away() -> None:
    session = FakeSession(["s1", "s2", "s3"], server({
        "s1": disclosive_summary(), "s2": valid_summary("s2"), "s3": valid_summary("s3"),
    }))
    result, _, _ = run(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)")
    beta = result["betamatrix.all"]
    assert beta.dimnames == [None, ["betas study 1", "betas study 2", "betas study 3"]]
    assert beta.data[:3] == [NA, NA, NA] and beta.type == "double"
    assert result["num.valid.studies"] == r_double([2])
    assert result["betamatrix.valid"].dimnames == [None, ["betas study 2", "betas study 3"]]
    assert result["SLMA.pooled.ests.matrix"].dimnames[0] is None


def test_one_valid_study_drops_the_valid_matrices_to_named_vectors() -> None:
    session = three_valid()
    result, _, _ = run(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)", datasources=["s2"])
    valid = result["betamatrix.valid"]
    assert valid.dim is None and valid.names == TERMS and valid.r_class == ["numeric"]
    assert valid.data == ESTIMATES["s2"][0]
    assert result["num.valid.studies"] == r_double([1])
    pooled = result["SLMA.pooled.ests.matrix"]
    assert pooled.dimnames[0] is None
    # k = 1: every method returns the study's own estimate and standard error (up to rounding)
    expected = [*ESTIMATES["s2"][0], *ESTIMATES["s2"][1]] * 3
    assert all(math.isclose(a, b, rel_tol=1e-14) for a, b in zip(pooled.data, expected, strict=True))


def test_no_valid_study_returns_output_summary_with_logical_empty_matrices() -> None:
    session = FakeSession(["s1", "s2"], server({"s1": failed_fit_summary(), "s2": failed_fit_summary()}))
    result, stdout, _ = run(session, formula="y ~ x", notify_of_progress=True)
    assert result.names == ["study1", "study2", "input.beta.matrix.for.SLMA", "input.se.matrix.for.SLMA"]
    empty = result["input.beta.matrix.for.SLMA"]
    assert empty.type == "logical" and empty.dim == [0, 2] and empty.data == []
    assert empty.dimnames == [None, ["betas study 1", "betas study 2"]]
    assert stdout.split("\n")[:8] == [
        "", " Error report from second serverside function for study 1 ",
        "############################################################ ",
        "No random effects terms specified in formula ", "1 ", "", "1056 ", "",
    ]


def test_combine_false_returns_output_summary() -> None:
    result, _, _ = run(three_valid(), formula="BMI ~ trtGrp + Male + (1|g)", combine_with_metafor=False)
    assert result.names == ["study1", "study2", "study3", "input.beta.matrix.for.SLMA", "input.se.matrix.for.SLMA"]
    assert result["input.se.matrix.for.SLMA"].data[:3] == ESTIMATES["s1"][1]


def test_different_numbers_of_coefficients_raise_r_error() -> None:
    session = FakeSession(["s1", "s2"], server({"s1": valid_summary("s1"), "s2": valid_summary("s2", terms=TERMS[:2])}))
    with pytest.raises(RError) as caught:
        run(session, formula="BMI ~ trtGrp + Male + (1|g)")
    assert caught.value.message == "number of items to replace is not a multiple of replacement length"


def test_only_first_lme4_message_is_kept_with_r_warning() -> None:
    msgs = ["unable to evaluate scaled gradient", "Model failed to converge: degenerate  Hessian"]
    session = FakeSession(["s1", "s2"], server({"s1": valid_summary("s1", msgs), "s2": valid_summary("s2")}))
    result, _, conditions = run(session, formula="BMI ~ trtGrp + Male + (1|g)")
    assert result["Convergence.error.message"].data == [
        "Study1: unable to evaluate scaled gradient", "Study2: no convergence error reported",
    ]
    assert conditions.warnings == ["number of items to replace is not a multiple of replacement length"]


# -- ds_lmer_slma: errors and early returns -------------------------------------------------------


def test_server_errors_raise_dsi_error_with_per_study_messages() -> None:
    boom = RuntimeError("object 'diab_dis' not found")
    session = FakeSession(["s1", "s2"], server({"s1": boom, "s2": boom}))
    with pytest.raises(DataSHIELDErrors) as caught:
        run(session, formula="diab_dis ~ x + (1|g)", data_name="D")
    assert caught.value.message == DSI_ERRORS_MESSAGE
    assert caught.value.datashield_errors == {"s1": ["object 'diab_dis' not found"],
                                              "s2": ["object 'diab_dis' not found"]}


def test_client_side_argument_errors() -> None:
    session = three_valid()
    with pytest.raises(RError) as caught:
        run(session)
    assert caught.value.message == " Please provide a valid regression formula!"
    assert caught.value.r_class == ["simpleError", "error", "condition"]
    result, stdout, _ = run(session, formula="y ~ x + (1|g)", control_type="xtol_rel")
    assert result.names == ["errorMessage"]
    assert result["errorMessage"].data[0].startswith("ERROR: if control_type is non-null")
    result, stdout, _ = run(session, formula="y ~ x + (1|g)", optimizer="bobyqa")
    assert stdout == "\n ERROR: the only optimizer currently available for lmer is 'nloptwrap', please respecify \n"
    assert not any(text.startswith("lmerSLMADS2") for _k, _s, text in session.calls)


def test_undefined_data_name_stops_naming_the_studies() -> None:
    def answer(study: str, kind: str, text: str) -> Any:
        return r_logical([study == "s2"])

    with pytest.raises(RError, match=r"^The input object D2 is not defined in s1, s3!$"):
        run(FakeSession(["s1", "s2", "s3"], answer), formula="y ~ x + (1|g)", data_name="D2")


def test_checks_true_with_bare_names_stops_like_glmchecks() -> None:
    def answer(study: str, kind: str, text: str) -> Any:
        return r_logical([text == 'exists("D")'])

    session = FakeSession(["s1", "s2"], answer)
    with pytest.raises(RError, match="^'BMI' is not defined in s1!$"):
        run(session, formula="BMI ~ trtGrp + (1|g)", data_name="D", checks=True)
    with console.capture_conditions() as conditions, pytest.raises(RError):
        ds_lmer_slma(session, formula="BMI ~ trtGrp + (1|g)", data_name="D", checks=True)
    assert conditions.messages == [" -- Verifying the variables in the model\n", "    BMI...\n"]
    assert conditions.warnings == ["NAs introduced by coercion"]


def test_offset_in_formula_prints_the_warning_text() -> None:
    _, stdout, _ = run(three_valid(), formula="y ~ x + offset(w) + (1|g)", combine_with_metafor=False)
    assert stdout.startswith("\n\n WARNING: you may have specified an offset or regression weights\n as part")


# -- workflow calls -------------------------------------------------------------------------------


def workflow_server(classes: dict[str, list[str]] | None = None) -> FakeSession:
    def answer(study: str, kind: str, text: str) -> Any:
        if kind == "assign":
            return None
        if text.startswith("exists("):
            return r_logical([True])
        if text.startswith("testObjExistsDS("):
            return r_list({"test.obj.exists": r_logical([True]), "test.obj.class": r_character(["data.frame"])})
        if text.startswith("messageDS("):
            return r_character(["ALL OK: there are no studysideMessage(s) on this datasource"])
        if text.startswith("classDS("):
            return r_character((classes or {}).get(text, ["numeric"]))
        if text.startswith("colnamesDS("):
            return r_character(["BMI", "age"])
        if text.startswith("dataFrameSubsetDS1("):
            return RList([r_character(["ok"])])
        raise AssertionError(text)

    return FakeSession(["s1", "s2"], answer)


def texts(session: FakeSession) -> list[str]:
    seen: list[str] = []
    for _kind, _study, text in session.calls:
        if text not in seen:
            seen.append(text)
    return seen


def test_workflow_calls_send_dsbaseclient_texts() -> None:
    session = workflow_server()
    made = ds_make(session, "D$BMI/D$BMI", "some.weights")
    assert texts(session) == [
        "some.weights <- D$BMI/D$BMI", 'testObjExistsDS("some.weights")', 'messageDS("some.weights")',
    ]
    assert made["is.object.created"] == r_character(
        ["A data object <some.weights> has been created in all specified data sources"]
    )
    assert made["validity.check"] == r_character(["<some.weights> appears valid in all sources"])

    session = workflow_server()
    ds_boole(session, "D$idPatient", 2.0, "<=", newobj="rare", datasources=["s1"])
    assert texts(session)[0] == 'rare <- BooleDS("D$idPatient", 2, 4, "NA", TRUE)'

    session = workflow_server()
    ds_complete_cases(session, "D", "D.comp")
    assert texts(session)[:2] == ['exists("D")', 'D.comp <- completeCasesDS("D")']

    session = workflow_server({'classDS("D")': ["data.frame"]})
    ds_data_frame(session, ["D", "w"], newobj="D2")
    assert texts(session)[:4] == ['classDS("D")', 'classDS("w")', 'colnamesDS("D")',
                                  'D2 <- dataFrameDS("D,w", NULL, FALSE, TRUE, "BMI,age,w", TRUE, FALSE)']

    session = workflow_server()
    ds_data_frame_subset(session, "D", "D$idPatient", "26", "<=", newobj="Dsub", datasources=["s2"])
    assert texts(session)[:2] == [
        'dataFrameSubsetDS1("D", "D$idPatient", "26", 4, NULL, NULL, FALSE)',
        'Dsub <- dataFrameSubsetDS2("D", "D$idPatient", "26", 4, NULL, NULL, FALSE)',
    ]
    assert {study for _k, study, _t in session.calls} == {"s2"}


def test_workflow_reports_missing_objects_like_dsbaseclient() -> None:
    def answer(study: str, kind: str, text: str) -> Any:
        if text.startswith("testObjExistsDS("):
            return r_list({"test.obj.exists": r_logical([study == "s1"]), "test.obj.class": r_character(["ABSENT"])})
        if text.startswith("messageDS("):
            return r_character(["Error: not made"])
        return None

    result = ds_make(FakeSession(["s1", "s2"], answer), "D$age*0.5", "off.age")
    created = result["is.object.created"]
    assert isinstance(created, RList) and created.data[0] == r_character(
        ["Error: A valid data object <off.age> does NOT exist in ALL specified data sources"]
    )
    assert result.names == ["is.object.created", "validity.check", "studyside.messages"]
    studyside = result["studyside.messages"]
    assert isinstance(studyside, RList) and studyside.names == ["s1", "s2"]
