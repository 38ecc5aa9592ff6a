"""Rock's JSON answers into the R-value model (pydsbase/rjson.py), without R.

The JSON texts are what jsonlite 1.8 writes for these values (``toJSON(x, auto_unbox = TRUE, null = "null",
na = "null", digits = NA)`` and ``serializeJSON(x, digits = NA)``, as r_server/R/wire.R calls them);
tests/test_opal_clients.py checks the whole path against the study servers and a golden case.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pydsbase import dsi, rjson
from pydsbase.errors import DataSHIELDErrors, RockJSONError
from pydsbase.rvalue import NA, RAtomic, RLanguage, RList, r_character, r_logical, to_node


def test_plain_answers_take_their_calls_shapes() -> None:
    assert rjson.restore(True, 'exists("D")') == r_logical([True])
    assert rjson.restore(["a", "b"], 'colnamesDS("D")') == r_character(["a", "b"])
    assert rjson.restore("data.frame", 'classDS("D")') == r_character(["data.frame"])
    found = rjson.restore({"test.obj.exists": False, "test.obj.class": None}, 'testObjExistsDS("E")')
    assert isinstance(found, RList) and found.names == ["test.obj.exists", "test.obj.class"]
    assert found["test.obj.exists"] == r_logical([False]) and found.data[1] is None  # list(..., NULL)
    # an unnamed list of strings (dataFrameSubsetDS1's warning) and a single string
    warned = rjson.restore(["line 1", "line 2"], "dataFrameSubsetDS1(...)")
    assert isinstance(warned, RList) and warned.names is None and warned.data[1] == r_character(["line 2"])
    assert rjson.restore("Subsetting undertaken", "dataFrameSubsetDS1(...)") == r_character(["Subsetting undertaken"])


def test_a_refused_fit_in_plain_json_equals_the_golden(golden_dir: Path) -> None:
    """lmerSLMADS2's disclosure list (no call, no S4: toJSON writes it, naming unnamed slots by position)."""
    golden = json.loads((golden_dir / "int_disclosure_binary_x_study1.json").read_text())
    expected = golden["result"]["data"]["output.summary"]["data"]["study1"]
    answer = {
        "1": {"errorMessage.1": "ERROR: Model failed in this source because of an enhanced risk of disclosure"},
        "2": {"errorMessage.2": "The following message(s) identify the cause of this enhanced risk"},
        "3": None, "4": None,
        "5": {"errorMessage.x": "ERROR: at least one column in X matrix is binary with one category less than "
                                "filter threshold for table cell size"},
        "6": None, "7": None,
        "disclosure.risk": 1,
    }
    restored = rjson.restore(answer, 'lmerSLMADS2(BMI ~ trtGrp, NULL, NULL, "D2", TRUE, NULL, NULL, NULL, 0)')
    assert to_node(restored) == expected


def _node(rtype: str, value: Any, **attributes: Any) -> dict[str, Any]:
    return {"type": rtype, "attributes": attributes, "value": value}


def test_serialize_json_nodes_keep_types_attributes_and_special_values() -> None:
    names = _node("character", ["a", "b", "c", "d", "e"])
    doc = _node("list", [
        _node("double", [1.5, "NA", "NaN", "Inf", "-Inf"], names=names),
        _node("integer", [3, "NA"]),
        _node("logical", [True, None]),
        _node("character", ["x", None]),
        {"type": "NULL"},
    ])
    value = rjson.restore(doc, "f()")
    assert isinstance(value, RList) and value.data[4] is None
    doubles = value.data[0]
    assert isinstance(doubles, RAtomic) and doubles.names == ["a", "b", "c", "d", "e"]
    assert doubles.data[0] == 1.5 and doubles.data[1] is NA and math.isnan(doubles.data[2])
    assert doubles.data[3:] == [math.inf, -math.inf]
    assert value.data[1] == RAtomic("integer", [3, NA]) and value.data[2] == r_logical([True, NA])
    assert value.data[3] == r_character(["x", NA])


def test_a_dpo_matrix_and_a_call_as_rserialize_models_them() -> None:
    dim = _node("integer", [2, 2])
    dimnames = _node("list", [_node("character", ["a", "b"]), _node("character", ["a", "b"])])
    s4 = {"type": "S4", "value": {"class": "dpoMatrix", "package": "Matrix"}, "attributes": {
        "Dim": dim, "Dimnames": dimnames, "x": _node("double", [4.0, 99.0, 1.0, 9.0]),
        "uplo": _node("character", ["U"]), "factors": _node("list", [])}}
    matrix = rjson.restore(s4, "f()")
    assert isinstance(matrix, RAtomic) and matrix.dim == [2, 2] and matrix.data == [4.0, 1.0, 1.0, 9.0]
    assert matrix.s4 is not None and matrix.s4["s4_class"] == "dpoMatrix"
    call = rjson.restore(_node("language", ["lme4::lmer(formula = y ~ x, data = dataDF, ",
                                            "    REML = REML)"]), "f()")
    assert call == RLanguage(["lme4::lmer(formula = y ~ x, data = dataDF, REML = REML)"])
    formula = rjson.restore(_node("language", ["y ~ x"], **{"class": _node("character", ["formula"]),
                                                            ".Environment": _node("environment", {})}), "f()")
    assert isinstance(formula, RLanguage) and formula.r_class == ["formula"] and formula.has_environment


@pytest.mark.parametrize("doc", [
    {"type": "environment", "attributes": {}, "value": {}},
    {"type": "closure", "attributes": {}, "value": ["function(x) x"]},
    {"type": "double", "attributes": {}, "value": ["1e3"]},
    {"type": "list", "attributes": {}, "value": 3},
    {"type": "S4", "attributes": {}, "value": {"class": "lmerMod", "package": "lme4"}},
])
def test_refused_nodes_are_one_error_type(doc: dict[str, Any]) -> None:
    with pytest.raises(RockJSONError):
        rjson.restore(doc, "f()")


def test_deep_nesting_is_refused_without_recursion_errors() -> None:
    doc: Any = {"type": "NULL"}
    plain: Any = None
    for _ in range(10_000):
        doc = {"type": "list", "attributes": {}, "value": [doc]}
        plain = [plain]
    with pytest.raises(RockJSONError, match="nesting deeper"):
        rjson.restore(doc, "f()")
    with pytest.raises(RockJSONError, match="nesting deeper"):
        rjson.restore(plain, "listDisclosureSettingsDS()")


class _StockSession:
    """What a stock datashield.DSSession gives: parsed JSON by server name, errors kept aside."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def aggregate(self, expr: str, conn_names: list[str]) -> dict[str, Any]:
        return {name: self.answers[name] for name in conn_names}

    def get_errors(self) -> dict[str, Exception]:
        return {}


def test_the_fan_out_restores_json_and_names_the_studies() -> None:
    answers, errors = dsi.aggregate_by_study(_StockSession({"s1": True, "s2": False}), 'exists("D")', ["s1", "s2"])
    assert not errors and answers == {"s1": r_logical([True]), "s2": r_logical([False])}
    assert answers.inexact == ("s1", "s2")
    answers, errors = dsi.aggregate_by_study(_StockSession({"s1": {"a": 1}, "s2": True}), 'exists("D")', ["s1", "s2"])
    assert list(answers) == ["s2"] and isinstance(errors["s1"], RockJSONError)
    with pytest.raises(DataSHIELDErrors):
        dsi.aggregate(_StockSession({"s1": {"a": 1}}), 'exists("D")', ["s1"])
