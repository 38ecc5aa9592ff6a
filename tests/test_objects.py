"""dsBase's object functions (lsDS, dimDS, ..., table1DDS, cDS, c/list): values, disclosure refusals with dsBase's
messages, hostile arguments refused, and errors as R's try() shows them. One R (the process's bridge) for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from r_server.errors import CallRejected, RCallError, try_text
from r_server.runtime import StudyRuntime
from r_server.settings import DisclosureSettings

pytestmark = pytest.mark.needs_r

ROWS = [
    # x: numeric with one NA; g: a factor level with 2 rows (below nfilter.tab 3); s: text
    (1.5, "a", "u"), (2.5, "a", "v"), (3.5, "a", "w"), (None, "b", "x"), (5.5, "b", "y"), (6.5, "a", "z"),
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("objects")
    lines = ["x,g,s"] + [f"{'NA' if x is None else x},{g},{s}" for x, g, s in ROWS]
    (root / "T.csv").write_text("\n".join(lines) + "\n")
    return root


def _open(tables: Path, level: str) -> tuple[StudyRuntime, str]:
    rt = StudyRuntime("s", tables, settings=DisclosureSettings(privacy_control_level=level))
    sid = rt.open_session("u")
    rt.assign_table(sid, "D", "T")
    rt.assign_expr(sid, "G", 'asCharacterDS("D$g")')
    return rt, sid


@pytest.fixture(scope="module")
def permissive(tables: Path) -> Iterator[tuple[StudyRuntime, str]]:
    yield _open(tables, "permissive")


@pytest.fixture(scope="module")
def banana(tables: Path) -> Iterator[tuple[StudyRuntime, str]]:
    yield _open(tables, "banana")


def _data(node: Any) -> Any:
    return node["data"] if isinstance(node, dict) else node


def test_sizes_names_and_counts(permissive: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    assert _data(rt.aggregate(sid, 'dimDS("D")')) == [6, 3]
    assert _data(rt.aggregate(sid, 'lengthDS("D$x")')) == [6]
    assert _data(rt.aggregate(sid, "numNaDS(D$x)")) == [1]
    assert _data(rt.aggregate(sid, "isValidDS(D$x)")) == [True]
    quantiles = rt.aggregate(sid, "quantileMeanDS(D$x)")
    assert quantiles["names"][-1] == "Mean" and quantiles["data"][-1] == pytest.approx(3.9)
    rt.assign_expr(sid, "L", 'listDS(list(D$x, D$s), list("x", "s"))')
    assert _data(rt.aggregate(sid, 'namesDS("L")')) == ["x", "s"]
    with pytest.raises(RCallError, match="The input object is not of class <list>numeric"):
        rt.aggregate(sid, 'namesDS("D$x")')


def test_ls_and_rm(permissive: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    rt.assign_expr(sid, "tmp1", "D$x")
    found = _data(rt.aggregate(sid, "lsDS(search.filter = NULL, 1L)"))
    assert _data(found["environment.searched"]) == ["R_GlobalEnv"] and "tmp1" in _data(found["objects.found"])
    filtered = _data(rt.aggregate(sid, 'lsDS(search.filter = "tmp_:A:_", 1L)'))
    assert _data(filtered["objects.found"]) == ["tmp1"] and _data(filtered["search.filter.final"]) == ["tmp*"]
    out = _data(rt.aggregate(sid, 'rmDS("tmp1,nope,c")'))
    message = "Object(s) 'tmp1' was deleted. 'nope' which are missing. 'c' which caused problems."
    assert _data(out["return.message"]) == [message]
    assert "tmp1" not in rt.list_symbols(sid)
    with pytest.raises(RCallError, match="env.to.search = 1"):
        rt.aggregate(sid, "lsDS(search.filter = NULL, 2L)")


def test_conversions_c_and_list(permissive: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    for symbol, text in [("i", 'asIntegerDS("D$x")'), ("l", 'asLogicalDS("D$x")'), ("m", 'asDataMatrixDS("D")'),
                         ("v", "cDS(list(D$x))"), ("w", "c(D$x, 1)"), ("z", "list(a = D$x, b = 2)")]:
        rt.assign_expr(sid, symbol, text)
    classes = {s: _data(rt.aggregate(sid, f'classDS("{s}")')) for s in "ilmvwz"}
    assert classes == {"i": ["integer"], "l": ["logical"], "m": ["matrix", "array"], "v": ["numeric"],
                       "w": ["numeric"], "z": ["list"]}
    assert _data(rt.aggregate(sid, 'lengthDS("w")')) == [7]
    made = _data(rt.aggregate(sid, 'asListDS("D$x", "al")'))
    assert _data(made["class.of.newobj"]) == ["Class of <al> is 'list'"] and "al" in rt.list_symbols(sid)


def test_disclosure_refusals_have_dsbase_messages(permissive: tuple[StudyRuntime, str],
                                                  banana: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    with pytest.raises(RCallError, match="^invalid table - invalid counts present$"):
        rt.aggregate(sid, "table1DDS(D$g)")  # level b has 2 rows, below nfilter.tab = 3
    rt.assign_expr(sid, "short", "c(1, 2)")
    assert _data(rt.aggregate(sid, "isValidDS(short)")) == [False]
    assert _data(rt.aggregate(sid, "quantileMeanDS(short)")) == ["NA"]
    rt.assign_expr(sid, "tiny", "cDS(list(1, 2))")  # fewer than nfilter.tab values: NULL
    assert _data(rt.aggregate(sid, 'lengthDS("tiny")')) == [0]
    brt, bsid = banana
    blocked = "BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked"
    with pytest.raises(RCallError, match=blocked) as info:
        brt.assign_expr(bsid, "v", "cDS(list(D$x))")  # cDS allows only permissive and avocado
    call = 'dsBase::checkPermissivePrivacyControlLevel(c("permissive", "avocado"))'
    assert info.value.r_text == f"Error in {call} : \n  {blocked}"


def test_levels_of_a_text_column(permissive: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    out = _data(rt.aggregate(sid, "levelsDS(D$s)"))  # read.csv keeps text as character: no levels
    assert out["Levels"] is None and _data(out["ValidityMessage"]) == ["VALID ANALYSIS"]


def test_errors_as_r_try_prints_them(permissive: tuple[StudyRuntime, str]) -> None:
    rt, sid = permissive
    cases = {
        'dimDS("Q")': "Error in eval(parse(text = x), envir = parent.frame()) : \n  object 'Q' not found",
        "numNaDS(Q$x)": "Error in dsBase::numNaDS(Q$x) : object 'Q' not found",
        'exists("A", E)': "Error in base::exists(\"A\", E) : object 'E' not found",
    }
    for text, shown in cases.items():
        with pytest.raises(RCallError) as info:
            rt.aggregate(sid, text)
        assert info.value.r_text == shown
    with pytest.raises(RCallError) as info:
        rt.assign_expr(sid, "b", 'dataFrameSubsetDS2("M", "D$x", "1", 1)')
    assert info.value.r_text == "Error in data.frame(M) : object 'M' not found"
    with pytest.raises(RCallError) as info:
        rt.assign_expr(sid, "b", 'BooleDS("A", 1, 1, "0", TRUE)')
    shown = "Error in eval(parse(text = V1.name), envir = parent.frame()) : \n  object 'A' not found"
    assert info.value.r_text == shown
    assert try_text("x", None) == "Error : x"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("aggregate", 'lsDS(search.filter = "a;b", 1L)'),
        ("aggregate", 'lsDS(search.filter = "(a|b)*", 1L)'),
        ("aggregate", 'rmDS("D;system(1)")'),
        ("aggregate", 'rmDS("D$x")'),
        ("aggregate", 'asListDS("D$x", "a b")'),
        ("aggregate", 'dimDS("D[1]")'),
        ("aggregate", "levelsDS(\"D$g\")"),
        ("assign", "cDS(list(list(1)))"),
        ("assign", "cDS(list(system(1)))"),
        ("assign", "cDS(list(D$x ~ y))"),
        ("assign", "c(D$x, q = get)"),
        ("assign", "list(`a` = 1)"),
        ("assign", 'listDS(list(D$x), list("' + "a" * 200 + '"))'),
        ("assign", 'asCharacterDS("D$x$y$z")'),
        ("aggregate", "cDS(list(D$x))"),
    ],
)
def test_hostile_arguments_are_refused(permissive: tuple[StudyRuntime, str], kind: str, text: str) -> None:
    rt, sid = permissive
    with pytest.raises((CallRejected, RCallError)):
        if kind == "aggregate":
            rt.aggregate(sid, text)
        else:
            rt.assign_expr(sid, "h", text)
    assert "h" not in rt.list_symbols(sid)


def test_a_data_dictionary_types_the_table(tables: Path, tmp_path: Path) -> None:
    (tmp_path / "T.csv").write_text((tables / "T.csv").read_text())
    (tmp_path / "T.dictionary.json").write_text(
        '{"variables": [{"name": "x", "valueType": "decimal"}, {"name": "g", "valueType": "text",'
        ' "categories": ["b", "a"]}, {"name": "s", "valueType": "text"}]}')
    (tmp_path / "U.csv").write_text("n,t\n1,NA\n2,NA\n3,NA\n")
    (tmp_path / "U.dictionary.json").write_text(
        '{"variables": [{"name": "n", "valueType": "integer"}, {"name": "t", "valueType": "text"}]}')
    rt = StudyRuntime("s", tmp_path, settings=DisclosureSettings(privacy_control_level="permissive"))
    sid = rt.open_session("u")
    rt.assign_table(sid, "D", "T")
    rt.assign_table(sid, "U", "U")
    assert _data(rt.aggregate(sid, 'classDS("D$g")')) == ["factor"]
    assert _data(rt.aggregate(sid, "isValidDS(D$g)")) == [False]  # a factor: level b has 2 rows (< nfilter.tab)
    assert _data(rt.aggregate(sid, 'classDS("U$n")')) == ["integer"]
    assert _data(rt.aggregate(sid, 'classDS("U$t")')) == ["character"]  # read.csv alone: logical
    assert [v.value_type for v in rt.table_dictionary("T") or ()] == ["decimal", "text", "text"]
    # a factor with more levels than nfilter.levels.density allows
    (tmp_path / "V.csv").write_text("f\n" + "\n".join("abcdef") + "\n")
    (tmp_path / "V.dictionary.json").write_text(
        '{"variables": [{"name": "f", "valueType": "text", "categories": ["a", "b", "c", "d", "e", "f"]}]}')
    rt.assign_table(sid, "V", "V")
    with pytest.raises(RCallError, match="^FAILED: Result length less than nfilter.levels.density of input length.$"):
        rt.aggregate(sid, "levelsDS(V$f)")
    (tmp_path / "W.csv").write_text("a\n1\n")
    (tmp_path / "W.dictionary.json").write_text('{"variables": [{"name": "a", "valueType": "date"}]}')
    with pytest.raises(CallRejected, match="value type 'date'"):
        rt.assign_table(sid, "W", "W")
