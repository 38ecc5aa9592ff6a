"""A walker of R's XDR serialization stream (``serialize(x, NULL)``, format 2 or 3) for tests.

It decodes no values: it walks every item, checking the stream's structure, and counts the SEXP
types it meets, so a test can say whether a serialized answer holds an environment (ENVSXP, type 4)
or a closure, promise, external pointer... The global, base and empty environments are written as
markers (253, 241, 242), never as ENVSXP, and are counted apart. Byte code is refused.
"""

from __future__ import annotations

import math
import struct
from collections import Counter

ENVSXP = 4
_REFSXP, _NILVALUE, _GLOBALENV, _UNBOUND, _MISSINGARG = 255, 254, 253, 252, 251
_BASENAMESPACE, _NAMESPACE, _PACKAGE, _PERSIST = 250, 249, 248, 247
_EMPTYENV, _BASEENV, _ATTRLANG, _ATTRLIST, _ALTREP = 242, 241, 240, 239, 238
_MARKERS = {_NILVALUE, _GLOBALENV, _UNBOUND, _MISSINGARG, _BASENAMESPACE, _EMPTYENV, _BASEENV}
_PAIRS = {2, 3, 5, 6, 17, _ATTRLANG, _ATTRLIST}  # LISTSXP CLOSXP PROMSXP LANGSXP DOTSXP + ATTR forms
_FIXED = {10: 4, 13: 4, 14: 8, 15: 16, 24: 1}  # LGL INT REAL CPLX RAW: bytes per element


class StreamError(ValueError):
    pass


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.types: Counter[int] = Counter()

    def int(self) -> int:
        if self.pos + 4 > len(self.data):
            raise StreamError("truncated stream")
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise StreamError("truncated stream")
        self.pos += n

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def strings(self) -> None:  # InStringVec: a 0, a length, that many CHARSXP items
        if self.int() != 0:
            raise StreamError("malformed string vector")
        for _ in range(self.int()):
            self.item()

    def item(self) -> None:
        flags = self.int()
        kind = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        self.types[kind] += 1
        if kind in _MARKERS:
            return
        if kind == _REFSXP:
            if flags >> 8 == 0:
                self.int()
            return
        if kind in (_PERSIST, _NAMESPACE, _PACKAGE):
            self.strings()
            return
        if kind == 1:  # SYMSXP: its name
            self.item()
            return
        if kind == ENVSXP:
            self.int()  # locked
            for _ in range(4):  # enclosure, frame, hash table, attributes
                self.item()
            return
        if kind in _PAIRS:
            while True:
                if has_attr:
                    self.item()
                if has_tag:
                    self.item()
                self.item()  # CAR
                # the CDR: walked in this loop while it is a pairlist too (long lists, no recursion)
                flags = self.int()
                kind = flags & 0xFF
                has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
                self.types[kind] += 1
                if kind not in _PAIRS:
                    self.pos -= 4
                    self.types[kind] -= 1
                    self.item()
                    return
        if kind == 22:  # EXTPTRSXP: protected value, tag
            self.item()
            self.item()
        elif kind == 23:  # WEAKREFSXP
            pass
        elif kind in (7, 8):  # SPECIALSXP, BUILTINSXP: the name
            self.skip(self.int())
        elif kind == 9:  # CHARSXP
            n = self.int()
            if n != -1:
                self.skip(n)
            return
        elif kind in _FIXED:
            self.skip(self.length() * _FIXED[kind])
        elif kind in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            for _ in range(self.length()):
                self.item()
        elif kind == 25:  # S4SXP: only attributes
            pass
        elif kind == _ALTREP:
            for _ in range(3):  # class info, state, attributes
                self.item()
            return
        else:
            raise StreamError(f"unsupported SEXP type {kind} at byte {self.pos}")
        if has_attr:
            self.item()


def sexp_types(data: bytes) -> Counter[int]:
    """How many items of each SEXP type (and marker) the XDR serialization ``data`` holds."""
    if not data.startswith(b"X\n"):
        raise StreamError("not an XDR serialization")
    walker = _Walker(data)
    walker.pos = 2
    version = walker.int()
    walker.int()
    walker.int()
    if version == 3:
        walker.skip(walker.int())  # the native encoding's name
    elif version != 2:
        raise StreamError(f"serialization format {version}")
    walker.item()
    if walker.pos != len(data):
        raise StreamError(f"{len(data) - walker.pos} bytes after the value")
    return walker.types


# -- a tiny writer, for fakes that must answer as R does ----------------------------------------------

_NA_REAL = struct.pack(">Q", 0x7FF00000000007A2)  # R's NA_real_


def xdr_int(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def xdr_header(version: int = 3) -> bytes:
    head = b"X\n" + xdr_int(version, 0x040202, 0x030500)
    return head + (xdr_int(5) + b"UTF-8" if version == 3 else b"")


def xdr_char(text: str | None) -> bytes:
    """A CHARSXP (UTF-8, ASCII flagged when it is); None is NA_character_."""
    if text is None:
        return xdr_int(9, -1)
    raw = text.encode()
    flags = 1 << 6 if raw.isascii() else 1 << 3
    return xdr_int(9 | flags << 12, len(raw)) + raw


def xdr_strings(*texts: str | None) -> bytes:
    return xdr_int(16, len(texts)) + b"".join(xdr_char(t) for t in texts)


def xdr_reals(*values: float) -> bytes:
    return xdr_int(14, len(values)) + struct.pack(f">{len(values)}d", *values)


def xdr_of_node(node: dict[str, object] | None) -> bytes:
    """``serialize(x, NULL)`` of a plain double or character vector given as a JSON node (no attributes;
    doubles may be "NA", "NaN", "Inf", "-Inf" as the golden README writes them)."""
    if node is None:
        return xdr_header() + xdr_int(254)
    data = list(node["data"])  # type: ignore[call-overload]
    if node["type"] == "character":
        return xdr_header() + xdr_strings(*data)
    if node["type"] != "double":
        raise ValueError(f"no writer for {node['type']}")
    special = {"NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf}
    body = b"".join(_NA_REAL if v == "NA" else struct.pack(">d", special.get(v, v)) for v in data)
    return xdr_header() + xdr_int(14, len(data)) + body
