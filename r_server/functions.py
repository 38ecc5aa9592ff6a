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
    "deparse_call",
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
    LIST = "list(...)"  # a list(...) call of simple values (ds.c, ds.list)


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
    dots: tuple[tuple[str | None, ct.Expr], ...] = ()
    """The arguments that R's ``...`` collects (a variadic signature: ``c``, ``list``), in order."""

    def r_args(self) -> list[tuple[str | None, ct.Expr]]:
        """The arguments in the order R's function receives them: the formals, then ``...``."""
        return [*self.args.items(), *self.dots]


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
    lookup: str | None = None
    """The call in which dsBase looks a string's object up, as R reports it in ``Error in <call> :``
    (``{}`` is the sent text): by default ``eval(parse(text = <param>), envir = parent.frame())``."""


@dataclass(frozen=True)
class Signature:
    func: str
    params: tuple[Param, ...]
    r_name: str | None = None
    """Our R function (``r_server/R``) that implements ``func``, where the names differ: ``exists`` is
    ``ds_exists``, as a function named ``exists`` would mask ``base::exists`` for our own R code."""
    dots: Param | None = None
    """R's ``...`` after the formals (``c(...)``, ``list(...)``): its kinds and checks apply to every element."""
    r_function: str | None = None
    """The function Opal runs for ``func`` (its methods' ``func``): ``dsBase::<func>`` unless given."""

    @property
    def opal_function(self) -> str:
        return self.r_function or f"dsBase::{self.func}"

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


def _name_text(value: str, func: str, param: str) -> None:
    """A string shaped like an object reference that dsBase never looks up (ds.isNA's name: is.na of the text)."""
    _object_ref(value, func, param)
    return None


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
    """A number, or a word (an R name of at most 40 characters) that dsBase's ``as.numeric`` makes NA: the
    dsBaseClient suite sends ``control_value = 'nothing'`` and expects lme4's error for the NA."""
    if not ((_NUMBER_RE.fullmatch(value) and len(value) <= 64) or (len(value) <= 40 and is_syntactic_name(value))):
        raise _bad(func, param, "a number", value)
    return None


_LS_FILTER_RE = re.compile(r"[A-Za-z0-9._:*?]{1,80}")


def _ls_filter(value: str, func: str, param: str) -> None:
    """lsDS's search filter: a glob of name characters (``*`` arrives as ``_:A:_``, ``?``)."""
    pattern = value.replace("_:A:_", "*")
    if not _LS_FILTER_RE.fullmatch(value) or not is_syntactic_name(re.sub(r"[*?]", "x", pattern)):
        raise _bad(func, param, "a search filter: an R name with wildcards '*' and '?' (at most 80 characters)", value)
    return None


def _plain_names(value: str, func: str, param: str) -> None:
    parts = value.split(",")
    if len(parts) > 256 or not all(is_syntactic_name(p) and len(p) <= _MAX_REF for p in parts):
        raise _bad(func, param, "comma-separated R names", value)
    return None


def _any_text(value: str, func: str, param: str) -> None:
    """A string used as data, never as a name or code (listDS's element names): bounded length only."""
    if len(value) > _MAX_REF:
        raise _bad(func, param, f"a string of at most {_MAX_REF} characters", value)
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
    lookup: str | None = None,
) -> Param:
    return Param(name, frozenset(kinds), default, required and default is None, check, must_exist, bare_name, lookup)


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


def _dots() -> Param:
    """``...`` of c() and list(): values, strings as data, names of session objects (which must exist)."""
    return _p("...", S, NUM, L, N, SYM, check=_any_text, must_exist=True)


def _signatures(*sigs: Signature) -> Mapping[str, Signature]:
    return {s.func: s for s in sigs}


AGGREGATE_FUNCTIONS: Mapping[str, Signature] = _signatures(
    # base::exists as dsBase maps it; only x and where (no envir/inherits/mode from clients)
    Signature(
        "exists",
        # x: a name to look for; "D$x" is a name no object has (R answers FALSE), as the suite asks
        (_p("x", S, check=_name_text), _p("where", SYM, required=False, must_exist=True, bare_name=True)),
        r_name="ds_exists",
        r_function="base::exists",
    ),
    Signature("colnamesDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    Signature("classDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    # ds.isNA sends the name as a string: dsBase's is.na() of that string is FALSE, never a lookup
    Signature("isNaDS", (_p("xvect", SYM, S, must_exist=True, check=_name_text),)),
    Signature("checkNegValueDS", (_p("weights", SYM, must_exist=True),)),
    Signature("testObjExistsDS", (_p("test.obj.name", S, check=_name_text),)),
    Signature("messageDS", (_p("message.object.name", S, check=_plain_name),)),
    Signature("listDisclosureSettingsDS", ()),
    Signature("lsDS", (_p("search.filter", S, N, default=ct.Null(), check=_ls_filter), _p("env.to.search", NUM))),
    Signature("dimDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    Signature("lengthDS", (_p("x", S, check=_object_ref, must_exist=True),)),
    Signature("namesDS", (_p("xname.transmit", S, check=_object_ref, must_exist=True),)),
    Signature("levelsDS", (_p("x", SYM, must_exist=True),)),
    Signature("rmDS", (_p("x.names.transmit", S, check=_plain_names),)),
    Signature(
        "asListDS", (_p("x.name", S, check=_object_ref, must_exist=True), _p("newobj", S, check=_plain_name))
    ),
    Signature("numNaDS", (_p("xvect", SYM, must_exist=True),)),
    Signature("isValidDS", (_p("obj", SYM, must_exist=True),)),
    Signature("quantileMeanDS", (_p("xvect", SYM, must_exist=True),)),
    Signature("table1DDS", (_p("xvect", SYM, must_exist=True),)),
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
    Signature("asCharacterDS", (_p("x.name", S, check=_object_ref, must_exist=True),)),
    Signature("asIntegerDS", (_p("x.name", S, check=_object_ref, must_exist=True),)),
    Signature("asLogicalDS", (_p("x.name", S, check=_object_ref, must_exist=True),)),
    Signature("asDataMatrixDS", (_p("x.name", S, check=_object_ref, must_exist=True),)),
    Signature("asListDS", (_p("x.name", S, check=_object_ref, must_exist=True), _p("newobj", S, check=_plain_name))),
    Signature("cDS", (_p("objs", ArgKind.LIST, check=_any_text),)),
    Signature(
        "listDS",
        (_p("input", ArgKind.LIST, N, default=ct.Null(), check=_any_text),
         _p("eltnames", ArgKind.LIST, N, default=ct.Null(), check=_any_text)),
    ),
    # dsBase maps c to dsBase::vectorDS and list to base::list (both take R's ...)
    Signature("c", (), r_name="ds_c", r_function="dsBase::vectorDS", dots=_dots()),
    Signature("list", (), r_name="ds_list", r_function="base::list", dots=_dots()),
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
    if isinstance(node, ct.Call) and node.func == "list":
        return ArgKind.LIST
    return None


def _fold_number(node: ct.Expr) -> ct.Expr:
    if isinstance(node, ct.Unary) and isinstance(node.operand, ct.Num):
        num = node.operand
        if node.op == "-":
            return ct.Num(-num.value, "-" + num.text)
        return num
    return node


def missing_object(name: str, call: str | None = None) -> RCallError:
    """R's error for a missing object, as dsBase's clients see it: ``object 'X' not found``, raised in
    ``call`` (R's deparsed text of the call that looked it up, if known)."""
    return RCallError(f"object '{name}' not found", call=call)


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
    supplied, dots = _match_arguments(sig, call)
    args: dict[str, ct.Expr] = {}
    refs: dict[str, tuple[ObjectRef, ...]] = {}
    must_exist: list[tuple[ObjectRef, str]] = []
    for param in sig.params:
        node = supplied.get(param.name)
        if node is None:
            if param.default is not None:
                args[param.name] = param.default
            elif param.required:
                raise _rejected(f'{sig.func}(): argument "{param.name}" is missing, with no default')
            continue
        node, found = _check_argument(sig.func, param, param.name, node)
        args[param.name] = node
        if found:
            refs[param.name] = found
            if param.must_exist:
                where = _lookup_call(sig, param, node, call)
                must_exist.extend((ref, where) for ref in found)
    bound_dots: list[tuple[str | None, ct.Expr]] = []
    if sig.dots is not None:
        for index, (name, node) in enumerate(dots, start=1):
            node, found = _check_argument(sig.func, sig.dots, f"...{index}", node)
            bound_dots.append((name, node))
            if found and sig.dots.must_exist:
                where = _lookup_call(sig, sig.dots, node, call)
                must_exist.extend((ref, where) for ref in found)
    # Every grammar/type check passed: only now look names up, in R's evaluation order.
    for ref, where in must_exist:
        if not scope.has_symbol(ref.root):
            raise missing_object(ref.root, where)
    return BoundCall(func=sig.func, args=args, refs=refs, dots=tuple(bound_dots))


def _lookup_call(sig: Signature, param: Param, node: ct.Expr, call: ct.Call) -> str:
    """The R call dsBase is in when it finds an object missing: a string is looked up by ``eval(parse(...))``
    inside the server function; a name, when R evaluates the call's argument (the call as Opal runs it)."""
    if isinstance(node, ct.Str):
        if param.lookup is not None:
            return param.lookup.format(node.value)
        return f"eval(parse(text = {param.name}), envir = parent.frame())"
    return deparse_call(ct.Call(sig.opal_function, call.args))


def deparse_call(call: ct.Call) -> str:
    """R's ``deparse()`` of a checked call (strings, numbers, names, ``$``, ``list(...)``)."""
    parts = [f"{a.name} = {_deparse(a.value)}" if a.name else _deparse(a.value) for a in call.args]
    return f"{call.func}({', '.join(parts)})"


def _deparse(node: ct.Expr) -> str:
    match node:
        case ct.Str(value=v):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case ct.Num(text=t):
            return t
        case ct.Bool(value=v):
            return "TRUE" if v else "FALSE"
        case ct.Null():
            return "NULL"
        case ct.Sym(name=n):
            return n
        case ct.Dollar(obj=o, name=n):
            return f"{_deparse(o)}${n}"
        case ct.Unary(op=op, operand=x):
            return f"{op}{_deparse(x)}"
        case ct.Call():
            return deparse_call(node)
    return "..."


_LIST_ELEMENTS = frozenset({ArgKind.STRING, ArgKind.NUMBER, ArgKind.LOGICAL, ArgKind.NULL, ArgKind.SYMBOL})


def _check_argument(func: str, param: Param, label: str, node: ct.Expr) -> tuple[ct.Expr, tuple[ObjectRef, ...]]:
    """One argument's node kind and content; returns the node (numbers folded) and its object references.

    A ``list(...)`` argument's elements are checked one by one: simple values only, each string by the
    parameter's string check, each name a reference."""
    node_kind = _kind_of(node)
    if node_kind not in param.kinds:
        allowed = " or ".join(sorted(k.value for k in param.kinds))
        got = node_kind.value if node_kind else "an expression"
        raise _rejected(f"{func}(): argument '{label}' must be {allowed}, not {got}")
    if param.bare_name and not isinstance(node, ct.Sym):
        raise _rejected(f"{func}(): argument '{label}' must be a plain name")
    node = _fold_number(node)
    if isinstance(node, ct.Str) and param.string_check is not None:
        return node, param.string_check(node.value, func, label) or ()
    if isinstance(node, ct.Sym | ct.Dollar):
        return node, (_symbol_ref(node, func, label),)
    if isinstance(node, ct.Call):  # list(...): ArgKind.LIST
        element = Param(label, _LIST_ELEMENTS, string_check=param.string_check)
        items: list[ct.Arg] = []
        found: list[ObjectRef] = []
        for i, arg in enumerate(node.args, start=1):
            if arg.name is not None and not is_syntactic_name(arg.name):
                raise _rejected(f"{func}(): argument '{label}' has an element name that is not an R name")
            value, refs = _check_argument(func, element, f"{label}[[{i}]]", arg.value)
            items.append(ct.Arg(arg.name, value))
            found.extend(refs)
        if len(items) > _MAX_LIST:
            raise _rejected(f"{func}(): argument '{label}' has more than {_MAX_LIST} elements")
        return ct.Call("list", tuple(items)), tuple(found)
    return node, ()


_MAX_LIST = 256


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:40] + "..."


def _match_arguments(sig: Signature, call: ct.Call) -> tuple[dict[str, ct.Expr], list[tuple[str | None, ct.Expr]]]:
    """R's matching: exact names, then positions; with ``...``, other names and extra positions go there
    (in the order of the call)."""
    names = [p.name for p in sig.params]
    supplied: dict[str, ct.Expr] = {}
    positional: list[tuple[int, ct.Expr]] = []
    dots: list[tuple[int, str | None, ct.Expr]] = []
    for index, arg in enumerate(call.args):
        if arg.name is None:
            positional.append((index, arg.value))
            continue
        if arg.name not in names:
            if sig.dots is not None:
                dots.append((index, arg.name, arg.value))
                continue
            raise _rejected(f"{sig.func}(): unused argument ({_short(arg.name)} = ...)")
        if arg.name in supplied:
            raise _rejected(f'{sig.func}(): formal argument "{arg.name}" matched by multiple actual arguments')
        supplied[arg.name] = arg.value
    free = [n for n in names if n not in supplied]
    if len(positional) > len(free):
        if sig.dots is None:
            raise _rejected(f"{sig.func}(): too many arguments ({len(call.args)} for {len(names)})")
        dots.extend((index, None, value) for index, value in positional[len(free):])
        positional = positional[: len(free)]
    for name, (_, value) in zip(free, positional, strict=False):
        supplied[name] = value
    return supplied, [(name, value) for _, name, value in sorted(dots, key=lambda d: d[0])]


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

