"""Allow-lists, R-style argument binding and name checks (``r_server.functions``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest

from r_server import calltree as ct
from r_server.errors import CallRejected, RCallError
from r_server.functions import (
    AGGREGATE_FUNCTIONS,
    ASSIGN_FUNCTIONS,
    ArgKind,
    BoundCall,
    ObjectRef,
    Signature,
    check_arith,
    check_call,
    parse_object_ref,
    parse_object_refs,
)
from r_server.grammar import Rejected, parse_aggregate, parse_assign


class FakeScope:
    """A session holding D (a data frame), D2, rare, some.weights, some.offsets."""

    def __init__(self, symbols: dict[str, list[str] | None] | None = None) -> None:
        self.symbols = symbols or {
            "D": ["idPatient", "BMI", "trtGrp", "Male", "idDoctor"],
            "D2": ["BMI", "some.weights", "some.offsets"],
            "rare": None,
            "some.weights": None,
            "some.offsets": None,
        }
        self.looked_up: list[str] = []

    def has_symbol(self, name: str) -> bool:
        self.looked_up.append(name)
        return name in self.symbols

    def columns(self, symbol: str) -> list[str] | None:
        return self.symbols.get(symbol)


def agg(text: str, scope: FakeScope | None = None) -> BoundCall:
    return check_call(parse_aggregate(text), "aggregate", scope or FakeScope())


def asg(text: str, scope: FakeScope | None = None) -> BoundCall:
    tree = parse_assign(text)
    assert isinstance(tree, ct.Call)
    return check_call(tree, "assign", scope or FakeScope())


FORMULA = ct.Formula(
    ct.Sym("BMI"),
    ct.Binary(
        "+",
        ct.Binary("+", ct.Sym("trtGrp"), ct.Sym("Male")),
        ct.Paren(ct.Binary("|", ct.Num(1.0, "1"), ct.Sym("idDoctor"))),
    ),
)


def test_lmer_call_binds_all_nine_parameters_by_name() -> None:
    bound = agg(
        'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, "D2$some.offsets", "some.weights", "D", FALSE, '
        '"xtol_rel", "1e-10", "nloptwrap", 1)'
    )
    assert bound == BoundCall(
        func="lmerSLMADS2",
        args={
            "formula": FORMULA,
            "offset": ct.Str("D2$some.offsets"),
            "weights": ct.Str("some.weights"),
            "dataName": ct.Str("D"),
            "REML": ct.Bool(False),
            "control_type": ct.Str("xtol_rel"),
            "control_value.transmit": ct.Str("1e-10"),
            "optimizer": ct.Str("nloptwrap"),
            "verbose": ct.Num(1.0, "1"),
        },
        refs={
            "offset": (ObjectRef("D2", "some.offsets"),),
            "weights": (ObjectRef("some.weights"),),
            "dataName": (ObjectRef("D"),),
        },
    )
    assert list(bound.args) == [p.name for p in AGGREGATE_FUNCTIONS["lmerSLMADS2"].params]


def test_binding_is_exact_names_first_then_positions_and_defaults_fill_in() -> None:
    bound = agg(
        'lmerSLMADS2(dataName = "D", BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, control_type=NULL,'
        " control_value.transmit = NULL, optimizer = NULL)"
    )
    assert bound.args["formula"] == FORMULA
    assert bound.args["dataName"] == ct.Str("D")
    assert bound.args["offset"] == ct.Null() and bound.args["weights"] == ct.Null()
    assert bound.args["REML"] == ct.Bool(True)  # R's default
    assert bound.args["verbose"] == ct.Num(0.0, "0")  # R's default


def test_negative_numbers_are_folded_into_num() -> None:
    bound = asg('BooleDS("D$idPatient", -2.5, 4, "NA", TRUE)')
    assert bound.args["V2.name"] == ct.Num(-2.5, "-2.5")
    assert bound.refs == {"V1.name": (ObjectRef("D", "idPatient"),)}


def test_workflow_calls_bind() -> None:
    assert agg('exists("D")') == BoundCall("exists", {"x": ct.Str("D")})
    assert agg('exists("BMI", D)') == BoundCall(
        "exists", {"x": ct.Str("BMI"), "where": ct.Sym("D")}, {"where": (ObjectRef("D"),)}
    )
    assert agg("isNaDS(D$BMI)").refs == {"xvect": (ObjectRef("D", "BMI"),)}
    assert agg('classDS("D$BMI")').refs == {"x": (ObjectRef("D", "BMI"),)}
    assert agg("checkNegValueDS(D2$some.weights)").args == {"weights": ct.Dollar(ct.Sym("D2"), "some.weights")}
    assert agg('testObjExistsDS("D.comp")').args == {"test.obj.name": ct.Str("D.comp")}
    assert agg('messageDS("D.comp")').args == {"message.object.name": ct.Str("D.comp")}
    assert agg("listDisclosureSettingsDS()") == BoundCall("listDisclosureSettingsDS", {})
    subset = agg('dataFrameSubsetDS1("D", "D$idPatient", "26", 4, NULL, NULL, FALSE)')
    assert subset.refs == {"df.name": (ObjectRef("D"),), "V1.name": (ObjectRef("D", "idPatient"),)}
    assert subset.args["V2.name"] == ct.Str("26") and subset.args["Boolean.operator.n"] == ct.Num(4.0, "4")
    assert asg('completeCasesDS("D")').refs == {"x1.transmit": (ObjectRef("D"),)}
    frame = asg(
        'dataFrameDS("D,some.weights,some.offsets", NULL, FALSE, TRUE, "idPatient,BMI,some.weights", TRUE, FALSE)'
    )
    assert frame.refs == {"vectors": (ObjectRef("D"), ObjectRef("some.weights"), ObjectRef("some.offsets"))}
    assert frame.args["clnames"] == ct.Str("idPatient,BMI,some.weights")
    ones = asg('dataFrameSubsetDS2("D", "ONES", "ONES", 1, "1,3", NULL, FALSE)')
    assert ones.args["keep.cols"] == ct.Str("1,3")
    assert asg(
        'lmerSLMADS.assign(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'
    )


@pytest.mark.parametrize(
    "text",
    [
        'system("touch /tmp/x")',
        'eval("1")',
        'parse(text = "1")',
        'get("D")',
        'assign("x", 1)',
        'do.call("system", "id")',
        'match.fun("system")',
        "environment()",
        "globalenv()",
        "sys.function()",
        'file("x")',
        'readRDS("x")',
        'Sys.setenv(A = "1")',
        'library("x")',
        "q()",
        'completeCasesDS("D")',  # an assign function
        'dataFrameDS("D")',
        'BooleDS("D$x", 1, 1, "NA", TRUE)',
    ],
)
def test_functions_outside_the_aggregate_list_are_rejected(text: str) -> None:
    with pytest.raises(CallRejected, match="not allowed"):
        agg(text)


@pytest.mark.parametrize(
    "text",
    ['lmerSLMADS2(y ~ x, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)', 'colnamesDS("D")', 'exists("D")', 'get("D")'],
)
def test_functions_outside_the_assign_list_are_rejected(text: str) -> None:
    tree = parse_assign(text)
    assert isinstance(tree, ct.Call)
    with pytest.raises(CallRejected, match="not allowed"):
        check_call(tree, "assign", FakeScope())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colnamesDS(D)", "must be string, not name"),
        ('exists("D", "D")', "must be name"),
        ('exists("D", envir = globalenv)', "unused argument"),
        ('exists("D", inherits = TRUE)', "unused argument"),
        ('colnamesDS("D", "E")', "too many arguments"),
        ('colnamesDS(x = "D", x = "E")', "matched by multiple"),
        ("colnamesDS()", 'argument "x" is missing'),
        ('lmerSLMADS2(dataName = "D")', 'argument "formula" is missing'),
        ('lmerSLMADS2("y ~ x", NULL, NULL, "D")', "must be formula"),
        ('lmerSLMADS2(y ~ x, NULL, NULL, "D", "TRUE")', "must be TRUE/FALSE"),
        ("lmerSLMADS2(y ~ x, NULL, NULL, D)", "must be NULL or string"),
        ('lmerSLMADS2(y ~ x, NULL, NULL, "D", TRUE, NULL, NULL, NULL, "0")', "must be TRUE/FALSE or number"),
        ("isNaDS(D$a$b)", "at most one"),
        ('exists("x", D$BMI)', "must be a plain name"),
        ('BooleDS("D$x", 1, "4", "NA", TRUE)', "must be NULL or number"),
    ],
)
def test_signature_violations_are_rejected(text: str, message: str) -> None:
    tree = parse_assign(text)
    assert isinstance(tree, ct.Call)
    kind: Literal["aggregate", "assign"] = "assign" if tree.func in ASSIGN_FUNCTIONS else "aggregate"
    with pytest.raises(Rejected, match=message) as info:
        check_call(tree, kind, FakeScope())
    assert info.value.stage == "arguments"


INJECTIONS = [
    "D;system('id')",
    "D)",
    "D$BMI<-1",
    'get("D")',
    "system('touch /tmp/x')",
    "D\\nx",
    "D$BMI$x$y",
    "base::D",
    "D:::x",
    " D",
    "D ",
    "",
    "1+1",
    "D[1]",
    "`D`",
    "function(x) x",
    "D,D;1",
    "a" * 300,
    "D@x",
    "..1",
    "if",
]


Kind = Literal["aggregate", "assign"]


def _string_params() -> list[tuple[Kind, str, str]]:
    out: list[tuple[Kind, str, str]] = []
    tables: tuple[tuple[Kind, Mapping[str, Signature]], ...] = (
        ("aggregate", AGGREGATE_FUNCTIONS),
        ("assign", ASSIGN_FUNCTIONS),
    )
    for kind, table in tables:
        for sig in table.values():
            for param in sig.params:
                if ArgKind.STRING in param.kinds:
                    out.append((kind, sig.func, param.name))
    return out


def _valid_args(func: str) -> dict[str, str]:
    formula = "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz"
    lmer = {
        "formula": formula,
        "offset": "NULL",
        "weights": "NULL",
        "dataName": '"D"',
        "REML": "TRUE",
        "control_type": "NULL",
        "control_value.transmit": "NULL",
        "optimizer": "NULL",
        "verbose": "0",
    }
    subset = {
        "df.name": '"D"',
        "V1.name": '"D$idPatient"',
        "V2.name": '"26"',
        "Boolean.operator.n": "4",
        "keep.cols": "NULL",
        "rm.cols": "NULL",
        "keep.NAs": "FALSE",
    }
    return {
        "exists": {"x": '"D"'},
        "colnamesDS": {"x": '"D"'},
        "classDS": {"x": '"D$BMI"'},
        "testObjExistsDS": {"test.obj.name": '"D"'},
        "messageDS": {"message.object.name": '"D"'},
        "lmerSLMADS2": lmer,
        "lmerSLMADS.assign": lmer,
        "dataFrameSubsetDS1": subset,
        "dataFrameSubsetDS2": subset,
        "completeCasesDS": {"x1.transmit": '"D"'},
        "dataFrameDS": {
            "vectors": '"D,rare"',
            "r.names": "NULL",
            "ch.rows": "FALSE",
            "ch.names": "TRUE",
            "clnames": '"idPatient,BMI,rare"',
            "strAsFactors": "TRUE",
            "completeCases": "FALSE",
        },
        "BooleDS": {
            "V1.name": '"D$idPatient"',
            "V2.name": "2",
            "Boolean.operator.n": "4",
            "na.assign.text": '"NA"',
            "numeric.output": "TRUE",
        },
        "lsDS": {"search.filter": '"D_:A:_"', "env.to.search": "1L"},
        "isNaDS": {"xvect": '"D$BMI"'},
        "dimDS": {"x": '"D"'},
        "lengthDS": {"x": '"D$BMI"'},
        "namesDS": {"xname.transmit": '"D"'},
        "rmDS": {"x.names.transmit": '"D,w"'},
        "asListDS": {"x.name": '"D$BMI"', "newobj": '"L"'},
        "asCharacterDS": {"x.name": '"D$BMI"'},
        "asIntegerDS": {"x.name": '"D$BMI"'},
        "asLogicalDS": {"x.name": '"D$BMI"'},
        "asDataMatrixDS": {"x.name": '"D"'},
    }[func]


STRING_PARAMS = _string_params()


@pytest.mark.parametrize(("kind", "func", "param"), STRING_PARAMS, ids=[f"{f}.{p}" for _, f, p in STRING_PARAMS])
def test_injection_through_every_string_argument_is_rejected(kind: Kind, func: str, param: str) -> None:
    args = _valid_args(func)
    valid_text = f"{func}({', '.join(f'{k} = {v}' for k, v in args.items())})"
    tree = parse_assign(valid_text)
    assert isinstance(tree, ct.Call)
    check_call(tree, kind, FakeScope())  # the valid call passes (positive control)
    for payload in INJECTIONS:
        bad = dict(args)
        bad[param] = f'"{payload}"'
        text = f"{func}({', '.join(f'{k} = {v}' for k, v in bad.items())})"
        with pytest.raises(CallRejected):
            tree = parse_assign(text)
            assert isinstance(tree, ct.Call)
            check_call(tree, kind, FakeScope())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('colnamesDS("X")', "object 'X' not found"),
        ('classDS("Q$BMI")', "object 'Q' not found"),
        ("isNaDS(Z$BMI)", "object 'Z' not found"),
        ("isNaDS(zz)", "object 'zz' not found"),
        ("checkNegValueDS(W$w)", "object 'W' not found"),
        ('exists("BMI", Q)', "object 'Q' not found"),
        ('lmerSLMADS2(y ~ x, NULL, NULL, "Dx", TRUE, NULL, NULL, NULL, 0)', "object 'Dx' not found"),
        ('lmerSLMADS2(y ~ x, NULL, NULL, "Dx$a", TRUE, NULL, NULL, NULL, 0)', "object 'Dx' not found"),
    ],
)
def test_missing_objects_give_rs_exact_message(text: str, message: str) -> None:
    with pytest.raises(RCallError) as info:
        agg(text)
    assert info.value.message == message


def test_missing_objects_in_assign_calls_give_rs_exact_message() -> None:
    with pytest.raises(RCallError) as info:
        asg('completeCasesDS("D.nope")')
    assert info.value.message == "object 'D.nope' not found"


def test_functions_that_do_not_fail_on_missing_objects_are_not_checked() -> None:
    scope = FakeScope()
    assert agg('exists("nothere")', scope).args == {"x": ct.Str("nothere")}
    agg('testObjExistsDS("nothere")', scope)
    agg('messageDS("nothere")', scope)
    # offset/weights are looked up by lmerSLMADS2 after the formula's variables: left to the R side
    agg('lmerSLMADS2(y ~ x, "off.nope", "w.nope", "D", TRUE, NULL, NULL, NULL, 0)', scope)
    assert "off.nope" not in scope.looked_up and "w.nope" not in scope.looked_up
    # a missing column is no error in R (D$nope is NULL)
    agg('colnamesDS("D$nope")', scope)


def test_grammar_and_type_errors_come_before_name_lookups() -> None:
    scope = FakeScope()
    with pytest.raises(CallRejected):
        agg('lmerSLMADS2(y ~ x, NULL, NULL, "Dx", TRUE, NULL, NULL, "bad optimizer;", 0)', scope)
    assert scope.looked_up == []


def test_object_reference_strings() -> None:
    assert parse_object_ref("D") == ObjectRef("D")
    assert parse_object_ref("D2$some.offsets") == ObjectRef("D2", "some.offsets")
    assert str(ObjectRef("D", "BMI")) == "D$BMI"
    for bad in ["", "D$", "$D", "D$a$b", "1D", "D;x", "_x", ".1x", "D x", "D$`x`", "TRUE", "NULL", "if", "D\u0430"]:
        assert parse_object_ref(bad) is None, bad
    assert parse_object_refs("D,some.weights") == (ObjectRef("D"), ObjectRef("some.weights"))
    assert parse_object_refs("D,,x") is None


# -- bare arithmetic assigns --------------------------------------------------------------------


def test_arithmetic_assign_references_in_r_order() -> None:
    refs = check_arith(parse_assign("D$BMI/D$BMI"), FakeScope())
    assert refs == (ObjectRef("D", "BMI"), ObjectRef("D", "BMI"))
    assert check_arith(parse_assign("D$age*0.5"), FakeScope()) == (ObjectRef("D", "age"),)
    assert check_arith(parse_assign("-(rare + 1)^2"), FakeScope()) == (ObjectRef("rare"),)
    assert check_arith(parse_assign("2"), FakeScope()) == ()


def test_arithmetic_assign_reports_the_first_missing_object_as_r_does() -> None:
    with pytest.raises(RCallError) as info:
        check_arith(parse_assign("D$BMI/X$y + Y"), FakeScope())
    assert info.value.message == "object 'X' not found"
    with pytest.raises(RCallError) as info:
        check_arith(parse_assign("A/B"), FakeScope())
    assert info.value.message == "object 'A' not found"


@pytest.mark.parametrize(
    "tree",
    [
        ct.Call("system", (ct.Arg(None, ct.Str("id")),)),
        ct.Str("D"),
        ct.Bool(True),
        ct.Binary("%in%", ct.Sym("D"), ct.Sym("D")),
        ct.Binary(":", ct.Num(1.0, "1"), ct.Num(9.0, "9")),
        ct.Formula(None, ct.Sym("D")),
        ct.FormulaCall("log", (ct.Sym("D"),)),
        ct.Dollar(ct.Dollar(ct.Sym("D"), "a"), "b"),
    ],
)
def test_arithmetic_check_rejects_anything_else(tree: ct.Expr) -> None:
    with pytest.raises(CallRejected):
        check_arith(tree, FakeScope())


# -- canary: texts that would create a file if R evaluated them ---------------------------------

CANARY_TEMPLATES = [
    'system("touch {path}")',
    'file.create("{path}")',
    "colnamesDS(\"D;file.create('{path}')\")",
    "colnamesDS(\"D\"); file.create('{path}')",
    "classDS(\"file.create('{path}')\")",
    'lmerSLMADS2(BMI ~ x, NULL, NULL, "D", TRUE, "xtol_rel", "1);file.create(\'{path}\'", NULL, 0)',
    'lmerSLMADS2(BMI ~ x, "file.create(\'{path}\')", NULL, "D", TRUE, NULL, NULL, NULL, 0)',
    "messageDS(\"D');file.create('{path}');('\")",
    "testObjExistsDS(\"file.create('{path}')\")",
    'dataFrameSubsetDS1("D", "D$x", "file.create(\'{path}\')", 4, NULL, NULL, FALSE)',
    "lmerSLMADS2(BMI ~ file.createyyy'{path}'zzz, NULL, NULL, \"D\", TRUE, NULL, NULL, NULL, 0)",
    'lmerSLMADS2(BMI ~ systemyyytouchzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)',
]
CANARY_ASSIGN_TEMPLATES = [
    "completeCasesDS(\"D;file.create('{path}')\")",
    'dataFrameDS("D,file.create(\'{path}\')", NULL, FALSE, TRUE, "a", TRUE, FALSE)',
    'BooleDS("D$x", "file.create(\'{path}\')", 4, "NA", TRUE)',
    "D$x + file.create('{path}')",
    "file.create('{path}')",
]


def _file_appeared(path: Path) -> bool:
    return path.exists()


def test_canary_detector_fires_on_a_positive_control(tmp_path: Path) -> None:
    path = tmp_path / "canary"
    assert not _file_appeared(path)
    path.write_text("x")  # what an evaluated attack would do
    assert _file_appeared(path)


@pytest.mark.parametrize("template", CANARY_TEMPLATES + CANARY_ASSIGN_TEMPLATES)
def test_canary_texts_are_rejected_and_create_nothing(template: str, tmp_path: Path) -> None:
    path = tmp_path / "canary"
    text = template.format(path=path)
    scope = FakeScope()
    with pytest.raises(CallRejected):
        if template in CANARY_TEMPLATES:
            check_call(parse_aggregate(text), "aggregate", scope)
        else:
            tree = parse_assign(text)
            if isinstance(tree, ct.Call):
                check_call(tree, "assign", scope)
            else:
                check_arith(tree, scope)
    assert not _file_appeared(path)
    assert os.listdir(tmp_path) == []


# -- the same canaries through a real study runtime (embedded R) -------------------------------


@pytest.mark.needs_r
def test_canary_texts_through_the_study_runtime_create_nothing(tmp_path: Path) -> None:
    from r_server.runtime import StudyRuntime

    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "T.csv").write_text("x,BMI\n1,20.5\n2,22.0\n3,19.1\n4,25.2\n")
    canary = tmp_path / "canary"
    runtime = StudyRuntime("canary-study", tables)
    sid = runtime.open_session("attacker")
    try:
        runtime.assign_table(sid, "D", "T")
        for template in CANARY_TEMPLATES:
            with pytest.raises(CallRejected):
                runtime.aggregate(sid, template.format(path=canary))
        for template in CANARY_ASSIGN_TEMPLATES:
            with pytest.raises(CallRejected):
                runtime.assign_expr(sid, "out", template.format(path=canary))
        assert not canary.exists()
        assert "out" not in runtime.list_symbols(sid)
        # the study still answers, with the value R gives
        assert runtime.aggregate(sid, 'colnamesDS("D")')["data"] == ["x", "BMI"]
    finally:
        runtime.close_session(sid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables"]


# -- the allow-list the running R enforces --------------------------------------------------------


@pytest.mark.needs_r
@pytest.mark.parametrize("kind", ["aggregate", "assign"])
def test_r_runs_exactly_the_functions_of_functions_py(kind: Literal["aggregate", "assign"]) -> None:
    from r_server.functions import ALLOW_LISTS
    from r_server.rbridge import default_bridge

    assert sorted(default_bridge().methods(kind)) == sorted(ALLOW_LISTS[kind])


@pytest.mark.needs_r
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("aggregate", "ds_exists"),  # our R implementation of exists, not a DataSHIELD name
        ("aggregate", ".ds_thr"),  # an internal helper of our R code
        ("aggregate", ".ds_allow"),  # the function that sets the allow-list
        ("aggregate", "completeCasesDS"),  # allowed, but as an assign function only
        ("assign", "lmerSLMADS2"),  # allowed, but as an aggregate function only
        ("aggregate", "system"),  # base R
        ("assign", "get"),
    ],
)
def test_r_refuses_an_existing_r_function_missing_from_functions_py(kind: str, name: str) -> None:
    """The bridge asked directly (no Python checks before it): R itself refuses what is not listed."""
    from r_server.functions import ALLOW_LISTS
    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    session = bridge.new_session()
    assert name not in ALLOW_LISTS[kind]  # type: ignore[index]
    with bridge._r() as ri:  # the R function exists: in our R files, or in base R
        assert name in bridge._env or ri.baseenv.find(name) is not None
    with pytest.raises(RCallError) as refused:
        bridge.call(session, kind, name, [], {})
    assert refused.value.message == f"'{name}' is not an allowed {kind} function"
    # A listed function runs through its R implementation (exists -> ds_exists).
    answer = bridge.call(session, "aggregate", "exists", [(None, ct.Str("nothing.here"))], {})
    assert bridge.encode(answer)["data"] == [False]


@pytest.mark.needs_r
def test_the_allow_list_cannot_be_set_again() -> None:
    from rpy2.rinterface_lib.embedded import RRuntimeError

    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    bridge.methods("aggregate")  # R started, the lists handed over
    with bridge._r() as ri, pytest.raises(RRuntimeError, match="already set"):
        bridge._fn(".ds_allow")(ri.StrSexpVector(["aggregate"]), ri.StrSexpVector(["evilDS"]),
                                ri.StrSexpVector(["ds_exists"]))
    assert "evilDS" not in bridge.methods("aggregate")
