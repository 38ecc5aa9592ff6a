"""One study: its tables, its users' sessions, and the DataSHIELD calls it answers.

``StudyRuntime`` is what the worker process and the HTTP server drive. Every call goes
grammar (``r_server.grammar``) -> allow-list and name checks (``r_server.functions``) -> the R
bridge (``r_server.rbridge``) -> our R server functions, and every operation is written to the
audit log, refusals included. Each session is an R environment of its own (parent globalenv,
never attached), as in DSLite. Disclosure settings belong to the study; no client call changes them.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r_server import calltree as ct
from r_server import functions, grammar
from r_server.audit import AuditLog
from r_server.dictionary import R_CLASSES, Variable, dictionary_path, read_dictionary
from r_server.errors import CallRejected, SessionError, StudyError
from r_server.rbridge import RBridge, RObject, default_bridge
from r_server.settings import DisclosureSettings

__all__ = ["TABLE_SUFFIXES", "StudyRuntime", "check_symbol"]

_SYMBOL = re.compile(r"^(?:[A-Za-z]|\.[A-Za-z._])[A-Za-z0-9._]*$|^\.$")
_TABLE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_RESERVED = {
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE", "NULL",
    "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_", "in",
}  # fmt: skip
TABLE_SUFFIXES = (".parquet", ".csv")  # a table's files, the first found is read (r_server/tables.py)
MAX_SYMBOL_LENGTH = 100
MAX_TABLE_PART = 128  # a project or table name (a folder or file name: the file system allows 255 bytes)


@dataclass
class _Session:
    user: str
    env: RObject
    opened: float = field(default_factory=time.time)


class _SessionScope:
    """The ``NameScope`` of one session for ``r_server.functions``: which symbols exist, and columns."""

    def __init__(self, bridge: RBridge, env: RObject) -> None:
        self._bridge = bridge
        self._env = env

    def has_symbol(self, name: str) -> bool:
        return self._bridge.has_symbol(self._env, name)

    def columns(self, name: str) -> list[str] | None:
        return self._bridge.columns(self._env, name)


class StudyRuntime:
    """A study's tables and sessions. Thread-safe; R work is serialised by the bridge's lock."""

    def __init__(
        self,
        name: str,
        tables_dir: str | Path,
        settings: DisclosureSettings | None = None,
        audit: AuditLog | None = None,
        bridge: RBridge | None = None,
    ) -> None:
        self.name = name
        self.tables_dir = Path(tables_dir).resolve()
        if not self.tables_dir.is_dir():
            raise ValueError(f"tables folder {self.tables_dir} does not exist")
        self.settings = settings or DisclosureSettings()
        self.audit = audit or AuditLog()
        self._bridge = bridge or default_bridge()
        self._sessions: dict[str, _Session] = {}
        self._tables: dict[Path, RObject] = {}
        self._lock = threading.Lock()

    # -- audit ----------------------------------------------------------------------------------

    @contextmanager
    def _audited(
        self, operation: str, sid: str | None = None, function: str | None = None, symbol: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Record the operation; the body may fill ``info['function']`` once it knows it."""
        info: dict[str, Any] = {"function": function}
        user = self._sessions[sid].user if sid is not None and sid in self._sessions else None
        start = time.perf_counter()
        outcome, message = "ok", None
        try:
            yield info
        except StudyError as exc:
            outcome, message = exc.kind, exc.message
            raise
        except Exception as exc:
            outcome, message = "internal_error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.audit.record(
                user=user if user is not None else info.get("user"),
                session=sid,
                operation=operation,
                function=info["function"],
                symbol=symbol,
                outcome=outcome,
                duration_ms=(time.perf_counter() - start) * 1000,
                message=message,
            )

    # -- tables ---------------------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Every table, by the name that reaches it: ``TABLE`` for ``tables_dir/TABLE.csv`` (or ``.parquet``),
        ``PROJECT.TABLE`` for ``tables_dir/PROJECT/TABLE.csv`` (Opal's two levels) and
        ``PROJECT/FOLDER/TABLE`` for ``tables_dir/PROJECT/FOLDER/TABLE.csv`` (Armadillo's three)."""
        with self._audited("list_tables"):
            names = _table_stems(self.tables_dir)
            for project in _subfolders(self.tables_dir):
                names += [f"{project.name}.{stem}" for stem in _table_stems(project)]
                for folder in _subfolders(project):
                    names += [f"{project.name}/{folder.name}/{stem}" for stem in _table_stems(folder)]
            return sorted(set(names))

    def table_variables(self, table: str) -> list[str]:
        with self._audited("table_variables", function=table):
            return self._bridge.table_columns(self._table(table))

    def table_dictionary(self, table: str) -> tuple[Variable, ...] | None:
        """The table's data dictionary (``r_server/dictionary.py``), or None for an untyped table."""
        with self._audited("table_dictionary", function=table):
            return self._dictionary(self._table_path(table))

    @staticmethod
    def _dictionary(path: Path) -> tuple[Variable, ...] | None:
        candidate = dictionary_path(path)
        return read_dictionary(candidate) if path.suffix == ".csv" and candidate.is_file() else None

    def has_table(self, table: str) -> bool:
        """Whether ``table`` names a table of this study (a malformed name is refused, not False)."""
        with self._audited("has_table", function=table):
            return self._find_table(table) is not None

    def _find_table(self, table: str) -> Path | None:
        """The file of a table name, or None. ``PROJECT/FOLDER/TABLE`` (Armadillo) is
        ``PROJECT/FOLDER/TABLE.<suffix>``; ``PROJECT.TABLE`` (Opal) is ``PROJECT/TABLE.<suffix>``, else the
        top-level ``TABLE.<suffix>`` (DSLite's rule); ``TABLE`` is the top-level file. Suffixes are tried in
        ``TABLE_SUFFIXES`` order; only files inside the tables folder count."""
        three = "/" in table
        parts = table.split("/") if three else table.split(".")
        if (not (len(parts) == 3 if three else 1 <= len(parts) <= 2)
                or not all(_TABLE_PART.match(p) for p in parts) or any(len(p) > MAX_TABLE_PART for p in parts)):
            raise CallRejected(f"not a table name: {table[:80]!r}")
        bases = [self.tables_dir.joinpath(*parts)]
        if len(parts) == 2:
            bases.append(self.tables_dir / parts[-1])
        for base in bases:
            for suffix in TABLE_SUFFIXES:
                resolved = base.with_name(base.name + suffix).resolve()
                if resolved.is_file() and resolved.is_relative_to(self.tables_dir):
                    return resolved
        return None

    def _table_path(self, table: str) -> Path:
        path = self._find_table(table)
        if path is None:
            raise CallRejected(f"table {table!r} does not exist in study {self.name}")
        return path

    def _table(self, table: str) -> RObject:
        path = self._table_path(table)
        with self._lock:
            cached = self._tables.get(path)
        if cached is None:
            dictionary = self._dictionary(path)
            cached = self._bridge.read_table(
                path, None if dictionary is None else
                [(v.name, R_CLASSES[v.value_type], v.categories) for v in dictionary])
            with self._lock:
                self._tables.setdefault(path, cached)
        return cached

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, user: str) -> str:
        with self._audited("open_session") as info:
            info["user"] = user
            sid = secrets.token_urlsafe(24)
            env = self._bridge.new_session()
            with self._lock:
                self._sessions[sid] = _Session(user, env)
            return sid

    def close_session(self, sid: str) -> None:
        with self._audited("close_session", sid):
            with self._lock:
                if self._sessions.pop(sid, None) is None:
                    raise SessionError("unknown or closed session")

    def _session(self, sid: str) -> _Session:
        with self._lock:
            session = self._sessions.get(sid)
        if session is None:
            raise SessionError("unknown or closed session")
        return session

    def _scope(self, session: _Session) -> _SessionScope:
        return _SessionScope(self._bridge, session.env)

    # -- DataSHIELD operations ------------------------------------------------------------------

    def assign_table(self, sid: str, symbol: str, table: str, variables: list[str] | None = None) -> None:
        """DSLite's assignTable: ``symbol`` gets the table, ``variables`` selecting and ordering columns."""
        with self._audited("assign_table", sid, function=table, symbol=symbol):
            session = self._session(sid)
            check_symbol(symbol)
            if variables is not None and not all(isinstance(v, str) for v in variables):
                raise CallRejected("variables must be a list of column names")
            frame = self._table(table)
            if variables is not None:
                frame = self._bridge.select(frame, variables)
            self._bridge.assign(session.env, symbol, frame)

    def assign_expr(self, sid: str, symbol: str, expr_text: str) -> None:
        """``symbol <- expr``: an allow-listed assign function call or bare arithmetic."""
        with self._audited("assign_expr", sid, symbol=symbol) as info:
            session = self._session(sid)
            check_symbol(symbol)
            tree = grammar.parse_assign(expr_text)
            info["function"] = tree.func if isinstance(tree, ct.Call) else "<arithmetic>"
            self._assign_tree(session, symbol, tree)

    def _assign_tree(self, session: _Session, symbol: str, tree: ct.Call | ct.Expr) -> None:
        if isinstance(tree, ct.Call):
            bound = functions.check_call(tree, "assign", self._scope(session))
            value = self._bridge.call(
                session.env, "assign", bound.func, bound.r_args(), self.settings.as_r_list()
            )
        else:
            functions.check_arith(tree, self._scope(session))
            value = self._bridge.evaluate(session.env, tree)
        self._bridge.assign(session.env, symbol, value)

    def aggregate(self, sid: str, expr_text: str, encoding: str = "node") -> Any:
        """An allow-listed aggregate call's value, encoded (see ``_encode``)."""
        with self._audited("aggregate", sid) as info:
            session = self._session(sid)
            tree = grammar.parse_aggregate(expr_text)
            info["function"] = tree.func
            return self._aggregate_tree(session, tree, encoding)

    def _aggregate_tree(self, session: _Session, tree: ct.Call, encoding: str) -> Any:
        bound = functions.check_call(tree, "aggregate", self._scope(session))
        value = self._bridge.call(
            session.env, "aggregate", bound.func, bound.r_args(), self.settings.as_r_list()
        )
        return self._encode(value, encoding)

    def _encode(self, value: RObject, encoding: str) -> Any:
        """``node``: the JSON node (None for R's NULL); ``rds``: R's serialize() bytes; ``json``: Rock's JSON
        bytes. The last two are scrubbed of environments first (``r_server/R/wire.R``)."""
        if encoding == "node":
            return self._bridge.encode(value)
        if encoding == "rds":
            return self._bridge.serialize(value)
        if encoding == "json":
            return self._bridge.to_json(value)
        raise CallRejected(f"unknown result encoding {encoding!r}")

    def list_symbols(self, sid: str, encoding: str | None = None) -> Any:
        """The session's symbols; with ``encoding="rds"``, R's serialize() of that character vector."""
        with self._audited("list_symbols", sid):
            names = self._bridge.symbols(self._session(sid).env)
            return self._bridge.serialize_strings(names) if encoding == "rds" else names

    def rm_symbol(self, sid: str, symbol: str) -> None:
        with self._audited("rm_symbol", sid, symbol=symbol):
            session = self._session(sid)
            check_symbol(symbol)
            if not self._bridge.has_symbol(session.env, symbol):
                raise CallRejected(f"object '{symbol}' not found")
            self._bridge.remove(session.env, symbol)

    def list_methods(self, kind: str) -> list[str]:
        with self._audited("list_methods", function=kind):
            if kind not in ("aggregate", "assign"):
                raise CallRejected("kind must be 'aggregate' or 'assign'")
            return self._bridge.methods(kind)

    def start(self) -> None:
        """Start R now rather than at the first call (an HTTP study's warm-up). Nothing else runs in R,
        so a study's R has the same history before its first call whether it was warmed up or not."""
        self._bridge.start()

    def info(self) -> dict[str, Any]:
        with self._audited("info"):
            return {"study": self.name, **self._bridge.versions()}


    def resources(self) -> dict[str, int]:
        """Counts only (no names, no data): open R sessions, cached tables, R objects held by Python."""
        with self._lock:
            sessions, tables = len(self._sessions), len(self._tables)
        return {"r_sessions": sessions, "tables_cached": tables, "r_objects": self._bridge.held_objects()}


def _subfolders(folder: Path) -> list[Path]:
    return [sub for sub in folder.iterdir() if sub.is_dir() and _TABLE_PART.match(sub.name)]


def _table_stems(folder: Path) -> list[str]:
    """The names of the table files directly in ``folder``."""
    return [p.name[: -len(suffix)] for suffix in TABLE_SUFFIXES for p in folder.glob("*" + suffix)
            if p.is_file() and _TABLE_PART.match(p.name[: -len(suffix)])]


def check_symbol(symbol: str) -> None:
    """Refuse (``CallRejected``) anything but a syntactic R name as a symbol to assign or remove."""
    if (
        not isinstance(symbol, str)
        or len(symbol) > MAX_SYMBOL_LENGTH
        or not _SYMBOL.match(symbol)
        or symbol in _RESERVED
        or not grammar.is_syntactic_name(symbol)  # also refuses '...' and '..1'
    ):
        raise CallRejected(f"not a valid symbol name: {str(symbol)[:80]!r}")
