"""The study's allow-lists: which server functions a client may call, with which arguments.

These are the only lists of server function names: the R side runs exactly these, built from them
when the bridge starts (``r_server.rbridge``), each mapped to our R function of the same name (or
``Signature.r_name``).

Aggregate and assign functions are listed separately (a function is callable only in the mode
dsBase declares it for). Each entry is a signature: the R formals in order, the node types each
accepts, a default when R has one, and a check of a string argument's content. ``check_call``
binds a parsed ``Call`` to its signature the way R matches arguments (exact names first, then the
remaining arguments by position; no partial matching, no ``...``) and returns a ``BoundCall``.

Name checks. Strings that dsBase evaluates as R code (``"D"``, ``"D$BMI"``, ``"D,w,o"``) are
accepted only as *object references*: an R syntactic name followed by at most one ``$column``
(``ObjectRef``); the R side resolves them by lookup, never by parsing. Where dsBase's function
would fail because an object is missing, and the lookup is the first thing that can fail in it,
``check_call`` raises ``RCallError`` with R's bare message (``object 'X' not found``), exactly what
a DataSHIELD client gets from dsBase. Elsewhere (after a privacy-level or argument check that dsBase
runs first, or in lmerSLMADS2's offset/weights, which it evaluates after the formula's variables)
the R implementation must produce the message itself, in dsBase's order. Formula variables are
only checked for their charset here: lme4/glm produce the reference messages for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from r_server import calltree as ct
from r_server.errors import CallRejected, RCallError
from r_server.grammar import Rejected, is_syntactic_name

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "ALLOW_LISTS",
    "ASSIGN_FUNCTIONS",
    "ArgKind",
    "BoundCall",
    "NameScope",
    "ObjectRef",
    "Param",
    "Signature",
    "check_arith",
    "check_call",
    "missing_object",
    "parse_object_ref",
    "parse_object_refs",
]


class NameScope(Protocol):
    """What the checks need to know about the caller's session."""

    def has_symbol(self, name: str) -> bool:
        """Whether ``name`` is a symbol of the session (not of R's base environment)."""
        ...

    def columns(self, symbol: str) -> list[str] | None:
        """The column names of a session data frame; None if ``symbol`` is not a data frame."""
        ...


class ArgKind(Enum):
    FORMULA = "formula"
    STRING = "string"
    NULL = "NULL"
    LOGICAL = "TRUE/FALSE"
    NUMBER = "number"
    SYMBOL = "name"  # Sym or Dollar


@dataclass(frozen=True)
class ObjectRef:
    """A reference to a session object, ``root`` or ``root$column`` (from a string or a name)."""

    root: str
    column: str | None = None

    def __str__(self) -> str:
        return self.root if self.column is None else f"{self.root}${self.column}"


@dataclass(frozen=True)
class BoundCall:
    """A call matched to its signature: every supplied or defaulted parameter, by R name.

    ``args`` maps each parameter name to its node: Num for numbers (a sign folded in: ``-2`` is
    ``Num(-2.0, "-2")``), Str, Bool, Null, Sym/Dollar, Formula. A parameter with no default that
    R's function can do without (``exists``'s ``where``) is absent when not supplied.
    ``refs`` maps each parameter whose string names session objects to the parsed references, in
    order (``dataFrameDS``'s ``vectors = "D,w"`` -> ``(ObjectRef("D"), ObjectRef("w"))``); a
    ``V2.name = "26"`` that is a number literal has no entry.
    """

    func: str
    args: dict[str, ct.Expr]
    refs: dict[str, tuple[ObjectRef, ...]] = field(default_factory=dict)


StringCheck = Callable[[str, str, str], tuple[ObjectRef, ...] | None]
"""(value, func, param) -> references (or None); raises CallRejected for bad content."""


@dataclass(frozen=True)
class Param:
    name: str
    kinds: frozenset[ArgKind]
    default: ct.Expr | None = None
    required: bool = True
    string_check: StringCheck | None = None
    must_exist: bool = False
    """Raise R's ``object 'X' not found`` here if a referenced root object is missing."""
    bare_name: bool = False
    """A SYMBOL argument must be a plain name (``exists``'s ``where``), not ``D$x``."""


@dataclass(frozen=True)
class Signature:
    func: str
    params: tuple[Param, ...]
    r_name: str | None = None
    """Our R function (``r_server/R``) that implements ``func``, where the names differ: ``exists`` is
    ``ds_exists``, as a function named ``exists`` would mask ``base::exists`` for our own R code."""

    @property
    def implementation(self) -> str:
        """The name of the R function the bridge runs for ``func``."""
        return self.r_name or self.func


# -- string content checks -------------------------------------------------------------------

_MAX_REF = 160
_NUMBER_RE = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NA_ASSIGN = frozenset({"NA", "0", "1"})


def _bad(func: str, param: str, what: str, value: str) -> CallRejected:
    shown = value if len(value) <= 40 else value[:40] + "..."
    shown = shown.encode("ascii", "backslashreplace").decode("ascii")
    return _rejected(f"{func}(): argument '{param}' must be {what}, not {shown!r}")


def _rejected(message: str) -> Rejected:
    return Rejected(f"call rejected: {message}", "arguments")


def parse_object_ref(text: str) -> ObjectRef | None:
    """``"D"`` -> ObjectRef("D"); ``"D$BMI"`` -> ObjectRef("D", "BMI"); None if not a reference."""
    if len(text) > _MAX_REF:
        return None
    parts = text.split("$")
    if len(parts) > 2 or not all(is_syntactic_name(p) for p in parts):
        return None
    return ObjectRef(parts[0], parts[1] if len(parts) == 2 else None)


def parse_object_refs(text: str) -> tuple[ObjectRef, ...] | None:
    """A comma-separated list of references (dataFrameDS's ``vectors``); None if any is invalid."""
    refs = [parse_object_ref(part) for part in text.split(",")]
    if not refs or any(r is None for r in refs):
        return None
    return tuple(r for r in refs if r is not None)


def _object_ref(value: str, func: str, param: str) -> tuple[ObjectRef, ...]:
    ref = parse_object_ref(value)
    if ref is None:
        raise _bad(func, param, "the name of a session object (name or name$column)", value)
    return (ref,)


def _object_refs(value: str, func: str, param: str) -> tuple[ObjectRef, ...]:
    refs = parse_object_refs(value)
    if refs is None or len(refs) > 256:
        raise _bad(func, param, "comma-separated names of session objects", value)
    return refs


def _plain_name(value: str, func: str, param: str) -> None:
    if not is_syntactic_name(value):
        raise _bad(func, param, "an R name", value)
    return None


def _ref_or_number(value: str, func: str, param: str) -> tuple[ObjectRef, ...] | None:
    if _NUMBER_RE.fullmatch(value) and len(value) <= 64:
        return None
    ref = parse_object_ref(value)
    if ref is None:
        raise _bad(func, param, "a session object name or a number", value)
    return (ref,)


def _column_names(value: str, func: str, param: str) -> None:
    parts = value.split(",")
    if len(parts) > 4096 or not all(parse_object_ref(p) is not None for p in parts):
        raise _bad(func, param, "comma-separated column names", value)
    return None


def _number_list(value: str, func: str, param: str) -> None:
    items = value.split(",")
    if len(items) > 4096 or not all(_NUMBER_RE.fullmatch(item.strip()) for item in items):
        raise _bad(func, param, "comma-separated column numbers", value)
    return None


def _option_name(value: str, func: str, param: str) -> None:
    if len(value) > 80 or not is_syntactic_name(value):
        raise _bad(func, param, "an option name (an R name of at most 80 characters)", value)
    return None


def _na_assign(value: str, func: str, param: str) -> None:
    if value not in _NA_ASSIGN:
        raise _bad(func, param, '"NA", "0" or "1"', value)
    return None


def _number_text(value: str, func: str, param: str) -> None:
    if not (_NUMBER_RE.fullmatch(value) and len(value) <= 64):
        raise _bad(func, param, "a number", value)
    return None


# -- the allow-lists ---------------------------------------------------------------------------

F, S, N, L, NUM, SYM = (ArgKind.FORMULA, ArgKind.STRING, ArgKind.NULL, ArgKind.LOGICAL, ArgKind.NUMBER, ArgKind.SYMBOL)


def _p(
    name: str,
    *kinds: ArgKind,
    default: ct.Expr | None = None,
    required: bool = True,
    check: StringCheck | None = None,
    must_exist: bool = False,
    bare_name: bool = False,
) -> Param:
    return Param(name, frozenset(kinds), default, required and default is None, check, must_exist, bare_name)


def _lmer_params() -> tuple[Param, ...]:
    return (
        _p("formula", F),
        _p("offset", S, N, check=_object_ref),
        _p("weights", S, N, check=_object_ref),
        _p("dataName", S, N, check=_object_ref, must_exist=True),
        _p("REML", L, default=ct.Bool(True)),
        _p("control_type", S, N, check=_option_name),
        _p("control_value.transmit", S, NUM, N, check=_number_text),
        _p("optimizer", S, N, check=_option_name),
        _p("verbose", NUM, L, default=ct.Num(0.0, "0")),
    )


def _subset_params() -> tuple[Param, ...]:
    return (
        _p("df.name", S, N, default=ct.Null(), check=_object_ref),
        _p("V1.name", S, N, default=ct.Null(), check=_ref_or_number),
        _p("V2.name", S, N, default=ct.Null(), check=_ref_or_number),
        _p("Boolean.operator.n", NUM, N, default=ct.Null()),
        _p("keep.cols", S, N, default=ct.Null(), check=_number_list),
        _p("rm.cols", S, N, default=ct.Null(), check=_number_list),
        _p("keep.NAs", L, N, default=ct.Null()),
    )


def _signatures(*sigs: Signature) -> Mapping[str, Signature]:
    return {s.func: s for s in sigs}


AGGREGATE_FUNCTIONS: Mapping[str, Signature] = _signatures(
    # base::exists as dsBase maps it; only x and where (no envir/inherits/mode from clients)
    Signature(
        "exists",
        (_p("x", S, check=_plain_name), _p("where", SYM, required=False, must_exist=True, bare_name=True)),
        r_name="ds_exists",
    ),
    Signature("colnamesDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    Signature("classDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    Signature("isNaDS", (_p("xvect", SYM, must_exist=True),)),
    Signature("checkNegValueDS", (_p("weights", SYM, must_exist=True),)),
    Signature("testObjExistsDS", (_p("test.obj.name", S, check=_plain_name),)),
    Signature("messageDS", (_p("message.object.name", S, check=_plain_name),)),
    Signature("listDisclosureSettingsDS", ()),
    Signature("lmerSLMADS2", _lmer_params()),
    Signature("dataFrameSubsetDS1", _subset_params()),
)
"""Aggregate functions (dsBase 6.3.0 names and formals) that the dsBaseClient workflows call."""

ASSIGN_FUNCTIONS: Mapping[str, Signature] = _signatures(
    Signature("lmerSLMADS.assign", _lmer_params()),
    Signature("completeCasesDS", (_p("x1.transmit", S, check=_object_ref, must_exist=True),)),
    Signature(
        "dataFrameDS",
        (
            _p("vectors", S, N, default=ct.Null(), check=_object_refs),
            _p("r.names", S, N, default=ct.Null(), check=_column_names),
            _p("ch.rows", L, default=ct.Bool(False)),
            _p("ch.names", L, default=ct.Bool(True)),
            _p("clnames", S, N, default=ct.Null(), check=_column_names),
            _p("strAsFactors", L, default=ct.Bool(True)),
            _p("completeCases", L, default=ct.Bool(False)),
        ),
    ),
    Signature(
        "BooleDS",
        (
            _p("V1.name", S, N, default=ct.Null(), check=_ref_or_number),
            _p("V2.name", S, NUM, N, default=ct.Null(), check=_ref_or_number),
            _p("Boolean.operator.n", NUM, N, default=ct.Null()),
            _p("na.assign.text", S, check=_na_assign),
            _p("numeric.output", L, default=ct.Bool(True)),
        ),
    ),
    Signature("dataFrameSubsetDS2", _subset_params()),
)
"""Assign functions (dsBase 6.3.0 names and formals) that the dsBaseClient workflows call."""

ALLOW_LISTS: Mapping[Literal["aggregate", "assign"], Mapping[str, Signature]] = {
    "aggregate": AGGREGATE_FUNCTIONS,
    "assign": ASSIGN_FUNCTIONS,
}
"""The allow-lists by kind: the only source of what a client may call. ``r_server.rbridge`` hands them
to R when it starts, and R runs nothing else (``.ds_allow`` in ``r_server/R/zz_bridge.R``)."""


# -- binding and checking ---------------------------------------------------------------------


def _kind_of(node: ct.Expr) -> ArgKind | None:
    if isinstance(node, ct.Formula):
        return ArgKind.FORMULA
    if isinstance(node, ct.Str):
        return ArgKind.STRING
    if isinstance(node, ct.Null):
        return ArgKind.NULL
    if isinstance(node, ct.Bool):
        return ArgKind.LOGICAL
    if isinstance(node, ct.Num):
        return ArgKind.NUMBER
    if isinstance(node, ct.Unary) and isinstance(node.operand, ct.Num):
        return ArgKind.NUMBER
    if isinstance(node, ct.Sym | ct.Dollar):
        return ArgKind.SYMBOL
    return None


def _fold_number(node: ct.Expr) -> ct.Expr:
    if isinstance(node, ct.Unary) and isinstance(node.operand, ct.Num):
        num = node.operand
        if node.op == "-":
            return ct.Num(-num.value, "-" + num.text)
        return num
    return node


def missing_object(name: str) -> RCallError:
    """R's error for a missing object, as dsBase's clients see it: ``object 'X' not found``."""
    return RCallError(f"object '{name}' not found")


def _root_of(node: ct.Sym | ct.Dollar) -> str:
    cur: ct.Expr = node
    while isinstance(cur, ct.Dollar):
        cur = cur.obj
    assert isinstance(cur, ct.Sym)
    return cur.name


def _symbol_ref(node: ct.Sym | ct.Dollar, func: str, param: str) -> ObjectRef:
    if isinstance(node, ct.Sym):
        return ObjectRef(node.name)
    if isinstance(node.obj, ct.Sym):
        return ObjectRef(node.obj.name, node.name)
    raise _rejected(f"{func}(): argument '{param}' allows at most one '$'")


def check_call(call: ct.Call, kind: Literal["aggregate", "assign"], scope: NameScope) -> BoundCall:
    """Match ``call`` to its allow-listed signature and check its names against ``scope``.

    Raises ``CallRejected`` (function not allowed in this mode, unknown/duplicate/missing
    argument, wrong node type, bad string content) or ``RCallError`` (R's message for a missing
    object where dsBase's function would fail with it first).
    """
    sig = ALLOW_LISTS[kind].get(call.func)
    if sig is None:
        other = ALLOW_LISTS["assign" if kind == "aggregate" else "aggregate"]
        if call.func in other:
            raise _rejected(f"{call.func}() is not allowed in {kind} calls")
        raise _rejected(f"function {_short(call.func)}() is not allowed")
    supplied = _match_arguments(sig, call)
    args: dict[str, ct.Expr] = {}
    refs: dict[str, tuple[ObjectRef, ...]] = {}
    must_exist: list[ObjectRef] = []
    for param in sig.params:
        node = supplied.get(param.name)
        if node is None:
            if param.default is not None:
                args[param.name] = param.default
            elif param.required:
                raise _rejected(f'{sig.func}(): argument "{param.name}" is missing, with no default')
            continue
        node_kind = _kind_of(node)
        if node_kind not in param.kinds:
            allowed = " or ".join(sorted(k.value for k in param.kinds))
            got = node_kind.value if node_kind else "an expression"
            raise _rejected(f"{sig.func}(): argument '{param.name}' must be {allowed}, not {got}")
        if param.bare_name and not isinstance(node, ct.Sym):
            raise _rejected(f"{sig.func}(): argument '{param.name}' must be a plain name")
        node = _fold_number(node)
        args[param.name] = node
        if isinstance(node, ct.Str) and param.string_check is not None:
            found = param.string_check(node.value, sig.func, param.name)
            if found:
                refs[param.name] = found
        elif isinstance(node, ct.Sym | ct.Dollar):
            refs[param.name] = (_symbol_ref(node, sig.func, param.name),)
        if param.must_exist:
            must_exist.extend(refs.get(param.name, ()))
    # Every grammar/type check passed: only now look names up, in R's evaluation order.
    for ref in must_exist:
        if not scope.has_symbol(ref.root):
            raise missing_object(ref.root)
    return BoundCall(func=sig.func, args=args, refs=refs)


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:40] + "..."


def _match_arguments(sig: Signature, call: ct.Call) -> dict[str, ct.Expr]:
    names = [p.name for p in sig.params]
    supplied: dict[str, ct.Expr] = {}
    positional: list[ct.Expr] = []
    for arg in call.args:
        if arg.name is None:
            positional.append(arg.value)
            continue
        if arg.name not in names:
            raise _rejected(f"{sig.func}(): unused argument ({_short(arg.name)} = ...)")
        if arg.name in supplied:
            raise _rejected(f'{sig.func}(): formal argument "{arg.name}" matched by multiple actual arguments')
        supplied[arg.name] = arg.value
    free = [n for n in names if n not in supplied]
    if len(positional) > len(free):
        raise _rejected(f"{sig.func}(): too many arguments ({len(call.args)} for {len(names)})")
    for name, value in zip(free, positional, strict=False):
        supplied[name] = value
    return supplied


_ARITH_OPS = frozenset({"+", "-", "*", "/", "^"})


def check_arith(expr: ct.Expr, scope: NameScope) -> tuple[ObjectRef, ...]:
    """Check a bare arithmetic assign (``D$BMI/D$BMI``); return its references in R's order.

    Only Num, Sym, Dollar (one ``$``), Paren, Unary and Binary ``+ - * / ^`` are accepted
    (CallRejected otherwise). A missing root object raises RCallError with R's message; R evaluates
    operands left to right, so the first missing one is reported, as R would.
    """
    refs: list[ObjectRef] = []
    stack: list[ct.Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ct.Num):
            continue
        if isinstance(node, ct.Sym | ct.Dollar):
            ref = _symbol_ref(node, "assign", "expression")
            if not scope.has_symbol(ref.root):
                raise missing_object(ref.root)
            refs.append(ref)
        elif isinstance(node, ct.Paren):
            stack.append(node.inner)
        elif isinstance(node, ct.Unary) and node.op in ("-", "+"):
            stack.append(node.operand)
        elif isinstance(node, ct.Binary) and node.op in _ARITH_OPS:
            stack.append(node.right)
            stack.append(node.left)
        else:
            raise _rejected("an assign must be an allowed function call or arithmetic (+ - * / ^) of names and numbers")
    return tuple(refs)

