"""A small parser of the dsBaseClient R calls that validation cases give as text.

Enough R for ``ds.fn(arg = value, value, ...)``: string, number and logical literals, NULL, NA,
``c(...)``, ``a:b``, unary minus, and ``datasources = conns[1]`` / ``conns[2:3]`` /
``conns[c(1, 3)]`` / ``conns[-1]``. The parsed call binds its arguments to the R function's formals
as R does (exact names, then unique partial names, then positions) and maps them to the Python
function's keywords. Nothing is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CallSyntaxError", "ConnsIndex", "ParsedCall", "RFunction", "bind", "parse_call"]


class CallSyntaxError(ValueError):
    """The call text is outside the small R subset this parser reads."""


@dataclass(frozen=True)
class ConnsIndex:
    """``conns[...]``: R's 1-based (or negative, excluding) indexes into the login's connections."""

    indexes: tuple[int, ...]

    def select(self, names: Sequence[str]) -> list[str]:
        if all(i < 0 for i in self.indexes):
            dropped = {-i for i in self.indexes}
            return [n for k, n in enumerate(names, start=1) if k not in dropped]
        if any(i <= 0 or i > len(names) for i in self.indexes):
            raise IndexError("subscript out of bounds")
        return [names[i - 1] for i in self.indexes]


@dataclass(frozen=True)
class ParsedCall:
    function: str
    args: tuple[tuple[str | None, Any], ...]  # (name or None, value) in the order written


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<name>(?:[A-Za-z.][A-Za-z0-9._]*)(?:::[A-Za-z.][A-Za-z0-9._]*)?)
  | (?P<op>[()\[\],=:\-+])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise CallSyntaxError(f"cannot read the call text at {text[pos:pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (text is not None and token[1] != text):
            raise CallSyntaxError(f"expected {text or 'more input'}, found {token}")
        self.pos += 1
        return token

    def call(self) -> ParsedCall:
        kind, name = self.take()
        if kind != "name":
            raise CallSyntaxError(f"a call starts with a function name, not {name!r}")
        args = self.arguments()
        if self.peek() is not None:
            raise CallSyntaxError(f"unexpected text after the call: {self.peek()}")
        return ParsedCall(name.split("::")[-1], tuple(args))

    def arguments(self) -> list[tuple[str | None, Any]]:
        self.take("(")
        args: list[tuple[str | None, Any]] = []
        if self.peek() == ("op", ")"):
            self.take(")")
            return args
        while True:
            name = None
            nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
            token = self.peek()
            if token is not None and token[0] in ("name", "string") and nxt == ("op", "="):
                name = _unquote(token[1]) if token[0] == "string" else token[1]
                self.pos += 2
            args.append((name, self.expression()))
            if self.take()[1] == ")":
                return args

    def expression(self) -> Any:
        left = self.unary()
        if self.peek() == ("op", ":"):
            self.take(":")
            right = self.unary()
            return _colon(left, right)
        return left

    def unary(self) -> Any:
        token = self.peek()
        if token in (("op", "-"), ("op", "+")):
            self.take()
            value = self.unary()
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CallSyntaxError("unary minus applies to numbers only")
            return -value if token == ("op", "-") else value
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return _unquote(text)
        if kind == "number":
            return int(text[:-1]) if text.endswith("L") else float(text)
        if kind == "op" and text == "(":
            value = self.expression()
            self.take(")")
            return value
        if kind != "name":
            raise CallSyntaxError(f"unexpected {text!r}")
        constants = {"TRUE": True, "T": True, "FALSE": False, "F": False, "NULL": None}
        if text in constants:
            return constants[text]
        if text == "NA":
            from pydsbase.rvalue import NA

            return NA
        if text == "c" and self.peek() == ("op", "("):
            items = self.arguments()
            flat: list[Any] = []
            for _name, value in items:
                flat.extend(value if isinstance(value, list) else [value])
            return flat
        if text == "conns" and self.peek() == ("op", "["):
            self.take("[")
            index = self.expression()
            self.take("]")
            values = index if isinstance(index, list) else [index]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise CallSyntaxError("conns[...] takes numeric indexes")
            return ConnsIndex(tuple(int(v) for v in values))
        raise CallSyntaxError(f"unsupported name {text!r} in a call argument")


def _colon(left: Any, right: Any) -> list[float]:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
        raise CallSyntaxError("a:b takes numbers")
    step = 1 if right >= left else -1
    return [float(v) for v in range(int(left), int(right) + step, step)]


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def parse_call(text: str | Sequence[str]) -> ParsedCall:
    """Parse one call, given as text or as deparsed lines."""
    if not isinstance(text, str):
        text = "\n".join(text)
    return _Parser(text).call()


@dataclass(frozen=True)
class RFunction:
    """An R function's formals (in order) and the Python keyword each maps to."""

    python: Callable[..., Any]
    formals: tuple[tuple[str, str], ...]  # (R formal name, Python keyword)


def bind(call: ParsedCall, function: RFunction) -> dict[str, Any]:
    """R's argument matching: exact names, then unique partial names, then positions."""
    formals = [r for r, _ in function.formals]
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    pending: list[tuple[str, Any]] = []
    for name, value in call.args:
        if name is None:
            positional.append(value)
        elif name in formals:
            if name in bound:
                raise CallSyntaxError(f"formal argument {name!r} matched by multiple actual arguments")
            bound[name] = value
        else:
            pending.append((name, value))
    for name, value in pending:
        matches = [f for f in formals if f.startswith(name) and f not in bound]
        if len(matches) != 1:
            raise CallSyntaxError(f"unused argument ({name} = ...)")
        bound[matches[0]] = value
    free = [f for f in formals if f not in bound]
    if len(positional) > len(free):
        raise CallSyntaxError("unused positional argument")
    for formal, value in zip(free, positional, strict=False):
        bound[formal] = value
    keyword = dict(function.formals)
    return {keyword[f]: v for f, v in bound.items()}
