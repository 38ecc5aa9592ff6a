"""The lmer disclosure pre-check reaches the oracle's decision and message on every input.

``r_server/R/lmer.R`` counts binary categories and valid rows without hashing or copying every value
(issue 21). The oracle is the rule as it stood before (``tests/r/lmer_precheck_oracle.R``, verbatim
under ``.oracle_*`` names). Both run in this process's one embedded R on data Hypothesis generates:
ties, near-ties that print alike (0.1 + 0.2 and 0.3), -0, NA, NaN, Inf, integers, rare categories,
aliased and constant columns, more parameters than rows, factors with rare and unused levels,
weights (zero, negative, binary, missing) and offsets. The counts, the checks, the risk flag and the
control object must be identical, or both must fail with the same message.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.needs_r

ORACLE = Path(__file__).resolve().parent / "r" / "lmer_precheck_oracle.R"
NA = object()  # NA_real_ / NA_character_ in a generated column

# doubles that make ties, near-ties printing alike (15 digits), signed zeros and non-finite values
# and magnitudes whose squares or products overflow (glm.fit's deviance, its QR)
VALUES = [0.0, -0.0, 1.0, 2.0, 0.3, 0.1 + 0.2, 1e-300, 7.5, -3.25, 1e15 + 0.3, 1e15 + 0.5, math.inf, -math.inf,
          math.nan, 1e200, -1e160, 1e305]
FORMULAS = [
    "y ~ x1 + (1 | g)",
    "y ~ x1 + x2 + x3 + (1 | g)",
    "y ~ x2 * f + (1 | g)",
    "y ~ f + x2 + (1 | g)",
    "y ~ 0 + x1 + x2 + (1 | g)",
    "y ~ x1 + (x1 | g)",
    "y ~ 1 + (1 | g)",
    "y ~ x1 + x3 + offset(x2) + (1 | g)",
    "D$y ~ D$x2 + (1 | D$g)",
    "y ~ x1 + x2 + x3 + f + (1 | g) + (1 | f)",
]
LEVELS = ["a", "b", "c", "unused"]


@pytest.fixture(scope="module")
def r() -> Any:
    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    with bridge._r() as ri:
        env = ri.baseenv["new.env"](parent=bridge._env)
        ri.baseenv["sys.source"](ri.StrSexpVector([str(ORACLE)]), envir=env)
    return bridge, env


def _doubles(ri: Any, values: list[Any]) -> Any:
    return ri.FloatSexpVector([ri.NA_Real if v is NA else v for v in values])


@st.composite
def column(draw: st.DrawFn, n: int, kind: str | None = None) -> list[Any]:
    kind = kind or draw(st.sampled_from(["continuous", "binary", "constant", "few", "special"]))
    if kind == "continuous":
        values: list[Any] = [float(v) for v in draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n))]
    elif kind == "binary":
        pair = draw(st.sampled_from([(0.0, 1.0), (1.0, 2.0), (0.3, 0.1 + 0.2), (0.0, -0.0), (-3.25, 7.5)]))
        rare = draw(st.integers(0, n))
        values = [pair[1] if i < rare else pair[0] for i in range(n)]
        values = draw(st.permutations(values))
    elif kind == "constant":
        values = [draw(st.sampled_from(VALUES[:10]))] * n
    elif kind == "few":
        values = draw(st.lists(st.sampled_from(VALUES[:11]), min_size=n, max_size=n))
    else:
        values = draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n))
    missing = draw(st.sets(st.integers(0, n - 1), max_size=draw(st.sampled_from([0, n // 4, n]))))
    return [NA if i in missing else v for i, v in enumerate(values)]


@st.composite
def case(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 30))
    x1 = draw(column(n))
    x2 = draw(column(n, draw(st.sampled_from(["binary", "binary", "few", "special"]))))
    alias = draw(st.sampled_from(["copy", "double", "sum", "near", "own"]))
    if alias == "own":
        x3 = draw(column(n))
    else:
        # "near": aliased but for a last bit or so (the QR's rank tolerance decides)
        x3 = [NA if a is NA or b is NA else {"copy": a, "double": 2 * a, "sum": a + b, "near": a + 1e-12 * b}[alias]
              for a, b in zip(x1, x2, strict=True)]
    f = [draw(st.sampled_from(LEVELS[:3] + [NA])) for _ in range(n)]
    g = [draw(st.sampled_from(["g1", "g2", "g3"])) for _ in range(n)]
    weights = draw(st.sampled_from([None, "positive", "binary", "zeros", "negative", "missing", "integer"]))
    offset = draw(st.sampled_from([None, "continuous", "binary", "missing"]))
    return {
        "n": n, "y": draw(column(n)), "x1": x1, "x2": x2, "x3": x3, "f": f, "g": g,
        "formula": draw(st.sampled_from(FORMULAS)),
        "weights": weights, "offset": offset,
        "w": {
            None: None,
            "positive": [float(v) for v in draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))],
            "binary": draw(column(n, "binary")),
            "zeros": [float(v) for v in draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))],
            "negative": [float(v) for v in draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n))],
            "missing": draw(column(n, "continuous")),
            "integer": draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)),
        }[weights],
        "o": None if offset is None else draw(column(n, {"missing": "continuous"}.get(offset, offset))),
        "nfilter_tab": draw(st.sampled_from([1.0, 3.0, 5.0])),
        "nfilter_glm": draw(st.sampled_from([0.01, 0.33, 1.0])),
    }  # fmt: skip


@settings(max_examples=60)
@given(case())
def test_pre_check_reaches_the_oracles_decision_and_message(r: Any, case: dict[str, Any]) -> None:
    bridge, env = r
    with bridge._r() as ri:
        cols = ri.ListSexpVector([_doubles(ri, case[c]) for c in ("y", "x1", "x2", "x3")]
                                 + [ri.StrSexpVector([ri.NA_Character if v is NA else v for v in case[c]])
                                    for c in ("f", "g")])
        cols.do_slot_assign("names", ri.StrSexpVector(["y", "x1", "x2", "x3", "f", "g"]))
        extra = {}
        if case["w"] is not None:
            w = case["w"]
            extra["w"] = ri.IntSexpVector(w) if case["weights"] == "integer" else _doubles(ri, w)
        if case["o"] is not None:
            extra["o"] = _doubles(ri, case["o"])
        extra_list = ri.ListSexpVector(list(extra.values()))
        extra_list.do_slot_assign("names", ri.StrSexpVector(list(extra)))
        thr = ri.ListSexpVector([ri.FloatSexpVector([case["nfilter_tab"]]), ri.FloatSexpVector([case["nfilter_glm"]])])
        thr.do_slot_assign("names", ri.StrSexpVector(["nfilter.tab", "nfilter.glm"]))
        out = env[".precheck_compare"](
            cols, ri.StrSexpVector(["f", "g"]), ri.StrSexpVector(LEVELS + ["g1", "g2", "g3"]), extra_list,
            ri.StrSexpVector([case["formula"]]),
            ri.NULL if case["o"] is None else ri.StrSexpVector(["o"]),
            ri.NULL if case["w"] is None else ri.StrSexpVector(["w"]),
            thr,
        )
        same, ours, oracle, lean = bool(out[0][0]), list(out[1]), list(out[2]), out[3][0]
    assert same, "\n".join(["ours:", *ours, "oracle:", *oracle])
    assert lean in ("same", "fallback")


@settings(max_examples=300)
@given(
    # values from a pool of one to four (ties, binary, three values), some vectors longer than the 64 values
    # the rule looks at first
    st.tuples(st.integers(0, 150), st.lists(st.sampled_from(VALUES + [NA]), min_size=1, max_size=4)).flatmap(
        lambda n_pool: st.lists(st.sampled_from(n_pool[1]), min_size=n_pool[0], max_size=n_pool[0])),
    st.sampled_from([1.0, 2.0, 3.0, 5.0, 100.0]),
    st.booleans(),
)
def test_binary_rule_is_the_oracles(r: Any, values: list[Any], nfilter_tab: float, as_integer: bool) -> None:
    bridge, env = r
    with bridge._r() as ri:
        if as_integer:
            v = ri.IntSexpVector([ri.NA_Integer if x is NA or not abs(x) < 1e9 else int(x) for x in values])
        else:
            v = _doubles(ri, values)
        ours, oracle = env[".binary_compare"](v, ri.FloatSexpVector([nfilter_tab]))
    assert ours == oracle


def test_pre_check_oracle_sees_the_cases_that_matter(r: Any) -> None:
    """Positive control: the compared outcomes include each check firing and an error."""
    bridge, env = r
    with bridge._r() as ri:
        rare = [1.0] * 2 + [0.0] * 18
        cols = ri.ListSexpVector([ri.FloatSexpVector([float(i % 7) for i in range(20)]), ri.FloatSexpVector(rare),
                                  ri.StrSexpVector(["g1", "g2"] * 10)])
        cols.do_slot_assign("names", ri.StrSexpVector(["y", "x2", "g"]))
        thr = ri.ListSexpVector([ri.FloatSexpVector([3.0]), ri.FloatSexpVector([0.33])])
        thr.do_slot_assign("names", ri.StrSexpVector(["nfilter.tab", "nfilter.glm"]))
        none = ri.ListSexpVector([])
        none.do_slot_assign("names", ri.StrSexpVector([]))

        def outcome(formula: str) -> list[str]:
            out = env[".precheck_compare"](cols, ri.StrSexpVector(["g"]), ri.StrSexpVector(["g1", "g2"]), none,
                                           ri.StrSexpVector([formula]), ri.NULL, ri.NULL, thr)
            assert bool(out[0][0])
            return list(out[1])

        assert any("at least one column in X matrix is binary" in line for line in outcome("y ~ x2 + (1 | g)"))
        assert any("y (response) vector is binary" in line for line in outcome("x2 ~ y + (1 | g)"))
        assert any("ERROR: object 'nothere' not found" in line for line in outcome("y ~ nothere + (1 | g)"))
        # one complete row: dsBase's subset drops to a vector and Nvalid is NULL
        cols[0] = ri.FloatSexpVector([1.0] + [ri.NA_Real] * 19)
        assert any("Nvalid  : NULL" in line for line in outcome("y ~ 1 + (1 | g)"))


def test_lean_glm_answers_clean_fits_and_leaves_the_rest_to_glm(r: Any) -> None:
    """Positive control of the lean glm: a clean fit is answered (glm()'s x, y, weights, offset), and each way
    glm.fit fails or strays (overflowing deviance, non-finite data, no positive weight) goes to glm() itself,
    whose error the pre-check then reports (and the oracle's agrees)."""
    bridge, env = r
    with bridge._r() as ri:
        thr = ri.ListSexpVector([ri.FloatSexpVector([3.0]), ri.FloatSexpVector([0.33])])
        thr.do_slot_assign("names", ri.StrSexpVector(["nfilter.tab", "nfilter.glm"]))

        def compare(y: list[float], w: list[float] | None = None, o: list[float] | None = None) -> tuple[str, str]:
            n = len(y)
            cols = ri.ListSexpVector([ri.FloatSexpVector(y), ri.FloatSexpVector([float(i % 5) for i in range(n)]),
                                      ri.StrSexpVector(["g1", "g2", "g3"] * (n // 3))])
            cols.do_slot_assign("names", ri.StrSexpVector(["y", "x1", "g"]))
            extra = {k: ri.FloatSexpVector(v) for k, v in (("w", w), ("o", o)) if v is not None}
            extra_list = ri.ListSexpVector(list(extra.values()))
            extra_list.do_slot_assign("names", ri.StrSexpVector(list(extra)))
            out = env[".precheck_compare"](cols, ri.StrSexpVector(["g"]), ri.StrSexpVector(["g1", "g2", "g3"]),
                                           extra_list, ri.StrSexpVector(["y ~ x1 + (1 | g)"]),
                                           ri.NULL if o is None else ri.StrSexpVector(["o"]),
                                           ri.NULL if w is None else ri.StrSexpVector(["w"]), thr)
            assert bool(out[0][0]), "\n".join(list(out[1]) + list(out[2]))
            return out[3][0], "\n".join(out[1])

        y = [float((i * 7) % 11) for i in range(30)]
        assert compare(y)[0] == "same"
        assert compare(y, w=[1.0 + i % 3 for i in range(30)], o=[0.5 * (i % 4) for i in range(30)])[0] == "same"
        assert compare(y, w=[0.0] * 10 + [2.0] * 20)[0] == "same"  # zero weights: glm.fit's rows kept apart
        lean, outcome = compare([1e200 * v for v in y])  # the deviance overflows at the first iteration
        assert lean == "fallback" and "no valid set of coefficients has been found" in outcome
        # the weighted deviance overflows where the unweighted one would not
        lean, outcome = compare([1e4 * v for v in y], w=[1e300] * 30)
        assert lean == "fallback" and "no valid set of coefficients has been found" in outcome
        lean, outcome = compare(y[:-1] + [math.inf])
        assert lean == "fallback" and "NA/NaN/Inf in 'y'" in outcome
        lean, outcome = compare(y, w=[0.0] * 30)
        assert lean == "fallback" and "ERROR:" in outcome
