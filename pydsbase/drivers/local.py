"""The local backend: every study is a process of its own on this machine, spoken to over a pipe.

``DSLoginBuilder().add("study1", url="local:///abs/folder", user="u", password="p",
driver="pydsbase.LocalDriver")``. The process runs ``r_server.worker`` (the same runtime, parser
and allow-list as the HTTP server) and sees only its own folder. Requests are written at once and
answered in order, so a session fans one call out to all studies in parallel. An aggregate's value
travels as R's own serialization (base64 in the JSON line), read by the decoder every backend uses,
:func:`pydsbase.rserialize.unserialize`.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from datashield.interface import DSDriver, DSLoginInfo, DSResult

from pydsbase.drivers.base import ReadySession, StudyConnection
from pydsbase.errors import StudyCallError, UnserializeError, study_error
from pydsbase.rserialize import unserialize
from pydsbase.rvalue import RValue

__all__ = ["LocalConnection", "LocalDriver", "LocalResult", "reuse_workers"]


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


# -- reusing worker processes across logins ------------------------------------------------------

_idle: dict[tuple[str, Path], list[_StudyProcess]] | None = None  # None: reuse is off
_idle_lock = threading.Lock()


@contextlib.contextmanager
def reuse_workers() -> Iterator[None]:
    """While active, a study's worker process outlives its session: on logout the R session is closed
    (its environment and every symbol go with it) and the process waits for the next login to the
    same study name and folder from this Python process, which gets a fresh R session in it. R and
    lme4 then start once per study, not once per login (the conformance runner replays many short
    sessions against the same studies). Every idle process is stopped on exit; nested use is one use.
    """
    global _idle
    with _idle_lock:
        if _idle is not None:
            owner = False
        else:
            owner, _idle = True, {}
    try:
        yield
    finally:
        if owner:
            with _idle_lock:
                idle, _idle = _idle or {}, None
            for processes in idle.values():
                for process in processes:
                    process.stop()


def _reused_worker(name: str, folder: Path) -> _StudyProcess:
    """An idle process of this study kept by :func:`reuse_workers`, else a new one. An idle process that
    has died meanwhile is released (its pipes and reader thread), not handed out."""
    dead: list[_StudyProcess] = []
    found: _StudyProcess | None = None
    with _idle_lock:
        waiting = [] if _idle is None else _idle.get((name, folder), [])
        while waiting and found is None:
            process = waiting.pop()
            if process.proc.poll() is None:
                found = process
            else:
                dead.append(process)
    for process in dead:
        process.stop()
    return found if found is not None else _StudyProcess(name, folder)


def _release_worker(process: _StudyProcess, folder: Path, session_closed: bool) -> None:
    with _idle_lock:
        if _idle is not None and session_closed and process.proc.poll() is None:
            _idle.setdefault((process.name, folder), []).append(process)
            return
    process.stop()


def _unwrap(study: str, pending: _Pending, timeout: float | None) -> Any:
    if not pending.done.wait(timeout):
        raise study_error(study, f"no answer within {timeout:g} s", kind="timeout")
    reply = pending.reply or {}
    if reply.get("ok"):
        if "rds" in reply:
            try:
                return base64.b64decode(str(reply["rds"]), validate=True)
            except ValueError as exc:
                raise study_error(study, "the study process sent a malformed answer", kind="internal") from exc
        return reply.get("value")
    error = reply.get("error") or {}
    raise study_error(study, str(error.get("message", "unknown error")), kind=str(error.get("kind", "")))


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
        if not self._decode:
            return None
        try:
            return unserialize(value)
        except (UnserializeError, TypeError) as exc:
            raise study_error(self._study, "the study process sent a malformed answer", kind="internal") from exc


class LocalConnection(StudyConnection):
    submits_without_waiting = True  # a submit only writes a line to the pipe: the session needs no thread

    def __init__(self, info: DSLoginInfo) -> None:
        self.name = info.name
        self.user = info.user or "token-user"
        self._folder = folder_of(info.url)
        self._process = _reused_worker(info.name, self._folder)
        self._session: ReadySession | None = None

    @property
    def pid(self) -> int:
        return self._process.proc.pid

    # content
    def list_tables(self) -> list[str]:
        return list(self._process.call("list_tables"))

    def list_table_variables(self, table: str) -> list[str]:
        return list(self._process.call("table_variables", table=table))

    # session
    def _open_session(self) -> str:
        return str(self._process.call("open_session", user=self.user))

    def _sid(self) -> str:
        return self.start_session().sid

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

    def assign_expr(self, symbol: str, expr: str, asynchronous: bool = True) -> LocalResult:
        pending = self._process.submit("assign_expr", sid=self._sid(), symbol=symbol, expr_text=expr)
        return LocalResult(self.name, pending, decode=False)

    def aggregate(self, expr: str, asynchronous: bool = True) -> LocalResult:
        # R's serialization of the value, read by the one decoder (pydsbase.rserialize), as over HTTP
        pending = self._process.submit("aggregate", sid=self._sid(), expr_text=expr, encoding="rds")
        return LocalResult(self.name, pending, decode=True)

    # symbols
    def list_symbols(self) -> list[str]:
        return list(self._process.call("list_symbols", sid=self._sid()))

    def rm_symbol(self, name: str) -> None:
        self._process.call("rm_symbol", sid=self._sid(), symbol=name)

    # configuration
    def list_methods(self, type: str = "aggregate") -> list[str]:
        return list(self._process.call("list_methods", kind=type))

    def keep_alive(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return dict(self._process.call("info"))

    def disconnect(self) -> None:
        closed = self._session is None
        try:
            if self._session is not None and self._process.proc.poll() is None:
                self._process.call("close_session", sid=self._session.sid)
                closed = True
        except StudyCallError:
            pass
        finally:
            self._session = None
            _release_worker(self._process, self._folder, closed)


class LocalDriver(DSDriver):
    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> LocalConnection:
        if restore:
            raise ValueError("pydsbase studies have no workspaces to restore")
        return LocalConnection(args)
