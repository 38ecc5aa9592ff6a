"""The local backend: every study is a process of its own on this machine, spoken to over a pipe.

``DSLoginBuilder().add("study1", url="local:///abs/folder", user="u", password="p",
driver="pydsbase.LocalDriver")``. The process runs ``r_server.worker`` (the same runtime, parser
and allow-list as the HTTP server) and sees only its own folder. Requests are written at once and
answered in order, so a session fans one call out to all studies in parallel.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from datashield.interface import DSConnection, DSDriver, DSLoginInfo, DSResult, RSession

from pydsbase.errors import StudyCallError
from pydsbase.rvalue import RValue, from_node

__all__ = ["LocalConnection", "LocalDriver", "LocalResult"]


def folder_of(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != "local" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"a local study URL looks like local:///absolute/folder, not {url!r}")
    folder = Path(unquote(parsed.path))
    if not folder.is_absolute() or not folder.is_dir():
        raise ValueError(f"study folder does not exist: {folder}")
    return folder


class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None


class _StudyProcess:
    """One worker process and the thread that reads its answers."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "r_server.worker", "--name", name, "--tables", str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"pydsbase-local-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                pending = self._pending.pop(reply.get("id"), None)
            if pending is not None:
                pending.reply = reply
                pending.done.set()
        code = self.proc.wait()
        with self._lock:
            orphans = list(self._pending.values())
            self._pending.clear()
        for pending in orphans:
            pending.reply = {
                "ok": False,
                "error": {"kind": "unavailable", "message": f"study process exited with code {code}"},
            }
            pending.done.set()

    def submit(self, op: str, **args: Any) -> _Pending:
        pending = _Pending()
        request_id = next(self._ids)
        line = json.dumps({"id": request_id, "op": op, "args": args}) + "\n"
        with self._lock:
            self._pending[request_id] = pending
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self._pending.pop(request_id, None)
                pending.reply = {
                    "ok": False,
                    "error": {"kind": "unavailable", "message": "study process is not running"},
                }
                pending.done.set()
        return pending

    def call(self, op: str, **args: Any) -> Any:
        return _unwrap(self.name, self.submit(op, **args), None)

    def stop(self) -> None:
        """End the study process (closing its input asks it to exit) and release every pipe."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _unwrap(study: str, pending: _Pending, timeout: float | None) -> Any:
    if not pending.done.wait(timeout):
        raise StudyCallError(study, f"no answer within {timeout:g} s", kind="timeout")
    reply = pending.reply or {}
    if reply.get("ok"):
        return reply.get("value")
    error = reply.get("error") or {}
    raise StudyCallError(study, str(error.get("message", "unknown error")), kind=str(error.get("kind", "")))


class LocalResult(DSResult):
    """An answer that may still be on its way. ``is_completed`` never raises; ``fetch`` raises failures."""

    def __init__(self, study: str, pending: _Pending, decode: bool) -> None:
        self._study = study
        self._pending = pending
        self._decode = decode

    def is_completed(self) -> bool:
        return self._pending.done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._pending.done.wait(timeout)

    def fetch(self, timeout: float | None = None) -> RValue | None:
        value = _unwrap(self._study, self._pending, timeout)
        return from_node(value) if self._decode else None


class _LocalRSession(RSession):
    def __init__(self, sid: str) -> None:
        self.sid = sid

    def is_started(self) -> bool:
        return True

    def is_ready(self) -> bool:
        return True

    def is_pending(self) -> bool:
        return False

    def is_failed(self) -> bool:
        return False

    def is_terminated(self) -> bool:
        return False

    def get_last_message(self) -> str:
        return "ready"


class LocalConnection(DSConnection):
    submits_without_waiting = True  # a submit only writes a line to the pipe: the session needs no thread

    def __init__(self, info: DSLoginInfo) -> None:
        self.name = info.name
        self.user = info.user or "token-user"
        self._process = _StudyProcess(info.name, folder_of(info.url))
        self._session: _LocalRSession | None = None

    @property
    def pid(self) -> int:
        return self._process.proc.pid

    def get_name(self) -> str:
        return self.name

    # content
    def list_tables(self) -> list[str]:
        return list(self._process.call("list_tables"))

    def has_table(self, name: str) -> bool:
        return name in self.list_tables()

    def list_table_variables(self, table: str) -> list[str]:
        return list(self._process.call("table_variables", table=table))

    def list_taxonomies(self) -> list[Any]:
        return []

    def search_variables(self, query: str) -> dict[str, Any]:
        return {}

    def list_resources(self) -> list[str]:
        return []

    def has_resource(self, name: str) -> bool:
        return False

    # session
    def has_session(self) -> bool:
        return self._session is not None

    def start_session(self, asynchronous: bool = True) -> RSession:
        if self._session is None:
            self._session = _LocalRSession(self._process.call("open_session", user=self.user))
        return self._session

    def is_session_started(self) -> bool:
        return self._session is not None

    def get_session(self) -> RSession:
        if self._session is None:
            raise StudyCallError(self.name, "no session: call start_session() first", kind="session")
        return self._session

    def _sid(self) -> str:
        session = self.start_session()
        assert isinstance(session, _LocalRSession)
        return session.sid

    # assign / aggregate
    def assign_table(
        self,
        symbol: str,
        table: str,
        variables: list[str] | None = None,
        missings: bool = False,
        identifiers: str | None = None,
        id_name: str | None = None,
        asynchronous: bool = True,
    ) -> LocalResult:
        pending = self._process.submit(
            "assign_table", sid=self._sid(), symbol=symbol, table=table, variables=variables
        )
        return LocalResult(self.name, pending, decode=False)

    def assign_resource(self, symbol: str, resource: str, asynchronous: bool = True) -> DSResult:
        raise StudyCallError(self.name, "resources are not supported by pydsbase studies", kind="rejected")

    def assign_expr(self, symbol: str, expr: str, asynchronous: bool = True) -> LocalResult:
        pending = self._process.submit("assign_expr", sid=self._sid(), symbol=symbol, expr_text=expr)
        return LocalResult(self.name, pending, decode=False)

    def aggregate(self, expr: str, asynchronous: bool = True) -> LocalResult:
        return LocalResult(self.name, self._process.submit("aggregate", sid=self._sid(), expr_text=expr), decode=True)

    # symbols
    def list_symbols(self) -> list[str]:
        return list(self._process.call("list_symbols", sid=self._sid()))

    def rm_symbol(self, name: str) -> None:
        self._process.call("rm_symbol", sid=self._sid(), symbol=name)

    # configuration
    def list_profiles(self) -> list[str]:
        return ["default"]

    def list_methods(self, type: str = "aggregate") -> list[str]:
        return list(self._process.call("list_methods", kind=type))

    def list_packages(self) -> list[str]:
        return ["pydsbase"]

    def list_workspaces(self) -> list[str]:
        return []

    def save_workspace(self, name: str) -> list[str]:
        raise StudyCallError(self.name, "workspaces are not supported by pydsbase studies", kind="rejected")

    def restore_workspace(self, name: str) -> list[str]:
        raise StudyCallError(self.name, "workspaces are not supported by pydsbase studies", kind="rejected")

    def rm_workspace(self, name: str) -> list[str]:
        return []

    def is_async(self) -> dict[str, bool]:
        return {"aggregate": True, "assign_table": True, "assign_resource": False, "assign_expr": True,
                "session": False}

    def keep_alive(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return dict(self._process.call("info"))

    def disconnect(self) -> None:
        try:
            if self._session is not None and self._process.proc.poll() is None:
                self._process.call("close_session", sid=self._session.sid)
        except StudyCallError:
            pass
        finally:
            self._session = None
            self._process.stop()


class LocalDriver(DSDriver):
    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> LocalConnection:
        if restore:
            raise ValueError("pydsbase studies have no workspaces to restore")
        return LocalConnection(args)
