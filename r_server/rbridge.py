"""The one gateway to the embedded R of a study process.

Nothing here touches R at import time: R starts on first use, every access holds one lock, and
only rpy2's low-level ``rinterface`` is used (no conversion rules are activated, globally or
otherwise). Our R files (``r_server/R/*.R``) are sourced into a private environment that is
neither globalenv nor on the search path.

Values reach R as call-tree nodes turned into named R lists (``kind`` = ``sym``, ``dollar``,
``binary``, ``formula``...); the R side builds values and formula objects from them with
``as.name``/``as.call``/``get``: client text is never parsed or evaluated. Results come back as
nodes of the golden README's JSON encoding: R serializes the (scrubbed) value and the client's one
decoder, :func:`pydsbase.rserialize.unserialize`, reads it into :mod:`pydsbase.rvalue`'s model,
doubles bit for bit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pydsbase import rserialize, rvalue
from r_server import calltree as ct
from r_server import functions, lme4_numerics, tables
from r_server.errors import RCallError

R_DIR = Path(__file__).resolve().parent / "R"


@dataclass(frozen=True)
class RObject:
    """An R value held for the caller (a data frame, a session environment); opaque outside."""

    sexp: Any


class RBridge:
    """Owns the embedded R. One instance per process (see :func:`default_bridge`)."""

    def __init__(self, r_dir: str | Path = R_DIR) -> None:
        self._r_dir = Path(r_dir)
        self.fast_csv_bytes = tables.FAST_CSV_BYTES
        self._lock = threading.RLock()
        self._ri: Any = None
        self._env: Any = None
        self.pins: lme4_numerics.Pins | None = None
        self.scrub = True  # environments are scrubbed from every serialized value (off: tests' positive control)
        self._settings_cache: dict[tuple[Any, ...], Any] = {}

    # -- start-up -------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._env is not None:
            return
        import rpy2.rinterface as ri
        from rpy2.rinterface_lib import callbacks

        loader_path = os.environ.get("LD_LIBRARY_PATH")
        ri.initr_simple()
        # R's start-up exports its own LD_LIBRARY_PATH (system library folder first). The loader of this
        # process read the variable long ago, but child processes would inherit it and could load the
        # system's libpython instead of their own interpreter's: put the variable back as it was.
        if loader_path is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
            os.unsetenv("LD_LIBRARY_PATH")
        else:
            os.environ["LD_LIBRARY_PATH"] = loader_path
        self._ri = ri
        self._callbacks = callbacks
        base = ri.baseenv
        base["loadNamespace"](ri.StrSexpVector(["lme4"]))
        env = base["new.env"](parent=ri.globalenv)
        for path in sorted(self._r_dir.glob("*.R")):
            base["sys.source"](ri.StrSexpVector([str(path)]), envir=env, **{"keep.source": ri.BoolSexpVector([False])})
        # R runs only what r_server/functions.py allows, each DataSHIELD name by its R implementation.
        for kind, table in functions.ALLOW_LISTS.items():
            env[".ds_allow"](ri.StrSexpVector([kind]), ri.StrSexpVector(list(table)),
                             ri.StrSexpVector([sig.implementation for sig in table.values()]))
        self._env = env
        # Same doubles on every run and host: see r_server/lme4_numerics.py.
        lme4_path, libr_path = _strings(env[".ds_native_paths"]())
        self.pins = lme4_numerics.pin_all(lme4_path, libr_path)

    def start(self) -> None:
        """Start R (lme4 and our functions loaded) and run nothing else."""
        with self._r():
            pass

    @contextmanager
    def _r(self) -> Iterator[Any]:
        """Hold the lock, start R if needed, and keep what R prints during the call off the console."""
        with self._lock:
            self._start()
            cb = self._callbacks
            saved = (cb.consolewrite_print, cb.consolewrite_warnerror)
            cb.consolewrite_print = _discard
            cb.consolewrite_warnerror = _discard
            try:
                yield self._ri
            finally:
                cb.consolewrite_print, cb.consolewrite_warnerror = saved

    def _fn(self, name: str) -> Callable[..., Any]:
        fn: Callable[..., Any] = self._env[name]
        return fn

    def _guarded(self, result: Any) -> Any:
        """Unpack a ``.ds_guard`` result: the value, or RCallError with R's bare message."""
        fields = dict(zip(result.names, result, strict=True))
        if not _logical(fields["ok"]):
            call = fields.get("call")
            raise RCallError(_strings(fields["message"])[0] if len(fields["message"]) else "R error",
                             call=_strings(call)[0] if call is not None and len(call) else None)
        return fields.get("value", self._ri.NULL)

    # -- node -> R ------------------------------------------------------------------------------

    def _nodes(self, exprs: Sequence[ct.Expr | None], names: Sequence[str] | None = None) -> Any:
        """The R nodes of call-tree expressions (an R list, named when ``names`` is given).

        The trees travel as one character vector of tokens in prefix order (``_tokens``) and R builds
        the same nested lists from them (``.ds_nodes`` in ``r_server/R/zz_bridge.R``): one R object
        crosses the bridge instead of several per node.
        """
        ri = self._ri
        tokens: list[str] = []
        for expr in exprs:
            _tokens(expr, tokens)
        return self._fn(".ds_nodes")(
            ri.StrSexpVector(tokens), ri.NULL if names is None else ri.StrSexpVector(list(names))
        )

    # -- operations -----------------------------------------------------------------------------

    def new_session(self) -> RObject:
        """A fresh session environment (parent globalenv; never attached)."""
        with self._r():
            return RObject(self._fn(".ds_new_session")())

    def call(
        self,
        session: RObject,
        kind: str,
        func: str,
        args: Sequence[tuple[str | None, ct.Expr]],
        settings: dict[str, Any],
    ) -> RObject:
        """Run the allowed server function ``func`` of ``kind`` ("aggregate" or "assign")."""
        with self._r() as ri:
            arg_list = self._nodes([value for _, value in args], [name or "" for name, _ in args])
            result = self._fn(".ds_invoke")(
                ri.StrSexpVector([kind]), ri.StrSexpVector([func]), arg_list, session.sexp, self._settings(settings)
            )
            return RObject(self._guarded(result))

    def evaluate(self, session: RObject, expr: ct.Expr) -> RObject:
        """The value of an arithmetic/name expression (a bare assign) in a session."""
        with self._r():
            return RObject(self._guarded(self._fn(".ds_evaluate")(self._nodes([expr])[0], session.sexp)))

    def assign(self, session: RObject, symbol: str, value: RObject) -> None:
        with self._r() as ri:
            box = ri.ListSexpVector([value.sexp])
            self._guarded(self._fn(".ds_assign")(ri.StrSexpVector([symbol]), box, session.sexp))

    def remove(self, session: RObject, symbol: str) -> None:
        with self._r() as ri:
            self._guarded(self._fn(".ds_rm")(ri.StrSexpVector([symbol]), session.sexp))

    def symbols(self, session: RObject) -> list[str]:
        with self._r():
            return _strings(self._fn(".ds_ls")(session.sexp))

    def has_symbol(self, session: RObject, symbol: str) -> bool:
        with self._r() as ri:
            return _logical(self._fn(".ds_has")(ri.StrSexpVector([symbol]), session.sexp))

    def columns(self, session: RObject, symbol: str) -> list[str] | None:
        with self._r() as ri:
            out = self._fn(".ds_columns")(ri.StrSexpVector([symbol]), session.sexp)
            return None if out is ri.NULL or out.typeof == ri.RTYPES.NILSXP else _strings(out)

    def read_csv(self, path: str | Path) -> RObject:
        """``utils::read.csv(path, header = TRUE)`` (R's own number parser, as DSLite's tables)."""
        with self._r() as ri:
            return RObject(self._guarded(self._fn(".ds_read_csv")(ri.StrSexpVector([str(path)]))))

    def read_csv_typed(self, path: str | Path, variables: Sequence[tuple[str, str, Sequence[str]]]) -> RObject:
        """A CSV read with its data dictionary: ``(name, R class, categories)`` per declared column."""
        with self._r() as ri:
            names = ri.StrSexpVector([v[0] for v in variables])
            classes = ri.StrSexpVector([v[1] for v in variables])
            categories = ri.ListSexpVector([ri.StrSexpVector(list(v[2])) for v in variables])
            return RObject(self._guarded(self._fn(".ds_read_csv_typed")(ri.StrSexpVector([str(path)]), names,
                                                                         classes, categories)))

    def read_table(self, path: str | Path,
                   dictionary: Sequence[tuple[str, str, Sequence[str]]] | None = None) -> RObject:
        """The one loader of a study table file, a data frame: ``TABLE.csv`` exactly as ``utils::read.csv``
        reads it, ``TABLE.parquet`` by :mod:`r_server.tables`' type mapping. The file is read in Python, the
        numbers written into R vectors as they are parsed (R's lock is taken only to make the vectors and the
        frame); a CSV smaller than ``fast_csv_bytes`` (:data:`r_server.tables.FAST_CSV_BYTES`), or one that
        :func:`r_server.tables.read_csv` leaves to R, is read by :meth:`read_csv`. A CSV with
        a data ``dictionary`` (``(name, R class, categories)`` per declared column) is read by
        :meth:`read_csv_typed`."""
        path = Path(path)
        if dictionary is not None and path.suffix == ".csv":
            return self.read_csv_typed(path, dictionary)
        if path.suffix == ".parquet":
            try:
                table = tables.read_parquet(path, self._r_vector)
            except tables.TableError as exc:
                raise RCallError(f"table {path.stem!r} cannot be read: {exc}") from None
        else:
            found = None if path.stat().st_size < self.fast_csv_bytes else tables.read_csv(path, self._r_vector)
            if found is None:
                return self.read_csv(path)
            table = found
        with self._r() as ri:
            specs = []
            while table.columns:  # each column leaves Python as it enters R
                specs.append(self._column(table.columns.pop(0)))
            names = ri.NULL if table.names is None else ri.StrSexpVector(table.names)
            header = ri.StrSexpVector([str(table.header)]) if table.header is not None else ri.NULL
            frame = self._fn(".ds_table_frame")(ri.ListSexpVector(specs), names, header,
                                                ri.IntSexpVector([table.nrows]))
            return RObject(self._guarded(frame))

    def frame_to_arrow(self, frame: RObject) -> Any:
        """A data frame as a pyarrow Table, by the inverse of :mod:`r_server.tables`' Parquet mapping:
        numbers copied from R's memory bit for bit (integer -> int32, double -> float64, NA -> null,
        NaN kept), logical -> bool, character -> string, factor -> dictionary."""
        import pyarrow as pa

        with self._r() as ri:
            names = _strings(ri.baseenv["names"](frame.sexp))
            arrays = []
            for column in frame.sexp:
                levels = column.do_slot("levels") if "levels" in (column.list_attrs() or []) else None
                if column.typeof in (ri.RTYPES.INTSXP, ri.RTYPES.LGLSXP):
                    values = np.frombuffer(column.memoryview(), np.int32).copy()
                    mask = values == tables.NA_INTEGER
                    if levels is not None:
                        codes = pa.array(values - 1, pa.int32(), mask=mask)
                        arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(_strings(levels), pa.string())))
                    elif column.typeof == ri.RTYPES.LGLSXP:
                        arrays.append(pa.array(values != 0, pa.bool_(), mask=mask))
                    else:
                        arrays.append(pa.array(values, pa.int32(), mask=mask))
                elif column.typeof == ri.RTYPES.REALSXP:
                    doubles = np.frombuffer(column.memoryview(), np.float64).copy()
                    mask = doubles.view(np.uint64) == tables.NA_REAL_BITS
                    arrays.append(pa.array(doubles, pa.float64(), mask=mask))
                elif column.typeof == ri.RTYPES.STRSXP:
                    arrays.append(pa.array([None if v is ri.NA_Character else v for v in column], pa.string()))
                else:
                    raise RCallError(f"a column of type {column.typeof} has no Parquet form here")
            return pa.table(arrays, names=names)

    def _r_vector(self, kind: str, n: int) -> tuple[Any, Any]:
        """:func:`r_server.tables.read_csv`'s ``alloc``: a new R vector and a numpy view of its memory."""
        make, dtype = _VECTORS[kind]
        with self._r() as ri:
            vec = ri.baseenv[make](ri.IntSexpVector([n]))
            return (np.frombuffer(vec.memoryview(), dtype) if n else np.empty(0, dtype)), vec

    def _column(self, column: tables.Column) -> Any:
        """An R vector (numbers) or the list ``.ds_table_column`` reads (strings) for one column."""
        ri = self._ri
        if column.handle is not None:  # already in R (``.ds_table_frame`` cuts it to the rows read)
            return column.handle
        if column.text is None:
            assert column.values is not None
            make, dtype = _VECTORS[column.kind]
            return _filled(ri, make, dtype, column.values)
        items: dict[str, Any] = {
            "kind": ri.StrSexpVector([column.kind]),
            "raw": _filled(ri, "raw", np.uint8, np.frombuffer(column.text, np.uint8)),
            "sep": ri.StrSexpVector([column.sep]),
            "n": ri.IntSexpVector([column.count]),
            "na": _filled(ri, "integer", np.int32, np.asarray(column.na if column.na is not None else [], np.int32)),
        }
        if column.kind == "factor":
            assert column.values is not None
            items["codes"] = _filled(ri, "integer", np.int32, column.values)
        spec = ri.ListSexpVector(list(items.values()))
        spec.do_slot_assign("names", ri.StrSexpVector(list(items)))
        return spec

    def select(self, table: RObject, variables: Sequence[str] | None) -> RObject:
        with self._r() as ri:
            wanted = ri.NULL if variables is None else ri.StrSexpVector(list(variables))
            return RObject(self._guarded(self._fn(".ds_select")(table.sexp, wanted)))

    def table_columns(self, table: RObject) -> list[str]:
        with self._r() as ri:
            return _strings(ri.baseenv["colnames"](table.sexp))

    def encode(self, value: RObject) -> Any:
        """The JSON node of an R value (golden README encoding): R's serialization of the scrubbed value
        (:meth:`serialize`) read by the one decoder, :func:`pydsbase.rserialize.unserialize`."""
        data = self.serialize_scrubbed(value)
        try:
            return rvalue.to_node(rserialize.unserialize(data))
        except rserialize.UnserializeError as exc:
            raise RCallError(exc.message) from None

    def serialize(self, value: RObject) -> bytes:
        """R's ``serialize(value, NULL)`` of the scrubbed value (see ``r_server/R/wire.R``)."""
        return self._serialize(value, self.scrub)

    def serialize_scrubbed(self, value: RObject) -> bytes:
        """:meth:`serialize`, scrubbed whatever :attr:`scrub` says (what :meth:`encode` decodes)."""
        return self._serialize(value, True)

    def _serialize(self, value: RObject, scrub: bool) -> bytes:
        with self._r() as ri:
            box = ri.ListSexpVector([value.sexp])
            return _raw_bytes(self._guarded(self._fn(".ds_serialize")(box, ri.BoolSexpVector([scrub]))))

    def to_json(self, value: RObject) -> bytes:
        """Rock's JSON of the scrubbed value, UTF-8 (see ``r_server/R/wire.R``)."""
        with self._r() as ri:
            box = ri.ListSexpVector([value.sexp])
            return _raw_bytes(self._guarded(self._fn(".ds_to_json")(box, ri.BoolSexpVector([self.scrub]))))

    def serialize_strings(self, values: Sequence[str]) -> bytes:
        """R's ``serialize()`` of a character vector (``ls()`` as Opal's symbols route sends it)."""
        with self._r() as ri:
            box = ri.ListSexpVector([ri.StrSexpVector(list(values))])
            return _raw_bytes(self._guarded(self._fn(".ds_serialize")(box, ri.BoolSexpVector([True]))))

    def methods(self, kind: str) -> list[str]:
        """The server functions of ``kind`` ("aggregate" or "assign") our R side will run (asked of R)."""
        with self._r() as ri:
            return _strings(self._fn(".ds_methods")(ri.StrSexpVector([kind])))

    def held_objects(self) -> int:
        """How many R objects Python keeps alive (tables, session environments, values in flight)."""
        if self._ri is None:
            return 0
        from rpy2.rinterface_lib import _rinterface_capi

        with self._lock:
            return len(_rinterface_capi._R_PRESERVED)

    def versions(self) -> dict[str, str]:
        with self._r():
            out = self._fn(".ds_versions")()
            found = {name: _strings(v)[0] for name, v in zip(out.names, out, strict=True)}
            if self.pins is not None:
                found.update(self.pins.describe())
            return found

    # -- arguments ---------------------------------------------------------------------------------

    def _settings(self, settings: dict[str, Any]) -> Any:
        """The R list of a study's disclosure settings: built once per distinct settings (a study has one),
        then the same read-only R object for every call."""
        key = tuple((name, type(value), value) for name, value in settings.items())
        cached = self._settings_cache.get(key)
        if cached is None:
            cached = self._settings_list(settings)
            if len(self._settings_cache) >= 16:
                self._settings_cache.pop(next(iter(self._settings_cache)))
            self._settings_cache[key] = cached
        return cached

    def _settings_list(self, settings: dict[str, Any]) -> Any:
        ri = self._ri
        values = []
        for value in settings.values():
            values.append(ri.StrSexpVector([value]) if isinstance(value, str) else ri.FloatSexpVector([value]))
        vec = ri.ListSexpVector(values)
        vec.do_slot_assign("names", ri.StrSexpVector(list(settings)))
        return vec


# -- helpers ---------------------------------------------------------------------------------------


def _tokens(expr: ct.Expr | None, out: list[str]) -> None:
    """Append the tokens of one node, in prefix order, as ``.ds_nodes`` (r_server/R/zz_bridge.R) reads them."""
    match expr:
        case None | ct.Null():
            out.append("null")
        case ct.Bool(value=v):
            out.append("true" if v else "false")
        case ct.Num(text=text):
            # R reads the literal's text itself (R_strtod, like R's parser): no Python rounding.
            out += ("number", text)
        case ct.Str(value=v):
            out += ("string", v)
        case ct.Sym(name=n):
            out += ("sym", n)
        case ct.Dollar(obj=o, name=n):
            out.append("dollar")
            _tokens(o, out)
            out.append(n)
        case ct.Unary(op=op, operand=x):
            out += ("unary", op)
            _tokens(x, out)
        case ct.Binary(op=op, left=left, right=right):
            out += ("binary", op)
            _tokens(left, out)
            _tokens(right, out)
        case ct.Paren(inner=x):
            out.append("paren")
            _tokens(x, out)
        case ct.FormulaCall(func=f, args=args):
            out += ("call", f, str(len(args)))
            for a in args:
                _tokens(a, out)
        case ct.Formula(lhs=lhs, rhs=rhs):
            out.append("formula")
            if lhs is None:
                out.append("nolhs")
            else:
                out.append("lhs")
                _tokens(lhs, out)
            _tokens(rhs, out)
        case ct.Call(func="list", args=items):
            # list(...) as an argument (ds.c, ds.list): R builds the list from the elements' values
            out += ("list", str(len(items)))
            for item in items:
                out.append(item.name or "")
                _tokens(item.value, out)
        case ct.Call():
            raise RCallError(f"a call of {expr.func} cannot be an argument")
        case _:
            raise TypeError(f"not a call-tree node: {expr!r}")


def _raw_bytes(raw: Any) -> bytes:
    """The bytes of an R raw vector (one copy, read from R's memory)."""
    from rpy2.rinterface_lib import openrlib

    return bytes(openrlib.ffi.buffer(openrlib.rlib.RAW(raw.__sexp__._cdata), len(raw)))


_VECTORS = {"integer": ("integer", np.int32), "logical": ("logical", np.int32), "double": ("numeric", np.float64)}


def _filled(ri: Any, make: str, dtype: Any, values: Any) -> Any:
    """A new R vector (``integer(n)``, ``numeric(n)``, ``logical(n)``, ``raw(n)``) holding ``values``, copied
    into R's memory in one go (bit for bit)."""
    vec = ri.baseenv[make](ri.IntSexpVector([len(values)]))
    if not len(values):
        return vec
    if make == "raw":  # rpy2 has no view of a raw vector
        from rpy2.rinterface_lib import openrlib

        openrlib.ffi.memmove(openrlib.rlib.RAW(vec.__sexp__._cdata), np.ascontiguousarray(values, dtype), len(values))
    else:
        np.frombuffer(vec.memoryview(), dtype)[:] = values
    return vec


def _discard(text: str) -> None:
    """R's console output during a call: dropped (a study never shows it to a client)."""


def _strings(sexp: Any) -> list[Any]:
    return list(sexp)


def _logical(sexp: Any) -> bool:
    values = list(sexp)
    return bool(values) and values[0] is True


_DEFAULT: RBridge | None = None
_DEFAULT_LOCK = threading.Lock()


def default_bridge() -> RBridge:
    """The process's one bridge (embedded R can only be started once per process)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = RBridge()
        return _DEFAULT
