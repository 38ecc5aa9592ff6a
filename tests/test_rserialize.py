"""pydsbase.rserialize: R's own serialize() bytes decoded into the same model as today's encoder.

(a) values built in R: decode(serialize(x, NULL)) (versions 2 and 3, XDR and native) says what R
    itself says of x (typeof, class, names, dim/dimnames, every attribute, the data with every bit of
    each double, the deparse of language objects: ``.ds_facts`` of tests/r/serialize_support.R);
    types outside the model are refused.
(b) the lmerSLMADS2 answers of the golden cases: the value the local runtime answers, scrubbed of
    non-global environments (r_server/R/wire.R) and serialized by R in versions 2 and 3, decodes to
    the golden JSON node (bit for bit) and to what R says of the value.
(c) hostile bytes: truncation at every offset, huge declared lengths, deep nesting, environments,
    closures, byte code, external pointers, bad headers, unknown types, trailing bytes: always
    UnserializeError with the offset of the refused item; a Hypothesis fuzz test of random and
    mutated streams.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rstream import xdr_char, xdr_header, xdr_int, xdr_reals, xdr_strings

from pydsbase import rvalue
from pydsbase.rserialize import MAX_DEPTH, UnserializeError, read, unserialize


def _json(node: Any) -> str:
    """A node's exact text (doubles by repr: bit for bit; an NA in names, as today's encoder keeps it, as NA)."""
    return json.dumps(node, allow_nan=False, ensure_ascii=False, default=repr)


def _decoded(data: bytes) -> Any:
    return rvalue.to_node(unserialize(data))


# -- (a) values built in R ----------------------------------------------------------------------------

R_VALUES = [
    "NULL",
    "c(1.5, NA, NaN, -0, 5e-324, 2.225073858507201e-308, Inf, -Inf, .Machine$double.xmax, 0.1 + 0.2)",
    "c(1L, NA, -2147483647L, 2147483647L)",
    "c(TRUE, NA, FALSE)",
    "c('a', NA, '\\u00e9', '', 'tab\\there', '\\u4e2d')",
    "iconv('caf\\u00e9', 'UTF-8', 'latin1')",
    "c(a = 1, b = 2, 3)",
    "setNames(1:3, c('a', NA, ''))",
    "structure(1:6, dim = 2:3, dimnames = list(rows = c('a', 'b'), NULL))",
    "matrix(c(1, NA, NaN, 4), 2, dimnames = list(NULL, c('x', 'y')))",
    "array(1:24, 2:4)",
    "array(1:3, 3, list(c('a', 'b', 'c')))",
    "factor(c('a', 'b', NA, 'a'))",
    "ordered(c('lo', 'hi'), levels = c('lo', 'hi'))",
    "data.frame(x = 1:3, y = c('a', 'b', 'c'), z = c(0.5, NA, 2))",
    "data.frame(x = 1:2, row.names = c('r1', 'r2'))",
    "data.frame()",
    "list(1, NULL, list(a = NULL, b = list()), list())",
    "list(a = 1, 2, a = 3)",
    "structure(list(x = 1), class = c('foo', 'bar'), extra = 'e')",
    "structure(1:3, foo = 'bar', comment = 'c')",
    "1:10",
    "10:1",
    "seq_len(0)",
    "as.numeric(1:5) + 0.5",
    "sort(c(3, 1, 2))",
    "as.character(1:3)",
    "as.character(c(1.5, 1e5, 1/3, NA))",
    "y ~ x + (1 | g)",
    "~ x",
    "local(y ~ x + offset(o))",
    "list(f = y ~ x, g = local(~ z))",
    "quote(lme4::lmer(formula = y ~ x, data = d, REML = TRUE))",
    "quote(x[, 1])",
    "as.name('a b')",
    "quote(-x)",
    "quote((a + b) * c)",
    "quote({x; y})",
    "structure(1, class = 'logLik', df = 3L, nobs = 10L)",
    "character(0)",
    "logical(0)",
    "list(1:3, 4:6)",
    "Matrix::Matrix(c(1.5, 2, 3, 4, 5, 6.5), 2, 3)",
    "Matrix::Matrix(c(2, 1, 1, 3), 2, 2)",
    "new('dpoMatrix', Dim = c(2L, 2L), x = c(2, 99, 1, 3), uplo = 'U', Dimnames = list(c('a', 'b'), NULL))",
    "new('dpoMatrix', Dim = c(2L, 2L), x = c(2, 1, 99, 3), uplo = 'L',"
    " Dimnames = list(A = c('a', 'b'), B = c('c', 'd')))",
    "new('dsyMatrix', Dim = c(3L, 3L), x = as.numeric(1:9), uplo = 'L')",
    "new('dsyMatrix', Dim = c(2L, 2L), x = c(1, 2, 3, 4), Dimnames = list(NULL, c('c', 'd')))",
    "new('dsyMatrix', Dim = c(2L, 2L), x = c(1, 2, 3, 4), Dimnames = list(A = c('a', 'b'), NULL))",
    "new('dsyMatrix', Dim = c(2L, 2L), x = c(1, 2, 3, 4), Dimnames = list(A = c('a', 'b'), c('c', 'd')))",
    "new('dsyMatrix', Dim = c(2L, 2L), x = c(1, 2, 3, 4), Dimnames = list(A = NULL, B = NULL))",
    "new('dgeMatrix', Dim = c(1L, 2L), x = c(1, 2), Dimnames = list(A = NULL, B = NULL))",
    "new('dtrMatrix', Dim = c(2L, 2L), x = c(2, 99, 1, 3), uplo = 'U', diag = 'U')",
    "local({m <- new('dpoMatrix', Dim = c(2L, 2L), x = c(2, 1, 1, 3)); m@factors <- list(correlation = m); m})",
]

# (a pairlist is not here: the scrub of r_server/R/wire.R hands it over as a list)
REFUSED = ["1i", "as.raw(1:3)", "expression(x)", "function(x) x", "new.env()", "globalenv()", "list(sum)"]


@pytest.mark.needs_r
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("code", R_VALUES)
def test_values_built_in_r_decode_as_r_describes_them(code: str, version: int) -> None:
    from rserialize_r import model_facts, r_eval, r_facts, r_serialize

    value = r_eval(code)
    assert model_facts(unserialize(r_serialize(value, version))) == r_facts(value)


@pytest.mark.needs_r
@pytest.mark.parametrize("version", [2, 3])
def test_native_binary_format_decodes_too(version: int) -> None:
    """``serialize(x, NULL, xdr = FALSE)``: R's native little-endian format ('B')."""
    from rserialize_r import r_eval, r_serialize

    for code in R_VALUES:
        value = r_eval(code)
        data = r_serialize(value, version, xdr=False)
        assert data[:2] == b"B\n"
        assert _json(_decoded(data)) == _json(_decoded(r_serialize(value, version))), code


@pytest.mark.needs_r
@pytest.mark.parametrize("code", REFUSED)
def test_values_outside_the_model_are_refused(code: str) -> None:
    from rserialize_r import r_eval, r_serialize

    from r_server.errors import RCallError
    from r_server.rbridge import default_bridge

    value = r_eval(code)
    with pytest.raises(UnserializeError):
        unserialize(r_serialize(value, 3))
    with pytest.raises(RCallError) as err:  # the study's encoder is the same decoder
        default_bridge().encode(value)
    assert "(at byte" not in err.value.message


@pytest.mark.needs_r
def test_altrep_compact_sequences_are_what_r_writes_in_version_3() -> None:
    """Version 3 writes 1:n as an ALTREP compact sequence (a few bytes), version 2 expanded."""
    from rserialize_r import r_eval, r_serialize

    value = r_eval("1:100000")
    v3, v2 = r_serialize(value, 3), r_serialize(value, 2)
    assert len(v3) < 200 < 400000 < len(v2)
    assert _decoded(v3) == _decoded(v2) == rvalue.to_node(rvalue.r_integer(range(1, 100001)))


@pytest.mark.needs_r
@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("new.env()", 4),
        ("function(x) x", 3),
        ("compiler::cmpfun(function(x) x + 1)", 3),
        ("list(a = 1, e = new.env())", 4),
        ("structure(1, env = asNamespace('stats'))", 249),
    ],
)
def test_environments_and_functions_made_by_r_are_refused_at_their_offset(code: str, refused: int) -> None:
    from rserialize_r import r_eval

    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    value = r_eval(code)
    with bridge._r() as ri:  # serialized as is (no scrub)
        data = bytes(ri.baseenv["serialize"](ri.ListSexpVector([value.sexp]), ri.NULL))
    with pytest.raises(UnserializeError) as err:
        unserialize(data)
    assert data[err.value.offset + 3] == refused


# -- (b) the golden cases' answers ---------------------------------------------------------------------


def _golden_cases() -> list[str]:
    from test_runtime_golden import _cases

    return _cases()


@pytest.mark.needs_r
@pytest.mark.parametrize("case_id", _golden_cases())
def test_golden_answers_decode_to_the_golden_nodes(case_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from rserialize_r import model_facts, r_facts, r_serialize
    from test_runtime_golden import _diffs, _load, _run_study

    from r_server.errors import RCallError
    from r_server.rbridge import RBridge

    seen: list[tuple[list[str], bytes, bytes]] = []
    original = RBridge.encode

    def encode(self: RBridge, value: Any) -> Any:
        seen.append((r_facts(value, self), r_serialize(value, 3, self), r_serialize(value, 2, self)))
        return original(self, value)

    monkeypatch.setattr(RBridge, "encode", encode)
    case = _load(case_id)
    servers = case["call"]["effective_arguments"]["datasources"]["servers"]
    for index, server in enumerate(servers, start=1):
        seen.clear()
        try:
            _run_study(case, server)
        except RCallError:
            assert case["datashield_errors"] is not None
            continue
        _, v3, v2 = seen[-1]
        gold = case["result"]["data"]["output.summary"]["data"][f"study{index}"]
        assert not list(_diffs(_decoded(v3), gold, "v3"))
        assert _json(_decoded(v2)) == _json(_decoded(v3))
        for facts, data, _ in seen:  # the setup aggregates too
            assert model_facts(unserialize(data)) == facts


# -- (c) hostile bytes ---------------------------------------------------------------------------------


_i, _header, _char, _strsxp, _reals = xdr_int, xdr_header, xdr_char, xdr_strings, xdr_reals


NIL = _i(254)


def _sample() -> bytes:
    """A list with names, doubles, integers, strings, NULL, a formula and a nested list."""
    names = _i(2 | 1 << 10) + _i(1) + _char("names") + _strsxp("a", "b", "c", "d", "e") + NIL
    formula_attrs = (_i(2 | 1 << 10) + _i(1) + _char("class") + _strsxp("formula")
                     + _i(2 | 1 << 10) + _i(1) + _char(".Environment") + _i(253) + NIL)  # fmt: skip
    formula = (_i(6 | 1 << 8 | 1 << 9) + formula_attrs + _i(1) + _char("~") + _i(2) + _i(1) + _char("y")
               + _i(2) + _i(255 | 4 << 8) + NIL)  # fmt: skip
    items = [_reals(1.5, -0.0), _i(13, 2, 7, -(2**31)), _strsxp("x", "é"), NIL, formula]
    return _header() + _i(19 | 1 << 9, len(items)) + b"".join(items) + names


def test_the_sample_stream_decodes() -> None:
    value = unserialize(_sample())
    assert isinstance(value, rvalue.RList)
    assert value.names == ["a", "b", "c", "d", "e"]
    assert value["b"] == rvalue.r_integer([7, rvalue.NA])
    f = value["e"]
    assert isinstance(f, rvalue.RLanguage) and f.deparsed == ["y ~ y"] and f.has_environment is True


def test_truncation_at_every_offset_is_a_clear_error() -> None:
    data = _sample()
    for end in range(len(data)):
        with pytest.raises(UnserializeError) as err:
            unserialize(data[:end])
        assert 0 <= err.value.offset <= end


def test_the_errors_belong_to_the_exception_tree() -> None:
    from pydsbase.deparse import DeparseError
    from pydsbase.errors import PydsbaseError

    with pytest.raises(PydsbaseError) as err:
        unserialize(_sample()[:7])
    assert isinstance(err.value, UnserializeError) and isinstance(err.value, ValueError)
    assert str(err.value) == f"{err.value.message} (at byte {err.value.offset})"
    assert issubclass(DeparseError, PydsbaseError) and issubclass(DeparseError, ValueError)


@pytest.mark.needs_r
def test_truncated_r_made_streams_are_clear_errors() -> None:
    from rserialize_r import r_eval, r_serialize

    value = r_eval("list(df = data.frame(x = 1:3, y = c('a', 'b', NA)), f = y ~ x + (1 | g), n = NULL, s = 1:5)")
    data = r_serialize(value, 3)
    unserialize(data)
    for end in range(len(data)):
        with pytest.raises(UnserializeError):
            unserialize(data[:end])


@pytest.mark.parametrize(
    "body",
    [
        _i(14, 2**31 - 1),  # a double vector of 2^31 - 1 elements
        _i(14, -1, 2**20, 0),  # a long vector of 2^52 elements
        _i(19, 2**31 - 1),  # a list
        _i(16, 2**30),  # a character vector
        _i(16, 1) + _i(9, 2**31 - 1),  # one string
        _i(13, -5),  # a negative length
        _i(19 | 1 << 9, 1) + NIL + _i(2 | 1 << 10, 1) + _char("row.names") + _i(13, 2, -(2**31), 1 - 2**31) + NIL,
    ],
)
def test_huge_declared_lengths_are_refused_before_allocating(body: bytes) -> None:
    with pytest.raises(UnserializeError):
        unserialize(_header() + body)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    depth = 10**5
    data = _header() + _i(19, 1) * depth + NIL
    with pytest.raises(UnserializeError) as err:
        unserialize(data)
    assert err.value.offset == len(_header()) + 8 * (MAX_DEPTH + 1)
    calls = _header() + (_i(6) + _i(1) + _char("f") + _i(2)) * depth
    with pytest.raises(UnserializeError):
        unserialize(calls)
    ok = _header() + _i(19, 1) * (MAX_DEPTH - 1) + NIL
    assert unserialize(ok) is not None


@pytest.mark.parametrize(
    ("code", "what"),
    [(4, "environment"), (3, "closure"), (21, "byte code"), (22, "external pointer"), (23, "weak reference"),
     (5, "promise"), (7, "primitive"), (8, "primitive"), (249, "namespace"), (248, "package"),
     (247, "persistent"), (250, "base namespace"), (17, "'...'")],
)  # fmt: skip
def test_refused_types_name_themselves_at_their_offset(code: int, what: str) -> None:
    prefix = _header() + _i(19, 2) + _reals(1.0)
    data = prefix + _i(code) + b"\0" * 64
    with pytest.raises(UnserializeError) as err:
        unserialize(data)
    assert err.value.offset == len(prefix)
    assert what in str(err.value)


@pytest.mark.parametrize("code", [253, 241, 242])
def test_the_three_environment_markers_are_accepted_in_attributes(code: int) -> None:
    attrs = _i(2 | 1 << 10) + _i(1) + _char("env") + _i(code) + NIL
    data = _header() + _i(14 | 1 << 9, 1) + struct.pack(">d", 1.0) + attrs
    with pytest.raises(UnserializeError, match="environment"):  # readable, but not a value of the model
        unserialize(data)
    assert read(data).attributes[0][1].kind in ("global", "base", "empty")


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"RDX3\nX\n" + b"\0" * 20, 0),
        (b"A\n3\n" + b"\0" * 20, 0),
        (b"X\n" + _i(4, 0, 0) + NIL, 2),
        (b"X\n", 0),
        (_header() + _i(30), len(_header())),
        (_header() + _i(200), len(_header())),
        (_header() + NIL + b"\0", len(_header()) + 4),
        (_header() + _i(255 | 7 << 8), len(_header())),
        (_header(3)[:14] + _i(100) + b"x" * 100 + NIL, 14),
    ],
)
def test_bad_streams_are_refused_with_their_offset(data: bytes, offset: int) -> None:
    with pytest.raises(UnserializeError) as err:
        unserialize(data)
    assert err.value.offset == offset


def test_na_and_nan_are_told_apart_bit_for_bit() -> None:
    na = struct.pack(">II", 0x7FF00000, 1954)
    other_nan = struct.pack(">II", 0x7FF80000, 0)
    data = _header() + _i(14, 3) + na + other_nan + struct.pack(">d", -0.0)
    [a, b, c] = unserialize(data).data  # type: ignore[union-attr]
    assert a is rvalue.NA and b != b and str(c) == "-0.0"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_the_typed_error(data: bytes) -> None:
    for candidate in (data, _header() + data, _header(2) + data):
        try:
            unserialize(candidate)
        except UnserializeError:
            pass


def _mutated(stream: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    """The stream with each edit applied in turn: set, delete or insert a byte at a position (modulo length)."""
    data = bytearray(stream)
    for where, byte, how in edits:
        i = where % (len(data) + 1)
        if how == "set" and i < len(data):
            data[i] = byte
        elif how == "del" and i < len(data):
            del data[i]
        else:
            data.insert(i, byte)
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["set", "del", "ins"])),
                min_size=1, max_size=6))  # fmt: skip
def test_mutated_streams_only_raise_the_typed_error(edits: list[tuple[int, int, str]]) -> None:
    try:
        unserialize(_mutated(_sample(), edits))
    except UnserializeError:
        pass


_R_MADE: list[bytes] = []


def _r_made_stream() -> bytes:
    """An R-made stream with S4, ALTREP, a formula, a data frame, factors and a deparsed call (made once)."""
    if not _R_MADE:
        from rserialize_r import r_eval, r_serialize

        value = r_eval(
            "list(m = local({m <- new('dpoMatrix', Dim = c(2L, 2L), x = c(2, 1, 1, 3),"
            " Dimnames = list(c('a', 'b'), NULL)); m@factors <- list(correlation = m); m}),"
            " s = 1:10, f = y ~ x + (1 | g), d = data.frame(x = c(1.5, NA), g = factor(c('u', 'v'))),"
            " c = quote(lme4::lmer(formula = y ~ x, REML = TRUE)), ch = as.character(1:3))"
        )
        _R_MADE.append(r_serialize(value, 3))
    return _R_MADE[0]


@pytest.mark.needs_r
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["set", "del", "ins"])),
                min_size=1, max_size=6))  # fmt: skip
def test_mutated_r_made_streams_only_raise_the_typed_error(edits: list[tuple[int, int, str]]) -> None:
    unserialize(_r_made_stream())
    try:
        unserialize(_mutated(_r_made_stream(), edits))
    except UnserializeError:
        pass


# -- (d) the compiled build (setup.py: mypyc) against its source -------------------------------------------


_SOURCE: list[Any] = []


def _source_decoder() -> Any:
    """pydsbase/rserialize.py run from its source under another module name (the package imports the
    compiled build of the same file where one was made)."""
    if not _SOURCE:
        import importlib.util
        import sys
        from pathlib import Path

        from pydsbase import rserialize

        spec = importlib.util.spec_from_file_location(
            "pydsbase._rserialize_source", Path(rserialize.__file__).with_name("rserialize.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        _SOURCE.append(module)
    return _SOURCE[0]


def _outcome(decode: Any, data: bytes) -> tuple[Any, ...]:
    try:
        return ("value", _json(rvalue.to_node(decode(data))))
    except UnserializeError as exc:
        return ("error", type(exc).__name__, str(exc), exc.offset)


@pytest.mark.needs_compiled
def test_the_compiled_decoder_is_in_use() -> None:
    from pathlib import Path

    from pydsbase import rserialize

    assert Path(rserialize.__file__).suffix == ".so"
    assert Path(_source_decoder().__file__).name == "rserialize.py"
    assert _outcome(unserialize, _sample()) == _outcome(_source_decoder().unserialize, _sample())


@pytest.mark.needs_r
@pytest.mark.needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["set", "del", "ins"])),
                min_size=0, max_size=6), st.booleans())  # fmt: skip
def test_compiled_build_and_source_agree(edits: list[tuple[int, int, str]], r_made: bool) -> None:
    """The same value, or the same error (type, message, offset), from both builds of the decoder, on R-made
    and hand-made streams and their mutations."""
    data = _mutated(_r_made_stream() if r_made else _sample(), edits)
    assert _outcome(unserialize, data) == _outcome(_source_decoder().unserialize, data)
