"""The strict grammar of the DataSHIELD call texts dsBaseClient 6.3.0 sends to a study.

A hand-written lexer and recursive-descent parser turn client text into the typed trees of
``r_server.calltree``. Nothing here (or anywhere in ``r_server``) evaluates or R-parses client
text: the only way into R is through these trees.

What is accepted (everything else raises ``CallRejected`` with a short, truncated message):

* **Aggregate calls** (``parse_aggregate``): ``f(arg, ..., name = arg)`` where ``f`` is a name and
  each argument is one of: a string (``"D$BMI"``, single or double quotes, no escapes), a number
  (``0``, ``1e+05``, ``-2.5``), ``TRUE``/``FALSE``, ``NULL``, a name or ``$`` chain (``D``,
  ``D$BMI``), or an *encoded formula* (``BMI ~ trtGrp + yyy1xxxidDoctorzzz``).
* **Lists as arguments**: ``cDS(list(D$x, y))``, ``listDS(list(D$x), list('x'))``: an argument may be
  one ``list(...)`` call whose elements are simple values as above (what ``ds.c`` and ``ds.list`` send);
  no other function call may appear inside a call, and a list cannot contain a list.
* **Assign right-hand sides** (``parse_assign``): the same single call form, or BARE arithmetic
  (``D$BMI/D$BMI``, ``D$age*0.5``): names, ``$``, numbers, parentheses, unary ``- +`` and binary
  ``+ - * / ^`` only (what ``ds.make`` sends for the dsBaseClient workflows).
* **Formulas.** dsBaseClient's ``ds.lmerSLMA`` deparses the formula, replaces ``|``->``xxx``,
  ``(``->``yyy``, ``)``->``zzz``, ``/``->``ppp``, ``:``->``qqq`` and removes spaces, so ``(1+age|g)``
  arrives as ``yyy1 + agexxxgzzz``. dsBase's ``lmerSLMADS2`` undoes this with a plain ``gsub`` over
  the whole deparsed formula (``xxx`` first, then ``yyy``, ``zzz``, ``ppp``, ``qqq``); we apply the
  same replacements in the same order to the text of each formula token. The replaced patterns are
  letters only, and in valid R text two tokens that both contain letters are never adjacent
  without a separator, so per-token replacement gives exactly dsBase's result, including its
  corruption of variable names that contain those letter runs (``happpy`` becomes ``ha/y`` in
  dsBase too: we reproduce, not fix). The decoded text is then parsed with R's precedence into
  ``Formula``/``Binary``/``Paren``/``Num``/``Sym``/``Dollar``/``FormulaCall`` nodes; operators
  ``~ + - * / : ^ | ||`` and ``%in%``; transformations only from ``FORMULA_TRANSFORMS``, each with
  exactly one argument (a comma cannot be sent inside an encoded formula), whose argument is
  arithmetic (``+ - * /``, unary signs, parentheses, numbers, variables, nested transformations)
  without ``^`` (the client cannot send ``I(x^2)``: ``Iyyyx^2zzz`` is an R syntax error).

Whitespace: spaces and tabs between tokens. A newline is accepted only inside a call's
parentheses (R's ``deparse`` breaks long calls there, e.g. DSLite's texts, and R treats it as
whitespace); anywhere else, including inside strings and bare arithmetic, it is rejected.

Names: ASCII R syntactic names only (``[A-Za-z.][A-Za-z0-9._]*``, not ``.`` followed by a digit),
never a reserved word (``function``, ``if``, ``NA``, ``Inf``, ``...``). Backticks, ``;``, ``::``,
``:::``, ``@``, ``<-``, ``->``, ``[``, ``{``, ``!``, ``&``, ``?``, ``#``, ``\\``, non-ASCII
characters (unicode look-alikes) and control characters are rejected wherever they appear.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from r_server import calltree as ct
from r_server.errors import CallRejected

__all__ = [
    "FORMULA_TRANSFORMS",
    "MAX_ARGS",
    "MAX_DOLLAR_CHAIN",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "MAX_STRING_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_TREE_DEPTH",
    "Rejected",
    "decode_formula_text",
    "is_syntactic_name",
    "parse_aggregate",
    "parse_assign",
    "parse_formula",
    "tree_depth",
]

MAX_TEXT_LENGTH = 64 * 1024
"""Longest call text accepted (characters)."""
MAX_STRING_LENGTH = 8 * 1024
"""Longest string literal (characters); dataFrameDS's column list is the longest legitimate one."""
MAX_NAME_LENGTH = 256
"""Longest name (R allows 10,000 bytes; column names of real tables are far shorter)."""
MAX_NESTING = 64
"""Deepest nesting of parentheses, calls and unary signs."""
MAX_TREE_DEPTH = 256
"""Deepest tree (a chain ``a + b + ...`` is as deep as it is long)."""
MAX_ARGS = 32
"""Most arguments in one call (lmerSLMADS2 has nine)."""
MAX_DOLLAR_CHAIN = 4
"""Most ``$`` in one reference (``D$BMI`` has one)."""
MAX_TOKENS = 8192
"""Most tokens in one text."""

FORMULA_TRANSFORMS: frozenset[str] = frozenset(
    {
        "I",
        "abs",
        "as.factor",
        "as.numeric",
        "exp",
        "factor",
        "log",
        "log10",
        "log1p",
        "log2",
        "offset",
        "sqrt",
    }
)
"""Functions a formula may apply to its variables: single-argument transformations that
dsBaseClient can send encoded (``logyyyBMIzzz``, ``Iyyyageppp10zzz``) and that lme4/glm evaluate
in the model frame. ``offset(x)`` is sendable too (ds.lmerSLMA only warns) and is kept for parity."""

FORMULA_CODES: tuple[tuple[str, str], ...] = (
    ("xxx", "|"),
    ("yyy", "("),
    ("zzz", ")"),
    ("ppp", "/"),
    ("qqq", ":"),
)
"""dsBase's decoding, in dsBase's order (lmerSLMADS2: gsub xxx, yyy, zzz, ppp, qqq)."""

_RESERVED = frozenset(
    {
        "if",
        "else",
        "repeat",
        "while",
        "function",
        "for",
        "next",
        "break",
        "in",
        "Inf",
        "NaN",
        "NA",
        "NA_integer_",
        "NA_real_",
        "NA_character_",
        "NA_complex_",
    }
)
_KEYWORDS = frozenset({"TRUE", "FALSE", "NULL"})

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")
_NAME_CHARS = _NAME_START | frozenset("0123456789_")
_DIGITS = frozenset("0123456789")

# Characters with a specific rejection message (anything else outside the grammar is "unexpected").
_FORBIDDEN: dict[str, str] = {
    "`": "backticks are not allowed",
    ";": "';' is not allowed",
    "@": "'@' is not allowed",
    "[": "indexing with '[' is not allowed",
    "]": "indexing with ']' is not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    "!": "'!' is not allowed",
    "&": "'&' is not allowed",
    "?": "'?' is not allowed",
    "#": "comments are not allowed",
    "\\": "backslashes are not allowed",
    "<": "'<' (comparison or assignment) is not allowed",
    ">": "'>' (comparison or assignment) is not allowed",
    "|": "an unencoded '|' is not allowed (formulas must be sent encoded: | -> xxx)",
}


# -- errors -----------------------------------------------------------------------------------


def _snippet(text: str, pos: int, width: int = 24) -> str:
    """A short, printable excerpt of ``text`` around ``pos`` (never the whole input)."""
    start = max(0, pos - width // 2)
    piece = text[start : start + width]
    shown = piece.encode("ascii", "backslashreplace").decode("ascii")
    shown = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in shown)
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(text) else ""
    return f"{prefix}{shown}{suffix}"


class Rejected(CallRejected):
    """A CallRejected that records the stage that refused the text (for fuzzing statistics).

    ``stage`` is "lexer" (characters, tokens, sizes), "parser" (call/arithmetic/formula syntax) or
    "arguments" (allow-list, signature and string-content checks in ``r_server.functions``).
    """

    def __init__(self, message: str, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


def _reject(message: str, text: str | None = None, pos: int | None = None, *, stage: str = "parser") -> Rejected:
    if text is not None and pos is not None:
        message = f"{message} (at character {pos + 1}: {_snippet(text, pos)})"
    return Rejected(f"call rejected: {message}", stage)


def _lex_reject(message: str, text: str | None = None, pos: int | None = None) -> Rejected:
    return _reject(message, text, pos, stage="lexer")


# -- lexer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One lexeme. ``kind``: NAME, NUM, STR, KW (TRUE/FALSE/NULL), OP, EOF."""

    kind: str
    text: str
    pos: int
    value: str = ""  # a string literal's content


_OPERATORS = ("%in%", "(", ")", ",", "=", "~", "+", "-", "*", "/", "^", "$", ":")


class _Lexer:
    def __init__(self, text: str, *, newlines_in_parens: bool, formula: bool = False) -> None:
        self.text = text
        self.newlines_in_parens = newlines_in_parens
        self.formula = formula  # decoded formula text: '|', '||' are operators here

    def tokens(self) -> list[Token]:
        text = self.text
        out: list[Token] = []
        depth = 0
        i = 0
        n = len(text)
        while i < n:
            c = text[i]
            if c in " \t":
                i += 1
                continue
            if c == "\n":
                if not (self.newlines_in_parens and depth > 0):
                    raise _lex_reject("newlines are only accepted inside a call's parentheses", text, i)
                i += 1
                continue
            if ord(c) > 126:
                raise _lex_reject("non-ASCII characters are not allowed", text, i)
            if ord(c) < 32 or ord(c) == 127:
                raise _lex_reject("control characters are not allowed", text, i)
            if len(out) >= MAX_TOKENS:
                raise _lex_reject(f"more than {MAX_TOKENS} tokens")
            if c in _NAME_START and not (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
                j = i + 1
                while j < n and text[j] in _NAME_CHARS:
                    j += 1
                word = text[i:j]
                out.append(self._word(word, i))
                i = j
                continue
            if c in _DIGITS or c == ".":
                j = self._number_end(i)
                out.append(Token("NUM", text[i:j], i))
                i = j
                continue
            if c in "\"'":
                j = text.find(c, i + 1)
                body_end = j if j >= 0 else n
                body = text[i + 1 : body_end]
                for k, ch in enumerate(body):
                    if ch == "\\":
                        raise _lex_reject("escape sequences in strings are not allowed", text, i + 1 + k)
                    if ch == "\n" or ch == "\r":
                        raise _lex_reject("newlines in strings are not allowed", text, i + 1 + k)
                    if ord(ch) > 126:
                        raise _lex_reject("non-ASCII characters are not allowed", text, i + 1 + k)
                    if ord(ch) < 32:
                        raise _lex_reject("control characters are not allowed", text, i + 1 + k)
                if j < 0:
                    raise _lex_reject("unterminated string", text, i)
                if len(body) > MAX_STRING_LENGTH:
                    raise _lex_reject(f"string longer than {MAX_STRING_LENGTH} characters", text, i)
                out.append(Token("STR", text[i : j + 1], i, body))
                i = j + 1
                continue
            if c == ":" and text.startswith("::", i):
                raise _lex_reject("namespace access ('::' / ':::') is not allowed", text, i)
            if text.startswith(("<-", "->"), i):
                raise _lex_reject("assignment is not allowed", text, i)
            if c == "%":
                if text.startswith("%in%", i):
                    out.append(Token("OP", "%in%", i))
                    i += 4
                    continue
                raise _lex_reject("only the %in% special operator is allowed", text, i)
            if self.formula and c == "|":
                op = "||" if text.startswith("||", i) else "|"
                out.append(Token("OP", op, i))
                i += len(op)
                continue
            if c in _FORBIDDEN:
                raise _lex_reject(_FORBIDDEN[c], text, i)
            if c in "()~+-*/^$,=:":
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                out.append(Token("OP", c, i))
                i += 1
                continue
            raise _lex_reject(f"unexpected character {c!r}", text, i)
        out.append(Token("EOF", "", n))
        return out

    def _word(self, word: str, pos: int) -> Token:
        if word in _KEYWORDS:
            return Token("KW", word, pos)
        if word in _RESERVED or word == "..." or (word.startswith("..") and word[2:].isdigit()):
            raise _lex_reject(f"reserved word {word!r} is not allowed", self.text, pos)
        if len(word) > MAX_NAME_LENGTH:
            raise _lex_reject(f"name longer than {MAX_NAME_LENGTH} characters", self.text, pos)
        return Token("NAME", word, pos)

    def _number_end(self, i: int) -> int:
        text, n = self.text, len(self.text)
        if text.startswith(("0x", "0X"), i):
            raise _lex_reject("hexadecimal numbers are not allowed", text, i)
        j = i
        while j < n and text[j] in _DIGITS:
            j += 1
        if j < n and text[j] == ".":
            j += 1
            while j < n and text[j] in _DIGITS:
                j += 1
        if j < n and text[j] in "eE":
            k = j + 1
            if k < n and text[k] in "+-":
                k += 1
            if k >= n or text[k] not in _DIGITS:
                raise _lex_reject("malformed number", text, i)
            while k < n and text[k] in _DIGITS:
                k += 1
            j = k
        if j < n and text[j] == "L":
            # R's integer literals, as deparse() writes them (1L): plain digits only, within R's integers
            if not text[i:j].isdigit() or int(text[i:j]) > 2**31 - 1:
                raise _lex_reject("integer literals (L suffix) are only accepted as plain digits up to "
                                  "2147483647", text, i)
            j += 1
        if j < n and (text[j] in _NAME_CHARS or text[j] in "ij"):
            raise _lex_reject("malformed number", text, i)
        if j - i > 64:
            raise _lex_reject("number literal too long", text, i)
        return j


def _lex(text: str, *, newlines_in_parens: bool = True) -> list[Token]:
    if not isinstance(text, str):
        raise _lex_reject("the call must be text")
    if len(text) > MAX_TEXT_LENGTH:
        raise _lex_reject(f"text longer than {MAX_TEXT_LENGTH} characters ({len(text)})")
    if "\r" in text:
        raise _lex_reject("carriage returns are not allowed", text, text.index("\r"))
    return _Lexer(text, newlines_in_parens=newlines_in_parens).tokens()


def is_syntactic_name(name: str) -> bool:
    """Whether ``name`` is an ASCII R syntactic name that is not reserved (``D``, ``D.comp``)."""
    if not name or len(name) > MAX_NAME_LENGTH or name[0] not in _NAME_START:
        return False
    if name[0] == "." and len(name) > 1 and name[1] in _DIGITS:
        return False
    if any(c not in _NAME_CHARS for c in name):
        return False
    if name in _RESERVED or name in _KEYWORDS or name == "...":
        return False
    return not (name.startswith("..") and name[2:].isdigit())


def _number(tok: Token) -> ct.Num:
    value = float(tok.text.removesuffix("L"))
    if math.isinf(value):
        raise _lex_reject(f"number {tok.text[:20]!r} is out of range")
    return ct.Num(value=value, text=tok.text)


# -- tree depth -------------------------------------------------------------------------------


def _children(node: ct.Expr) -> tuple[ct.Expr, ...]:
    if isinstance(node, ct.Dollar):
        return (node.obj,)
    if isinstance(node, ct.Unary):
        return (node.operand,)
    if isinstance(node, ct.Binary):
        return (node.left, node.right)
    if isinstance(node, ct.Paren):
        return (node.inner,)
    if isinstance(node, ct.FormulaCall):
        return node.args
    if isinstance(node, ct.Formula):
        return (node.rhs,) if node.lhs is None else (node.lhs, node.rhs)
    if isinstance(node, ct.Call):
        return tuple(a.value for a in node.args)
    return ()


def tree_depth(node: ct.Expr) -> int:
    """Depth of a call tree (a leaf is 1), computed without recursion."""
    best = 0
    stack: list[tuple[ct.Expr, int]] = [(node, 1)]
    while stack:
        cur, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in _children(cur))
    return best


def _check_depth(node: ct.Expr) -> None:
    if tree_depth(node) > MAX_TREE_DEPTH:
        raise _reject(f"expression nested deeper than {MAX_TREE_DEPTH} levels")


# -- the call / arithmetic parser -------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens of one call text."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.toks = tokens
        self.i = 0
        self.nesting = 0

    # token helpers
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def is_op(self, op: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "OP" and t.text == op

    def advance(self) -> Token:
        t = self.peek()
        self.i += 1
        return t

    def expect_op(self, op: str, what: str) -> Token:
        if not self.is_op(op):
            raise self.unexpected(what)
        return self.advance()

    def unexpected(self, expected: str) -> CallRejected:
        t = self.peek()
        found = "end of text" if t.kind == "EOF" else repr(t.text if len(t.text) <= 20 else t.text[:20] + "...")
        return _reject(f"expected {expected} but found {found}", self.text, t.pos)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise _reject(f"nesting deeper than {MAX_NESTING} levels", self.text, self.peek().pos)

    def leave(self) -> None:
        self.nesting -= 1

    def expect_eof(self) -> None:
        if self.peek().kind != "EOF":
            raise self.unexpected("end of text")

    # calls
    def call(self) -> ct.Call:
        name_tok = self.advance()
        if name_tok.kind != "NAME":
            self.i -= 1
            raise self.unexpected("a function name")
        self.expect_op("(", "'(' after the function name")
        self.enter()
        args: list[ct.Arg] = []
        if not self.is_op(")"):
            while True:
                if len(args) >= MAX_ARGS:
                    raise _reject(f"more than {MAX_ARGS} arguments", self.text, self.peek().pos)
                args.append(self.argument(name_tok.text, len(args) + 1))
                if self.is_op(","):
                    self.advance()
                    continue
                break
        self.expect_op(")", "',' or ')' in the argument list")
        self.leave()
        return ct.Call(func=name_tok.text, args=tuple(args))

    def argument(self, func: str, index: int) -> ct.Arg:
        name: str | None = None
        if self.peek().kind == "NAME" and self.is_op("=", 1):
            name = self.advance().text
            self.advance()
        elif self.peek().kind == "STR" and self.is_op("=", 1):
            raise _reject("quoted argument names are not allowed", self.text, self.peek().pos)
        start = self.i
        end = self._argument_end(start)
        if any(t.kind == "OP" and t.text == "~" for t in self.toks[start:end]):
            formula = parse_formula_tokens(self.text, self.toks[start:end])
            self.i = end
            return ct.Arg(name=name, value=formula)
        value = self.simple_value(func, index)
        return ct.Arg(name=name, value=value)

    def _argument_end(self, start: int) -> int:
        depth = 0
        j = start
        while True:
            t = self.toks[j]
            if t.kind == "EOF":
                return j
            if t.kind == "OP":
                if t.text == "(":
                    depth += 1
                elif t.text == ")":
                    if depth == 0:
                        return j
                    depth -= 1
                elif t.text == "," and depth == 0:
                    return j
            j += 1

    def simple_value(self, func: str, index: int) -> ct.Expr:
        t = self.peek()
        if t.kind == "STR":
            self.advance()
            return ct.Str(t.value)
        if t.kind == "KW":
            self.advance()
            if t.text == "NULL":
                return ct.Null()
            return ct.Bool(t.text == "TRUE")
        if t.kind == "NUM":
            self.advance()
            return _number(t)
        if t.kind == "OP" and t.text in "-+" and self.peek(1).kind == "NUM":
            self.advance()
            return ct.Unary(t.text, _number(self.advance()))
        if t.kind == "NAME":
            if self.is_op("(", 1):
                if t.text == "list" and func != "list":
                    return self.list_value()
                raise _reject(f"argument {index} of {func}(): nested function calls are not allowed", self.text, t.pos)
            ref = self.reference()
            if not (self.is_op(",") or self.is_op(")")):
                raise _reject(
                    f"argument {index} of {func}(): expressions are not allowed as arguments",
                    self.text,
                    self.peek().pos,
                )
            return ref
        raise self.unexpected(f"argument {index} of {func}() (a string, number, TRUE/FALSE, NULL, name or formula)")

    def list_value(self) -> ct.Call:
        """``list(a, D$x, "s", 1, name = b)`` as an argument (dsBaseClient's ds.c and ds.list send it): one
        level only, each element a simple value (a ``list`` inside it is refused as a nested call)."""
        call = self.call()
        if not (self.is_op(",") or self.is_op(")")):
            raise _reject("expressions are not allowed as arguments", self.text, self.peek().pos)
        return call

    def reference(self) -> ct.Sym | ct.Dollar:
        t = self.advance()
        node: ct.Sym | ct.Dollar = ct.Sym(t.text)
        hops = 0
        while self.is_op("$"):
            dollar = self.advance()
            field = self.peek()
            if field.kind != "NAME":
                raise self.unexpected("a name after '$'")
            self.advance()
            hops += 1
            if hops > MAX_DOLLAR_CHAIN:
                raise _reject(f"more than {MAX_DOLLAR_CHAIN} '$' in a row", self.text, dollar.pos)
            node = ct.Dollar(node, field.text)
        if self.is_op("("):
            raise _reject("calling the result of '$' is not allowed", self.text, self.peek().pos)
        return node

    # bare arithmetic (assign right-hand side): + - * / ^, unary signs, parentheses
    def arith_sum(self) -> ct.Expr:
        node = self.arith_product()
        while self.is_op("+") or self.is_op("-"):
            op = self.advance().text
            node = ct.Binary(op, node, self.arith_product())
        return node

    def arith_product(self) -> ct.Expr:
        node = self.arith_unary()
        while self.is_op("*") or self.is_op("/"):
            op = self.advance().text
            node = ct.Binary(op, node, self.arith_unary())
        return node

    def _signed(self, again: Callable[[], ct.Expr], inner: Callable[[], ct.Expr]) -> ct.Expr:
        """A leading ``-``/``+`` applied to ``again()`` (signs nest), else ``inner()``."""
        if self.is_op("-") or self.is_op("+"):
            op = self.advance().text
            self.enter()
            operand = again()
            self.leave()
            return ct.Unary(op, operand)
        return inner()

    def arith_unary(self) -> ct.Expr:
        return self._signed(self.arith_unary, self.arith_power)

    def arith_power(self) -> ct.Expr:
        base = self.arith_primary()
        if self.is_op("^"):
            self.advance()
            self.enter()
            exponent = self.arith_unary()  # R: ^ is right-associative and binds a unary sign on its right
            self.leave()
            return ct.Binary("^", base, exponent)
        return base

    def arith_primary(self) -> ct.Expr:
        t = self.peek()
        if t.kind == "NUM":
            self.advance()
            return _number(t)
        if t.kind == "NAME":
            if self.is_op("(", 1):
                raise _reject("function calls are not allowed inside arithmetic", self.text, t.pos)
            return self.reference()
        if self.is_op("("):
            self.advance()
            self.enter()
            inner = self.arith_sum()
            self.expect_op(")", "')'")
            self.leave()
            return ct.Paren(inner)
        if t.kind in ("STR", "KW"):
            raise _reject("only names, numbers and + - * / ^ are allowed in arithmetic", self.text, t.pos)
        raise self.unexpected("a name, number or '('")


def parse_aggregate(text: str) -> ct.Call:
    """Parse an aggregate call text (``colnamesDS("D")``) into a ``Call``; CallRejected otherwise.

    Only the form ``name(arguments)`` is accepted; whether ``name`` is allowed and its arguments
    fit its signature is ``r_server.functions.check_call``'s job.
    """
    tokens = _lex(text)
    p = _Parser(text, tokens)
    if p.peek().kind != "NAME" or not p.is_op("(", 1):
        raise _reject('an aggregate must be a single function call such as colnamesDS("D")', text, 0)
    call = p.call()
    p.expect_eof()
    _check_depth(call)
    return call


def parse_assign(text: str) -> ct.Call | ct.Expr:
    """Parse the right-hand side of an assign: one function call, or bare arithmetic.

    ``completeCasesDS("D")`` gives a ``Call`` (check it with ``check_call(..., "assign", ...)``);
    ``D$BMI/D$BMI`` gives arithmetic nodes (check them with ``check_arith``).
    """
    tokens = _lex(text)
    p = _Parser(text, tokens)
    if p.peek().kind == "NAME" and p.is_op("(", 1):
        call = p.call()
        if p.peek().kind != "EOF":
            raise _reject("a function call must be the whole right-hand side of an assign", text, p.peek().pos)
        _check_depth(call)
        return call
    if "\n" in text:
        raise _reject("newlines are not allowed in arithmetic", text, text.index("\n"))
    expr = p.arith_sum()
    p.expect_eof()
    _check_depth(expr)
    return expr


# -- formulas ---------------------------------------------------------------------------------


def decode_formula_text(text: str) -> str:
    """dsBase's decoding of an encoded formula: plain replacements, in dsBase's order."""
    for code, char in FORMULA_CODES:
        text = text.replace(code, char)
    return text


_FORMULA_RAW_OPS = frozenset({"~", "+", "-", "*", "^", "$", "%in%", "(", ")"})


def parse_formula_tokens(text: str, raw: list[Token]) -> ct.Formula:
    """Build a Formula from the raw tokens of one encoded formula argument.

    Every name token is decoded (``decode_formula_text``) and re-lexed; the pieces are joined as
    token streams, so decoding can never glue two tokens together.
    """
    pieces: list[Token] = []
    for tok in raw:
        if tok.kind == "NAME":
            decoded = decode_formula_text(tok.text)
            sub = _Lexer(decoded, newlines_in_parens=False, formula=True).tokens()[:-1]
            pieces.extend(Token(s.kind, s.text, tok.pos, s.value) for s in sub)
        elif tok.kind == "NUM" or (tok.kind == "OP" and tok.text in _FORMULA_RAW_OPS):
            pieces.append(tok)
        elif tok.kind == "OP" and tok.text in ("/", ":"):
            raise _reject(f"an unencoded {tok.text!r} in a formula (send it encoded)", text, tok.pos)
        elif tok.kind == "STR":
            raise _reject("strings are not allowed in a formula", text, tok.pos)
        elif tok.kind == "KW":
            raise _reject(f"{tok.text} is not allowed in a formula", text, tok.pos)
        else:
            raise _reject(f"{tok.text!r} is not allowed in a formula", text, tok.pos)
    end_pos = raw[-1].pos + len(raw[-1].text) if raw else len(text)
    pieces.append(Token("EOF", "", end_pos))
    fp = _FormulaParser(text, pieces)
    formula = fp.formula()
    _check_depth(formula)
    return formula


def parse_formula(encoded: str) -> ct.Formula:
    """Parse one encoded formula text on its own (``BMI~trtGrp+yyy1xxxidDoctorzzz``)."""
    tokens = _lex(encoded, newlines_in_parens=False)
    return parse_formula_tokens(encoded, tokens[:-1])


class _FormulaParser(_Parser):
    """R's precedence for the formula subset: ~ < | || < + - < * / < %in% < : < unary < ^ < $."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        super().__init__(text, tokens)
        self.call_depth = 0  # > 0 inside a transformation's argument

    def formula(self) -> ct.Formula:
        lhs: ct.Expr | None = None
        if not self.is_op("~"):
            lhs = self.f_or()
        self.expect_op("~", "'~' in the formula")
        rhs = self.f_or()
        if self.is_op("~"):
            raise _reject("a formula may contain only one '~'", self.text, self.peek().pos)
        self.expect_eof_formula()
        return ct.Formula(lhs=lhs, rhs=rhs)

    def expect_eof_formula(self) -> None:
        if self.peek().kind != "EOF":
            raise self.unexpected("an operator or the end of the formula")

    def _binary_loop(self, ops: tuple[str, ...], operand: Callable[[], ct.Expr]) -> ct.Expr:
        node = operand()
        while self.peek().kind == "OP" and self.peek().text in ops:
            tok = self.advance()
            if self.call_depth and tok.text in ("|", "||", "%in%", ":"):
                raise _reject(f"{tok.text!r} is not allowed inside a transformation", self.text, tok.pos)
            node = ct.Binary(tok.text, node, operand())
        return node

    def f_or(self) -> ct.Expr:
        return self._binary_loop(("|", "||"), self.f_sum)

    def f_sum(self) -> ct.Expr:
        return self._binary_loop(("+", "-"), self.f_product)

    def f_product(self) -> ct.Expr:
        return self._binary_loop(("*", "/"), self.f_special)

    def f_special(self) -> ct.Expr:
        return self._binary_loop(("%in%",), self.f_colon)

    def f_colon(self) -> ct.Expr:
        return self._binary_loop((":",), self.f_unary)

    def f_unary(self) -> ct.Expr:
        return self._signed(self.f_unary, self.f_power)

    def f_power(self) -> ct.Expr:
        base = self.f_primary()
        if self.is_op("^"):
            tok = self.advance()
            if self.call_depth:
                raise _reject("'^' is not allowed inside a transformation", self.text, tok.pos)
            self.enter()
            exponent = self.f_unary()
            self.leave()
            return ct.Binary("^", base, exponent)
        return base

    def f_primary(self) -> ct.Expr:
        t = self.peek()
        if t.kind == "NUM":
            self.advance()
            return _number(t)
        if t.kind == "NAME":
            if self.is_op("(", 1):
                return self.transformation()
            return self.reference()
        if self.is_op("("):
            self.advance()
            self.enter()
            inner = self.f_or() if not self.call_depth else self.f_sum()
            self.expect_op(")", "')' in the formula")
            self.leave()
            return ct.Paren(inner)
        if self.is_op("~"):
            raise _reject("a formula may contain only one '~'", self.text, t.pos)
        raise self.unexpected("a variable, number or '(' in the formula")

    def transformation(self) -> ct.FormulaCall:
        name = self.advance()
        if name.text not in FORMULA_TRANSFORMS:
            allowed = ", ".join(sorted(FORMULA_TRANSFORMS))
            message = f"function {name.text!r} is not allowed in a formula (allowed: {allowed})"
            raise _reject(message, self.text, name.pos)
        self.advance()  # "("
        self.enter()
        self.call_depth += 1
        if self.is_op(")"):
            raise _reject(f"{name.text}() needs one argument", self.text, self.peek().pos)
        arg = self.f_sum()
        if self.is_op(","):
            raise _reject(f"{name.text}() takes exactly one argument", self.text, self.peek().pos)
        self.expect_op(")", f"')' closing {name.text}(")
        self.call_depth -= 1
        self.leave()
        return ct.FormulaCall(func=name.text, args=(arg,))
