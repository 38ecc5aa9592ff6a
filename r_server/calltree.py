"""Typed trees of the DataSHIELD calls a study accepts.

The parser (``r_server.grammar``) turns client text into these nodes and nothing else; the R
bridge builds R objects from them with constructors, never by parsing or evaluating text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Null:
    """R's NULL literal."""


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Num:
    """A numeric literal. ``text`` is the literal as sent; ``value`` is R's double for it."""

    value: float
    text: str


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Sym:
    """A bare name (a symbol of the user's session, or a column inside a formula)."""

    name: str


@dataclass(frozen=True)
class Dollar:
    """``obj$name`` (``D$BMI``)."""

    obj: Sym | Dollar
    name: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-" | "+"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    """Arithmetic in a bare assign (``+ - * / ^``) or a formula operator.

    Formula operators after decoding: ``+ - * / : ^ | ||`` and ``%in%``.
    """

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Paren:
    inner: Expr


@dataclass(frozen=True)
class FormulaCall:
    """An allow-listed transformation inside a formula: ``log(x)``, ``factor(g)``, ``I(x/10)``."""

    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Formula:
    """``lhs ~ rhs`` with the whole formula decoded (xxx -> |, yyy -> (, zzz -> ), ppp -> /, qqq -> :)."""

    lhs: Expr | None
    rhs: Expr


@dataclass(frozen=True)
class Arg:
    name: str | None
    value: Expr


@dataclass(frozen=True)
class Call:
    """A call of an allow-listed server function: ``lmerSLMADS2(...)``, ``exists("D")``."""

    func: str
    args: tuple[Arg, ...]


Expr = Null | Bool | Num | Str | Sym | Dollar | Unary | Binary | Paren | FormulaCall | Formula | Call
