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
from r_server.errors import CallRejected, SessionError, StudyError
from r_server.rbridge import RBridge, RObject, default_bridge
from r_server.settings import DisclosureSettings

__all__ = ["StudyRuntime"]

_SYMBOL = re.compile(r"^(?:[A-Za-z]|\.[A-Za-z._])[A-Za-z0-9._]*$|^\.$")
_TABLE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_RESERVED = {
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE", "NULL",
    "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_", "in",
}  # fmt: skip
TABLE_SUFFIXES = (".parquet", ".csv")  # a table's files, the first found is read (r_server/tables.py)
MAX_SYMBOL_LENGTH = 100
MAX_TABLE_PART = 128  # a project or table name (a folder or file name: the file system allows 255 bytes)


def _table_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix in TABLE_SUFFIXES and p.is_file() and _TABLE_PART.match(p.stem)]


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
        """``TABLE`` for ``tables_dir/TABLE.csv`` (or ``.parquet``) and ``PROJECT.TABLE`` for
        ``tables_dir/PROJECT/TABLE.csv`` (or ``.parquet``)."""
        with self._audited("list_tables"):
            names = [p.stem for p in _table_files(self.tables_dir)]
            for sub in self.tables_dir.iterdir():
                if sub.is_dir() and _TABLE_PART.match(sub.name):
                    names += [f"{sub.name}.{p.stem}" for p in _table_files(sub)]
            return sorted(set(names))

    def table_variables(self, table: str) -> list[str]:
        with self._audited("table_variables", function=table):
            return self._bridge.table_columns(self._table(table))

    def _table_path(self, table: str) -> Path:
        parts = table.split(".")
        if (not 1 <= len(parts) <= 2 or not all(_TABLE_PART.match(p) for p in parts)
                or any(len(p) > MAX_TABLE_PART for p in parts)):
            raise CallRejected(f"not a table name: {table[:80]!r}")
        folders = [self.tables_dir.joinpath(*parts[:-1])] + ([self.tables_dir] if len(parts) == 2 else [])
        candidates = [folder / (parts[-1] + suffix) for folder in folders for suffix in TABLE_SUFFIXES]
        for path in candidates:
            resolved = path.resolve()
            if resolved.is_file() and resolved.is_relative_to(self.tables_dir):
                return resolved
        raise CallRejected(f"table {table!r} does not exist in study {self.name}")

    def _table(self, table: str) -> RObject:
        path = self._table_path(table)
        with self._lock:
            cached = self._tables.get(path)
        if cached is None:
            cached = self._bridge.read_table(path)
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
            _check_symbol(symbol)
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
            _check_symbol(symbol)
            tree = grammar.parse_assign(expr_text)
            info["function"] = tree.func if isinstance(tree, ct.Call) else "<arithmetic>"
            self._assign_tree(session, symbol, tree)

    def _assign_tree(self, session: _Session, symbol: str, tree: ct.Call | ct.Expr) -> None:
        if isinstance(tree, ct.Call):
            bound = functions.check_call(tree, "assign", self._scope(session))
            value = self._bridge.call(
                session.env, "assign", bound.func, list(bound.args.items()), self.settings.as_r_list()
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
            session.env, "aggregate", bound.func, list(bound.args.items()), self.settings.as_r_list()
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
            _check_symbol(symbol)
            if not self._bridge.has_symbol(session.env, symbol):
                raise CallRejected(f"object '{symbol}' not found")
            self._bridge.remove(session.env, symbol)

    def list_methods(self, kind: str) -> list[str]:
        with self._audited("list_methods", function=kind):
            if kind not in ("aggregate", "assign"):
                raise CallRejected("kind must be 'aggregate' or 'assign'")
            return self._bridge.methods(kind)

    def info(self) -> dict[str, Any]:
        with self._audited("info"):
            return {"study": self.name, **self._bridge.versions()}


    def resources(self) -> dict[str, int]:
        """Counts only (no names, no data): open R sessions, cached tables, R objects held by Python."""
        with self._lock:
            sessions, tables = len(self._sessions), len(self._tables)
        return {"r_sessions": sessions, "tables_cached": tables, "r_objects": self._bridge.held_objects()}


def _check_symbol(symbol: str) -> None:
    if (
        not isinstance(symbol, str)
        or len(symbol) > MAX_SYMBOL_LENGTH
        or not _SYMBOL.match(symbol)
        or symbol in _RESERVED
        or not grammar.is_syntactic_name(symbol)  # also refuses '...' and '..1'
    ):
        raise CallRejected(f"not a valid symbol name: {str(symbol)[:80]!r}")
