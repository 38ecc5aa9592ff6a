"""pydsbase.deparse equals R's deparse(x, width.cutoff = 500L).

Checked against R itself: every language object of the golden results, and a seeded batch of
generated formulas and calls (parsed texts, and calls built with as.call so that the deparser's
own parenthesisation is exercised), each serialized and deparsed by R in one batch, then read by
pydsbase.rserialize and deparsed in Python. No R is needed for the unit checks at the bottom.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from pydsbase import rserialize, rvalue
from pydsbase.deparse import MISSING, Call, Symbol, deparse, format_real, is_syntactic_name

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "dsbaseclient"

# -- a seeded generator of R texts that evaluate to language objects ---------------------------------

_SYMS = ["x", "y", "BMI", "age", "trtGrp", "idDoctor", "id.Surgery", "g_2", ".hidden", "`a b`", "`if`", "`1x`",
         "`%`", "é", "`back\\`tick`", "T", "D"]  # fmt: skip
_NUMS = ["1", "0.1", "2.5", "1e5", "1e-5", "0.0001", "0.001", "123456", "1e15", "1e-300", "3.14159265358979",
         "1L", "100000L", "0L", "Inf", "NaN", "NA", "NA_real_", "NA_integer_", "NA_character_", "TRUE", "FALSE",
         "NULL", "1e+100", "0x10", "1.5e-8", "99999999999", "1234567890123456789"]  # fmt: skip
_STRS = ['"a"', '"with space"', '"quote\\"inside"', '"tab\\there"', '"new\\nline"', "'single'", '"back\\\\slash"',
         '"ü"', '"\\001"', '""']  # fmt: skip
_BINOPS = ["+", "-", "*", "/", "^", ":", "%in%", "%%", "%/%", "==", "!=", "<", ">", "<=", ">=", "&", "&&", "|",
           "||", "~", "%o%", "%*%", "<-", "="]  # fmt: skip
_FUNS = ["f", "log", "c", "list", "I", "offset", "poly", "lme4::lmer", "stats:::g", "`my fun`", "base::`+`"]


def _atom(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return rng.choice(_SYMS)
    if r < 0.85:
        return rng.choice(_NUMS)
    return rng.choice(_STRS)


def _expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return _atom(rng)
    r = rng.random()
    sub = depth - 1
    if r < 0.35:
        op = rng.choice(_BINOPS)
        if op in ("<-", "="):
            return f"({_atom(rng)} {op} {_expr(rng, sub)})"
        return f"{_expr(rng, sub)} {op} {_expr(rng, sub)}"
    if r < 0.45:
        return f"({_expr(rng, sub)})"
    if r < 0.55:
        return f"{rng.choice(['-', '+', '!', '~'])}{_expr(rng, sub)}"
    if r < 0.75:
        n = rng.randrange(0, 4)
        args = []
        for _ in range(n):
            if rng.random() < 0.3:
                args.append(f"{rng.choice(['a', 'na.rm', 'formula', '`odd name`', '...'])} = {_expr(rng, sub)}")
            else:
                args.append(_expr(rng, sub))
        return f"{rng.choice(_FUNS)}({', '.join(args)})"
    if r < 0.82:
        return f"{_atom_sym(rng)}${rng.choice(['b', '`c d`', 'x1'])}"
    if r < 0.87:
        return f"{_atom_sym(rng)}@slot"
    if r < 0.95:
        inside = rng.choice([_expr(rng, sub), f", {_expr(rng, sub)}", f"{_expr(rng, sub)}, ", "i, j, drop = FALSE"])
        return f"{_atom_sym(rng)}[{inside}]" if rng.random() < 0.6 else f"{_atom_sym(rng)}[[{_expr(rng, sub)}]]"
    if r < 0.97:
        return f"{{{_expr(rng, sub)}; {_expr(rng, sub)}}}"
    if r < 0.985:
        return f"if ({_expr(rng, sub)}) {_expr(rng, sub)} else {_expr(rng, sub)}"
    return f"f({_expr(rng, sub)})({_expr(rng, sub)})"


def _atom_sym(rng: random.Random) -> str:
    return rng.choice(["x", "D", "obj", "`a b`"])


def _formula(rng: random.Random) -> str:
    choices = ["trtGrp", "Male", "age", "log(age)", "I(age^2)", "poly(age, 2)", "offset(o)", "a:b", "a*b",
               "a %in% b", "-1", "0", "1", "D$x", ".", "x - 1"]  # fmt: skip
    fixed = [rng.choice(choices) for _ in range(rng.randrange(1, 5))]
    ranef = []
    for _ in range(rng.randrange(0, 4)):
        lhs = rng.choice(["1", "1 + age", "0 + trtGrp", "age", "1 + trtGrp + age"])
        grp = rng.choice(["idDoctor", "idSurgery/idDoctor", "idSurgery:idDoctor", "g1 + g2"])
        bar = rng.choice(["|", "||"])
        ranef.append(f"({lhs} {bar} {grp})")
    terms = fixed + ranef
    rng.shuffle(terms)
    rhs = " + ".join(terms)
    if rng.random() < 0.2:
        rhs = f"({rhs})"
    lhs = rng.choice(["BMI", "y", "log(y)", "cbind(s, f)", "D$BMI", ""])
    text = f"{lhs} ~ {rhs}" if lhs else f"~{rhs}"
    return f"quote({text})" if rng.random() < 0.5 else text  # a formula object, or its call


_CONSTS = ["-1", "-1.5", "1e5", "-1e-5", "1L", "-2L", "NA", "NA_real_", "NA_integer_", "NA_character_", "Inf", "-Inf",
           "NaN", "0.1", "1/3", "2/3", "1e15", "1e16", "123456.7", "100", "1e-15", "-0", "c(1, 2)", "1:3", "c(1L, 3L)",
           "c(NA, 1)", "c(NA_real_, NA_real_)", "c(a = 1)", "TRUE", "c(TRUE, NA)", "'x'", "c('a', NA)",
           "NULL", "character(0)", "integer(0)", ".Machine$double.xmax", ".Machine$double.xmin", "5e-324",
           "0.1 + 0.2", "100000", "1e5 + 0.1", "123456789012", "0.0001234"]  # fmt: skip
_OPNAMES = ["+", "-", "*", "/", "^", ":", "~", "|", "||", "&", "==", "<", "!", "$", "@", "[", "[[", "%in%", "%%",
            "(", "<-", "=", "f", "::", "{", "if", "-", "^", "%*%"]  # fmt: skip


def _constructed(rng: random.Random, depth: int) -> str:
    """R code building a call with as.call: no parentheses unless the deparser adds them."""
    if depth <= 0 or rng.random() < 0.3:
        r = rng.random()
        if r < 0.5:
            return f"as.name({rng.choice(['x', 'y', 'a b', 'g'])!r})"
        if r < 0.6:
            return f"quote({rng.choice(['a + b', '-a', 'a^b', 'f(x)', 'x$y', 'x[1]', 'a < b', '~a', '(a)'])})"
        return rng.choice(_CONSTS)
    op = rng.choice(_OPNAMES)
    nargs = rng.choice([1, 2, 2, 2, 3]) if op not in ("(",) else 1
    if op == "::":
        return "quote(pkg::fun)"
    args = [_constructed(rng, depth - 1) for _ in range(nargs)]
    if op == "$" and nargs == 2 and rng.random() < 0.5:
        args[1] = rng.choice(["'name'", "'odd name'", "as.name('z')"])
    return f"as.call(list(as.name({op!r}), {', '.join(args)}))"


def _long(rng: random.Random) -> str:
    n = rng.randrange(40, 120)
    terms = " + ".join(f"variable_number_{i}" for i in range(n))
    kind = rng.random()
    if kind < 0.4:
        return f"y ~ {terms}"
    if kind < 0.7:
        args = ", ".join(f"argument_{i} = value_{i}" for i in range(n))
        return f"quote(f({args}))"
    strs = ", ".join(f'"{"s" * rng.randrange(1, 60)}"' for _ in range(n // 3))
    return f"quote(g(c({strs}), x))"


def generated_texts(seed: int = 18, count: int = 1200) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        r = rng.random()
        if r < 0.35:
            out.append(f"quote({_expr(rng, 4)})")
        elif r < 0.6:
            out.append(_formula(rng))
        elif r < 0.93:
            out.append(_constructed(rng, 3))
        else:
            out.append(_long(rng))
    return out


def _golden_texts() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("language", "symbol") and "deparsed" in node:
                found.append(node["deparsed"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in sorted(GOLDEN.glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def _language_values(texts: list[str]) -> list[tuple[str, bytes, list[str]]]:
    from rserialize_r import deparse_batch

    return [(text, *item) for text, item in zip(texts, deparse_batch(texts), strict=True) if item is not None]


def _python_deparse(raw: bytes) -> list[str]:
    value = rserialize.read(raw)
    assert isinstance(value, Call | Symbol), value
    return deparse(value)


@pytest.mark.needs_r
def test_generated_calls_deparse_as_r_does() -> None:
    texts = generated_texts()
    cases = _language_values(texts)
    assert len(cases) >= 1000, len(cases)
    problems = []
    for text, raw, lines in cases:
        try:
            ours = _python_deparse(raw)
        except ValueError as exc:
            ours = [repr(exc)]
        if ours != lines:
            problems.append(f"{text}\n  R:  {lines}\n  py: {ours}")
    assert not problems, f"{len(problems)} of {len(cases)} differ:\n" + "\n".join(problems[:40])


@pytest.mark.needs_r
def test_golden_language_objects_deparse_as_recorded() -> None:
    """Each golden call text, parsed by R and serialized, deparses to the recorded lines."""
    golden = _golden_texts()
    assert len(golden) >= 90
    unique = sorted({tuple(g) for g in golden})
    texts = [f"quote({' '.join(lines)})" for lines in unique]
    cases = _language_values(texts)
    assert len(cases) == len(unique)
    for (text, raw, lines), expected in zip(cases, unique, strict=True):
        assert lines == list(expected), text  # R's own deparse gives the golden text back
        assert _python_deparse(raw) == list(expected), text


# -- unit checks (no R) ------------------------------------------------------------------------------


def _c(op: str, *args: Any) -> Call:
    return Call(Symbol(op), [(None, a) for a in args])


def test_operators_and_parentheses() -> None:
    a, b, c = Symbol("a"), Symbol("b"), Symbol("c")
    assert deparse(_c("+", _c("*", a, b), c)) == ["a * b + c"]
    assert deparse(_c("*", _c("+", a, b), c)) == ["(a + b) * c"]
    assert deparse(_c("-", a, _c("-", b, c))) == ["a - (b - c)"]
    assert deparse(_c("^", _c("^", a, b), c)) == ["(a^b)^c"]
    assert deparse(_c("~", _c("|", rvalue.r_double([1]), Symbol("g")))) == ["~1 | g"]
    assert deparse(_c("%in%", a, b)) == ["a %in% b"]
    assert deparse(Call(Symbol("::"), [(None, Symbol("lme4")), (None, Symbol("lmer"))])) == ["lme4::lmer"]
    assert deparse(Call(Symbol("["), [(None, a), (None, MISSING), (None, rvalue.r_integer([1]))])) == ["a[, 1L]"]
    assert deparse(Call(Symbol("f"), [("a b", a), (None, rvalue.r_character(["x\n"]))])) == ['f(`a b` = a, "x\\n")']
    assert deparse(Symbol("a b")) == ["a b"]


def test_numbers_as_r_writes_them() -> None:
    assert [format_real(v) for v in (1e5, 123456.0, 0.1, 1 / 3, 1e-5, 0.001, 1e15, 100.0, -2.5)] == [
        "1e+05", "123456", "0.1", "0.333333333333333", "1e-05", "0.001", "1e+15", "100", "-2.5"]  # fmt: skip
    assert is_syntactic_name(".x") and not is_syntactic_name(".1x") and not is_syntactic_name("if")


def test_long_calls_break_lines_as_r_does() -> None:
    terms: Any = Symbol("v0")
    for i in range(1, 80):
        terms = _c("+", terms, Symbol(f"variable_{i}"))
    lines = deparse(_c("~", Symbol("y"), terms))
    # as R 4.2.2 writes it: a break after the first operator past 500 bytes, continuations indented by 4
    assert [len(line) for line in lines] == [504, 508, 99]
    assert lines[1].startswith("    variable_37 + ") and lines[2].startswith("    variable_73 + ")
