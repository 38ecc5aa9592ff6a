"""R's ``deparse(x, width.cutoff = 500L)`` of language objects, in Python.

The R-value model carries a language object (a call, a formula, a symbol) by the text R writes for
it. :func:`deparse` writes that text from the object itself (as :mod:`pydsbase.rserialize` reads it
from R's serialization): R 4.2's operator table (precedence, associativity, which operators are
written with spaces), its parenthesisation rule for constructed calls, backtick-quoted
non-syntactic names, numbers with 15 significant digits (``1e+05``, ``1L``, ``NA_real_``), strings
with R's escapes, and R's line breaking at ``width_cutoff`` bytes (after an argument's comma or a
binary operator, continuation lines indented by four spaces).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from pydsbase import rvalue
from pydsbase.errors import DeparseError
from pydsbase.rtext import format_double

__all__ = ["MISSING", "Call", "DeparseError", "Symbol", "deparse", "format_real", "is_syntactic_name"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """An R symbol (``as.name``); the empty name is R's missing argument (``x[, 1]``)."""

    name: str


#: R's missing argument (the empty symbol).
MISSING: Final = Symbol("")


@dataclass(eq=False, slots=True)
class Call:
    """An R call: the function (usually a :class:`Symbol`) and its (tag, argument) pairs.

    Arguments are symbols, calls, ``None`` (NULL) or constants as :mod:`pydsbase.rvalue` values.
    ``attributes`` (a formula's class and environment) are kept but not written, as R does.
    """

    function: Any
    args: list[tuple[str | None, Any]] = field(default_factory=list)
    attributes: list[tuple[str, Any]] | None = None


# -- R's operator table (names.c) -------------------------------------------------------------------

(PREC_FN, PREC_EQ, PREC_LEFT, PREC_RIGHT, PREC_TILDE, PREC_OR, PREC_AND, PREC_NOT, PREC_COMPARE, PREC_SUM,
 PREC_PROD, PREC_PERCENT, PREC_COLON, PREC_SIGN, PREC_POWER, PREC_SUBSET, PREC_DOLLAR, PREC_NS) = range(18)  # fmt: skip

_IF, _WHILE, _FOR, _REPEAT, _BREAK, _NEXT, _RETURN, _FUNCTION = "if while for repeat break next return function".split()
_ASSIGN, _ASSIGN2, _CURLY, _PAREN, _SUBSET, _DOLLAR = "assign assign2 curly paren subset dollar".split()
_BINARY, _BINARY2, _UNARY, _FUNCALL, _SUBASS = "binary binary2 unary funcall subass".split()


@dataclass(frozen=True, slots=True)
class _PP:
    kind: str
    prec: int
    right: int = 0


_OPS: Final[dict[str, _PP]] = {
    "if": _PP(_IF, PREC_FN, 1),
    "while": _PP(_WHILE, PREC_FN),
    "for": _PP(_FOR, PREC_FN),
    "repeat": _PP(_REPEAT, PREC_FN),
    "break": _PP(_BREAK, PREC_FN),
    "next": _PP(_NEXT, PREC_FN),
    "return": _PP(_RETURN, PREC_FN),
    "function": _PP(_FUNCTION, PREC_FN),
    "<-": _PP(_ASSIGN, PREC_LEFT, 1),
    "=": _PP(_ASSIGN, PREC_EQ, 1),
    "<<-": _PP(_ASSIGN2, PREC_LEFT, 1),
    "{": _PP(_CURLY, PREC_FN),
    "(": _PP(_PAREN, PREC_FN),
    "[": _PP(_SUBSET, PREC_SUBSET),
    "[[": _PP(_SUBSET, PREC_SUBSET),
    "$": _PP(_DOLLAR, PREC_DOLLAR),
    "@": _PP(_DOLLAR, PREC_DOLLAR),
    "[<-": _PP(_SUBASS, PREC_LEFT, 1),
    "[[<-": _PP(_SUBASS, PREC_LEFT, 1),
    "$<-": _PP(_SUBASS, PREC_LEFT, 1),
    "~": _PP(_BINARY, PREC_TILDE),
    "+": _PP(_BINARY, PREC_SUM),
    "-": _PP(_BINARY, PREC_SUM),
    "*": _PP(_BINARY, PREC_PROD),
    "/": _PP(_BINARY2, PREC_PROD),
    "^": _PP(_BINARY2, PREC_POWER, 1),
    "%%": _PP(_BINARY2, PREC_PERCENT),
    "%/%": _PP(_BINARY2, PREC_PERCENT),
    "%*%": _PP(_BINARY, PREC_PERCENT),
    "==": _PP(_BINARY, PREC_COMPARE),
    "!=": _PP(_BINARY, PREC_COMPARE),
    "<": _PP(_BINARY, PREC_COMPARE),
    ">": _PP(_BINARY, PREC_COMPARE),
    "<=": _PP(_BINARY, PREC_COMPARE),
    ">=": _PP(_BINARY, PREC_COMPARE),
    "!": _PP(_UNARY, PREC_NOT),
    "&": _PP(_BINARY, PREC_AND),
    "|": _PP(_BINARY, PREC_OR),
    "&&": _PP(_BINARY, PREC_AND),
    "||": _PP(_BINARY, PREC_OR),
    ":": _PP(_BINARY2, PREC_COLON),
    "::": _PP(_BINARY2, PREC_NS),
    ":::": _PP(_BINARY2, PREC_NS),
}

#: R 4.2.2's other base primitives (deparsed as calls; their arguments count as "in a list").
_PRIMITIVE_CALLS: Final = frozenset(
    "...elt ...length ...names .C .cache_class .Call .Call.graphics .class2 .External .External.graphics "
    ".External2 .Fortran .Internal .isMethodsDispatchOn .Primitive .primTrace .primUntrace .subset .subset2 abs "
    "acos acosh all any anyNA Arg as.call as.character as.complex as.double as.environment as.integer as.logical "
    "as.numeric as.raw asin asinh atan atanh attr attr<- attributes attributes<- baseenv browser c call ceiling "
    "class class<- Conj cos cosh cospi cummax cummin cumprod cumsum digamma dim dim<- dimnames dimnames<- emptyenv "
    "enc2native enc2utf8 environment<- exp expm1 expression floor forceAndCall gamma gc.time globalenv Im "
    "interactive invisible is.array is.atomic is.call is.character is.complex is.double is.environment "
    "is.expression is.finite is.function is.infinite is.integer is.language is.list is.logical is.matrix is.na "
    "is.name is.nan is.null is.numeric is.object is.pairlist is.raw is.recursive is.single is.symbol isS4 "
    "lazyLoadDBfetch length length<- levels<- lgamma list log log10 log1p log2 max min missing Mod names names<- "
    "nargs nzchar oldClass oldClass<- on.exit pos.to.env proc.time prod quote range Re rep retracemem round "
    "seq_along seq_len seq.int sign signif sin sinh sinpi sqrt standardGeneric storage.mode<- substitute sum "
    "switch tan tanh tanpi tracemem trigamma trunc unclass untracemem UseMethod xtfrm"
    .split()
)

_RESERVED: Final = frozenset(
    "NULL NA TRUE FALSE Inf NaN NA_integer_ NA_real_ NA_character_ NA_complex_ "
    "function while repeat for if in else next break".split()
)


@functools.lru_cache(maxsize=4096)
def is_syntactic_name(name: str) -> bool:
    """R's ``isValidName``: usable without backticks (remembered: the same few names recur)."""
    if not name:
        return False
    first = name[0]
    if first != "." and not first.isalpha():
        return False
    if first == "." and len(name) > 1 and name[1] in "0123456789":
        return False
    if not all(c.isalnum() or c in "._" for c in name):
        return False
    return name not in _RESERVED


def _is_user_binop(name: str) -> bool:
    return len(name) >= 2 and name[0] == "%" and name[-1] == "%"


_ESCAPES: Final = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                   "\\": "\\\\"}  # fmt: skip


def _encode_string(text: str, quote: str) -> str:
    out = [quote]
    for ch in text:
        if ch == quote:
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\{ord(ch):03o}")
        elif ch.isascii() or ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _quotify(name: str, quote: str = "`") -> str:
    return name if not name or is_syntactic_name(name) else _encode_string(name, quote)


def format_real(x: float) -> str:
    """A double as deparse() writes it: 15 significant digits, fixed or scientific as narrower (R's own
    formatReal, one implementation in :func:`pydsbase.rtext.format_double`)."""
    return format_double(x, 15)


# -- the deparser -----------------------------------------------------------------------------------


class _Deparser:
    def __init__(self, cutoff: int, backtick: bool) -> None:
        self.cutoff = cutoff
        self.backtick = backtick
        self.lines: list[str] = []
        self.buf: list[str] = []
        self.len = 0  # the bytes of the line's first ``counted`` pieces (the rest are counted when asked: width())
        self.counted = 0
        self.indent = 0
        #: put(text) writes text: the first piece of a line through first_put() (the line's indentation, as it is
        #: when the line begins), the others by the buffer's own append
        self.put: Callable[[str], None] = self.first_put
        self.incurly = 0
        self.inlist = 0
        self.fnarg = False
        # the precedence of the operator that follows the current expression's right edge (it is the
        # left operand of that operator): a unary operator of lower precedence there is parenthesised,
        # or it would take the operator in (R writes y^(~a) %in% z)
        self.context = -1

    def first_put(self, text: str) -> None:
        append = self.buf.append
        for i in range(1, self.indent + 1):
            append("    " if i <= 4 else "  ")
        append(text)
        self.put = append

    def width(self) -> int:
        """The current line's length in bytes, as R counts it."""
        buf = self.buf
        if len(buf) > self.counted:
            tail = "".join(buf[self.counted :])
            self.len += len(tail) if tail.isascii() else len(tail.encode("utf-8"))
            self.counted = len(buf)
        return self.len

    def writeline(self) -> None:
        self.lines.append("".join(self.buf))
        self.buf = []
        self.len = self.counted = 0
        self.put = self.first_put

    def linebreak(self, lbreak: bool) -> bool:
        if self.width() > self.cutoff:
            if not lbreak:
                lbreak = True
                self.indent += 1
            self.writeline()
        return lbreak

    # -- values --------------------------------------------------------------------------------------

    def value(self, x: Any) -> None:
        fnarg = self.fnarg
        self.fnarg = False
        cls = type(x)
        if cls is Symbol:
            self.symbol(x)
        elif cls is Call:
            self.call(x, fnarg)
        elif x is None:
            self.put("NULL")
        elif isinstance(x, rvalue.RAtomic):
            self.vector(x)
        else:
            raise DeparseError(f"cannot deparse {type(x).__name__}")

    def symbol(self, x: Symbol) -> None:
        self.put(_quotify(x.name) if self.backtick else x.name)

    def vector(self, v: rvalue.RAtomic) -> None:
        if v.attributes or v.dim is not None or v.dimnames is not None:
            raise DeparseError("a constant with attributes")
        data, n, t = v.data, len(v.data), v.type
        if n == 0:
            self.put({"logical": "logical(0)", "integer": "integer(0)", "double": "numeric(0)",
                      "character": "character(0)", "complex": "complex(0)"}[t])  # fmt: skip
            return
        names = v.names
        all_na = all(e is rvalue.NA for e in data)
        if t == "integer" and n > 1 and names is None and not any(e is rvalue.NA for e in data):
            if all(data[i] - data[i - 1] == 1 for i in range(1, n)):
                self.put(f"{data[0]}:{data[-1]}")
                return
        wrap = n > 1 or names is not None
        if wrap:
            self.put("c(")
        for i, e in enumerate(data):
            name = names[i] if names is not None else None
            if isinstance(name, str) and name:
                self.put(f"{_quotify(name)} = ")
            self.put(self.element(t, e, all_na))
            if i < n - 1:
                self.put(", ")
            if wrap and self.width() > self.cutoff:
                self.writeline()
        if wrap:
            self.put(")")

    @staticmethod
    def element(t: str, e: Any, all_na: bool) -> str:
        if e is rvalue.NA:
            if t == "logical" or not all_na:
                return "NA"
            return {"integer": "NA_integer_", "double": "NA_real_", "character": "NA_character_",
                    "complex": "NA_complex_"}[t]  # fmt: skip
        if t == "double":
            return format_real(e)
        if t == "integer":
            return f"{e}L"
        if t == "logical":
            return "TRUE" if e else "FALSE"
        if t == "character":
            return _encode_string(e, '"')
        raise DeparseError(f"a constant of type {t}")

    # -- calls ---------------------------------------------------------------------------------------

    def args(self, args: list[tuple[str | None, Any]]) -> None:
        lbreak = False
        last = len(args) - 1
        saved = self.context
        for i, (tag, arg) in enumerate(args):
            if tag is not None:
                self.put((tag if tag == "..." else _quotify(tag) if self.backtick else _quotify(tag, '"')) + " = ")
            if type(arg) is Symbol:  # (as value() writes it; a tag's missing argument: nothing)
                if tag is None or arg.name:
                    self.symbol(arg)
            elif type(arg) is Call:  # (as value() writes it, isolated, as an argument)
                self.context = -1
                self.call(arg, True)
                self.context = saved
            else:
                self.fnarg = True
                self.context = -1  # isolated(arg), inline
                self.value(arg)
                self.context = saved
            if i < last:
                self.put(", ")
                lbreak = self.linebreak(lbreak)
        if lbreak:
            self.indent -= 1

    def wrapped(self, x: Any, parens: bool, context: int | None = None) -> None:
        saved = self.context
        if parens:
            self.context = -1
            self.put("(")
            self.value(x)
            self.put(")")
        else:
            if context is not None:
                self.context = context
            self.value(x)
        self.context = saved

    def isolated(self, x: Any) -> None:
        """A value between delimiters (an argument, inside brackets): no operator follows it."""
        saved = self.context
        self.context = -1
        self.value(x)
        self.context = saved

    def call(self, c: Call, fnarg: bool) -> None:
        head, args = c.function, c.args
        if isinstance(head, Symbol):
            name = head.name
            op = _OPS.get(name)
            userbinop = op is None and _is_user_binop(name)
            if op is not None or userbinop:
                if op is not None:
                    pp = op
                elif any(tag is not None for tag, _ in args):
                    pp = _PP(_FUNCALL, PREC_FN)
                else:
                    pp = _PP(_BINARY2, PREC_PERCENT)
                kind = pp.kind
                if kind == _BINARY:
                    if len(args) == 1:
                        kind = _UNARY
                        if pp.prec == PREC_SUM:
                            pp = _PP(_UNARY, PREC_SIGN, pp.right)
                    elif len(args) != 2:
                        kind = _FUNCALL
                elif kind == _BINARY2:
                    if len(args) != 2:
                        kind = _FUNCALL
                    elif userbinop:
                        kind = _BINARY
                elif kind == _DOLLAR:
                    if len(args) != 2 or not _dollar_name(args[1][1]):
                        kind = _FUNCALL
                elif kind in (_UNARY, _ASSIGN, _ASSIGN2, _PAREN, _SUBSET) and not args:
                    kind = _FUNCALL
                if kind != pp.kind:
                    pp = _PP(kind, pp.prec, pp.right)
                self.operator(name, pp, args, fnarg)
                return
            self.put(_quotify(name) if self.backtick else _quotify(name, '"'))
            if name in _PRIMITIVE_CALLS:
                self.put("(")
                self.inlist += 1
                self.args(args)
                self.inlist -= 1
                self.put(")")
                return
        else:
            self.wrapped(head, _parenthesize_caller(head))
        self.put("(")
        self.args(args)
        self.put(")")

    def operator(self, name: str, pp: _PP, args: list[tuple[str | None, Any]], fnarg: bool) -> None:
        kind = pp.kind
        if kind == _BINARY or kind == _BINARY2:  # (the most frequent first; a symbol operand as value() writes it)
            left, right = args[0][1], args[1][1]
            if type(left) is Symbol:
                self.symbol(left)
            elif type(left) is Call and not _needs_parens(pp, left, True):  # (as wrapped() and value() write it)
                saved = self.context
                self.context = pp.prec
                self.call(left, False)
                self.context = saved
            else:
                self.wrapped(left, _needs_parens(pp, left, True), pp.prec)
            if kind == _BINARY:
                self.put(f" {name} ")
                lbreak = self.linebreak(False)
            else:
                self.put(name)
                lbreak = False
            if type(right) is Symbol:
                self.symbol(right)
            elif type(right) is Call and not _needs_parens(pp, right, False):
                self.call(right, False)
            else:
                self.wrapped(right, _needs_parens(pp, right, False))
            if lbreak:
                self.indent -= 1
            return
        if kind == _PAREN:
            self.put("(")
            self.isolated(args[0][1])
            self.put(")")
            return
        a = [arg for _, arg in args]
        if kind == _CURLY:
            self.put("{")
            self.incurly += 1
            self.indent += 1
            self.writeline()
            for x in a:
                self.isolated(x)
                self.writeline()
            self.indent -= 1
            self.put("}")
            self.incurly -= 1
        elif kind == _SUBSET:
            self.wrapped(a[0], _needs_parens(pp, a[0], True), pp.prec)
            self.put("[" if name == "[" else "[[")
            self.args(args[1:])
            self.put("]" if name == "[" else "]]")
        elif kind in (_FUNCALL, _RETURN, _SUBASS):
            self.put(_quotify(name) if self.backtick else _quotify(name, '"'))
            self.put("(")
            self.inlist += 1
            self.args(args)
            self.inlist -= 1
            self.put(")")
        elif kind in (_ASSIGN, _ASSIGN2):
            outer = fnarg and name == "="
            if outer:
                self.put("(")
            rhs = a[1] if len(a) > 1 else None
            self.wrapped(a[0], _needs_parens(pp, a[0], True), pp.prec)
            self.put(f" {name} ")
            self.wrapped(rhs, _needs_parens(pp, rhs, False))
            if outer:
                self.put(")")
        elif kind == _DOLLAR:
            self.wrapped(a[0], _needs_parens(pp, a[0], True), pp.prec)
            self.put(name)
            rhs = a[1]
            if isinstance(rhs, rvalue.RAtomic) and rhs.type == "character" and rhs.data \
                    and isinstance(rhs.data[0], str) and is_syntactic_name(rhs.data[0]):  # fmt: skip
                self.put(rhs.data[0])
            else:
                self.wrapped(rhs, _needs_parens(pp, rhs, False))
        elif kind == _UNARY:
            outer, saved = self.context > pp.prec, self.context
            if outer:
                self.context = -1
                self.put("(")
            self.put(name)
            self.wrapped(a[0], _needs_parens(pp, a[0], False))
            if outer:
                self.put(")")
            self.context = saved
        elif kind == _IF and len(a) in (1, 2, 3) and self.context > pp.prec:
            saved = self.context
            self.context = -1
            self.put("(")
            self.operator(name, pp, args, fnarg)
            self.put(")")
            self.context = saved
        elif kind == _IF and len(a) in (1, 2, 3):
            if len(a) == 1:
                a = [a[0], None]
            self.put("if (")
            self.isolated(a[0])
            self.put(") ")
            lookahead = False
            if self.incurly and not self.inlist:
                lookahead = _curly_ahead(a[1])
                if not lookahead:
                    self.writeline()
                    self.indent += 1
            self.value(a[1])
            if len(a) == 3:
                if self.incurly and not self.inlist:
                    self.writeline()
                    if not lookahead:
                        self.indent -= 1
                else:
                    self.put(" ")
                self.put("else ")
                self.value(a[2])
            elif self.incurly and not lookahead and not self.inlist:
                self.indent -= 1
        elif kind == _BREAK and not a:
            self.put("break")
        elif kind == _NEXT and not a:
            self.put("next")
        else:
            raise DeparseError(f"a call of '{name}' with {len(a)} arguments")


def _dollar_name(x: Any) -> bool:
    if isinstance(x, Symbol):
        return True
    return isinstance(x, rvalue.RAtomic) and x.type == "character" and bool(x.data) and x.data[0] is not rvalue.NA


def _curly_ahead(x: Any) -> bool:
    return isinstance(x, Call) and x.function == Symbol("{")


def _parenthesize_caller(head: Any) -> bool:
    if isinstance(head, Call):
        op = head.function
        if isinstance(op, Symbol):
            if _is_user_binop(op.name):
                return True
            pp = _OPS.get(op.name)
            if pp is None:
                return False
            return not (pp.prec >= PREC_SUBSET or pp.kind in (_FUNCALL, _PAREN, _CURLY, _RETURN))
        return True
    return False


def _needs_parens(main: _PP, arg: Any, left: bool) -> bool:
    """R's rule for parenthesising an operand of a unary or binary operator."""
    if type(arg) is Symbol:
        return False
    if isinstance(arg, Call):
        op = arg.function
        if not isinstance(op, Symbol):
            return False
        pp = _OPS.get(op.name)
        if pp is not None:
            kind, prec = pp.kind, pp.prec
            nargs = len(arg.args)
            if kind in (_BINARY, _BINARY2):
                if nargs == 1:  # a unary use: parenthesised on the left only, by strictly higher precedence
                    if not left:
                        return False
                    return main.prec > (PREC_SIGN if prec == PREC_SUM else prec)
                if nargs != 2:
                    return False
                elif main.prec == PREC_COMPARE and prec == PREC_COMPARE:
                    return True  # a < b < c is not R syntax
                kind = _UNARY  # falls through to the precedence rule (after the subset check)
            elif kind == _UNARY and not left:
                return False
            if kind == _SUBSET and main.kind == _DOLLAR:
                return False
            if kind in (_SUBSET, _ASSIGN, _ASSIGN2, _UNARY, _DOLLAR):
                return main.prec > prec or (main.prec == prec and int(left) == main.right)
            if kind in (_FOR, _IF, _WHILE, _REPEAT):
                return left
            return False
        if _is_user_binop(op.name):
            return main.prec > PREC_PERCENT or (main.prec == PREC_PERCENT and int(left) == main.right)
        return False
    if isinstance(arg, rvalue.RAtomic) and arg.type == "complex" and len(arg.data) == 1:
        return main.prec > PREC_SUM or (main.prec == PREC_SUM and int(left) == main.right)
    return False


def deparse(x: Any, width_cutoff: int = 500) -> list[str]:
    """The lines of R's ``deparse(x, width.cutoff = width_cutoff)`` for a call, formula or symbol.

    As R does, names are backtick-quoted in calls and not for a bare symbol.
    """
    if not 20 <= width_cutoff <= 500:
        raise ValueError("width_cutoff must be between 20 and 500, as in R")
    d = _Deparser(width_cutoff, backtick=isinstance(x, Call))
    d.value(x)
    d.writeline()
    return d.lines
