"""The HTTP study server: one study behind Opal's DataSHIELD REST API (the one DSOpal and datashield-opal speak).

Every route of the API is under ``/ws``, as in Opal; only ``GET /health`` (for the image's HEALTHCHECK
and the launcher) is outside it and needs no login. ``P`` is ``/ws/datashield/session/{id}``.

=================================================  =================================================
``GET  /health``                                   ``{"status": "ok", "study": name}`` (503 while starting)
``GET  /ws/system/subject-profile/_current``       ``{"principal": user, ...}``; logs in (sets ``opalsid``)
``DELETE /ws/auth/session/_current``, ``/{sid}``   logs out, closing the login's R sessions
``GET  /ws/datasources``                           ``[{"name": PROJECT, "table": [TABLE, ...]}]``
``GET  /ws/datasource/{p}/table/{t}[/variables]``  a table, its variables
``GET  /ws/datashield/profiles``                   the one profile, ``default``
``GET  /ws/datashield/env/{type}/methods``         allowed functions (``aggregate``/``assign``), Opal's DTOs
``POST /ws/datashield/sessions``                   opens an R session -> 201 RSessionDto
``GET  /ws/datashield/sessions``                   the user's R sessions
``GET|DELETE /ws/datashield/session/{id}``         RSessionDto (touches it) / closes it
``PUT  P/symbol/{s}``                              assign: ``application/x-opal`` body ``PROJECT.TABLE``,
                                                   or ``application/x-rscript`` body an expression
``PUT  P/symbol/{s}/table/{PROJECT.TABLE}``        assign a table (the path form datashield-opal uses)
``POST P/aggregate``                               ``application/x-rscript`` body an expression
``GET  P/symbols``, ``DELETE P/symbol/{s}``        the session's symbols (JSON, or R-serialized ``ls()``)
``GET  P/commands``, ``GET|DELETE P/command/{c}``  asynchronous commands (RCommandDto JSON)
``GET  P/command/{c}/result``                      a finished command's value (204 while it runs)
``GET  /ws/pydsbase/info``                         study, R and package versions, ``load`` counts (ours)
=================================================  =================================================

Submits (assign, aggregate) run at once with ``?async=false`` (Opal's default): the answer is the value
(aggregate) or empty (assign). With ``?async=true`` the answer is the command id as ``text/plain``; the
client polls ``P/command/{id}?wait=true`` and takes ``P/command/{id}/result`` (which forgets the command).

**Results.** The ``Accept`` of the submitting request fixes the format of a value:
``application/octet-stream`` is R's own ``serialize(value, NULL)`` (XDR, as Opal's Rock sends it);
``application/json`` (and no Accept) is Rock's JSON (``jsonlite::toJSON(value, auto_unbox = TRUE,
null = "null", na = "null", digits = NA)``, ``jsonlite::serializeJSON`` where ``toJSON`` fails).
Every value is scrubbed of environments before it is encoded (see ``r_server/R/wire.R``).

**pydsbase extensions** (no Opal client sends them): ``?wait=S`` (seconds) on an asynchronous
submit answers the outcome itself when it is in within S seconds (else 202 and the id), and on
``P/command/{c}`` and ``.../result`` waits up to S seconds; ``GET /ws/pydsbase/info``.

**Authentication.** ``Authorization: Basic base64(user:password)``, ``Authorization: X-Opal-Auth
base64(user:password)`` (opalr) or ``X-Opal-Auth: <access token>``; a successful check opens a login
and sets the ``opalsid`` cookie (HttpOnly, Secure under TLS, new at each login, forgotten by the server
after the idle timeout). A valid ``opalsid`` authenticates before any credential header is verified
(so a client sending both costs one scrypt check per login, not per request); only failed credential
checks count toward the rate limits. No ``XSRF-TOKEN`` is set or checked. Every response carries
``X-Opal-Version``.

Every error is Opal's error JSON ``{"code": status, "status": kind, "arguments": [message],
"message": message}`` with a 4xx status for client faults and never a stack trace. R runs on one
dedicated thread that owns the ``StudyRuntime``; the event loop only queues work for it. A user sees
only their own R sessions and commands: another user's ids answer exactly as unknown ids do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import datetime
import hashlib
import hmac
import itertools
import json
import logging
import queue
import re
import secrets
import signal
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r_server.auth import Authenticator, LoginSession, RateLimited, token_digest
from r_server.errors import AuthError, CallRejected, RCallError, SessionError, StudyError
from r_server.functions import ALLOW_LISTS

__all__ = ["HTTPSettings", "RWorker", "Runtime", "create_app", "default_project", "end_login",
           "parse_variables_filter"]

log = logging.getLogger("r_server.http")

WS = "/ws"
SESSION = f"{WS}/datashield/session/{{sid}}"
HEALTH = "/health"
PROFILE_PATH = f"{WS}/system/subject-profile/_current"  # where clients log in
SELECT_PROFILE_PATH = "/select-profile"  # where Armadillo's clients log in
LOGIN_PATHS = frozenset({PROFILE_PATH, SELECT_PROFILE_PATH})  # credentials here always open a new login
# DSOpal 1.4.1 and opalr 3.5.2 compare the server's version with 2.1, 2.6, 2.14, 2.16 and 4.2: any
# version from 4.2 on selects their current code paths (profiles, commands, identifiers column names).
# It stays below 5.3, where DSOpal 1.5 starts reading R session events we do not keep.
OPAL_VERSION = "4.7.0"
SID_COOKIE = "opalsid"
ARMADILLO_COOKIE = "JSESSIONID"  # the same login, named as Armadillo's (Spring's) session cookie
MAX_HEADER_BYTES = 16 * 1024  # all request headers together (h11 refused more; httptools sets no limit)
MAX_EXPR_BYTES = 256 * 1024
MAX_NAME = 256

RDS_MEDIA = "application/octet-stream"
JSON_MEDIA = "application/json"
# the runtime's name for each result format
ENCODING_OF_MEDIA = {RDS_MEDIA: "rds", JSON_MEDIA: "json"}

# HTTP status of each error kind; anything not listed is a server fault (500).
STATUS_OF_KIND = {
    "rejected": 400,
    "bad_request": 400,
    "unsupported": 400,
    "r_error": 422,
    "study_error": 422,
    "auth": 401,
    "session": 404,
    "conflict": 409,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "unsupported_media": 415,
    "rate_limited": 429,
    "too_many": 429,
    "unavailable": 503,
}


class Runtime(Protocol):
    """The part of ``r_server.runtime.StudyRuntime`` the server uses (called on the R thread only)."""

    def list_tables(self) -> list[str]: ...
    def table_variables(self, table: str) -> list[str]: ...
    def has_table(self, table: str) -> bool: ...
    def table_dictionary(self, table: str) -> Any: ...
    def open_session(self, user: str) -> str: ...
    def close_session(self, sid: str) -> None: ...
    def assign_table(self, sid: str, symbol: str, table: str, variables: list[str] | None = None) -> Any: ...
    def assign_expr(self, sid: str, symbol: str, expr: str) -> Any: ...
    def aggregate(self, sid: str, expr: str) -> Any: ...
    def list_symbols(self, sid: str) -> list[str]: ...
    def rm_symbol(self, sid: str, symbol: str) -> Any: ...
    def list_methods(self, kind: str) -> list[str]: ...
    def info(self) -> dict[str, Any]: ...
    def start(self) -> None: ...


class AuditSink(Protocol):
    """``r_server.audit.AuditLog``."""

    def record(self, *, user: str | None, session: str | None, operation: str, function: str | None = ...,
               symbol: str | None = ..., outcome: str = ..., duration_ms: float = ...,
               message: str | None = ...) -> Any: ...


@dataclass(frozen=True)
class HTTPSettings:
    """Limits and timings of the HTTP layer (the study's own settings live in the runtime)."""

    study: str
    idle_timeout: float = 1800.0  # seconds a login or R session may stay unused
    max_request_bytes: int = 1024 * 1024
    max_response_bytes: int = 32 * 1024 * 1024
    max_wait: float = 60.0  # longest long-poll
    max_sessions_per_user: int = 16
    max_commands_per_user: int = 256  # running plus finished but not yet fetched
    result_ttl: float = 900.0  # a finished command is kept this long for its owner to fetch
    sweep_interval: float = 30.0


# -- the R thread -----------------------------------------------------------------------------------

_R_STACK_BYTES = 256 * 1024 * 1024  # embedded R runs without C stack checks: give it a deep stack


class RWorker:
    """One thread that owns the runtime; every call into R is queued to it and answered by a future."""

    def __init__(self, factory: Callable[[], Runtime], name: str = "r-worker") -> None:
        self._factory = factory
        self._queue: queue.SimpleQueue[tuple[Callable[[Runtime], Any], concurrent.futures.Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        previous = threading.stack_size()
        threading.stack_size(_R_STACK_BYTES)
        try:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()
        finally:
            threading.stack_size(previous)

    def _run(self) -> None:
        # R is started on this thread on purpose (it must be used from the thread that started it);
        # the SIGINT handler it takes over is given back by ``restore_signal_handlers``.
        warnings.filterwarnings("ignore", message="R is not initialized by the main thread")
        try:
            runtime = self._factory()
        except BaseException as exc:  # the study cannot start: every call fails, health says so
            log.exception("the study runtime failed to start")
            self.failed = exc
            runtime = None
        self.ready.set()
        while True:
            item = self._queue.get()
            if item is None:
                return
            call, future = item
            if not future.set_running_or_notify_cancel():
                continue
            if runtime is None:
                future.set_exception(StudyError("the study failed to start"))
                continue
            try:
                future.set_result(call(runtime))
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, call: Callable[[Runtime], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((call, future))
        return future

    def alive(self) -> bool:
        return self._thread.is_alive() and self.ready.is_set() and self.failed is None

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


# -- variables filters ------------------------------------------------------------------------------

_QUOTED = r"""'[^'"\\]*'|"[^'"\\]*\""""
_ANY = re.compile(rf"""^\s*name(?:\(\))?\.any\(\s*((?:{_QUOTED})(?:\s*,\s*(?:{_QUOTED}))*)?\s*\)\s*$""")
_ITEM = re.compile(_QUOTED)
_BARE = re.compile(r"^\s*([A-Za-z._][A-Za-z0-9._\-]*)\s*$")
MAX_VARIABLES = 10_000


def parse_variables_filter(text: str) -> list[str]:
    """The column names an Opal ``variables`` filter selects, for the filters DataSHIELD clients write.

    ``name().any('a','b')`` (DSOpal), ``name.any("a","b")`` (datashield-opal) and a bare name are
    understood; anything else (any other Magma script) is refused. Never evaluated: matched whole
    by the patterns above, quotes holding no quote or backslash.
    """
    if len(text) > 1024 * 1024:
        raise CallRejected("variables filter too long")
    bare = _BARE.match(text)
    if bare is not None:
        return [bare.group(1)]
    found = _ANY.match(text)
    if found is None:
        raise CallRejected("unsupported variables filter: use name().any('a','b'), name.any(\"a\",\"b\") or a "
                           "variable name")
    names = [item[1:-1] for item in _ITEM.findall(found.group(1) or "")]
    if not names or len(names) > MAX_VARIABLES or not all(0 < len(n) <= MAX_NAME for n in names):
        raise CallRejected("the variables filter names no variable, or too many, or an empty or too long name")
    return names


# -- state ------------------------------------------------------------------------------------------


class HTTPFault(Exception):
    """An error the HTTP layer itself answers with (not the study's)."""

    def __init__(self, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.headers = headers or {}


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RSession:
    sid: str
    user: str
    login: str  # digest of the login (opalsid) that opened it
    last_used: float
    created_at: str = field(default_factory=_now_iso)
    last_used_at: str = field(default_factory=_now_iso)
    running: int = 0

    def dto(self, study: str) -> dict[str, Any]:
        """Opal's RSessionDto (``state`` as newer Opals add it)."""
        return {"id": self.sid, "user": self.user, "creationDate": self.created_at,
                "lastAccessDate": self.last_used_at, "status": "BUSY" if self.running else "WAITING",
                "context": "DataSHIELD", "profile": "default", "cluster": "default", "server": study,
                "state": "RUNNING"}


@dataclass
class Command:
    cid: str
    user: str
    sid: str
    operation: str
    script: str
    with_result: bool
    media: str | None  # the result's media type (None: an assign, no value)
    future: concurrent.futures.Future[Any]
    created: float
    created_at: str = field(default_factory=_now_iso)
    started_at: str | None = None
    ended_at: str | None = None
    done_event: asyncio.Event = field(default_factory=asyncio.Event)
    finished: float | None = None
    body: bytes | None = None  # the answer once done: the value, or the error JSON
    status: int = 200
    error: str | None = None

    def dto(self) -> dict[str, Any]:
        """Opal's RCommandDto."""
        if self.finished is None:
            state = "IN_PROGRESS" if self.started_at is not None else "PENDING"
        else:
            state = "FAILED" if self.error is not None else "COMPLETED"
        out: dict[str, Any] = {"id": self.cid, "script": self.script, "status": state,
                               "createDate": self.created_at, "withResult": self.with_result}
        if self.started_at is not None:
            out["startDate"] = self.started_at
        if self.ended_at is not None:
            out["endDate"] = self.ended_at
        if self.error is not None:
            out["error"] = self.error
        return out


def _error_body(kind: str, message: str) -> dict[str, Any]:
    """Opal's error JSON: opalr reads ``status`` and ``arguments``, others ``message`` (R's bare message; a
    failed command's RCommandDto ``error`` has R's ``Error in <call> : ...`` text, as Opal reports it)."""
    return {"code": STATUS_OF_KIND.get(kind, 500), "status": kind, "arguments": [message], "message": message}


def _error_bytes(kind: str, message: str) -> bytes:
    return json.dumps(_error_body(kind, message)).encode()


def _shown(exc: StudyError) -> str:
    """An error's text as Opal shows it: R's try() text for an R error, else the message."""
    return exc.r_text if isinstance(exc, RCallError) else exc.message


def _error_response(kind: str, message: str, headers: dict[str, str] | None = None,
                    request: Request | None = None) -> JSONResponse:
    """Opal's error JSON; on Armadillo's routes (outside ``/ws``) Spring's error JSON
    ``{"timestamp", "status", "error", "message", "path"}``, whose ``message`` DSMolgenisArmadillo reads."""
    status = STATUS_OF_KIND.get(kind, 500)
    if request is not None and not request.url.path.startswith(WS + "/") and request.url.path != HEALTH:
        body = {"timestamp": _now_iso(), "status": status, "error": _REASONS.get(status, "Error"),
                "message": message, "path": request.url.path}
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(_error_body(kind, message), status_code=status, headers=headers)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _encode_outcome(command: Command, future: concurrent.futures.Future[Any],
                    max_bytes: int) -> tuple[int, bytes, str | None]:
    """The HTTP status, body and error message of a finished command (runs on the R thread's callback)."""
    exc = future.exception()
    kind, message = "internal", "internal error"
    shown: str | None = None
    if exc is None:
        if command.media is None:
            return 200, b"", None
        value = future.result()
        try:
            body = value.encode() if isinstance(value, str) else bytes(value)
        except (TypeError, ValueError):
            log.exception("command %s returned a value that cannot be sent", command.cid)
        else:
            if len(body) <= max_bytes:
                return 200, body, None
            kind, message = "too_large", f"the answer exceeds the study's response limit of {max_bytes} bytes"
    elif isinstance(exc, StudyError):
        kind, message, shown = exc.kind, exc.message, _shown(exc)
    else:
        log.error("command %s failed inside the server", command.cid, exc_info=exc)
    return STATUS_OF_KIND.get(kind, 500), _error_bytes(kind, message), shown or message


class StudyServer:
    """The server's state: logins (via the authenticator), R sessions and commands. Event loop only."""

    def __init__(
        self,
        settings: HTTPSettings,
        worker: RWorker,
        auth: Authenticator,
        audit: AuditSink | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.auth = auth
        self.audit = audit
        self.clock = clock
        self.sessions: dict[str, RSession] = {}
        self.commands: dict[str, Command] = {}
        self.armadillo: dict[str, Any] = {}  # login digest -> r_server.armadillo.ArmadilloSession
        self._credential_salt = secrets.token_bytes(32)
        self._credential_logins: dict[bytes, str] = {}  # HMAC of credential headers -> login digest
        self.warmed = False  # R started and the study answered once: healthy
        self.warm_failed = False
        self._ids = itertools.count(1)

    # audit of what the HTTP layer refuses (the runtime audits every call it runs or rejects)
    def refuse(self, operation: str, kind: str, message: str, user: str | None = None,
               session: str | None = None) -> None:
        if self.audit is not None:
            self.audit.record(user=user, session=session, operation=operation, outcome=kind, message=message)

    async def run(self, call: Callable[[Runtime], Any]) -> Any:
        return await asyncio.wrap_future(self.worker.submit(call))

    # -- R sessions --
    def session_of(self, login: LoginSession, sid: str, operation: str) -> RSession:
        session = self.sessions.get(sid)
        if session is None or session.user != login.user:
            message = "unknown or expired session"
            self.refuse(operation, SessionError.kind, message, user=login.user, session=sid[:64])
            raise SessionError(message)
        session.last_used = self.clock()
        session.last_used_at = _now_iso()
        return session

    async def open_session(self, login: LoginSession) -> RSession:
        owned = sum(1 for s in self.sessions.values() if s.user == login.user)
        if owned >= self.settings.max_sessions_per_user:
            message = f"at most {self.settings.max_sessions_per_user} open sessions per user"
            self.refuse("open_session", "too_many", message, user=login.user)
            raise HTTPFault("too_many", message)
        sid = str(await self.run(lambda rt: rt.open_session(login.user)))
        session = RSession(sid, login.user, login.digest, self.clock())
        self.sessions[sid] = session
        return session

    async def close_session(self, sid: str) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        for digest in [d for d, state in self.armadillo.items() if state.sid == sid]:
            del self.armadillo[digest]
        for cid in [c.cid for c in self.commands.values() if c.sid == sid and c.finished is not None]:
            del self.commands[cid]
        try:
            await self.run(lambda rt: rt.close_session(sid))
        except StudyError:
            pass

    # -- commands --
    def submit(self, login: LoginSession, session: RSession, operation: str, script: str, media: str | None,
               call: Callable[[Runtime], Any]) -> Command:
        owned = sum(1 for c in self.commands.values() if c.user == login.user)
        if owned >= self.settings.max_commands_per_user:
            message = f"at most {self.settings.max_commands_per_user} uncollected commands per user"
            self.refuse(operation, "too_many", message, user=login.user, session=session.sid)
            raise HTTPFault("too_many", message)
        loop = asyncio.get_running_loop()
        cid = f"{next(self._ids)}-{secrets.token_hex(8)}"
        holder: list[Command] = []

        def started(rt: Runtime) -> Any:
            if holder:
                holder[0].started_at = _now_iso()
            return call(rt)

        future = self.worker.submit(started)
        command = Command(cid, login.user, session.sid, operation, script[:4096], media is not None, media, future,
                          self.clock())
        holder.append(command)
        session.running += 1
        max_bytes = self.settings.max_response_bytes

        def finished(fut: concurrent.futures.Future[Any]) -> None:
            status, body, error = _encode_outcome(command, fut, max_bytes)
            loop.call_soon_threadsafe(self._complete, command, status, body, error)

        self.commands[cid] = command
        future.add_done_callback(finished)
        return command

    def _complete(self, command: Command, status: int, body: bytes, error: str | None) -> None:
        command.status, command.body, command.error = status, body, error
        command.finished = self.clock()
        command.ended_at = _now_iso()
        if command.started_at is None:
            command.started_at = command.ended_at
        session = self.sessions.get(command.sid)
        if session is not None:
            session.running -= 1
            session.last_used = command.finished
        command.done_event.set()

    def command_of(self, login: LoginSession, session: RSession, cid: str, operation: str) -> Command:
        command = self.commands.get(cid)
        if command is None or command.user != login.user or command.sid != session.sid:
            message = "unknown or expired command"
            self.refuse(operation, "not_found", message, user=login.user, session=session.sid)
            raise HTTPFault("not_found", message)
        return command

    async def wait_for(self, command: Command, wait: float | None) -> None:
        """Until the command is done: at most ``wait`` seconds (capped by ``max_wait``); None: Opal's
        ``wait=true``, without a limit."""
        if wait is None:
            await command.done_event.wait()
        elif command.body is None and wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(command.done_event.wait(), min(wait, self.settings.max_wait))

    # -- housekeeping --
    async def sweep(self) -> None:
        """Close idle R sessions and logins; forget uncollected results past their time."""
        now = self.clock()
        for login in self.auth.expire():
            for sid in [s.sid for s in self.sessions.values() if s.login == login.digest]:
                await self.close_session(sid)
        idle = [s.sid for s in self.sessions.values()
                if s.running == 0 and now - s.last_used > self.settings.idle_timeout]
        for sid in idle:
            await self.close_session(sid)
        stale = [c.cid for c in self.commands.values()
                 if c.finished is not None and now - c.finished > self.settings.result_ttl]
        for cid in stale:
            del self.commands[cid]

    async def load(self) -> dict[str, int]:
        """Counts of what the server holds (no names, ids or data): for operators and leak tests."""
        counts = {
            "logins": self.auth.login_count(),
            "sessions": len(self.sessions),
            "commands": len(self.commands),
            "running": sum(1 for c in self.commands.values() if c.finished is None),
        }
        resources = await self.run(lambda rt: getattr(rt, "resources", dict)())
        return {**counts, **{str(k): int(v) for k, v in dict(resources).items()}}

    # -- logins of clients that resend their credentials (see ``_credential_login``) --
    def _credential_key(self, header: str, token: str) -> bytes:
        return hmac.new(self._credential_salt, f"{header}\n{token}".encode(), hashlib.sha256).digest()

    def remembered_login(self, header: str, token: str) -> LoginSession | None:
        digest = self._credential_logins.get(self._credential_key(header, token))
        if digest is None:
            return None
        try:
            return self.auth.resolve_digest(digest)
        except AuthError:
            self._credential_logins.pop(self._credential_key(header, token), None)
            return None

    def remember_login(self, header: str, token: str, login: LoginSession) -> None:
        if len(self._credential_logins) >= 10_000:  # bounded: forget the oldest
            self._credential_logins.pop(next(iter(self._credential_logins)))
        self._credential_logins[self._credential_key(header, token)] = login.digest

    async def logout(self, digest: str) -> None:
        self.auth.logout(digest)
        for sid in [s.sid for s in self.sessions.values() if s.login == digest]:
            await self.close_session(sid)


# -- the request body limit -------------------------------------------------------------------------


class BodyLimit:
    """Refuses (413) any request whose body exceeds ``limit`` bytes, declared or streamed.

    The rest of an oversized body is read and dropped (up to ``drain`` bytes) before answering, so a
    client still sending gets the 413 rather than a reset connection; beyond that the server closes.
    """

    def __init__(self, app: ASGIApp, limit: int, drain: int = 16 * 1024 * 1024) -> None:
        self.app = app
        self.limit = limit
        self.drain = max(drain, limit)

    async def _refuse(self, receive: Receive, send: Send, received: int, more: bool) -> None:
        while more and received <= self.drain:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = _error_bytes("too_large", f"request body exceeds {self.limit} bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse_headers(self, send: Send) -> None:
        body = _error_bytes("too_large", f"request headers exceed {MAX_HEADER_BYTES} bytes")
        await send({"type": "http.response.start", "status": 431,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            await self._refuse_headers(send)  # the C parser has no header limit of its own
            return
        for name, value in headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit or declared < 0:
                    await self._refuse(receive, send, 0, declared <= self.drain)
                    return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(receive, send, len(body), more)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# -- Opal's headers ---------------------------------------------------------------------------------


class OpalHeaders:
    """Adds ``X-Opal-Version`` to every response, and the ``opalsid`` cookie a login asked for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.version = (b"x-opal-version", OPAL_VERSION.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append(self.version)
                cookie = state.get("set_cookie")
                if cookie:
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- the app ----------------------------------------------------------------------------------------


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def restore_signal_handlers() -> None:
    """Re-install Python's handlers for the signals embedded R takes over (so Ctrl-C stops the server)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:
            signal.signal(sig, handler)


async def _warm_up(server: StudyServer) -> None:
    """Start R and load the study's packages before the first analyst call, then take SIGINT back."""
    try:
        await server.run(lambda rt: rt.start())
        server.warmed = True
    except Exception as exc:
        server.warm_failed = True
        log.error("the study failed to start: %s", exc)
    restore_signal_handlers()


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _state(request: Request) -> StudyServer:
    server: StudyServer | None = getattr(request.app.state, "study_server", None)
    if server is None:
        raise HTTPFault("unavailable", "the study is starting")
    return server


def _operation(request: Request) -> str:
    return request.url.path.rsplit("/", 1)[-1][:40]


def _cookie(request: Request, name: str) -> str | None:
    """The first value of cookie ``name`` (read by hand: no lenient parser decides what a cookie is)."""
    for header in request.headers.getlist("cookie"):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name and value:
                return value.strip('"')
    return None


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError("malformed credentials") from None
    user, sep, password = text.partition(":")
    if not sep or not user or not password or len(user) > 64 or len(password) > 1024:
        raise AuthError("malformed credentials")
    return user, password


async def _credential_login(request: Request, server: StudyServer) -> LoginSession | None:
    """A new login from the request's credential headers (None when it sends none)."""
    header = request.headers.get("authorization", "").strip()
    token = request.headers.get("x-opal-auth", "").strip()
    scheme, _, value = header.partition(" ")
    if not header and not token:
        return None
    bearer = scheme.lower() == "bearer"  # Armadillo's clients: an access token
    # Clients that send their credentials on every request and no cookie (obiba-opal does) reuse the
    # login those exact credentials opened: found by an HMAC of the header under a key of this process,
    # so neither a password nor a session token is kept, and scrypt runs once per login, not per request.
    # The login route itself always opens a new login (a new opalsid for a client that keeps cookies).
    remembered = None if request.url.path in LOGIN_PATHS else server.remembered_login(header, token)
    if remembered is not None:
        request.state.user = remembered.user
        return remembered
    loop = asyncio.get_running_loop()
    address = _client_address(request)
    user: str | None = None
    if header and scheme.lower() in ("basic", "x-opal-auth"):
        try:
            user, password = _basic_credentials(value)
        except AuthError as exc:
            server.refuse("login", exc.kind, exc.message)
            raise
        call: Callable[[], Any] = lambda: server.auth.login_password(user or "", password, address)  # noqa: E731
    elif (token and not header) or bearer:
        secret = value.strip() if bearer else token
        if not secret or len(secret) > 1024:
            server.refuse("login", AuthError.kind, "malformed credentials")
            raise AuthError("malformed credentials")
        call = lambda: server.auth.login_token(secret, address)[1]  # noqa: E731
    elif header:
        message = "unsupported Authorization scheme: use Basic, Bearer or X-Opal-Auth"
        server.refuse("login", AuthError.kind, message)
        raise AuthError(message)
    else:
        return None
    try:
        session_token = await loop.run_in_executor(None, call)
    except AuthError as exc:
        server.refuse("login", exc.kind, exc.message, user=user)
        raise
    login = server.auth.resolve(session_token)
    server.remember_login(header, token, login)
    if server.audit is not None:
        server.audit.record(user=login.user, session=None, operation="login", outcome="ok")
    secure = "; Secure" if request.url.scheme == "https" else ""
    request.state.set_cookie = f"{_cookie_name(request)}={session_token}; Path=/; HttpOnly; SameSite=Lax{secure}"
    request.state.sid_token = session_token
    return login


def _cookie_name(request: Request) -> str:
    """The login cookie of the API a request speaks: ``opalsid`` under ``/ws``, else ``JSESSIONID``."""
    return SID_COOKIE if request.url.path.startswith(WS + "/") else ARMADILLO_COOKIE


async def _current_login(request: Request, server: Annotated[StudyServer, Depends(_state)]) -> LoginSession:
    """The caller's login: a valid ``opalsid`` (or ``JSESSIONID``) cookie first, else the credential headers
    (a new login)."""
    sid = _cookie(request, _cookie_name(request))
    if sid is not None and len(sid) <= 1024:
        with contextlib.suppress(AuthError):
            known = server.auth.resolve(sid)
            request.state.user = known.user
            request.state.sid_token = sid
            return known
    login = await _credential_login(request, server)
    if login is None:
        message = ("not logged in, or the login has expired" if sid is not None
                   else "missing credentials: send Authorization (Basic, Bearer or X-Opal-Auth) or X-Opal-Auth")
        server.refuse(_operation(request), AuthError.kind, message)
        raise AuthError(message)
    request.state.user = login.user  # for the audit line of a request refused later on
    return login


Server = Annotated[StudyServer, Depends(_state)]
Login = Annotated[LoginSession, Depends(_current_login)]


def _wait_of(text: str | None, default: float | None = 0.0) -> float | None:
    """``wait``: ``true`` (until done: None), ``false`` (0) or seconds (our extension)."""
    if text is None or text == "":
        return default
    lowered = text.strip().lower()
    if lowered == "true":
        return None
    if lowered == "false":
        return 0.0
    try:
        seconds = float(lowered)
    except ValueError:
        raise HTTPFault("bad_request", "wait is true, false or a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise HTTPFault("bad_request", "wait must be between 0 and 3600 seconds")
    return seconds


def _flag(text: str | None, name: str, default: bool) -> bool:
    if text is None or text == "":
        return default
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise HTTPFault("bad_request", f"{name} is true or false")
    return lowered == "true"


def _result_media(request: Request) -> str:
    """The result format the submitting request's ``Accept`` asks for (Rock's JSON by default)."""
    accept = request.headers.get("accept", "").lower()
    if RDS_MEDIA in accept:
        return RDS_MEDIA
    return JSON_MEDIA


async def _script(request: Request, allowed: tuple[str, ...]) -> tuple[str, str]:
    """(content type, text) of a request whose body is an R expression or a table name."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in allowed:
        raise HTTPFault("unsupported_media", f"send the body as {' or '.join(allowed)}")
    raw = await request.body()
    if not raw.strip():
        raise HTTPFault("bad_request", "the request body is empty")
    if len(raw) > MAX_EXPR_BYTES:
        raise HTTPFault("bad_request", f"the expression exceeds {MAX_EXPR_BYTES} bytes")
    try:
        return content_type, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPFault("bad_request", "the request body is not UTF-8 text") from None


# HTTPFaults raised without an audit line of their own (the handler writes it)
_UNAUDITED_FAULTS = frozenset({"bad_request", "unsupported", "unsupported_media"})


def _refuse_unsupported(what: str) -> HTTPFault:
    return HTTPFault("unsupported", f"{what} are not supported by pydsbase studies")


def default_project(study: str) -> str:
    """The project of the study's top-level tables (``<tables>/TABLE.csv`` or ``.parquet``): the study's name,
    with every character other than a letter, digit, ``_`` or ``-`` made ``_`` (Opal's names split at the first dot)."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", study) or "study"


def _check_name(text: str, what: str) -> None:
    if not text or len(text) > MAX_NAME:
        raise CallRejected(f"{what} name empty or too long")


async def end_login(request: Request, server: StudyServer, digest: str) -> Response:
    """Log out (closing the login's R sessions) and clear the login cookie of the API the request speaks."""
    await server.logout(digest)
    if server.audit is not None:
        server.audit.record(user=request.state.user, session=None, operation="logout", outcome="ok")
    secure = "; Secure" if request.url.scheme == "https" else ""
    request.state.set_cookie = f"{_cookie_name(request)}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    return Response(b"", status_code=200)


def create_app(
    settings: HTTPSettings,
    runtime_factory: Callable[[], Runtime],
    auth: Authenticator,
    audit: AuditSink | None = None,
) -> FastAPI:
    """The ASGI app. The runtime is built by ``runtime_factory`` on the R thread when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = RWorker(runtime_factory, name=f"r-{settings.study}")
        server = StudyServer(settings, worker, auth, audit)
        app.state.study_server = server
        warm_up = asyncio.create_task(_warm_up(server))

        async def sweeper() -> None:
            while True:
                await asyncio.sleep(settings.sweep_interval)
                try:
                    await server.sweep()
                except Exception:
                    log.exception("session sweep failed")

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            warm_up.cancel()
            for sid in list(server.sessions):
                await server.close_session(sid)
            await asyncio.get_running_loop().run_in_executor(None, worker.stop)

    app = FastAPI(title=f"pydsbase study {settings.study}", version=OPAL_VERSION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(OpalHeaders)

    @app.exception_handler(StudyError)
    async def _study_error(request: Request, exc: StudyError) -> JSONResponse:
        headers = {"Retry-After": str(int(exc.retry_after) + 1)} if isinstance(exc, RateLimited) else None
        if isinstance(exc, AuthError):
            # opalr reads this header on a 401 (it asks for a TOTP code only when it names one)
            scheme = "X-Opal-Auth" if _cookie_name(request) == SID_COOKIE else 'Basic realm="pydsbase"'
            headers = {**(headers or {}), "WWW-Authenticate": scheme}
        return _error_response(exc.kind, exc.message, headers, request)

    @app.exception_handler(HTTPFault)
    async def _fault(request: Request, exc: HTTPFault) -> JSONResponse:
        server = getattr(request.app.state, "study_server", None)
        if server is not None and exc.kind in _UNAUDITED_FAULTS:  # the others were audited where raised
            server.refuse(_operation(request), exc.kind, exc.message, user=getattr(request.state, "user", None))
        return _error_response(exc.kind, exc.message, exc.headers, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _validation_message(exc)
        server = getattr(request.app.state, "study_server", None)
        if server is not None:
            server.refuse(_operation(request), "bad_request", message, user=getattr(request.state, "user", None))
        return _error_response("bad_request", message, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "bad_request")
        response = _error_response(kind, str(exc.detail), request=request)
        response.status_code = exc.status_code if 400 <= exc.status_code < 500 else 400
        return response

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return _error_response("internal", "internal error", request=request)

    def result_response(server: StudyServer, command: Command) -> Response:
        """A finished command's value (or error): delivered once, then forgotten."""
        assert command.body is not None
        server.commands.pop(command.cid, None)
        if command.status != 200:
            return Response(command.body, status_code=command.status, media_type=JSON_MEDIA)
        if command.media is None:
            return Response(b"", status_code=200)
        return Response(command.body, status_code=200, media_type=command.media)

    async def submitted(request: Request, server: StudyServer, command: Command) -> Response:
        """The answer to a submit: Opal's (``async``: the id; else the outcome), or our ``wait`` extension."""
        asynchronous = _flag(request.query_params.get("async"), "async", False)
        if not asynchronous:
            await command.done_event.wait()
            return result_response(server, command)
        wait = _wait_of(request.query_params.get("wait"), None)
        if wait is None and "wait" not in request.query_params:
            return Response(command.cid, media_type="text/plain")
        await server.wait_for(command, float(wait if wait is not None else settings.max_wait))
        if command.body is None:
            return Response(command.cid, status_code=202, media_type="text/plain")
        return result_response(server, command)

    # -- unauthenticated --
    @app.get(HEALTH)
    async def health(server: Server) -> JSONResponse:
        if not (server.warmed and server.worker.alive()):
            failed = server.worker.failed is not None or server.warm_failed
            status = "failed" if failed else "starting"
            return JSONResponse({"status": status, "study": settings.study}, status_code=503)
        return JSONResponse({"status": "ok", "study": settings.study})

    # -- login, logout --
    @app.get(PROFILE_PATH)
    async def subject_profile(login: Login) -> JSONResponse:
        return JSONResponse({"principal": login.user, "realm": "pydsbase", "groups": [], "otpEnabled": False})

    @app.delete(f"{WS}/auth/session/_current")
    async def logout_current(request: Request, login: Login, server: Server) -> Response:
        return await end_login(request, server, login.digest)

    @app.delete(f"{WS}/auth/session/{{token}}")
    async def logout_sid(token: str, request: Request, login: Login, server: Server) -> Response:
        try:
            target = server.auth.resolve(token) if len(token) <= 1024 else None
        except AuthError:
            target = None
        if target is None or target.user != login.user:
            message = "unknown or expired login session"
            server.refuse("logout", "not_found", message, user=login.user)
            raise HTTPFault("not_found", message)
        return await end_login(request, server, token_digest(token))

    # -- tables --
    home = default_project(settings.study)

    def split_tables(names: list[str]) -> dict[str, list[str]]:
        """Tables by project; a top-level table belongs to the study's default project."""
        projects: dict[str, list[str]] = {}
        for name in names:
            if "/" in name:
                continue  # PROJECT/FOLDER/TABLE: Armadillo's three-level names (r_server/armadillo.py)
            project, sep, table = name.partition(".")
            if not sep:
                project, table = home, name
            projects.setdefault(project, []).append(table)
        return projects

    async def table_of(server: StudyServer, project: str, table: str) -> tuple[str, list[str]]:
        """The runtime's name of PROJECT.TABLE and its variables (unknown tables refused by the runtime)."""
        _check_name(project, "project")
        _check_name(table, "table")
        names = list(await server.run(lambda rt: rt.list_tables()))
        name = f"{project}.{table}"
        if name not in names and project == home and table in names:
            name = table  # a top-level table, listed under the study's default project
        variables = list(await server.run(lambda rt: rt.table_variables(name)))
        return name, variables

    @app.get(f"{WS}/datasources")
    async def datasources(login: Login, server: Server) -> JSONResponse:
        projects = split_tables(list(await server.run(lambda rt: rt.list_tables())))
        return JSONResponse([{"name": p, "table": tables, "type": "pydsbase"} for p, tables in projects.items()])

    @app.get(f"{WS}/datasource/{{project}}/table/{{table}}")
    async def table_dto(project: str, table: str, login: Login, server: Server) -> JSONResponse:
        _, variables = await table_of(server, project, table)
        return JSONResponse({"name": table, "datasourceName": project, "entityType": "Participant",
                             "link": f"{WS}/datasource/{project}/table/{table}", "variableCount": len(variables)})

    @app.get(f"{WS}/datasource/{{project}}/table/{{table}}/variables")
    async def variables(project: str, table: str, login: Login, server: Server) -> JSONResponse:
        name, names = await table_of(server, project, table)
        link = f"{WS}/datasource/{project}/table/{table}/variable"
        dictionary = await server.run(lambda rt: rt.table_dictionary(name))
        if dictionary:  # a typed table: Opal's value types and categories
            return JSONResponse([v.dto(i, link) for i, v in enumerate(dictionary)])
        return JSONResponse([{"name": n, "entityType": "Participant", "index": i, "isRepeatable": False,
                              "link": f"{link}/{n}"} for i, n in enumerate(names)])

    # -- DataSHIELD configuration --
    @app.get(f"{WS}/datashield/profiles")
    async def profiles(login: Login) -> JSONResponse:
        return JSONResponse([{"name": "default", "enabled": True, "restrictedAccess": False}])

    @app.get(f"{WS}/datashield/env/{{kind}}/methods")
    async def methods(kind: str, login: Login, server: Server) -> JSONResponse:
        if kind not in ("aggregate", "assign"):
            raise HTTPFault("bad_request", "the environment is aggregate or assign")
        names = list(await server.run(lambda rt: rt.list_methods(kind)))
        dto = "DataShield.RFunctionDataShieldMethodDto.method"
        table = ALLOW_LISTS["aggregate" if kind == "aggregate" else "assign"]
        return JSONResponse([{"name": n, dto: {"func": table[n].opal_function if n in table else n,
                                               "rPackage": "dsBase", "version": "6.3.0"}} for n in names])

    @app.get(f"{WS}/pydsbase/info")
    async def info(login: Login, server: Server) -> JSONResponse:
        answer = dict(await server.run(lambda rt: rt.info()))
        answer["load"] = await server.load()
        return JSONResponse(answer)

    # -- R sessions --
    @app.post(f"{WS}/datashield/sessions")
    async def open_session(request: Request, login: Login, server: Server) -> JSONResponse:
        if request.query_params.get("restore"):
            raise _refuse_unsupported("workspaces")
        if request.query_params.get("profile") not in (None, "", "default"):
            raise HTTPFault("not_found", "unknown DataSHIELD profile: this study has the default profile only")
        session = await server.open_session(login)
        return JSONResponse(session.dto(settings.study), status_code=201,
                            headers={"Location": f"{WS}/datashield/session/{session.sid}"})

    @app.get(f"{WS}/datashield/sessions")
    async def list_sessions(login: Login, server: Server) -> JSONResponse:
        return JSONResponse([s.dto(settings.study) for s in server.sessions.values() if s.user == login.user])

    @app.get(SESSION)
    async def touch_session(sid: str, login: Login, server: Server) -> JSONResponse:
        return JSONResponse(server.session_of(login, sid, "keep_alive").dto(settings.study))

    @app.delete(SESSION)
    async def close_session(sid: str, request: Request, login: Login, server: Server) -> Response:
        server.session_of(login, sid, "close_session")
        if request.query_params.get("save"):
            raise _refuse_unsupported("workspaces")
        await server.close_session(sid)
        return Response(b"", status_code=200)

    # -- assign, aggregate --
    async def assign_table(request: Request, server: StudyServer, login: LoginSession, sid: str, symbol: str,
                           table: str) -> Response:
        session = server.session_of(login, sid, "assign_table")
        query = request.query_params
        for refused in ("identifiers", "id"):
            if query.get(refused):
                raise HTTPFault("unsupported", f"'{refused}' is not supported by pydsbase studies "
                                               "(tables have no identifier mappings)")
        if query.get("class") not in (None, "", "data.frame"):
            raise HTTPFault("unsupported", "tables are assigned as data frames only")
        _flag(query.get("missings"), "missings", False)
        _check_name(symbol, "symbol")
        _check_name(table, "table")
        filt = query.get("variables")
        variables = parse_variables_filter(filt) if filt else None
        project, sep, name = table.partition(".")
        if sep and project == home:
            names = list(await server.run(lambda rt: rt.list_tables()))
            if table not in names and name in names:
                table = name  # a top-level table, listed under the study's default project
        command = server.submit(login, session, "assign_table", f"{symbol} <- {table}", None,
                                lambda rt: rt.assign_table(sid, symbol, table, variables))
        return await submitted(request, server, command)

    @app.put(f"{SESSION}/symbol/{{symbol}}")
    async def assign(sid: str, symbol: str, request: Request, login: Login, server: Server) -> Response:
        server.session_of(login, sid, "assign")
        content_type, text = await _script(request, ("application/x-opal", "application/x-rscript"))
        if content_type == "application/x-opal":
            return await assign_table(request, server, login, sid, symbol, text.strip())
        session = server.session_of(login, sid, "assign_expr")
        _check_name(symbol, "symbol")
        command = server.submit(login, session, "assign_expr", text, None,
                                lambda rt: rt.assign_expr(sid, symbol, text))
        return await submitted(request, server, command)

    @app.put(f"{SESSION}/symbol/{{symbol}}/table/{{table}}")
    async def assign_table_path(sid: str, symbol: str, table: str, request: Request, login: Login,
                                server: Server) -> Response:
        return await assign_table(request, server, login, sid, symbol, table)

    @app.put(f"{SESSION}/symbol/{{symbol}}/resource/{{resource}}")
    async def assign_resource(sid: str, symbol: str, resource: str, login: Login, server: Server) -> Response:
        server.session_of(login, sid, "assign_resource")
        raise _refuse_unsupported("resources")

    @app.post(f"{SESSION}/aggregate")
    async def aggregate(sid: str, request: Request, login: Login, server: Server) -> Response:
        session = server.session_of(login, sid, "aggregate")
        _, text = await _script(request, ("application/x-rscript", "text/plain"))
        media = _result_media(request)
        encoding = ENCODING_OF_MEDIA[media]
        call: Callable[[Runtime], Any] = lambda rt: rt.aggregate(sid, text, encoding=encoding)  # type: ignore[call-arg]  # noqa: E731
        command = server.submit(login, session, "aggregate", text, media, call)
        return await submitted(request, server, command)

    # -- symbols --
    @app.get(f"{SESSION}/symbols")
    async def symbols(sid: str, request: Request, login: Login, server: Server) -> Response:
        server.session_of(login, sid, "list_symbols")
        if _result_media(request) == RDS_MEDIA:
            raw = await server.run(lambda rt: rt.list_symbols(sid, encoding="rds"))  # type: ignore[call-arg]
            return Response(bytes(raw), media_type=RDS_MEDIA)
        return JSONResponse(list(await server.run(lambda rt: rt.list_symbols(sid))))

    @app.delete(f"{SESSION}/symbol/{{symbol}}")
    async def rm_symbol(sid: str, symbol: str, login: Login, server: Server) -> Response:
        server.session_of(login, sid, "rm_symbol")
        _check_name(symbol, "symbol")
        try:
            await server.run(lambda rt: rt.rm_symbol(sid, symbol))
        except CallRejected as exc:  # as Opal: removing a symbol that is not there is no error
            if exc.message != f"object '{symbol}' not found":
                raise
        return Response(b"", status_code=200)

    # -- commands --
    @app.get(f"{SESSION}/commands")
    async def commands(sid: str, login: Login, server: Server) -> JSONResponse:
        server.session_of(login, sid, "list_commands")
        return JSONResponse([c.dto() for c in server.commands.values() if c.sid == sid and c.user == login.user])

    @app.get(f"{SESSION}/command/{{cid}}")
    async def command(sid: str, cid: str, request: Request, login: Login, server: Server) -> JSONResponse:
        session = server.session_of(login, sid, "command")
        found = server.command_of(login, session, cid, "command")
        await server.wait_for(found, _wait_of(request.query_params.get("wait")))
        return JSONResponse(found.dto())

    @app.get(f"{SESSION}/command/{{cid}}/result")
    async def command_result(sid: str, cid: str, request: Request, login: Login, server: Server) -> Response:
        session = server.session_of(login, sid, "fetch")
        found = server.command_of(login, session, cid, "fetch")
        await server.wait_for(found, _wait_of(request.query_params.get("wait")))
        if found.body is None:
            return Response(status_code=204)
        return result_response(server, found)

    @app.delete(f"{SESSION}/command/{{cid}}")
    async def rm_command(sid: str, cid: str, login: Login, server: Server) -> Response:
        session = server.session_of(login, sid, "rm_command")
        server.commands.pop(server.command_of(login, session, cid, "rm_command").cid, None)
        return Response(b"", status_code=200)

    # -- what pydsbase studies do not have: refused with Opal's error JSON --
    @app.api_route(f"{SESSION}/workspaces", methods=["GET", "POST"])
    async def workspaces(sid: str, login: Login) -> Response:
        raise _refuse_unsupported("workspaces")

    @app.api_route(f"{SESSION}/workspace/{{name}}", methods=["GET", "PUT", "DELETE"])
    async def workspace(sid: str, name: str, login: Login) -> Response:
        raise _refuse_unsupported("workspaces")

    @app.api_route(f"{WS}/service/r/workspaces", methods=["GET", "DELETE"])
    async def service_workspaces(login: Login) -> Response:
        raise _refuse_unsupported("workspaces")

    @app.get(f"{WS}/projects")
    async def projects(login: Login) -> Response:
        raise _refuse_unsupported("resources")

    @app.get(f"{WS}/project/{{project}}/resource/{{resource}}")
    async def resource(project: str, resource: str, login: Login) -> Response:
        raise _refuse_unsupported("resources")

    @app.get(f"{WS}/project/{{project}}/resources")
    async def resources(project: str, login: Login) -> Response:
        raise _refuse_unsupported("resources")

    from r_server import armadillo  # its routes use this module's pieces

    armadillo.add_routes(app, settings)
    return app
