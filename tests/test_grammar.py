"""The strict call grammar: every text dsBaseClient 6.3.0 sends parses to the expected tree; attacks
and malformed texts are rejected with a short CallRejected and nothing else.

The call texts below are R 4.2.2's ``deparse`` of the ``call(...)`` objects that dsBaseClient 6.3.0
builds (ds.lmerSLMA, isDefined, glmChecks with checks = TRUE, ds.completeCases, ds.make,
ds.dataFrame, ds.Boole, ds.dataFrameSubset, ds.listDisclosureSettings), produced with the same
arguments as the golden cases. DSLite deparses with the default width and joins lines with "\\n",
so the multi-line forms are tested too.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r_server import calltree as ct
from r_server.errors import CallRejected
from r_server.grammar import (
    MAX_NESTING,
    MAX_STRING_LENGTH,
    MAX_TEXT_LENGTH,
    Rejected,
    decode_formula_text,
    parse_aggregate,
    parse_assign,
    parse_formula,
    tree_depth,
)

# -- tree builders ------------------------------------------------------------------------------


def S(name: str) -> ct.Sym:
    return ct.Sym(name)


def D(obj: str, name: str) -> ct.Dollar:
    return ct.Dollar(ct.Sym(obj), name)


def N(text: str) -> ct.Num:
    return ct.Num(float(text), text)


def Str(value: str) -> ct.Str:
    return ct.Str(value)


def B(op: str, left: ct.Expr, right: ct.Expr) -> ct.Binary:
    return ct.Binary(op, left, right)


def plus(*terms: ct.Expr) -> ct.Expr:
    node = terms[0]
    for t in terms[1:]:
        node = B("+", node, t)
    return node


def P(inner: ct.Expr) -> ct.Paren:
    return ct.Paren(inner)


def bar(left: ct.Expr, right: ct.Expr, op: str = "|") -> ct.Paren:
    return P(B(op, left, right))


def call(func: str, *args: ct.Expr) -> ct.Call:
    return ct.Call(func, tuple(ct.Arg(None, a) for a in args))


NULL = ct.Null()
TRUE = ct.Bool(True)
FALSE = ct.Bool(False)

RI_DOCTOR = bar(N("1"), S("idDoctor"))
FIXED = (S("trtGrp"), S("Male"))


def lmer(formula: ct.Formula, *rest: ct.Expr, func: str = "lmerSLMADS2") -> ct.Call:
    return call(func, formula, *rest)


DEFAULT_REST = (NULL, NULL, Str("D"), TRUE, NULL, NULL, NULL, N("0"))

# (encoded formula text as deparsed by R, expected decoded tree) for every golden case's formula
FORMULAS: list[tuple[str, ct.Formula]] = [
    (
        "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz",
        ct.Formula(S("BMI"), plus(*FIXED, RI_DOCTOR)),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz + yyy1xxxidSurgeryzzz",
        ct.Formula(S("BMI"), plus(*FIXED, RI_DOCTOR, bar(N("1"), S("idSurgery")))),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidSurgeryzzz + yyy1xxxidSurgeryqqqidDoctorzzz",
        ct.Formula(
            S("BMI"),
            plus(*FIXED, bar(N("1"), S("idSurgery")), bar(N("1"), B(":", S("idSurgery"), S("idDoctor")))),
        ),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidSurgerypppidDoctorzzz",
        ct.Formula(S("BMI"), plus(*FIXED, bar(N("1"), B("/", S("idSurgery"), S("idDoctor"))))),
    ),
    (
        "D$BMI ~ D$trtGrp + D$Male + yyy1xxxD$idSurgeryzzz",
        ct.Formula(D("D", "BMI"), plus(D("D", "trtGrp"), D("D", "Male"), bar(N("1"), D("D", "idSurgery")))),
    ),
    (
        "BMI ~ trtGrp * Male + yyy1xxxidDoctorzzz",
        ct.Formula(S("BMI"), plus(B("*", S("trtGrp"), S("Male")), RI_DOCTOR)),
    ),
    ("incid_rate ~ trtGrp + Male", ct.Formula(S("incid_rate"), plus(*FIXED))),
    (
        "BMI ~ age + Male + yyy1 + agexxxidDoctorzzz",
        ct.Formula(S("BMI"), plus(S("age"), S("Male"), bar(B("+", N("1"), S("age")), S("idDoctor")))),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz + yyytrtGrpxxxxxxidSurgeryzzz",
        ct.Formula(S("BMI"), plus(*FIXED, RI_DOCTOR, bar(S("trtGrp"), S("idSurgery"), "||"))),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz + yyy1xxxidSurgeryzzz + yyy0 + trtGrpxxxidSurgeryzzz",
        ct.Formula(
            S("BMI"),
            plus(
                *FIXED,
                RI_DOCTOR,
                bar(N("1"), S("idSurgery")),
                bar(B("+", N("0"), S("trtGrp")), S("idSurgery")),
            ),
        ),
    ),
    (
        "BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz + yyy1 + trtGrpxxxidSurgeryzzz",
        ct.Formula(S("BMI"), plus(*FIXED, RI_DOCTOR, bar(B("+", N("1"), S("trtGrp")), S("idSurgery")))),
    ),
    (
        "logyyyBMIzzz ~ Iyyyageppp10zzz + expyyyagezzz + sqrtyyyagezzz + factoryyytrtGrpzzz + "
        "as.factoryyyMalezzz + yyy1xxxidDoctorzzz",
        ct.Formula(
            ct.FormulaCall("log", (S("BMI"),)),
            plus(
                ct.FormulaCall("I", (B("/", S("age"), N("10")),)),
                ct.FormulaCall("exp", (S("age"),)),
                ct.FormulaCall("sqrt", (S("age"),)),
                ct.FormulaCall("factor", (S("trtGrp"),)),
                ct.FormulaCall("as.factor", (S("Male"),)),
                RI_DOCTOR,
            ),
        ),
    ),
    (
        "BMI ~ Iyyy2 * agezzz + offsetyyyagezzz + yyy1xxxidDoctorzzz",
        ct.Formula(
            S("BMI"),
            plus(
                ct.FormulaCall("I", (B("*", N("2"), S("age")),)),
                ct.FormulaCall("offset", (S("age"),)),
                RI_DOCTOR,
            ),
        ),
    ),
    (
        "BMI ~ age - 1 + yyy1xxxidDoctorzzz",
        ct.Formula(S("BMI"), B("+", B("-", S("age"), N("1")), RI_DOCTOR)),
    ),
]


@pytest.mark.parametrize(("encoded", "expected"), FORMULAS, ids=[f[0][:40] for f in FORMULAS])
def test_every_golden_formula_decodes_to_its_tree(encoded: str, expected: ct.Formula) -> None:
    text = f'lmerSLMADS2({encoded}, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'
    assert parse_aggregate(text) == lmer(expected, *DEFAULT_REST)
    assert parse_formula(encoded.replace(" ", "")) == expected


# The exact texts of the workflow calls (R's deparse of dsBaseClient's call objects).
EXACT_AGGREGATES: list[tuple[str, ct.Call]] = [
    ('exists("D")', call("exists", Str("D"))),
    ('exists("BMI", D)', call("exists", Str("BMI"), S("D"))),
    ('colnamesDS("D")', call("colnamesDS", Str("D"))),
    ("isNaDS(D$BMI)", call("isNaDS", D("D", "BMI"))),
    ("isNaDS(some.weights)", call("isNaDS", S("some.weights"))),
    ('classDS("D$BMI")', call("classDS", Str("D$BMI"))),
    ("checkNegValueDS(D$w)", call("checkNegValueDS", D("D", "w"))),
    ('testObjExistsDS("D.comp")', call("testObjExistsDS", Str("D.comp"))),
    ('messageDS("D.comp")', call("messageDS", Str("D.comp"))),
    ("listDisclosureSettingsDS()", call("listDisclosureSettingsDS")),
    (
        'dataFrameSubsetDS1("D", "D$idPatient", "26", 4, NULL, NULL, FALSE)',
        call("dataFrameSubsetDS1", Str("D"), Str("D$idPatient"), Str("26"), N("4"), NULL, NULL, FALSE),
    ),
    (
        'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, \n    "D", TRUE, NULL, NULL, NULL, 0)',
        lmer(FORMULAS[0][1], *DEFAULT_REST),
    ),
    (
        'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, "D2$some.offsets", \n'
        '    "w.age", "D", FALSE, "xtol_rel", "1e-10", "nloptwrap", 1)',
        lmer(
            FORMULAS[0][1],
            Str("D2$some.offsets"),
            Str("w.age"),
            Str("D"),
            FALSE,
            Str("xtol_rel"),
            Str("1e-10"),
            Str("nloptwrap"),
            N("1"),
        ),
    ),
    (
        'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, NULL, TRUE, "check.conv.grad", "0.1", '
        "NULL, 0)",
        lmer(FORMULAS[0][1], NULL, NULL, NULL, TRUE, Str("check.conv.grad"), Str("0.1"), NULL, N("0")),
    ),
    (
        "lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz + yyy1xxxidSurgeryzzz + \n"
        '    yyy0 + trtGrpxxxidSurgeryzzz, NULL, NULL, "D", TRUE, NULL, \n'
        "    NULL, NULL, 0)",
        lmer(FORMULAS[9][1], *DEFAULT_REST),
    ),
]

EXACT_ASSIGNS: list[tuple[str, ct.Expr]] = [
    ('completeCasesDS("D")', call("completeCasesDS", Str("D"))),
    ("D$BMI/D$BMI", B("/", D("D", "BMI"), D("D", "BMI"))),
    ("D$age*0.5", B("*", D("D", "age"), N("0.5"))),
    ("D$age/10", B("/", D("D", "age"), N("10"))),
    (
        'dataFrameDS("D,some.weights,some.offsets", NULL, FALSE, TRUE, \n'
        '    "idPatient,idDoctor,idSurgery,trtGrp,Male,age,BMI,incid_rate,diabetes,some.weights,some.offsets", \n'
        "    TRUE, FALSE)",
        call(
            "dataFrameDS",
            Str("D,some.weights,some.offsets"),
            NULL,
            FALSE,
            TRUE,
            Str("idPatient,idDoctor,idSurgery,trtGrp,Male,age,BMI,incid_rate,diabetes,some.weights,some.offsets"),
            TRUE,
            FALSE,
        ),
    ),
    ('BooleDS("D$idPatient", 2, 4, "NA", TRUE)', call("BooleDS", Str("D$idPatient"), N("2"), N("4"), Str("NA"), TRUE)),
    (
        'BooleDS("D$idPatient", 1500, 4, "NA", TRUE)',
        call("BooleDS", Str("D$idPatient"), N("1500"), N("4"), Str("NA"), TRUE),
    ),
    (
        'BooleDS("D$x", -2.5, 4, "NA", TRUE)',
        call("BooleDS", Str("D$x"), ct.Unary("-", N("2.5")), N("4"), Str("NA"), TRUE),
    ),
    ('BooleDS("D$x", 1e+05, 4, "NA", TRUE)', call("BooleDS", Str("D$x"), N("1e+05"), N("4"), Str("NA"), TRUE)),
    (
        'dataFrameSubsetDS2("D", "D$idPatient", "0", 6, NULL, NULL, FALSE)',
        call("dataFrameSubsetDS2", Str("D"), Str("D$idPatient"), Str("0"), N("6"), NULL, NULL, FALSE),
    ),
    (
        'dataFrameSubsetDS2("D", "ONES", "ONES", 1, "1,3", NULL, FALSE)',
        call("dataFrameSubsetDS2", Str("D"), Str("ONES"), Str("ONES"), N("1"), Str("1,3"), NULL, FALSE),
    ),
    (
        'lmerSLMADS.assign(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, \n    NULL, "D", TRUE, NULL, NULL, NULL, 0)',
        lmer(FORMULAS[0][1], *DEFAULT_REST, func="lmerSLMADS.assign"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), EXACT_AGGREGATES, ids=[t[:40] for t, _ in EXACT_AGGREGATES])
def test_exact_aggregate_texts_parse_to_their_trees(text: str, expected: ct.Call) -> None:
    assert parse_aggregate(text) == expected
    # the same call on one line (as pydsbase's client sends it) gives the same tree
    assert parse_aggregate(text.replace("\n    ", "")) == expected


@pytest.mark.parametrize(("text", "expected"), EXACT_ASSIGNS, ids=[t[:40] for t, _ in EXACT_ASSIGNS])
def test_exact_assign_texts_parse_to_their_trees(text: str, expected: ct.Expr) -> None:
    assert parse_assign(text) == expected


def test_numbers_keep_their_text_and_value() -> None:
    tree = parse_aggregate("f(1e-10, 0.333333333333333, .5, 1e+05, 7)")
    values = [(a.value.value, a.value.text) for a in tree.args if isinstance(a.value, ct.Num)]
    assert values == [
        (1e-10, "1e-10"),
        (0.333333333333333, "0.333333333333333"),
        (0.5, ".5"),
        (1e5, "1e+05"),
        (7.0, "7"),
    ]


def test_what_deparse_writes_parses_integer_literals_and_calls_split_over_lines() -> None:
    # DSOpal sends deparse()d calls, joined by newlines, with R's integer literals (1L)
    tree = parse_aggregate('lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, \n    NULL, "D", '
                           'TRUE, NULL, NULL, NULL, 0L)')
    assert tree.func == "lmerSLMADS2" and tree.args[-1].value == ct.Num(0.0, "0L")
    assert parse_aggregate("f(2147483647L)").args[0].value == ct.Num(2147483647.0, "2147483647L")


def test_named_arguments_and_single_quotes() -> None:
    tree = parse_aggregate("lmerSLMADS2(formula = y ~ x, dataName = 'D', verbose=1)")
    assert tree.args == (
        ct.Arg("formula", ct.Formula(S("y"), S("x"))),
        ct.Arg("dataName", Str("D")),
        ct.Arg("verbose", N("1")),
    )


def test_arithmetic_follows_r_precedence() -> None:
    # R: -2^2 is -(2^2); ^ is right-associative; * binds tighter than +
    assert parse_assign("-2^2") == ct.Unary("-", B("^", N("2"), N("2")))
    assert parse_assign("2^3^2") == B("^", N("2"), B("^", N("3"), N("2")))
    assert parse_assign("1 + D$a * 2") == B("+", N("1"), B("*", D("D", "a"), N("2")))
    assert parse_assign("(1 + D$a) * 2") == B("*", P(B("+", N("1"), D("D", "a"))), N("2"))
    assert parse_assign("D$a ^ -1") == B("^", D("D", "a"), ct.Unary("-", N("1")))


def test_formula_precedence_matches_r() -> None:
    # R: ':' binds tighter than '*', which binds tighter than '+'; '|' is lowest inside the parens
    f = parse_formula("y~a+b*cqqqd+yyy1+exxxgzzz")
    assert f == ct.Formula(
        S("y"),
        plus(S("a"), B("*", S("b"), B(":", S("c"), S("d"))), bar(B("+", N("1"), S("e")), S("g"))),
    )
    assert parse_formula("~x") == ct.Formula(None, S("x"))
    assert parse_formula("y~a%in%b") == ct.Formula(S("y"), B("%in%", S("a"), S("b")))
    assert parse_formula("y~-1+x") == ct.Formula(S("y"), B("+", ct.Unary("-", N("1")), S("x")))


def test_decoding_is_dsbase_plain_gsub_in_dsbase_order() -> None:
    # xxxxxx is "||"; a variable containing a code is corrupted exactly as dsBase's gsub does
    assert decode_formula_text("yyytrtGrpxxxxxxidSurgeryzzz") == "(trtGrp||idSurgery)"
    assert decode_formula_text("happpy") == "ha/y"
    assert decode_formula_text("xxxx") == "|x"
    # "happpy" becomes ha/y in dsBase too: we reproduce the tree that follows
    assert parse_formula("y~happpy") == ct.Formula(S("y"), B("/", S("ha"), S("y")))


# -- rejections ---------------------------------------------------------------------------------

NASTY_AGGREGATES: list[str] = [
    'system("touch /tmp/pwned")',  # parses, rejected later by the allow-list? no: see below
    'colnamesDS("D"); system("id")',
    "colnamesDS(`D`)",
    '`system`("id")',
    'colnamesDS("D")\nsystem("id")',
    "base::system('id')",
    "base:::system('id')",
    "colnamesDS(base::get('D'))",
    'colnamesDS(get("D"))',
    'colnamesDS(eval(parse(text="system(1)")))',
    "colnamesDS(D$BMI <- 1)",
    "colnamesDS(x <<- 1)",
    "colnamesDS(1 -> x)",
    "colnamesDS(function(x) x)",
    "colnamesDS(D[1])",
    "colnamesDS(D[[1]])",
    "colnamesDS({1})",
    "colnamesDS(D@data)",
    "colnamesDS(!TRUE)",
    "colnamesDS(TRUE && FALSE)",
    "colnamesDS(environment())",
    "colnamesDS(D$BMI + 1)",
    "colnamesDS(D$a$b$c$d$e)",
    'colnamesDS("D\\";system(\\"id")',
    'colnamesDS("D\nx")',
    'colnamesDS("D\x00")',
    'colnamesDS("D\u2028")',
    'c\u043elnamesDS("D")',  # Cyrillic o
    "colnamesDS(\uff24)",  # fullwidth D
    'colnamesDS("D") # comment',
    "colnamesDS(0x10)",
    "colnamesDS(1e999)",
    "colnamesDS(1.5L)",
    "colnamesDS(1e3L)",
    "colnamesDS(2147483648L)",
    "colnamesDS(1LL)",
    "colnamesDS(1i)",
    "colnamesDS(NA)",
    "colnamesDS(Inf)",
    "colnamesDS(...)",
    "colnamesDS(..1)",
    "colnamesDS(if (TRUE) 1)",
    'colnamesDS("D", )',
    "colnamesDS(,)",
    "colnamesDS(",
    'colnamesDS("D"))',
    'colnamesDS "D"',
    "D",
    "D$BMI",
    "1 + 1",
    '"colnamesDS"("D")',
    "colnamesDS('D'='x')",
    "lmerSLMADS2(BMI ~ (1|idDoctor), NULL)",  # unencoded formula
    "lmerSLMADS2(BMI ~ x / y, NULL)",
    "lmerSLMADS2(BMI ~ a:b, NULL)",
    "lmerSLMADS2(BMI ~ x ~ y, NULL)",
    "lmerSLMADS2(BMI ~ systemyyy'id'zzz, NULL)",
    "lmerSLMADS2(BMI ~ systemyyyidzzz, NULL)",
    "lmerSLMADS2(BMI ~ baseqqqqqqsystemyyyidzzz, NULL)",
    "lmerSLMADS2(BMI ~ getyyyxzzz, NULL)",
    "lmerSLMADS2(BMI ~ evalyyyxzzz, NULL)",
    "lmerSLMADS2(BMI ~ Iyyyx^2zzz, NULL)",
    "lmerSLMADS2(BMI ~ Iyyyx^yzzz, NULL)",
    "lmerSLMADS2(BMI ~ logyyyxxxxgzzz, NULL)",
    "lmerSLMADS2(BMI ~ logyyyzzz, NULL)",
    "lmerSLMADS2(BMI ~ D$logyyyxzzz, NULL)",
    "lmerSLMADS2(BMI ~ functionyyyxzzz, NULL)",
    'lmerSLMADS2(BMI ~ "x", NULL)',
    "lmerSLMADS2(BMI ~ TRUE, NULL)",
    "lmerSLMADS2(BMI ~ x + , NULL)",
    "lmerSLMADS2(BMI ~ yyyx, NULL)",
    "lmerSLMADS2(BMI ~ xzzz, NULL)",
    "lmerSLMADS2(BMI ~ x %o% y, NULL)",
    "lmerSLMADS2(BMI ~ x %%y, NULL)",
    "lmerSLMADS2(BMI ~ 1zzz, NULL)",
    "lmerSLMADS2(y ~ x | g, NULL)",
    "lmerSLMADS2(y ~ x, NULL, f(1))",
]


@pytest.mark.parametrize("text", NASTY_AGGREGATES[1:])
def test_nasty_aggregate_texts_are_rejected_by_the_grammar(text: str) -> None:
    with pytest.raises(CallRejected) as info:
        parse_aggregate(text)
    message = info.value.message
    assert message.startswith("call rejected: ")
    assert len(message) < 300
    assert "Traceback" not in message


NASTY_ASSIGNS = [
    "D$BMI/D$BMI; system('id')",
    "D$BMI/D$BMI\nsystem('id')",
    "system('id')",  # a call: parses; the allow-list rejects it (tests/test_functions_allowlist.py)
    "exp(D$BMI) + 1",
    "D$BMI + get('x')",
    "D$BMI %% 2",
    "D$BMI == 1",
    "D$BMI > 1",
    "D$BMI & TRUE",
    "-D$BMI:3",
    "'a' + 1",
    "TRUE + 1",
    "D[1]",
    "D$BMI <- 2",
    "x = 2",
    "D$`BMI`",
    "D$'BMI'",
    "(D$BMI",
    "D$BMI)",
    "",
    "   ",
]


@pytest.mark.parametrize("text", [t for t in NASTY_ASSIGNS if not t.startswith("system('id')")])
def test_nasty_assign_texts_are_rejected_by_the_grammar(text: str) -> None:
    with pytest.raises(CallRejected):
        parse_assign(text)


def test_a_call_parses_but_only_as_a_tree() -> None:
    # the grammar accepts any name(...) shape; the allow-list (functions.check_call) decides
    assert parse_aggregate('system("touch /tmp/pwned")') == call("system", Str("touch /tmp/pwned"))
    assert parse_assign("system('id')") == call("system", Str("id"))


def test_sizes_are_bounded_and_messages_truncated() -> None:
    huge = 'colnamesDS("' + "A" * (MAX_TEXT_LENGTH + 10) + '")'
    with pytest.raises(CallRejected) as info:
        parse_aggregate(huge)
    assert len(info.value.message) < 200
    long_string = 'colnamesDS("' + "A" * (MAX_STRING_LENGTH + 1) + '")'
    with pytest.raises(CallRejected, match="string longer"):
        parse_aggregate(long_string)
    ok_string = 'colnamesDS("' + "A" * MAX_STRING_LENGTH + '")'
    assert parse_aggregate(ok_string).args[0].value == Str("A" * MAX_STRING_LENGTH)
    with pytest.raises(CallRejected) as info:
        parse_aggregate("colnamesDS(" + "A" * 5000 + ")")
    assert len(info.value.message) < 200


def test_nesting_is_bounded() -> None:
    ok = "(" * (MAX_NESTING - 1) + "1" + ")" * (MAX_NESTING - 1)
    assert tree_depth(parse_assign(ok)) == MAX_NESTING
    deep = "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(CallRejected, match="nesting deeper"):
        parse_assign(deep)
    with pytest.raises(CallRejected, match="nesting deeper"):
        parse_assign("-" * (MAX_NESTING + 5) + "1")
    deep_formula = "y ~ " + "(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1)
    with pytest.raises(CallRejected, match="nesting deeper"):
        parse_aggregate(f"lmerSLMADS2({deep_formula})")
    with pytest.raises(CallRejected, match="nesting deeper"):
        parse_aggregate("lmerSLMADS2(y ~ " + "-" * (MAX_NESTING + 1) + "x)")
    encoded = "y~" + "yyy" * 40 + "x" + "zzz" * 40  # one name token of 242 characters decoding to 40 levels
    assert tree_depth(parse_formula(encoded)) == 42
    with pytest.raises(CallRejected, match="name longer"):
        parse_formula("y~" + "yyy" * 50 + "x" + "zzz" * 50)
    with pytest.raises(CallRejected, match="nested deeper"):
        parse_assign("+".join(["1"] * 300))


def test_rejections_name_their_stage() -> None:
    with pytest.raises(Rejected) as info:
        parse_aggregate("colnamesDS(`D`)")
    assert info.value.stage == "lexer"
    with pytest.raises(Rejected) as info:
        parse_aggregate("colnamesDS(D[1)")
    assert info.value.stage == "lexer"
    with pytest.raises(Rejected) as info:
        parse_aggregate('colnamesDS("D" "E")')
    assert info.value.stage == "parser"
    with pytest.raises(Rejected) as info:
        parse_aggregate("lmerSLMADS2(y ~ systemyyyxzzz)")
    assert info.value.stage == "parser"


def test_too_many_arguments() -> None:
    with pytest.raises(CallRejected, match="more than"):
        parse_aggregate("f(" + ", ".join(["1"] * 40) + ")")


# -- fuzzing smoke: only CallRejected can ever escape the parser --------------------------------

_VOCAB = [
    "colnamesDS",
    "lmerSLMADS2",
    "D",
    "$",
    "BMI",
    "(",
    ")",
    ",",
    "~",
    "+",
    "-",
    "*",
    "/",
    "^",
    ":",
    "=",
    '"D"',
    "'x'",
    "1",
    "0.5",
    "1e+05",
    "NULL",
    "TRUE",
    "yyy",
    "zzz",
    "xxx",
    "ppp",
    "qqq",
    " ",
    "\n",
    ";",
    "`",
    "%in%",
    "|",
    "log",
    "I",
    "::",
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(_VOCAB), max_size=30))
def test_token_soup_only_ever_raises_call_rejected(parts: list[str]) -> None:
    text = "".join(parts)
    for parse in (parse_aggregate, parse_assign):
        try:
            tree = parse(text)
        except CallRejected as exc:
            assert exc.message.startswith("call rejected: ")
        else:
            assert isinstance(tree, ct.Call | ct.Binary | ct.Unary | ct.Num | ct.Sym | ct.Dollar | ct.Paren)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_arbitrary_text_only_ever_raises_call_rejected(text: str) -> None:
    for parse in (parse_aggregate, parse_assign):
        try:
            parse(text)
        except CallRejected:
            pass
