"""r_server.rserial: R's native serialization read back, compared value by value (and bit by bit)."""

from __future__ import annotations

import math
import struct

import pytest

from pydsbase import rvalue
from r_server.rserial import RVector, UnsupportedSerialization, unserialize


def _r_bytes(code: str) -> bytes:
    import rpy2.rinterface as ri
    from rpy2.rinterface_lib import openrlib

    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    with bridge._r():  # starts R once for the process
        raw = ri.baseenv["eval"](ri.baseenv["parse"](text=ri.StrSexpVector([code])), ri.globalenv)
        return bytes(openrlib.ffi.buffer(openrlib.rlib.RAW(raw.__sexp__._cdata), len(raw)))


def _ser(expr: str) -> bytes:
    return _r_bytes(f"serialize({expr}, NULL, xdr = FALSE, version = 2)")


@pytest.mark.needs_r
def test_vectors_with_na_nan_and_names() -> None:
    value = unserialize(_ser("list(a = 1:3, b = c(1.5, NA, NaN, -Inf), c = c('x', NA, '\\u00e9'), d = NULL,"
                             " e = c(TRUE, NA, FALSE), f = c(x = 2L, y = NA))"))
    assert isinstance(value, RVector) and value.type == "list"
    assert value.names == ["a", "b", "c", "d", "e", "f"]
    a, b, c, d, e, f = value.values
    assert (a.type, a.values) == ("integer", [1, 2, 3])  # ALTREP 1:3 arrives expanded
    assert b.type == "double" and b.values[0] == 1.5 and b.values[1] is rvalue.NA
    assert math.isnan(b.values[2]) and b.values[3] == -math.inf
    assert (c.type, c.values) == ("character", ["x", rvalue.NA, "\u00e9"])
    assert d is None
    assert (e.type, e.values) == ("logical", [True, rvalue.NA, False])
    assert (f.values, f.names) == ([2, rvalue.NA], ["x", "y"])


@pytest.mark.needs_r
def test_doubles_bit_for_bit() -> None:
    text = _r_bytes("charToRaw(paste(sprintf('%a', c(0.1, 1/3, 5e-324, 1e308, -0)), collapse = ' '))")
    expected = [float.fromhex(h) for h in text.decode().split()]
    got = unserialize(_ser("c(0.1, 1/3, 5e-324, 1e308, -0)")).values
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", v) for v in expected]


@pytest.mark.needs_r
def test_latin1_strings_and_repeated_symbols() -> None:
    value = unserialize(_ser("list(list(names = 1), list(names = 2), s = iconv('caf\\u00e9', 'UTF-8', 'latin1'))"))
    assert value.values[0].names == ["names"] and value.values[1].names == ["names"]  # symbol reference
    assert value.values[2].values == ["caf\u00e9"]


@pytest.mark.needs_r
def test_refuses_what_a_description_never_holds() -> None:
    with pytest.raises(UnsupportedSerialization):
        unserialize(_ser("quote(f(x))"))
    with pytest.raises(UnsupportedSerialization):
        unserialize(_r_bytes("serialize(1, NULL, xdr = TRUE)"))
