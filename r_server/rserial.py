"""A reader of R's native binary serialization (``serialize(x, NULL, xdr = FALSE, version = 2)``).

The bridge describes a result in R (lists of plain vectors), serializes the description to one raw
vector and reads it here in a single pass, instead of walking it element by element through rpy2.
Only what a description holds is understood: NULL, lists, character, double, integer and logical
vectors, and pairlist attributes (``names``). Doubles are taken bit for bit from R's memory
(little-endian native format): R's ``NA_real_`` (NaN with payload 1954) becomes ``NA``, any other
NaN ``math.nan``. Version 2 is used because it writes ALTREP vectors (``1:n``) expanded.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from pydsbase import rvalue

__all__ = ["RVector", "UnsupportedSerialization", "unserialize"]

_NILVALUE, _REF = 254, 255
_SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 1, 2, 9, 10, 13, 14, 16, 19
_HAS_ATTR, _HAS_TAG = 1 << 9, 1 << 10
_UTF8, _LATIN1, _BYTES = 1 << 3, 1 << 2, 1 << 1
_NA_INT = -(2**31)
_NA_REAL_PAYLOAD = 1954
_TYPES = {_LGL: "logical", _INT: "integer", _REAL: "double", _STR: "character", _VEC: "list"}


class UnsupportedSerialization(ValueError):
    """The bytes hold something a description never holds (or are not native version-2 data)."""


@dataclass
class RVector:
    """A vector as read: ``type`` as ``typeof`` says, model-ready ``values``, its ``names`` if any."""

    type: str
    values: list[Any]
    names: list[Any] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, latin1: str, native: str) -> None:
        self.data = data
        self.pos = 0
        self.refs: list[str] = []
        self.latin1 = latin1
        self.native = native

    def read_int(self) -> int:
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def length(self) -> int:
        n = self.read_int()
        if n == -1:
            upper, lower = self.read_int(), self.read_int()
            n = (upper << 32) + (lower & 0xFFFFFFFF)
        return n

    def item(self) -> Any:
        flags = self.read_int()
        sxp = flags & 0xFF
        if sxp == _NILVALUE:
            return None
        if sxp == _REF:
            index = flags >> 8
            return self.refs[(index or self.read_int()) - 1]
        if sxp == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if sxp == _CHAR:
            return self.charsxp(flags)
        if sxp == _LIST:
            return self.pairlist(flags)
        if sxp not in _TYPES:
            raise UnsupportedSerialization(f"cannot read an R object of SEXP type {sxp}")
        n = self.length()
        values: list[Any]
        if sxp == _REAL:
            values = self.doubles(n)
        elif sxp == _INT:
            values = [rvalue.NA if v == _NA_INT else v for v in self.ints(n)]
        elif sxp == _LGL:
            values = [rvalue.NA if v == _NA_INT else bool(v) for v in self.ints(n)]
        elif sxp == _STR:
            values = self.strings(n)
        else:
            values = [self.item() for _ in range(n)]
        vector = RVector(_TYPES[sxp], values)
        if flags & _HAS_ATTR:
            vector.attributes = self.item() or {}
            names = vector.attributes.get("names")
            vector.names = names.values if isinstance(names, RVector) else None
        return vector

    def pairlist(self, flags: int) -> dict[str, Any]:
        """A pairlist of tagged values (attributes) as a dict; the tail is read iteratively."""
        out: dict[str, Any] = {}
        while True:
            if flags & _HAS_ATTR:
                self.item()
            tag = self.item() if flags & _HAS_TAG else ""
            out[tag] = self.item()
            flags = self.read_int()
            if flags & 0xFF == _NILVALUE:
                return out
            if flags & 0xFF != _LIST:
                raise UnsupportedSerialization("a pairlist ends in something other than NULL")

    def strings(self, n: int) -> list[Any]:
        """The elements of a character vector (each a CHARSXP item), read in one loop."""
        data, unpack = self.data, struct.unpack_from
        out: list[Any] = []
        pos = self.pos
        for _ in range(n):
            flags, length = unpack("<ii", data, pos)
            pos += 8
            if flags & 0xFF != _CHAR:
                raise UnsupportedSerialization("a character vector holds something other than strings")
            if length == -1:
                out.append(rvalue.NA)
                continue
            raw = data[pos : pos + length]
            pos += length
            levels = flags >> 12
            if levels & _BYTES:
                raise UnsupportedSerialization("a string of declared bytes has no text encoding")
            out.append(raw.decode("utf-8" if levels & _UTF8 else self.latin1 if levels & _LATIN1 else self.native))
        self.pos = pos
        return out

    def charsxp(self, flags: int) -> Any:
        n = self.read_int()
        if n == -1:
            return rvalue.NA
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        levels = flags >> 12
        if levels & _BYTES:
            raise UnsupportedSerialization("a string of declared bytes has no text encoding")
        return raw.decode("utf-8" if levels & _UTF8 else self.latin1 if levels & _LATIN1 else self.native)

    def ints(self, n: int) -> tuple[int, ...]:
        values = struct.unpack_from(f"<{n}i", self.data, self.pos)
        self.pos += 4 * n
        return values

    def doubles(self, n: int) -> list[Any]:
        values: list[Any] = list(struct.unpack_from(f"<{n}d", self.data, self.pos))
        for i, value in enumerate(values):
            if value != value:  # NaN: R's NA or another NaN, told apart by the payload's low word
                (bits,) = struct.unpack_from("<Q", self.data, self.pos + 8 * i)
                values[i] = rvalue.NA if (bits & 0xFFFFFFFF) == _NA_REAL_PAYLOAD else math.nan
        self.pos += 8 * n
        return values


def unserialize(data: bytes, latin1: str = "latin-1", native: str = "utf-8") -> Any:
    """The value of ``serialize(x, NULL, xdr = FALSE, version = 2)``'s bytes.

    NULL -> None; vectors -> :class:`RVector` (strings: str or ``NA``; integers: int or ``NA``;
    logicals: bool or ``NA``; doubles: float, ``math.nan`` or ``NA``; lists: items); pairlists ->
    dict. ``latin1``/``native``: the Python codecs of R's latin1-marked and unmarked strings.
    """
    if sys.byteorder != "little":
        raise UnsupportedSerialization("native serialization is read on little-endian machines only")
    if data[:2] != b"B\n":
        raise UnsupportedSerialization("not R's native binary serialization")
    reader = _Reader(data, latin1, native)
    reader.pos = 2
    version = reader.read_int()
    reader.read_int()  # the writer's R version
    reader.read_int()  # the oldest R that can read it
    if version != 2:
        raise UnsupportedSerialization(f"serialization version {version}, expected 2")
    value = reader.item()
    if reader.pos != len(data):
        raise UnsupportedSerialization("trailing bytes after the serialized value")
    return value
