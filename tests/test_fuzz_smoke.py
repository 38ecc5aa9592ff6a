"""CI smoke version of the fuzzer (``security/fuzz.py``): fixed seed, 10,000 inputs, in process.

The full run (``python security/fuzz.py --n 100000 --seed 1``) and its figures are in SECURITY.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server import calltree as ct  # noqa: E402
from r_server.errors import CallRejected, RCallError  # noqa: E402
from r_server.functions import AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS  # noqa: E402
from r_server.grammar import Rejected, parse_aggregate, parse_assign  # noqa: E402
from security.fuzz import STAGES, Generator, run_in_process, run_through_r  # noqa: E402
from security.invariants import error_is_clear, tree_violations  # noqa: E402

SEED = 20240607


def test_fuzz_smoke_10000_inputs() -> None:
    report = run_in_process(10_000, SEED)
    assert sum(report.stages.values()) == 10_000
    assert set(report.stages) <= set(STAGES), report.stages  # nothing outside the known stages
    assert all(report.stages[s] > 0 for s in STAGES), report.stages
    assert report.past_lexer_into_arguments >= 5_000, report.stages
    assert report.unhandled == 0, report.examples.get("unhandled")
    assert report.not_allow_listed == 0, report.examples.get("not_allow_listed")
    assert report.unclear == 0, report.examples.get("unclear")
    assert report.bridge_calls == report.stages["bridge"]
    every_function = set(AGGREGATE_FUNCTIONS) | set(ASSIGN_FUNCTIONS)
    assert every_function <= set(report.functions_reached), every_function - set(report.functions_reached)


def test_the_generator_is_reproducible() -> None:
    import random

    first = [Generator(random.Random(5)).one() for _ in range(1)]
    a = Generator(random.Random(5))
    b = Generator(random.Random(5))
    assert [a.one() for _ in range(200)] == [b.one() for _ in range(200)]
    assert first[0] == Generator(random.Random(5)).one()


def test_the_bridge_recheck_fires_on_what_must_not_run() -> None:
    """Positive control of the 'not allow-listed' counter: it flags each kind of forbidden tree."""
    assert tree_violations("aggregate", "system", []) == ["'system' is not an allow-listed aggregate function"]
    assert tree_violations("aggregate", "completeCasesDS", [("x1.transmit", ct.Str("D"))])  # wrong mode
    assert tree_violations("aggregate", "colnamesDS", [("envir", ct.Str("D"))])
    bad_formula = ct.Formula(ct.Sym("y"), ct.FormulaCall("system", (ct.Sym("x"),)))
    assert tree_violations("aggregate", "lmerSLMADS2", [("formula", bad_formula)])
    assert tree_violations("assign", None, [(None, ct.Binary("%in%", ct.Sym("a"), ct.Sym("b")))])
    assert tree_violations("assign", None, [(None, ct.Sym("a;b"))])
    assert tree_violations("aggregate", "colnamesDS", [("x", ct.Str("D\u0430"))])
    assert tree_violations("aggregate", "colnamesDS", [("x", ct.Str("D"))]) == []


def test_clear_error_rule() -> None:
    assert error_is_clear(CallRejected("call rejected: backticks are not allowed (at character 1: `)"))
    assert error_is_clear(RCallError("object 'D' not found"))
    assert not error_is_clear(ValueError("call rejected: x"))
    assert not error_is_clear(CallRejected("call rejected: \x00"))
    assert not error_is_clear(CallRejected("oops"))


@settings(max_examples=400)
@given(st.text(max_size=200))
def test_any_text_parses_or_is_rejected_with_a_stage(text: str) -> None:
    for parse in (parse_aggregate, parse_assign):
        try:
            parse(text)
        except Rejected as exc:
            assert exc.stage in ("lexer", "parser")
            assert error_is_clear(exc), exc.message


_names = st.sampled_from(["D", "D$BMI", "w", "x.y", "system", "a_b"])
_values = st.one_of(
    _names.map(lambda n: f'"{n}"'),
    _names,
    st.sampled_from(["NULL", "TRUE", "FALSE", "1", "-2.5", "1e-7", "BMI~age+yyy1xxxgzzz"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12).map(lambda s: f'"{s}"'),
)


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(AGGREGATE_FUNCTIONS) + sorted(ASSIGN_FUNCTIONS) + ["system", "get"]),
    st.lists(
        st.tuples(st.one_of(st.none(), st.sampled_from(["x", "formula", "dataName", "envir"])), _values), max_size=10
    ),
)
def test_any_call_of_any_function_is_bound_or_refused(func: str, args: list[tuple[str | None, str]]) -> None:
    from r_server.functions import check_call

    text = f"{func}({', '.join(v if n is None else f'{n} = {v}' for n, v in args)})"
    scope = _Scope()
    kinds: tuple[Literal["aggregate"], Literal["assign"]] = ("aggregate", "assign")
    for kind in kinds:
        try:
            tree = parse_aggregate(text)
            bound = check_call(tree, kind, scope)
        except (CallRejected, RCallError) as exc:
            assert error_is_clear(exc), exc.message
            continue
        assert tree_violations(kind, bound.func, list(bound.args.items())) == []


class _Scope:
    def __init__(self) -> None:
        self.symbols = {"D": ["BMI", "age"], "w": None}

    def has_symbol(self, name: str) -> bool:
        return name in self.symbols

    def columns(self, name: str) -> list[str] | None:
        return self.symbols.get(name)


@pytest.mark.needs_r
def test_fuzz_sample_through_real_r() -> None:
    out = run_through_r(3_000, SEED, 150)
    assert out["n"] == 150
    assert out["r_bridge_calls"] >= 100
    assert out["not_allow_listed_executions"] == 0
    assert out["unhandled_exceptions"] == 0, out["examples"]
    assert out["canary_file_created"] is False
    assert out["secret_leaked"] is False
    assert out["study_answers_after"] is True
