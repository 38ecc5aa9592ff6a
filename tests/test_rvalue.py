"""The R-value model round-trips every golden result node exactly, and keeps R's distinctions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pydsbase.rvalue import NA, RAtomic, RList, dumps, from_node, loads, r_double, to_node


def _canonical(node: object) -> object:
    """Compare doubles by their bits: JSON may write the double 34 as 34 or 34.0."""
    if isinstance(node, dict):
        return {k: _canonical(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_canonical(v) for v in node]
    if isinstance(node, float) or (isinstance(node, int) and not isinstance(node, bool)):
        return ("num", float(node).hex())
    return node


def test_every_golden_result_round_trips(golden_dir: Path) -> None:
    cases = sorted(golden_dir.glob("*.json"))
    assert len(cases) == 40
    for path in cases:
        case = json.loads(path.read_text())
        node = case["result"]
        again = json.loads(dumps(from_node(node)))
        assert _canonical(again) == _canonical(node), path.name


def test_na_nan_and_types_are_distinct() -> None:
    vec = RAtomic("double", [1.5, NA, math.nan, math.inf])
    assert to_node(vec)["data"] == [1.5, "NA", "NaN", "Inf"]
    back = loads(dumps(vec))
    assert isinstance(back, RAtomic) and back.data[1] is NA and math.isnan(back.data[2])
    ints = from_node({"type": "integer", "class": ["integer"], "length": 2, "data": [3, "NA"]})
    assert isinstance(ints, RAtomic) and ints.data == [3, NA] and ints != r_double([3.0, NA])


def test_lists_keep_null_slots_and_unnamed_names() -> None:
    node = {"type": "list", "class": ["list"], "length": 3, "data": [None, None, {"type": "double",
            "class": ["numeric"], "length": 1, "data": [1]}], "names": ["", "", "disclosure.risk"]}
    value = from_node(node)
    assert isinstance(value, RList) and value.data[:2] == [None, None]
    assert value["disclosure.risk"] == r_double([1.0])
    assert to_node(value)["names"] == ["", "", "disclosure.risk"]


def test_doubles_are_bit_exact_through_json() -> None:
    tricky = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 2.0**-1074 * 3]
    back = loads(dumps(r_double(tricky)))
    assert isinstance(back, RAtomic)
    assert [x.hex() for x in back.data] == [x.hex() for x in tricky]


def test_pandas_view_of_a_matrix() -> None:
    node = {"type": "double", "class": ["matrix", "array"], "length": 4, "data": [1, 2, 3, 4], "dim": [2, 2],
            "dimnames": [["a", "b"], ["x", "y"]]}
    frame = from_node(node).to_pandas()  # type: ignore[union-attr]
    assert frame.loc["b", "x"] == 2.0 and frame.loc["a", "y"] == 3.0


@pytest.mark.parametrize("bad", [{"type": "double", "class": [], "length": 1, "data": ["oops"]}, [1, 2]])
def test_bad_nodes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        from_node(bad)


def test_unchecked_constructors_set_every_field_as_the_classes_do() -> None:
    """The decoder's constructors skip ``__init__``: they must still set exactly the dataclasses' fields,
    to the values ``__init__`` gives (a field added to RAtomic or RList makes this fail)."""
    from dataclasses import fields

    from pydsbase.rvalue import atomic_unchecked, list_unchecked

    fast = atomic_unchecked("double", [1.5, NA], ["numeric"], names=["a", None])
    slow = RAtomic("double", [1.5, NA], names=["a", None])
    assert set(vars(fast)) == {f.name for f in fields(RAtomic)}
    assert vars(fast) == vars(slow) or fast == slow
    assert all(getattr(fast, f.name) == getattr(slow, f.name) for f in fields(RAtomic) if f.name != "data")
    items = list_unchecked([fast, None], ["x", ""], ["list"])
    assert set(vars(items)) == {f.name for f in fields(RList)}
    assert items == RList([slow, None], names=["x", ""])
