"""The small R-call parser of the conformance runner: literals, c(), a:b, conns[...], R argument matching."""

from __future__ import annotations

from typing import Any

import pytest

from pydsbase.conformance.rcall import CallSyntaxError, ConnsIndex, RFunction, bind, parse_call


def _record(**kwargs: Any) -> dict[str, Any]:
    return kwargs


BOOLE = RFunction(_record, (
    ("V1", "v1"), ("V2", "v2"), ("Boolean.operator", "boolean_operator"), ("numeric.output", "numeric_output"),
    ("na.assign", "na_assign"), ("newobj", "newobj"), ("datasources", "datasources"),
))


def test_literals_and_conns_index() -> None:
    call = parse_call('ds.Boole(V1 = "D$idPatient", V2 = 2, Boolean.operator = "<=", newobj = "rare", '
                      'datasources = conns[2:3])')
    assert call.function == "ds.Boole"
    assert bind(call, BOOLE) == {
        "v1": "D$idPatient", "v2": 2.0, "boolean_operator": "<=", "newobj": "rare", "datasources": ConnsIndex((2, 3)),
    }
    assert ConnsIndex((2, 3)).select(["a", "b", "c"]) == ["b", "c"]
    assert parse_call("f(datasources = conns[c(1, 3)])").args[0][1].select(["a", "b", "c"]) == ["a", "c"]
    assert parse_call("f(conns[-1])").args[0][1].select(["a", "b", "c"]) == ["b", "c"]
    assert parse_call("f(conns[1])").args[0][1].select(["a", "b"]) == ["a"]


def test_values_positional_and_partial_matching() -> None:
    call = parse_call(['dsBaseClient::ds.Boole("x", -1.5e-3,', ' "==", numeric = FALSE, na = "0", T, NULL)'])
    assert bind(call, BOOLE) == {
        "v1": "x", "v2": -0.0015, "boolean_operator": "==", "numeric_output": False, "na_assign": "0",
        "newobj": True, "datasources": None,
    }
    assert parse_call('f(x = c("D", "w"), y = 1L, z = \'a\\"b\')').args == (("x", ["D", "w"]), ("y", 1), ("z", 'a"b'))


@pytest.mark.parametrize("text", ["f(x = system('rm'))", "f(x = a$b)", "f(x = 1) + 2", 'f("a" "b")', "f(x = conns)"])
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(CallSyntaxError):
        parse_call(text)


def test_unused_argument_is_refused() -> None:
    with pytest.raises(CallSyntaxError, match="unused argument"):
        bind(parse_call('ds.Boole(nonsense = 1)'), BOOLE)
