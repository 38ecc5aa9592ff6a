"""What may reach the R bridge, and what a refusal must look like.

``tree_violations`` is the independent re-check of a call tree at the bridge's door: the function is
allow-listed for its mode, every node is of an allowed kind, formula transformations are in
``FORMULA_TRANSFORMS``, names are syntactic, strings printable ASCII, numbers finite. It shares no
code path with ``r_server.functions.check_call`` beyond the allow-list tables themselves, so a gap
in the checks shows up as a violation (an "execution of something not allow-listed").

``RecordingBridge`` stands in for ``r_server.rbridge.RBridge`` (no R): it records every call that
reaches it and counts violations. ``GuardedBridge`` wraps the real bridge the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from r_server import calltree as ct
from r_server.errors import StudyError
from r_server.functions import AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS
from r_server.grammar import FORMULA_TRANSFORMS, is_syntactic_name
from r_server.rbridge import RBridge, RObject, default_bridge

__all__ = ["GuardedBridge", "RecordingBridge", "error_is_clear", "tree_violations"]

_FORMULA_OPS = frozenset({"~", "+", "-", "*", "/", ":", "^", "|", "||", "%in%"})
_ARITH_OPS = frozenset({"+", "-", "*", "/", "^"})
_NUM_TEXT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INT_TEXT = re.compile(r"\d+L")  # R's integer literal as deparse() writes it (DSOpal sends 1L)


def _node_violations(node: ct.Expr, *, in_formula: bool) -> list[str]:
    out: list[str] = []
    stack: list[tuple[ct.Expr, bool]] = [(node, in_formula)]
    while stack:
        cur, formula = stack.pop()
        match cur:
            case ct.Null() | ct.Bool():
                if formula:
                    out.append("literal TRUE/FALSE/NULL inside a formula")
            case ct.Num(value=v, text=t):
                integer = _INT_TEXT.fullmatch(t) is not None and int(t[:-1]) <= 2**31 - 1
                if not math.isfinite(v) or not (_NUM_TEXT.fullmatch(t) or integer):
                    out.append(f"bad number {t!r}")
            case ct.Str(value=v):
                if formula:
                    out.append("string inside a formula")
                if any(not (" " <= c <= "~") for c in v):
                    out.append("string with non-printable or non-ASCII characters")
            case ct.Sym(name=n):
                if not is_syntactic_name(n):
                    out.append(f"non-syntactic name {n!r}")
            case ct.Dollar(obj=o, name=n):
                if not is_syntactic_name(n):
                    out.append(f"non-syntactic field {n!r}")
                stack.append((o, formula))
            case ct.Unary(op=op, operand=x):
                if op not in ("-", "+"):
                    out.append(f"unary operator {op!r}")
                stack.append((x, formula))
            case ct.Binary(op=op, left=left, right=right):
                if op not in (_FORMULA_OPS if formula else _ARITH_OPS):
                    out.append(f"operator {op!r}")
                stack.extend(((left, formula), (right, formula)))
            case ct.Paren(inner=x):
                stack.append((x, formula))
            case ct.FormulaCall(func=f, args=args):
                if not formula:
                    out.append("transformation outside a formula")
                if f not in FORMULA_TRANSFORMS:
                    out.append(f"formula function {f!r} not allow-listed")
                if len(args) != 1:
                    out.append(f"{f}() with {len(args)} arguments")
                stack.extend((a, True) for a in args)
            case ct.Formula(lhs=lhs, rhs=rhs):
                if formula:
                    out.append("nested formula")
                stack.append((rhs, True))
                if lhs is not None:
                    stack.append((lhs, True))
            case ct.Call(func=f):
                out.append(f"nested call {f!r}")
            case _:
                out.append(f"unknown node {type(cur).__name__}")
    return out


def tree_violations(kind: str, func: str | None, args: Sequence[tuple[str | None, ct.Expr]]) -> list[str]:
    """Why this call must not run (empty when it may): ``func`` None means bare arithmetic."""
    out: list[str] = []
    if func is not None:
        table = AGGREGATE_FUNCTIONS if kind == "aggregate" else ASSIGN_FUNCTIONS
        sig = table.get(func)
        if sig is None:
            return [f"{func!r} is not an allow-listed {kind} function"]
        names = {p.name for p in sig.params}
        for name, _ in args:
            if sig.dots is None and (name is None or name not in names):
                out.append(f"argument {name!r} is not a formal of {func}")
    for _, value in args:
        if isinstance(value, ct.Call) and value.func == "list":  # list(...) of plain values (ds.c, ds.list)
            for element in value.args:
                if isinstance(element.value, ct.Call | ct.Formula):
                    out.append(f"a {type(element.value).__name__} inside list()")
                else:
                    out.extend(_node_violations(element.value, in_formula=False))
            continue
        out.extend(_node_violations(value, in_formula=False))
    return out


_R_MISSING = re.compile(r"object '[A-Za-z.][A-Za-z0-9._]*' not found")


def error_is_clear(exc: BaseException) -> bool:
    """A refusal a person can act on: a StudyError with a short, printable, specific message."""
    if not isinstance(exc, StudyError):
        return False
    msg = exc.message
    if not isinstance(msg, str) or not 10 <= len(msg) <= 600:
        return False
    if any(not (" " <= c <= "~") for c in msg):
        return False
    return msg.startswith("call rejected: ") or bool(_R_MISSING.fullmatch(msg)) or msg.startswith("not a valid")


@dataclass
class RecordingBridge:
    """A stand-in for RBridge (no R): a fixed session of data frames and vectors; records calls."""

    symbols: dict[str, list[str] | None] = field(
        default_factory=lambda: {
            "D": ["idPatient", "BMI", "trtGrp", "Male", "idDoctor", "age"],
            "w": None,
            "o": None,
        }
    )
    calls: int = 0
    violations: list[tuple[str, str | None, str]] = field(default_factory=list)
    by_function: dict[str, int] = field(default_factory=dict)

    def new_session(self) -> RObject:
        return RObject(None)

    def has_symbol(self, session: RObject, symbol: str) -> bool:
        return symbol in self.symbols

    def columns(self, session: RObject, symbol: str) -> list[str] | None:
        return self.symbols.get(symbol)

    def _record(self, kind: str, func: str | None, args: Sequence[tuple[str | None, ct.Expr]]) -> None:
        self.calls += 1
        key = func or "<arithmetic>"
        self.by_function[key] = self.by_function.get(key, 0) + 1
        for problem in tree_violations(kind, func, args):
            self.violations.append((kind, func, problem))

    def call(
        self,
        session: RObject,
        kind: str,
        func: str,
        args: Sequence[tuple[str | None, ct.Expr]],
        settings: dict[str, Any],
    ) -> RObject:
        self._record(kind, func, args)
        return RObject(None)

    def evaluate(self, session: RObject, expr: ct.Expr) -> RObject:
        self._record("assign", None, [(None, expr)])
        return RObject(None)

    def assign(self, session: RObject, symbol: str, value: RObject) -> None:
        return None

    def encode(self, value: RObject) -> Any:
        return None


class GuardedBridge:
    """Wraps the process's real bridge, counting every call that reaches R and any that should not.

    Pass it to ``StudyRuntime(bridge=cast(RBridge, GuardedBridge()))``; everything else is delegated.
    """

    def __init__(self, inner: RBridge | None = None) -> None:
        self.inner = inner or default_bridge()
        self.calls = 0
        self.violations: list[tuple[str, str | None, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def call(
        self,
        session: RObject,
        kind: str,
        func: str,
        args: Sequence[tuple[str | None, ct.Expr]],
        settings: dict[str, Any],
    ) -> RObject:
        self.calls += 1
        self.violations.extend((kind, func, p) for p in tree_violations(kind, func, args))
        return self.inner.call(session, kind, func, args, settings)

    def evaluate(self, session: RObject, expr: ct.Expr) -> RObject:
        self.calls += 1
        self.violations.extend(("assign", None, p) for p in tree_violations("assign", None, [(None, expr)]))
        return self.inner.evaluate(session, expr)
