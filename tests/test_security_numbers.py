"""Number literals reach R as text and are read by R (R_strtod, as R's parser reads a literal).

Decision: the bridge sends ``Num.text`` and R converts it with ``as.numeric``; ``Num.value`` (Python's
``float``) is used only for range checks. This test shows R's conversion equals R's parser for
literals where a correctly rounded reader (Python) and R's reader are known to be at risk of
disagreeing: long mantissas, halfway cases, subnormals.
"""

from __future__ import annotations

import random

import pytest

from r_server.grammar import parse_assign
from r_server.runtime import StudyRuntime

pytestmark = pytest.mark.needs_r

LITERALS = [
    "0.1", "0.3", "1e-320", "4.9406564584124654e-324", "2.2250738585072011e-308", "0.30000000000000004",
    "123456789012345678901", "9007199254740993", "1.00000000000000011102230246251565404236316680908203125",
    "179769313486231570000000000000000000000000000000000000000000000", "1e+05", ".5", "5.", "1e-7",
    "0.1000000000000000055511151231257827", "3.141592653589793238462643383279502884",
]  # fmt: skip


def _random_literals(n: int) -> list[str]:
    rng = random.Random(99)
    out = []
    for _ in range(n):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(15, 25)))
        point = rng.randint(1, len(digits) - 1)
        out.append(f"{digits[:point]}.{digits[point:]}e{rng.randint(-30, 30)}")
    return out


def test_r_reads_each_literal_as_its_parser_does(tmp_path) -> None:
    import rpy2.rinterface as ri

    (tmp_path / "T.csv").write_text("a\n1\n")
    runtime = StudyRuntime("n", tmp_path)
    sid = runtime.open_session("u")
    bridge = runtime._bridge
    env = runtime._session(sid).env
    for text in LITERALS + _random_literals(300):
        ours = bridge.encode(bridge.evaluate(env, parse_assign(text)))["data"][0]
        parsed = ri.baseenv["eval"](ri.baseenv["parse"](text=ri.StrSexpVector([text])))[0]
        assert ours == parsed or (ours != ours and parsed != parsed), text  # bit-equal doubles
        negative = bridge.encode(bridge.evaluate(env, parse_assign("-" + text)))["data"][0]
        assert negative == -parsed, text
