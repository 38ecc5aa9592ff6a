"""One exact decoder of R's serialization (``serialize(x, NULL)``) into the R-value model.

:func:`unserialize` reads the bytes R writes (XDR ``X``, versions 2 and 3, also native binary
``B``) and gives the same :mod:`pydsbase.rvalue` model that describing the value in R would give:
types, classes, names, dim/dimnames, the other attributes (``attributes()`` order, compact
``row.names`` expanded as R's ``attributes()`` shows them), NULL slots in lists, doubles bit for bit
(R's ``NA_real_`` -- a NaN with payload 1954 -- is ``NA``, any other NaN ``math.nan``), language
objects by their text as R's ``deparse(x, width.cutoff = 500L)`` writes it (:mod:`pydsbase.deparse`),
S4 dense matrices of the Matrix package as ``base::as.matrix`` gives them (with their S4 metadata),
ALTREP compact sequences, wrappers and deferred strings.

The bytes are hostile: every declared length is checked against the bytes left before anything is
allocated, nesting depth is bounded here (never by Python's recursion limit), trailing bytes are
refused, and so are every environment other than the global, base and empty ones, closures,
bytecode, promises, external pointers, weak references and namespace/package references. Every
refusal is one exception type, :class:`UnserializeError`, carrying the byte offset.
"""

from __future__ import annotations

import codecs
import functools
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Final

from pydsbase import rvalue
from pydsbase.deparse import MISSING, Call, DeparseError, Symbol, deparse, format_real
from pydsbase.errors import UnserializeError

__all__ = [
    "MAX_DEPTH", "MAX_EXPANDED", "Deparsed", "S4Object", "UnserializeError", "Vector", "model", "read", "unserialize",
]

#: The deepest nesting of R objects accepted (lists in lists, calls in calls).
MAX_DEPTH: Final = 128
#: A compact form (ALTREP sequence, compact row names) declares a length with no bytes behind it:
#: it may expand to at most this many elements, or to as many as the stream has bytes.
MAX_EXPANDED: Final = 1 << 20

# SEXP type codes (Rinternals.h) and serialization pseudo-types (serialize.c)
_NIL, _SYM, _LIST, _CLO, _ENV, _PROM, _LANG, _SPECIAL, _BUILTIN, _CHAR = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
_LGL, _INT, _REAL, _CPLX, _STR, _DOT, _ANY, _VEC, _EXPR, _BCODE = 10, 13, 14, 15, 16, 17, 18, 19, 20, 21
_EXTPTR, _WEAKREF, _RAW, _S4 = 22, 23, 24, 25
_REFSXP, _NILVALUE, _GLOBALENV, _UNBOUNDVALUE, _MISSINGARG, _BASENAMESPACE = 255, 254, 253, 252, 251, 250
_NAMESPACE, _PACKAGE, _PERSIST, _CLASSREF, _GENERICREF, _BCREPDEF = 249, 248, 247, 246, 245, 244
_EMPTYENV, _BCREPREF, _BASEENV, _ATTRLANG, _ATTRLIST, _ALTREP = 242, 243, 241, 240, 239, 238

_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 1 << 8, 1 << 9, 1 << 10
_BYTES_MASK, _LATIN1_MASK, _UTF8_MASK, _S4_MASK, _ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 6
_NOT_UTF8 = _LATIN1_MASK | _BYTES_MASK
# the same bits where they are in an item's flags (the CHARSXP levels are flags >> 12)
_S4_BIT, _AS_UTF8, _NOT_UTF8_BITS = _S4_MASK << 12, (_ASCII_MASK | _UTF8_MASK) << 12, _NOT_UTF8 << 12
#: The flags of a CHARSXP R marks ASCII (as it writes every ASCII string).
_ASCII_CHARSXP: Final = _CHAR | _ASCII_MASK << 12
#: The first cell of an attribute pairlist, as R writes it: a pairlist cell with a tag, without attributes.
_CELL_MASK, _ATTRIBUTE_CELL = 0xFF | _HAS_ATTR | _HAS_TAG, _LIST | _HAS_TAG
_ATTR_OR_S4: Final = _HAS_ATTR | _S4_BIT
_INT1: Final = {True: struct.Struct(">i").unpack_from, False: struct.Struct("<i").unpack_from}
_INT2: Final = {True: struct.Struct(">ii").unpack_from, False: struct.Struct("<ii").unpack_from}
_INT4: Final = {True: struct.Struct(">iiii").unpack_from, False: struct.Struct("<iiii").unpack_from}
#: A string's flags and length, the length unsigned.
_HEAD: Final = {True: struct.Struct(">iI").unpack_from, False: struct.Struct("<iI").unpack_from}
_DBL: Final = {True: struct.Struct(">d").unpack_from, False: struct.Struct("<d").unpack_from}
_isnan: Final = math.isnan
#: Symbols by the bytes of their (ASCII) names: the same few names recur in every stream (a symbol is
#: immutable). Bounded, as the names come from the bytes.
_SYMBOLS: Final[dict[bytes, Symbol]] = {}
_MAX_SYMBOLS: Final = 4096
_NA_INT: Final = -(2**31)
_NA: Final = rvalue.NA
_NA_REAL_LOW_WORD: Final = 1954
_UNREAD: Final = object()  # (a value not read yet)

_REFUSED = {
    _CLO: "a closure (function)",
    _ENV: "an environment",
    _PROM: "a promise",
    _SPECIAL: "a primitive function",
    _BUILTIN: "a primitive function",
    _DOT: "a '...' object",
    _ANY: "an 'any' object",
    _BCODE: "byte code",
    _EXTPTR: "an external pointer",
    _WEAKREF: "a weak reference",
    _NAMESPACE: "a namespace environment",
    _PACKAGE: "a package environment",
    _PERSIST: "a persistent reference",
    _BASENAMESPACE: "the base namespace",
    _UNBOUNDVALUE: "the unbound-value marker",
    _CLASSREF: "a class reference",
    _GENERICREF: "a generic reference",
    _BCREPDEF: "byte code",
    _BCREPREF: "byte code",
    _ATTRLANG: "byte code",
    _ATTRLIST: "byte code",
}
_TYPE_NAMES = {_LGL: "logical", _INT: "integer", _REAL: "double", _STR: "character", _CPLX: "complex",
               _VEC: "list", _EXPR: "expression", _RAW: "raw"}  # fmt: skip


# -- the objects as read ---------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Vector:
    """A vector as read: SEXP ``sxp`` code, elements (model-ready), attributes in stream order."""

    sxp: int
    data: list[Any]
    attributes: list[tuple[str, Any]] | None = None
    s4: bool = False
    offset: int = 0


@dataclass(eq=False, slots=True)
class Pairlist:
    items: list[tuple[str | None, Any]]
    attributes: list[tuple[str, Any]] | None = None
    dotted: bool = False


@dataclass(eq=False, slots=True)
class S4Object:
    attributes: list[tuple[str, Any]] | None
    offset: int = 0


@dataclass(eq=False, slots=True)
class Deparsed:
    """A language object known only by its deparsed text (the JSON front end, :mod:`pydsbase.rjson`)."""

    lines: list[str]
    attributes: list[tuple[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """One of the three environments accepted: ``global``, ``base`` or ``empty``."""

    kind: str


_GLOBAL, _BASE, _EMPTY = Environment("global"), Environment("base"), Environment("empty")


# -- the reader ------------------------------------------------------------------------------------


class _Reader:
    """One pass over the bytes. The common items (short vectors whose bytes are all there, attribute
    pairlists, symbols and references to them as tags) are read inline; anything else goes through
    :meth:`length` and the general paths, which check and raise."""

    __slots__ = ("data", "pos", "end", "refs", "tags", "order", "low", "native", "utf8",
                 "int1", "int2", "int4", "dbl", "head")

    def __init__(self, data: bytes, pos: int, big_endian: bool) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.refs: list[Any] = []
        #: the name of each symbol in ``refs`` by the flags word of a reference to it (a tag, inline)
        self.tags: dict[int, str] = {}
        self.order = ">" if big_endian else "<"
        self.low = 3 if big_endian else 0  # where an integer's low byte is
        self.int1 = _INT1[big_endian]
        self.int2 = _INT2[big_endian]
        self.int4 = _INT4[big_endian]
        self.head = _HEAD[big_endian]
        self.dbl = _DBL[big_endian]
        self.native = "utf-8"
        self.utf8 = True  # the native encoding is UTF-8

    def fail(self, message: str, offset: int | None = None) -> UnserializeError:
        return UnserializeError(message, self.pos if offset is None else offset)

    def need(self, nbytes: int, what: str) -> None:
        if nbytes > self.end - self.pos:
            raise self.fail(f"{what} declares {nbytes} bytes but only {self.end - self.pos} remain")

    def read_int(self) -> int:
        if self.pos + 4 > self.end:
            raise self.fail("the stream ends inside an integer")
        (value,) = self.int1(self.data, self.pos)
        self.pos += 4
        return int(value)

    def length(self, size: int, what: str) -> int:
        start = pos = self.pos
        if pos + 4 <= self.end:  # the common case: a short vector whose bytes are all there
            (n,) = self.int1(self.data, pos)
            if 0 <= n and pos + 4 + n * size <= self.end:
                self.pos = pos + 4
                return int(n)
        n = self.read_int()
        if n == -1:
            upper, lower = self.read_int(), self.read_int()
            n = (upper << 32) + (lower & 0xFFFFFFFF)
            if upper < 0:
                raise self.fail(f"a negative length of {what}", start)
        elif n < 0:
            raise self.fail(f"a negative length of {what}", start)
        if n * size > self.end - self.pos:
            raise self.fail(f"{what} of length {n} needs {n * size} bytes but only {self.end - self.pos} remain", start)
        return n

    # -- items -------------------------------------------------------------------------------------

    def item(self, depth: int, outer: int | None = None) -> Any:
        """The next object, as read; or, given ``outer`` (the offset of the list holding it, 0 at the top),
        as a value of the model: a vector becomes its model as soon as it is read (its elements, if a
        list, already models), anything else through :func:`_model` with ``outer`` as its offset."""
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        data = self.data
        start = self.pos
        room = self.end - start - 8  # the bytes after the flags and, for a vector, its length
        if room >= 0:
            flags, n = self.int2(data, start)
        elif room >= -4:
            (flags,) = self.int1(data, start)
            n = -1
        else:
            raise self.fail("the stream ends inside an item's flags")
        sxp = flags & 0xFF  # (self.pos is still start: each case below moves it)
        # a value without attributes (the usual) becomes its model right here
        plain = outer is not None and not flags & _ATTR_OR_S4
        # the most frequent first: character vectors, doubles, lists, integers, logicals; a length whose
        # bytes are all there is taken at once, any other through length() (long vectors, errors)
        if sxp == _STR:
            if 0 <= n and 8 * n <= room:
                pos = self.pos = start + 8
                if n == 1:  # one string: inline when it is ASCII and all there (as strings() reads it)
                    cflags, length = self.int2(data, pos)
                    if cflags == _ASCII_CHARSXP and 0 <= length <= room - 8:
                        try:
                            values: list[Any] = [data[pos + 8 : pos + 8 + length].decode()]
                        except UnicodeDecodeError:
                            raise self.fail("a string that is not valid utf-8", pos) from None
                        self.pos = pos + 8 + length
                    else:
                        values = self.strings(1)
                else:
                    values = self.strings(n)
            else:
                self.pos = start + 4
                values = self.strings(self.length(8, "a character vector"))
            if plain:
                return _RAtomic("character", values, ["character"])
        elif sxp == _REAL:
            if n == 1 and 8 <= room:  # one double, inline unless it is a NaN (NA or not: doubles() looks)
                (v,) = self.dbl(data, start + 8)
                if v == v:
                    values = [v]
                    self.pos = start + 16
                else:
                    self.pos = start + 8
                    values = self.doubles(1)
            else:
                if 0 <= n and 8 * n <= room:
                    self.pos = start + 8
                else:
                    self.pos = start + 4
                    n = self.length(8, "a double vector")
                values = self.doubles(n)
            if plain:
                return _RAtomic("double", values, ["numeric"])
        elif sxp == _VEC:
            if 0 <= n and 4 * n <= room:
                self.pos = start + 8
            else:
                self.pos = start + 4
                n = self.length(4, "a list")
            if outer is None or flags & _S4_BIT:  # an S4 object's data is never modelled
                values = []
                item = self.item
                fast = depth < MAX_DEPTH
                for _ in range(n):  # (a loop: a comprehension would make every call of item() dearer)
                    pos = self.pos  # a character vector without attributes whose bytes are all there: here
                    if fast and pos + 8 <= self.end:
                        cflags, length = self.int2(data, pos)
                        if cflags == _STR and 0 <= 8 * length <= self.end - pos - 8:
                            self.pos = pos + 8
                            values.append(Vector(_STR, self.strings(length), None, False, pos))
                            continue
                    values.append(item(depth + 1))
            else:
                values = self.elements(n, depth + 1, start)
            if plain:
                return _RList(values, None, ["list"])
        elif sxp == _INT or sxp == _LGL:
            if 0 <= n and 4 * n <= room:
                pos = self.pos = start + 8
            else:
                self.pos = start + 4
                n = self.length(4, "an integer vector" if sxp == _INT else "a logical vector")
                pos = self.pos
            ints = self.int1(data, pos) if n == 1 else struct.unpack_from(f"{self.order}{n}i", data, pos)
            self.pos = pos + 4 * n
            if _NA_INT in ints:
                if sxp == _INT:
                    values = [_NA if v == _NA_INT else v for v in ints]
                else:
                    values = [_NA if v == _NA_INT else v != 0 for v in ints]
            else:
                values = list(ints) if sxp == _INT else [v != 0 for v in ints]
            if plain:
                return _RAtomic("integer", values, ["integer"]) if sxp == _INT else \
                    _RAtomic("logical", values, ["logical"])  # fmt: skip
        elif sxp == _NILVALUE:
            self.pos = start + 4
            return None
        else:
            self.pos = start + 4
            if outer is None:
                return self.other(flags, sxp, depth, start)
            if sxp == _LANG:  # a call as a value: its text may be known (see _DEPARSED)
                known = tuple(self.tags.values())  # the names of the symbols read before it (refs holds only symbols)
                x = self.other(flags, sxp, depth, start)
                key = None
                if self.pos - start <= _MAX_DEPARSED_BYTES:
                    key = (self.order, self.native, data[start : self.pos], known)
                return _language(x, self.end, outer, key)
            return _model(self.other(flags, sxp, depth, start), self.end, outer)
        attributes = None
        if outer is not None and flags & _ATTR_OR_S4 == _HAS_ATTR:  # a value with attributes: names first?
            names, attributes = self.names_first(depth)
            if attributes is None and names is not None:  # names only: as _vector_model makes it
                if sxp == _VEC:
                    return _RList(values, [n if n is not _NA else "" for n in names] if _NA in names else names,
                                  ["list"], {})  # fmt: skip
                return _RAtomic(_TYPE_NAMES[sxp], values, [_IMPLICIT_CLASS[sxp]], names, None, None, None, {})
        if attributes is None and flags & _HAS_ATTR:
            attributes = self.attributes(flags, depth)
        if outer is None:
            return Vector(sxp, values, attributes, flags & _S4_BIT != 0, start)
        if flags & _S4_BIT:
            return _model(Vector(sxp, values, attributes, True, start), self.end, outer)
        return _vector_model(sxp, values, attributes, start, self.end, True)

    def elements(self, n: int, depth: int, outer: int) -> list[Any]:
        """The ``n`` elements (at ``depth``) of the list at ``outer``, as models. A scalar without attributes
        whose bytes are all there (a string marked ASCII, a double not NaN, an integer or logical not NA), an
        empty list or character vector without attributes and NULL are made here, as item() makes them; any
        other element by item()."""
        values: list[Any] = []
        append = values.append
        data, end, int4, dbl, item = self.data, self.end, self.int4, self.dbl, self.item
        last = end - 16 if depth <= MAX_DEPTH else -1  # where an element read here may start at the latest
        pos = self.pos
        while n:
            n -= 1
            if pos <= last:
                flags, length, word, word2 = int4(data, pos)
                if length == 1:
                    if flags == _STR:
                        if word == _ASCII_CHARSXP and 0 <= word2 <= last - pos:
                            stop = pos + 16 + word2
                            try:
                                append(_RAtomic("character", [data[pos + 16 : stop].decode()], ["character"]))
                            except UnicodeDecodeError:
                                raise self.fail("a string that is not valid utf-8", pos + 8) from None
                            pos = stop
                            continue
                    elif flags == _REAL:
                        (v,) = dbl(data, pos + 8)
                        if v == v:
                            append(_RAtomic("double", [v], ["numeric"]))
                            pos += 16
                            continue
                    elif flags == _LGL:
                        if word != _NA_INT:
                            append(_RAtomic("logical", [word != 0], ["logical"]))
                            pos += 12
                            continue
                    elif flags == _INT and word != _NA_INT:
                        append(_RAtomic("integer", [word], ["integer"]))
                        pos += 12
                        continue
                elif length == 0:  # an empty list or character vector
                    if flags == _VEC:
                        append(_RList([], None, ["list"]))
                        pos += 8
                        continue
                    if flags == _STR:
                        append(_RAtomic("character", [], ["character"]))
                        pos += 8
                        continue
                if flags == _NILVALUE:
                    append(None)
                    pos += 4
                    continue
            self.pos = pos
            append(item(depth, outer))
            pos = self.pos
        self.pos = pos
        return values

    def other(self, flags: int, sxp: int, depth: int, start: int) -> Any:
        """An item other than the common vectors (``flags`` read): symbols, references, pairlists and
        calls, the accepted markers, ALTREP and S4 objects, the rarer vectors; or a refusal."""
        if sxp == _SYM:
            return self.symbol(depth, start)
        if sxp == _REFSXP:
            index = flags >> 8 or self.read_int()
            if not 1 <= index <= len(self.refs):
                raise self.fail(f"a reference to object {index} of {len(self.refs)}", start)
            return self.refs[index - 1]
        if sxp == _LIST or sxp == _LANG:
            return self.pairlist(flags, depth, start)
        if sxp == _CHAR:
            return self.charsxp(flags, start)
        if sxp == _GLOBALENV:
            return _GLOBAL
        if sxp == _BASEENV:
            return _BASE
        if sxp == _EMPTYENV:
            return _EMPTY
        if sxp == _MISSINGARG:
            return MISSING
        if sxp in _REFUSED:
            raise self.fail(f"refused: {_REFUSED[sxp]}", start)
        if sxp == _ALTREP:
            return self.altrep(flags, depth, start)
        if sxp == _S4:
            return S4Object(self.attributes(flags, depth), start)
        if sxp == _EXPR:
            n = self.length(4, "an expression vector")
            data = []
            for _ in range(n):  # (loops here: a comprehension would make every call of other() dearer)
                data.append(self.item(depth + 1))
        elif sxp == _CPLX:
            n = self.length(16, "a complex vector")
            parts = self.doubles(2 * n)
            data = []
            for i in range(0, 2 * n, 2):
                real, imag = parts[i], parts[i + 1]
                data.append(_NA if real is _NA or imag is _NA else complex(real, imag))
        elif sxp == _RAW:
            n = self.length(1, "a raw vector")
            data = list(self.data[self.pos : self.pos + n])
            self.pos += n
        else:
            raise self.fail(f"unknown SEXP type code {sxp}", start)
        return Vector(sxp, data, self.attributes(flags, depth), flags & _S4_BIT != 0, start)

    def symbol(self, depth: int, start: int) -> Symbol:
        """A symbol (its name's CHARSXP follows); it joins the reference table."""
        data, pos, end = self.data, self.pos, self.end
        if pos + 8 <= end:
            flags, n = self.int2(data, pos)
            stop = pos + 8 + n
            if flags & 0xFF == _CHAR and pos + 8 <= stop <= end:
                raw = data[pos + 8 : stop]
                self.pos = stop
                symbol = _SYMBOLS.get(raw)
                if symbol is None:
                    if raw.isascii():
                        symbol = Symbol(raw.decode("ascii"))
                        if len(_SYMBOLS) < _MAX_SYMBOLS:
                            _SYMBOLS[raw] = symbol
                    else:
                        symbol = Symbol(self.text(raw, flags >> 12, pos))
                refs = self.refs
                refs.append(symbol)
                self.tags[len(refs) << 8 | _REFSXP] = symbol.name
                return symbol
        name = self.item(depth + 1)
        if not isinstance(name, str):
            raise self.fail("a symbol whose name is not a string", start)
        symbol = Symbol(name)
        self.refs.append(symbol)
        self.tags[len(self.refs) << 8 | _REFSXP] = name
        return symbol

    def names_first(self, depth: int) -> tuple[list[Any] | None, list[tuple[str, Any]] | None]:
        """The attributes of a vector (an item at ``depth``) whose first attribute is ``names``, a character
        vector without attributes (the usual), tagged by a symbol already read: (the names, None) when they
        are its only attribute, (None, all its attributes as :meth:`attributes` reads them) when others
        follow; (None, None) with nothing read for any other start."""
        pos, data, end = self.pos, self.data, self.end
        if pos + 16 > end or depth + 2 > MAX_DEPTH:
            return None, None
        head, tag, flags, n = self.int4(data, pos)
        if head != _ATTRIBUTE_CELL or flags != _STR or not 0 <= 8 * n <= end - pos - 20 or \
                self.tags.get(tag) != "names":  # fmt: skip
            return None, None
        self.pos = pos + 16
        names = self.strings(n)
        stop = self.pos
        if stop + 4 <= end:
            (cell,) = self.int1(data, stop)
            if cell == _NILVALUE:
                self.pos = stop + 4
                return names, None
            if cell & _CELL_MASK == _ATTRIBUTE_CELL:  # more attributes: the rest of the pairlist, as cells() reads it
                self.pos = stop + 4
                items = self.named(*self.cells(cell, depth + 2, False), pos)
                items.insert(0, ("names", Vector(_STR, names, None, False, pos + 8)))
                return None, items
        self.pos = pos
        return None, None

    def attributes(self, flags: int, depth: int) -> list[tuple[str, Any]] | None:
        """An item's attributes (when its flags say it has some): a pairlist whose cells all have tags."""
        if not flags & _HAS_ATTR:
            return None
        start = self.pos
        head = self.int1(self.data, start)[0] if start + 4 <= self.end else 0
        if head & _CELL_MASK == _ATTRIBUTE_CELL and depth < MAX_DEPTH:  # the usual: read the cells directly
            self.pos = start + 4
            items, dotted = self.cells(head, depth + 2, False)
        else:
            attrs = self.item(depth + 1)
            if type(attrs) is not Pairlist:
                raise self.fail("attributes that are not a pairlist", start)
            items, dotted = attrs.items, attrs.dotted
        return self.named(items, dotted, start)

    def named(self, items: list[tuple[str | None, Any]], dotted: bool, start: int) -> list[tuple[str, Any]]:
        """Attribute cells as read (the attributes at ``start``): a pairlist, not dotted, every cell tagged."""
        if dotted:
            raise self.fail("attributes that are not a pairlist", start)
        for tag, _ in items:
            if tag is None:
                raise self.fail("an attribute without a name", start)
        return items  # type: ignore[return-value]

    def tag(self) -> str:
        """A pairlist cell's tag: a symbol, usually a reference to one already read."""
        pos = self.pos
        if pos + 4 > self.end:
            raise self.fail("the stream ends inside a tag")
        (flags,) = self.int1(self.data, pos)
        sxp = flags & 0xFF
        if sxp == _REFSXP:
            index = flags >> 8
            if 0 < index <= len(self.refs):
                sym = self.refs[index - 1]
                if type(sym) is Symbol:
                    self.pos = pos + 4
                    return sym.name
        elif sxp == _SYM:
            self.pos = pos + 4
            return self.symbol(0, pos).name
        sym = self.item(0)
        if not isinstance(sym, Symbol):
            raise self.fail("a pairlist tag that is not a symbol", pos)
        return sym.name

    def pairlist(self, flags: int, depth: int, start: int) -> Pairlist | Call:
        """A pairlist or call: attributes, then its cells."""
        lang = flags & 0xFF == _LANG
        attrs = self.attributes(flags, depth) if flags & _HAS_ATTR else None
        items, dotted = self.cells(flags, depth + 1, lang)
        if lang:
            head, args = items[0], items[1:]
            if head[0] is not None:
                raise self.fail("a call whose function carries a tag", start)
            end = self.end  # (the arguments as the deparser takes them: vectors as model values)
            return Call(head[1], [(tag, _model(value, end, start) if type(value) is Vector else value)
                                  for tag, value in args], attrs)  # fmt: skip
        return Pairlist(items, attrs, dotted)

    def cells(self, flags: int, depth: int, lang: bool) -> tuple[list[tuple[str | None, Any]], bool]:
        """The cells of a pairlist or call (``flags``: the first's, read): tag, CAR, then the CDR read
        iteratively; the items at ``depth``. Whether the last CDR was a value (a dotted pair) rather than NULL."""
        items: list[tuple[str | None, Any]] = []
        append = items.append
        data, int2, int4, end = self.data, self.int2, self.int4, self.end
        item, tags, refs = self.item, self.tags, self.refs
        last = end - 16 if depth <= MAX_DEPTH else -1  # where a value read here may start at the latest
        word = None  # the word after a cell's flags (its tag's), when read with them
        pos = self.pos  # (kept here; self.pos set around each call that reads)
        while True:
            tag: str | None = None
            if flags & _HAS_TAG:  # the tag: a reference to a symbol already read, inline, or else tag()
                if pos + 4 <= end:
                    tag = tags.get(self.int1(data, pos)[0] if word is None else word)
                    if tag is not None:
                        pos += 4
                    elif data[pos + self.low] == _SYM:  # a symbol's first use
                        self.pos = pos + 4
                        tag = self.symbol(0, pos).name
                        pos = self.pos
                if tag is None:
                    self.pos = pos
                    tag = self.tag()
                    pos = self.pos
            # the CAR: the usual ones (a symbol, a reference to one, a call, a short vector without attributes
            # whose bytes are all there) here, as item() reads them; any other by item()
            value: Any = _UNREAD
            if pos <= last:
                vflags, n, w1, w2 = int4(data, pos)
                if vflags == _SYM:
                    self.pos = pos + 4
                    value = self.symbol(depth, pos)
                    pos = self.pos
                elif vflags == _STR:
                    if n == 1 and w1 == _ASCII_CHARSXP and 0 <= w2 <= last - pos:
                        stop = pos + 16 + w2
                        try:
                            value = Vector(_STR, [data[pos + 16 : stop].decode()], None, False, pos)
                        except UnicodeDecodeError:
                            raise self.fail("a string that is not valid utf-8", pos + 8) from None
                        pos = stop
                    elif 0 <= n and 8 * n <= end - pos - 8:
                        self.pos = pos + 8
                        value = Vector(_STR, self.strings(n), None, False, pos)
                        pos = self.pos
                elif vflags == _INT:
                    if n == 1:
                        if w1 != _NA_INT:
                            value = Vector(_INT, [w1], None, False, pos)
                            pos += 12
                    elif n == 2 and w1 != _NA_INT and w2 != _NA_INT:
                        value = Vector(_INT, [w1, w2], None, False, pos)
                        pos += 16
                elif vflags == _REAL:
                    if n == 1:
                        (v,) = self.dbl(data, pos + 8)
                        if v == v:
                            value = Vector(_REAL, [v], None, False, pos)
                            pos += 16
                    elif 0 <= n and 8 * n <= end - pos - 8:
                        self.pos = pos + 8
                        value = Vector(_REAL, self.doubles(n), None, False, pos)
                        pos = self.pos
                elif vflags & 0xFF == _REFSXP:
                    index = vflags >> 8
                    if 0 < index <= len(refs):
                        value = refs[index - 1]
                        pos += 4
                elif vflags & 0xFF == _LANG:
                    self.pos = pos + 4
                    value = self.pairlist(vflags, depth, pos)
                    pos = self.pos
            if value is _UNREAD:
                self.pos = pos
                value = item(depth)
                pos = self.pos
            append((tag, value))
            cell = pos
            if pos + 8 <= end:  # the next cell's flags and the word after them (its tag, usually)
                flags, word = int2(data, pos)
            elif pos + 4 <= end:
                (flags,) = self.int1(data, pos)
                word = None
            else:
                self.pos = pos
                raise self.fail("the stream ends inside a pairlist")
            pos += 4
            sxp = flags & 0xFF
            if sxp == _LIST:
                if flags & _HAS_ATTR:
                    raise self.fail("attributes on an inner pairlist cell", cell)
                continue
            self.pos = pos
            if sxp == _NILVALUE:
                return items, False
            # a dotted pair (as ALTREP states are): the CDR is a value, kept as the last item
            if lang:
                raise self.fail(f"a call continued by SEXP type {sxp}", cell)
            self.pos = cell
            append((None, item(depth)))
            return items, True

    def altrep(self, flags: int, depth: int, start: int) -> Any:
        info = self.item(depth + 1)
        state = self.item(depth + 1)
        attr_start = self.pos
        attrs = self.item(depth + 1)
        if attrs is not None and not isinstance(attrs, Pairlist):
            raise self.fail("ALTREP attributes that are not a pairlist", attr_start)
        if not (isinstance(info, Pairlist) and info.items and isinstance(info.items[0][1], Symbol)):
            raise self.fail("an ALTREP object without a class", start)
        cls = info.items[0][1].name
        value = self.altrep_value(cls, state, start)
        if attrs is not None:
            if attrs.dotted or any(tag is None for tag, _ in attrs.items):
                raise self.fail("ALTREP attributes without names", attr_start)
            value.attributes = [(str(tag), v) for tag, v in attrs.items]
        value.s4 = flags & _S4_BIT != 0
        value.offset = start
        return value

    def altrep_value(self, cls: str, state: Any, start: int) -> Vector:
        if cls in ("compact_intseq", "compact_realseq"):
            if not (isinstance(state, Vector) and state.sxp == _REAL and len(state.data) == 3):
                raise self.fail(f"a malformed {cls}", start)
            n_f, first_f, inc_f = state.data
            if any(v is rvalue.NA or not math.isfinite(v) for v in state.data) or inc_f not in (1.0, -1.0):
                raise self.fail(f"a malformed {cls}", start)
            n, first, inc = int(n_f), first_f, int(inc_f)
            if n < 0 or n != n_f or n > max(self.end, MAX_EXPANDED):
                raise self.fail(f"a {cls} of length {n_f}", start)
            if cls == "compact_intseq":
                first_i = int(first)
                last = first_i + inc * (n - 1)
                if first_i != first or not (-(2**31) < min(first_i, last) and max(first_i, last) < 2**31):
                    raise self.fail("a compact_intseq outside the integer range", start)
                return Vector(_INT, list(range(first_i, last + inc, inc)) if n else [])
            return Vector(_REAL, [first + inc * i for i in range(n)])
        if cls.startswith("wrap_"):
            if not (isinstance(state, Pairlist) and state.items and isinstance(state.items[0][1], Vector)):
                raise self.fail(f"a malformed {cls}", start)
            inner: Vector = state.items[0][1]
            return Vector(inner.sxp, inner.data, inner.attributes, inner.s4)
        if cls == "deferred_string":
            if not (isinstance(state, Pairlist) and state.items and isinstance(state.items[0][1], Vector)):
                raise self.fail("a malformed deferred_string", start)
            arg: Vector = state.items[0][1]
            scipen = state.items[1][1] if len(state.items) > 1 else None
            if isinstance(scipen, Vector) and scipen.data and scipen.data[0] not in (0, rvalue.NA):
                raise self.fail("a deferred_string made with options(scipen) set", start)
            if arg.sxp == _INT:
                return Vector(_STR, [v if v is rvalue.NA else str(v) for v in arg.data])
            if arg.sxp == _REAL:
                return Vector(_STR, [v if v is rvalue.NA else format_real(v) for v in arg.data])
            raise self.fail("a deferred_string of neither integers nor doubles", start)
        raise self.fail(f"an ALTREP class this decoder does not know: {cls}", start)

    # -- leaves ------------------------------------------------------------------------------------

    def text(self, raw: bytes, levels: int, start: int) -> str:
        if levels & _BYTES_MASK:
            raise self.fail("a string of declared bytes has no text encoding", start)
        codec = "utf-8" if levels & _UTF8_MASK else "latin-1" if levels & _LATIN1_MASK else self.native
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            raise self.fail(f"a string that is not valid {codec}", start) from None

    def charsxp(self, flags: int, start: int) -> Any:
        n = self.read_int()
        if n == -1:
            return rvalue.NA
        if n < 0:
            raise self.fail("a negative string length", start)
        self.need(n, "a string")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return self.text(raw, flags >> 12, start)

    def strings(self, n: int) -> list[Any]:
        """The elements of a character vector (each a CHARSXP), read in one loop."""
        data, end = self.data, self.end
        out: list[Any] = []
        append = out.append
        pos = self.pos
        try:  # the usual: ASCII strings, all there; a length is read unsigned (a negative one goes beyond the end)
            head = self.head
            for i in range(n):  # noqa: B007 (i: the strings read, used after the loop)
                flags, length = head(data, pos)
                if flags != _ASCII_CHARSXP:
                    break
                start = pos + 8
                pos = start + length
                append(data[start:pos].decode())
            else:
                if pos <= end:
                    self.pos = pos
                    return out
                i = -1
        except (struct.error, UnicodeDecodeError):
            i = -1
        if i < 0:  # something else is wrong: read again, checking each string
            pos, i = self.pos, 0
            out.clear()
        return self.checked_strings(pos, n - i, out)

    def checked_strings(self, pos: int, n: int, out: list[Any]) -> list[Any]:
        """The ``n`` elements of a character vector from ``pos`` (each a CHARSXP) appended to ``out``, each
        checked; where a string read here ends in an error, the error says which and where."""
        data, int2, end = self.data, self.int2, self.end
        append = out.append
        start = pos
        try:
            for _ in range(n):
                start = pos + 8  # after the string's flags and length
                flags, length = int2(data, pos)  # (struct.error: fewer than 8 bytes left)
                pos = start + length
                if flags == _ASCII_CHARSXP and start <= pos <= end:  # the usual: an ASCII string, all there
                    append(data[start:pos].decode())
                else:
                    pos = self.string(flags, length, start - 8, append)
        except struct.error:
            self.pos = pos
            raise self.fail("the stream ends inside a character vector") from None
        except UnicodeDecodeError:
            raise self.fail("a string that is not valid utf-8", start - 8) from None
        self.pos = pos
        return out

    def string(self, flags: int, length: int, pos: int, append: Any) -> int:
        """One element of a character vector other than an ASCII string all there (at ``pos``, its flags and
        length read): appended; where the next begins."""
        if flags & 0xFF != _CHAR:
            raise self.fail("a character vector holds something other than strings", pos)
        if length < 0:
            if length != -1:
                raise self.fail(f"a string of length {length}", pos)
            append(_NA)
            return pos + 8
        stop = pos + 8 + length
        if stop > self.end:
            raise self.fail(f"a string of length {length} beyond the end of the stream", pos)
        if flags & _AS_UTF8 or (self.utf8 and not flags & _NOT_UTF8_BITS):  # ASCII, UTF-8 or native UTF-8
            try:
                append(self.data[pos + 8 : stop].decode())
            except UnicodeDecodeError:
                raise self.fail("a string that is not valid utf-8", pos) from None
        else:
            append(self.text(self.data[pos + 8 : stop], flags >> 12, pos))
        return stop

    def doubles(self, n: int) -> list[Any]:
        """Doubles bit for bit: any NaN is looked at in its bytes (R's NA_real_ has the low word 1954)."""
        start = self.pos
        values: list[Any] = list(self.dbl(self.data, start) if n == 1 else
                                 struct.unpack_from(f"{self.order}{n}d", self.data, start))  # fmt: skip
        self.pos = start + 8 * n
        if any(map(_isnan, values)):
            low = 4 if self.order == ">" else 0  # the low 32-bit word of each double
            for i, v in enumerate(values):
                if v != v:
                    (word,) = self.int1(self.data, start + 8 * i + low)
                    values[i] = _NA if word == _NA_REAL_LOW_WORD else math.nan
        return values


# -- header ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _codec(name: str) -> str | None:
    """Python's codec for the native-encoding name a version-3 stream declares (None: not a text encoding)."""
    try:
        if not re.fullmatch(r"[A-Za-z0-9._:-]+", name):
            raise LookupError(name)
        codec = codecs.lookup(name).name
        b"".decode(codec)  # a text encoding (not rot13 and the like)
    except LookupError:
        return None
    return codec


def read(data: bytes | bytearray | memoryview) -> Any:
    """The objects of a serialization, as read (before they become the model).

    NULL -> None; vectors -> :class:`Vector`; calls -> :class:`pydsbase.deparse.Call`; symbols ->
    :class:`pydsbase.deparse.Symbol`; pairlists -> :class:`Pairlist`; S4 objects ->
    :class:`S4Object`; the three accepted environments -> :class:`Environment`.
    """
    return _read(bytes(data), None)


def _read(data: bytes, outer: int | None) -> Any:
    """The header, then the one object (as read, or with ``outer`` = 0 as the model), then nothing."""
    if len(data) < 14:
        raise UnserializeError("too short to be an R serialization", 0)
    fmt = data[:2]
    if fmt == b"X\n":
        reader = _Reader(data, 2, big_endian=True)
    elif fmt == b"B\n":
        reader = _Reader(data, 2, big_endian=False)
    elif fmt == b"A\n":
        raise UnserializeError("R's ASCII serialization is not read here (use the default XDR)", 0)
    else:
        raise UnserializeError("not an R serialization (no X/B format header)", 0)
    version = reader.read_int()
    reader.read_int()  # the writer's R version
    reader.read_int()  # the oldest R version that can read it
    if version == 3:
        start = reader.pos
        nelen = reader.read_int()
        if not 0 <= nelen <= 64:
            raise UnserializeError(f"a native-encoding name of {nelen} bytes", start)
        reader.need(nelen, "the native-encoding name")
        name = data[reader.pos : reader.pos + nelen].decode("ascii", "replace")
        reader.pos += nelen
        codec = _codec(name)
        if codec is None:
            raise UnserializeError(f"an unknown native encoding {name!r}", start)
        reader.native, reader.utf8 = codec, codec == "utf-8"
    elif version != 2:
        raise UnserializeError(f"serialization version {version} (versions 2 and 3 are read)", 2)
    value = reader.item(0, outer)
    if reader.pos != len(data):
        raise UnserializeError(f"{len(data) - reader.pos} trailing bytes after the value", reader.pos)
    return value


_MALFORMED: Final = (TypeError, KeyError, IndexError, AttributeError, OverflowError, struct.error)


def unserialize(data: bytes | bytearray | memoryview) -> rvalue.RValue | None:
    """The model of the R value whose ``serialize(x, NULL)`` bytes are ``data`` (None for NULL).

    Raises :class:`UnserializeError` (with the byte offset) for anything else.

    One pass: the reader makes each value's model as soon as the value is read. The error of a
    stream that is both malformed and not a value of the model is the reading's, wherever the
    two are (a value is only modelled once it is read whole): on any error the stream is read
    again without the model, whose error (if any) wins.
    """
    raw = bytes(data)
    try:
        model: rvalue.RValue | None = _read(raw, 0)
        return model
    except (UnserializeError, *_MALFORMED) as exc:
        read(raw)  # the reading's own error first
        if isinstance(exc, UnserializeError):
            raise
        raise UnserializeError(f"a malformed value ({type(exc).__name__})", 0) from None


def model(value: Any) -> rvalue.RValue | None:
    """The model of objects as :func:`read` gives them, or as another front end builds them (the
    JSON one, :mod:`pydsbase.rjson`): the one step from R's objects to the R-value model."""
    result: rvalue.RValue | None = _model(value, 0, 0)
    return result


# -- the model (what describing the value in R gives) ------------------------------------------------


_PLAIN: Final = {_REAL: ("double", "numeric"), _INT: ("integer", "integer"), _LGL: ("logical", "logical"),
                  _STR: ("character", "character")}  # fmt: skip
#: The model's constructors, called with positional arguments in their fields' order (type, data, r_class,
#: names, dim, dimnames, dimnames_names, attributes; data, names, r_class, attributes): a call with keywords
#: costs twice as much, and there are some hundred of these per study summary.
_RAtomic, _RList = rvalue.atomic_unchecked, rvalue.list_unchecked
#: A vector's implicit class (without dim): R's class() of an unclassed vector of each type.
_IMPLICIT_CLASS: Final = {**_TYPE_NAMES, _REAL: "numeric", _VEC: "list"}
#: The attributes each kind of model shows in fields of its own rather than in ``attributes``.
_LIST_OWN: Final = frozenset(("names", "class"))
_ATOMIC_OWN: Final = frozenset(("names", "class", "dim", "dimnames"))
_LANGUAGE_OWN: Final = frozenset(("class", ".Environment"))


def _attrs_dict(attributes: list[tuple[str, Any]] | None) -> dict[str, Any]:
    return dict(attributes) if attributes else {}


def _implicit_class(x: Any, attrs: dict[str, Any]) -> list[str]:
    dim = attrs.get("dim")
    if isinstance(dim, Vector):
        return ["matrix", "array"] if len(dim.data) == 2 else ["array"]
    if isinstance(x, Call):
        head = x.function
        if isinstance(head, Symbol) and head.name in ("if", "while", "for", "=", "<-", "(", "{"):
            return [head.name]
        return ["call"]
    if isinstance(x, Symbol):
        return ["name"]
    if x.sxp == _REAL:
        return ["numeric"]
    if x.sxp == _VEC:
        return ["list"]
    return [_TYPE_NAMES.get(x.sxp, "unknown")]


def _strings_of(value: Any) -> list[Any] | None:
    return list(value.data) if isinstance(value, Vector) and value.sxp == _STR else None


def _class_of(x: Any, attrs: dict[str, Any]) -> list[str]:
    cls = attrs.get("class")
    if isinstance(cls, Vector) and cls.sxp == _STR and cls.data:
        return [v if isinstance(v, str) else "NA" for v in cls.data]
    return _implicit_class(x, attrs)


def _described_attributes(
    attributes: list[tuple[str, Any]] | None, skip: frozenset[str], limit: int, offset: int
) -> dict[str, rvalue.RValue]:
    out: dict[str, rvalue.RValue] = {}
    for name, value in attributes or ():
        if name in skip:
            continue
        if name == "row.names":
            value = _row_names(value, limit, offset)
        model = _model(value, limit, offset)
        if model is not None:
            out[name] = model
    return out


def _row_names(value: Any, limit: int, offset: int) -> Any:
    """R's ``attributes()`` shows compact row names ``c(NA, -n)`` as ``1:n``.

    ``n`` is a declared length with no bytes behind it: it is bounded by :data:`MAX_EXPANDED`.
    """
    if isinstance(value, Vector) and value.sxp == _INT and len(value.data) == 2 and value.data[0] is rvalue.NA:
        n = value.data[1]
        n = 0 if n is rvalue.NA else abs(n)
        if n > max(limit, MAX_EXPANDED):
            raise UnserializeError(f"compact row names declaring {n} rows in {limit} bytes", value.offset)
        return Vector(_INT, list(range(1, n + 1)), value.attributes, offset=value.offset)
    return value


def _model(x: Any, limit: int, offset: int) -> Any:
    """The model of a read object, as ``.ds_describe`` describes it in R (``limit``: the stream's size)."""
    if x is None:
        return None
    if type(x) is Vector and not x.s4:  # the common case, first
        if x.attributes is None:
            sxp = x.sxp
            if sxp == _VEC:
                inner = x.offset
                return _RList([None if v is None else _model(v, limit, inner) for v in x.data], None, ["list"])
            plain = _PLAIN.get(sxp)
            if plain is not None:
                return _RAtomic(plain[0], x.data, [plain[1]])
        return _vector(x, limit)
    if isinstance(x, Symbol):
        return rvalue.RLanguage([x.name], r_class=["name"], type="symbol")
    if isinstance(x, Call):
        return _language(x, limit, offset, None)
    if isinstance(x, Deparsed):
        attrs = _attrs_dict(x.attributes)
        r_class = _strings_of(attrs.get("class")) or ["call"]
        return rvalue.RLanguage(
            x.lines,
            r_class=r_class,
            type="language",
            has_environment=(attrs.get(".Environment") is not None) if "formula" in r_class else None,
            attributes=_described_attributes(x.attributes, _LANGUAGE_OWN, limit, offset),
        )
    if isinstance(x, S4Object) or (isinstance(x, Vector) and x.s4):
        return _s4_matrix(x, x.offset)
    if isinstance(x, Environment):
        raise UnserializeError(f"an environment ({x.kind}) is not a value of the model", offset)
    if isinstance(x, Pairlist):
        raise UnserializeError("a pairlist is not a value of the model", offset)
    if not isinstance(x, Vector):  # pragma: no cover - every read object is handled above
        raise UnserializeError(f"cannot model {type(x).__name__}", offset)
    return _vector(x, limit)


#: The deparsed text of calls by what determines it: the byte order, the native encoding, the call's
#: bytes and the symbols read before it (which its references may name). Bounded, as the keys come
#: from the bytes; the same call comes back in every study's summary, and deparsing is the dearest step.
_DEPARSED: Final[dict[tuple[str, str, bytes, tuple[str, ...]], tuple[str, ...]]] = {}
_MAX_DEPARSED: Final = 256
_MAX_DEPARSED_BYTES: Final = 4096


def _language(x: Call, limit: int, offset: int, key: tuple[str, str, bytes, tuple[str, ...]] | None) -> Any:
    """The model of a call (``key``: what determines its text, when known)."""
    attrs = _attrs_dict(x.attributes)
    r_class = _class_of(x, attrs)
    known = None if key is None else _DEPARSED.get(key)
    if known is not None:
        text = list(known)
    else:
        try:
            text = deparse(x)
        except DeparseError as exc:
            raise UnserializeError(f"a call the deparser cannot write: {exc}", offset) from None
        if key is not None and len(_DEPARSED) < _MAX_DEPARSED:
            _DEPARSED[key] = tuple(text)
    has_env = None
    if "formula" in r_class:
        has_env = attrs.get(".Environment") is not None
    return rvalue.RLanguage(
        text,
        r_class=r_class,
        type="language",
        has_environment=has_env,
        attributes=_described_attributes(x.attributes, _LANGUAGE_OWN, limit, offset),
    )


def _vector(x: Vector, limit: int) -> Any:
    """The model of a vector (not S4) with attributes, or of a type the model has no place for (refused)."""
    return _vector_model(x.sxp, x.data, x.attributes, x.offset, limit, False)


def _vector_model(sxp: int, data: list[Any], attributes: list[tuple[str, Any]] | None, offset: int, limit: int,
                  modelled: bool) -> Any:
    """:func:`_vector` of a vector's parts (``modelled``: a list's elements are models already, as the
    reader makes them when it reads a value)."""
    cls = dim = names_attr = dimnames = None
    others = atomic_others = False  # attributes shown in ``attributes`` (a list's include dim and dimnames)
    for name, value in attributes or ():  # the last of a name counts, as in dict(attributes)
        if name == "names":
            names_attr = value
        elif name == "class":
            cls = value
        else:
            others = True
            if name == "dim":
                dim = value
            elif name == "dimnames":
                dimnames = value
            else:
                atomic_others = True
    if isinstance(cls, Vector) and cls.sxp == _STR and cls.data:
        r_class = [v if isinstance(v, str) else "NA" for v in cls.data]
    elif isinstance(dim, Vector):
        r_class = ["matrix", "array"] if len(dim.data) == 2 else ["array"]
    else:
        r_class = [_IMPLICIT_CLASS.get(sxp, "unknown")]
    if isinstance(names_attr, Vector) and names_attr.sxp == _STR:
        names: list[Any] | None = list(names_attr.data)
    elif isinstance(dim, Vector) and len(dim.data) == 1 and isinstance(dimnames, Vector) and dimnames.data:
        names = _strings_of(dimnames.data[0])
    else:
        names = None
    if sxp == _VEC:
        return _RList(
            data if modelled else [None if v is None else _model(v, limit, offset) for v in data],
            names if names is None or _NA not in names else [n if isinstance(n, str) else "" for n in names],
            r_class,
            _described_attributes(attributes, _LIST_OWN, limit, offset) if others else {},
        )
    if sxp not in _PLAIN:
        raise UnserializeError(f"cannot encode an R value of type '{_TYPE_NAMES.get(sxp)}'", offset)
    dims: list[int] | None = None
    if type(dim) is Vector and dim.sxp == _INT and len(dim.data) == 2:  # a matrix's (the usual): as below
        nrow, ncol = dim.data
        if nrow is _NA or ncol is _NA or nrow < 0 or ncol < 0 or nrow * ncol != len(data):
            raise UnserializeError("a dim attribute that does not fit its vector", offset)
        dims = [nrow, ncol]
    elif dim is not None:
        ok = isinstance(dim, Vector) and (dim.sxp == _INT or dim.sxp == _REAL) and bool(dim.data)
        if ok:
            dims, size = [], 1
            for v in dim.data:  # each a whole count below 2^31, their product the vector's length
                if v is _NA or v != v or not 0 <= v < 2**31:
                    ok = False
                    break
                dims.append(int(v))
                size *= int(v)
            ok = ok and size == len(data)
        if not ok:
            raise UnserializeError("a dim attribute that does not fit its vector", offset)
    dn: list[Any] | None = None
    dn_names: list[str] | None = None
    if isinstance(dimnames, Vector) and dimnames.sxp == _VEC:
        dn = [None if d is None else _strings_of(d) for d in dimnames.data]
        dn_attr = _strings_of(_attrs_dict(dimnames.attributes).get("names"))
        dn_names = None if dn_attr is None else [n if isinstance(n, str) else "" for n in dn_attr]
    return _RAtomic(
        _TYPE_NAMES[sxp], data, r_class, names, dims, dn, dn_names,
        _described_attributes(attributes, _ATOMIC_OWN, limit, offset) if atomic_others else {},
    )


# -- S4: dense matrices of the Matrix package ----------------------------------------------------------

#: slotNames() of the Matrix classes converted (Matrix 1.5), in the class definition's order.
_MATRIX_SLOTS: Final = {
    "dgeMatrix": ["Dim", "Dimnames", "x", "factors"],
    "dsyMatrix": ["Dim", "Dimnames", "x", "uplo", "factors"],
    "dpoMatrix": ["Dim", "Dimnames", "x", "uplo", "factors"],
    "corMatrix": ["sd", "Dim", "Dimnames", "x", "uplo", "factors"],
    "dtrMatrix": ["Dim", "Dimnames", "x", "uplo", "diag"],
}
_SYMMETRIC: Final = {"dsyMatrix", "dpoMatrix", "corMatrix"}


def _s4_matrix(x: Any, offset: int) -> rvalue.RAtomic:
    attrs = _attrs_dict(x.attributes)
    cls_attr = attrs.get("class")
    cls = _strings_of(cls_attr)
    if not cls or len(cls) != 1 or not isinstance(cls_attr, Vector):
        raise UnserializeError("an S4 object without a class", offset)
    name = cls[0]
    package = _strings_of(_attrs_dict(cls_attr.attributes).get("package"))
    if name not in _MATRIX_SLOTS or package != ["Matrix"]:
        raise UnserializeError(f"cannot encode an S4 object of class '{name}'", offset)
    dim, xs = attrs.get("Dim"), attrs.get("x")
    if not (isinstance(dim, Vector) and dim.sxp == _INT and len(dim.data) == 2 and isinstance(xs, Vector)):
        raise UnserializeError(f"a malformed {name}", offset)
    nrow, ncol = dim.data
    values = xs.data
    if xs.sxp != _REAL or nrow is rvalue.NA or ncol is rvalue.NA or min(nrow, ncol) < 0 or len(values) != nrow * ncol:
        raise UnserializeError(f"a malformed {name}", offset)
    data = list(values)
    uplo = (_strings_of(attrs.get("uplo")) or ["U"])[0]
    if name in _SYMMETRIC or name == "dtrMatrix":
        if nrow != ncol or uplo not in ("U", "L"):
            raise UnserializeError(f"a malformed {name}", offset)
        n = nrow
        upper = uplo == "U"
        for j in range(n):
            for i in range(n):
                if (i < j and not upper) or (i > j and upper):
                    data[i + j * n] = values[j + i * n] if name in _SYMMETRIC else 0.0
        if name == "dtrMatrix" and (_strings_of(attrs.get("diag")) or ["N"])[0] == "U":
            for i in range(n):
                data[i + i * n] = 1.0
    dimnames = attrs.get("Dimnames")
    dn: list[Any] | None = None
    dn_names: list[str] | None = None
    if isinstance(dimnames, Vector) and dimnames.sxp == _VEC and len(dimnames.data) == 2:
        parts = [None if d is None else _strings_of(d) for d in dimnames.data]
        dn_attr = _strings_of(_attrs_dict(dimnames.attributes).get("names"))
        if name in _SYMMETRIC:  # Matrix's symmetric dimnames: both sides from the columns' (else the rows')
            side = 1 if parts[1] is not None or parts[0] is None else 0
            parts = [parts[side], parts[side]]
            if dn_attr is not None:
                dn_attr = [dn_attr[side], dn_attr[side]]
        if parts[0] is not None or parts[1] is not None or dn_attr is not None:
            dn = parts
            dn_names = None if dn_attr is None else [n if isinstance(n, str) else "" for n in dn_attr]
    factors = attrs.get("factors")
    factor_names = _strings_of(_attrs_dict(factors.attributes).get("names")) if isinstance(factors, Vector) else None
    s4 = {
        "s4_class": name,
        "s4_package": "Matrix",
        "converted_with": "base::as.matrix",
        "s4_slot_names": list(_MATRIX_SLOTS[name]),
        "s4_factors_names": list(factor_names or []),
    }
    return rvalue.RAtomic("double", data, r_class=["matrix", "array"], dim=[nrow, ncol], dimnames=dn,
                          dimnames_names=dn_names, s4=s4)  # fmt: skip
