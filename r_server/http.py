"""The HTTP study server: one study behind a small, versioned, authenticated JSON API.

Every route is under ``/v1``. Only ``GET /v1/health`` and ``POST /v1/login`` go without a session
token; every other request carries ``Authorization: Bearer <token>`` from ``login``.

==========================================  ==================================================
``GET  /v1/health``                         ``{"status": "ok", "study": name}`` (503 while starting)
``POST /v1/login``                          ``{"user", "password"}`` or ``{"token"}`` -> ``{"token", "user"}``
``POST /v1/logout``                         ends the login and closes its R sessions
``GET  /v1/tables``                         table names; ``/v1/tables/{table}/variables`` its columns
``GET  /v1/methods?kind=aggregate``         allowed server functions (``kind=assign`` too)
``GET  /v1/info``                           study, R and package versions; ``load``: counts only
``POST /v1/sessions``                       opens an R session -> ``{"session": sid}``
``GET|DELETE /v1/sessions/{sid}``           keeps alive / closes it
``POST /v1/sessions/{sid}/assign-table``    ``{"symbol", "table", "variables"}`` -> command
``POST /v1/sessions/{sid}/assign``          ``{"symbol", "expr"}`` -> command
``POST /v1/sessions/{sid}/aggregate``       ``{"expr"}`` -> command
``GET  /v1/sessions/{sid}/symbols``         the session's symbols; ``DELETE .../symbols/{symbol}``
``GET  /v1/commands/{cid}?wait=S``          a command's outcome, waiting up to S seconds for it
==========================================  ==================================================

Commands are asynchronous: submitting answers ``202 {"command": cid, "status": "pending"}`` at once
(or, with ``?wait=S``, the outcome itself when the command finishes within S seconds),
so a client submits to all its studies before waiting on any. Fetching answers ``202`` while the
command runs, ``200 {"command", "status": "done", "value": node}`` when it is done (``value`` is the R
value as a JSON node, doubles written by ``repr``, hence lossless), or the command's error.

Every error is a JSON body ``{"error": {"kind": ..., "message": ...}}`` with a 4xx status for client
faults and never a stack trace. R runs on one dedicated thread that owns the ``StudyRuntime``; the
event loop only queues work for it. A user sees only their own R sessions and commands: another
user's ids answer exactly as unknown ids do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import logging
import queue
import secrets
import signal
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r_server.auth import Authenticator, LoginSession, RateLimited
from r_server.errors import AuthError, CallRejected, SessionError, StudyError

__all__ = ["HTTPSettings", "RWorker", "Runtime", "create_app"]

log = logging.getLogger("r_server.http")

API = "/v1"
MAX_HEADER_BYTES = 16 * 1024  # all request headers together (h11 refused more; httptools sets no limit)

# HTTP status of each error kind; anything not listed is a server fault (500).
STATUS_OF_KIND = {
    "rejected": 400,
    "bad_request": 400,
    "r_error": 422,
    "study_error": 422,
    "auth": 401,
    "session": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "rate_limited": 429,
    "too_many": 429,
    "unavailable": 503,
}


class Runtime(Protocol):
    """The part of ``r_server.runtime.StudyRuntime`` the server uses (called on the R thread only)."""

    def list_tables(self) -> list[str]: ...
    def table_variables(self, table: str) -> list[str]: ...
    def open_session(self, user: str) -> str: ...
    def close_session(self, sid: str) -> None: ...
    def assign_table(self, sid: str, symbol: str, table: str, variables: list[str] | None = None) -> Any: ...
    def assign_expr(self, sid: str, symbol: str, expr: str) -> Any: ...
    def aggregate(self, sid: str, expr: str) -> Any: ...
    def list_symbols(self, sid: str) -> list[str]: ...
    def rm_symbol(self, sid: str, symbol: str) -> Any: ...
    def list_methods(self, kind: str) -> list[str]: ...
    def info(self) -> dict[str, Any]: ...


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


# -- requests ---------------------------------------------------------------------------------------

_Name = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LoginRequest(_Strict):
    user: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    token: Annotated[str, Field(min_length=1, max_length=1024)] | None = None


class AssignTableRequest(_Strict):
    symbol: _Name
    table: _Name
    variables: Annotated[list[_Name], Field(max_length=10_000)] | None = None


class AssignRequest(_Strict):
    symbol: _Name
    expr: Annotated[str, Field(min_length=1, max_length=256 * 1024)]


class AggregateRequest(_Strict):
    expr: Annotated[str, Field(min_length=1, max_length=256 * 1024)]


# -- state ------------------------------------------------------------------------------------------


class HTTPFault(Exception):
    """An error the HTTP layer itself answers with (not the study's)."""

    def __init__(self, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.headers = headers or {}


@dataclass
class RSession:
    sid: str
    user: str
    login: str  # digest of the session token that opened it
    last_used: float
    running: int = 0


@dataclass
class Command:
    cid: str
    user: str
    sid: str
    operation: str
    future: concurrent.futures.Future[Any]
    created: float
    done_event: asyncio.Event = field(default_factory=asyncio.Event)
    finished: float | None = None
    body: bytes | None = None  # the JSON answer once done
    status: int = 200


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message}}


def _error_response(kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_error_body(kind, message), status_code=STATUS_OF_KIND.get(kind, 500), headers=headers)


def _encode_outcome(cid: str, future: concurrent.futures.Future[Any], max_bytes: int) -> tuple[int, bytes]:
    """The HTTP status and JSON body of a finished command (runs on the R thread's callback)."""
    exc = future.exception()
    kind, message = "internal", "internal error"
    if exc is None:
        try:
            value = json.dumps(future.result(), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            log.exception("command %s returned a value that is not a JSON node", cid)
        else:
            if len(value) <= max_bytes:
                head = json.dumps({"command": cid, "status": "done"})[:-1]
                return 200, f'{head},"value":{value}}}'.encode()
            kind, message = "too_large", f"the answer exceeds the study's response limit of {max_bytes} bytes"
    elif isinstance(exc, StudyError):
        kind, message = exc.kind, exc.message
    else:
        log.error("command %s failed inside the server", cid, exc_info=exc)
    body = {"command": cid, "status": "failed", **_error_body(kind, message)}
    return STATUS_OF_KIND.get(kind, 500), json.dumps(body).encode()


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
        return session

    async def open_session(self, login: LoginSession) -> str:
        owned = sum(1 for s in self.sessions.values() if s.user == login.user)
        if owned >= self.settings.max_sessions_per_user:
            message = f"at most {self.settings.max_sessions_per_user} open sessions per user"
            self.refuse("open_session", "too_many", message, user=login.user)
            raise HTTPFault("too_many", message)
        sid = await self.run(lambda rt: rt.open_session(login.user))
        self.sessions[sid] = RSession(sid, login.user, login.digest, self.clock())
        return str(sid)

    async def close_session(self, sid: str) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        for cid in [c.cid for c in self.commands.values() if c.sid == sid and c.finished is not None]:
            del self.commands[cid]
        try:
            await self.run(lambda rt: rt.close_session(sid))
        except StudyError:
            pass

    # -- commands --
    def submit(self, login: LoginSession, session: RSession, operation: str,
               call: Callable[[Runtime], Any]) -> Command:
        owned = sum(1 for c in self.commands.values() if c.user == login.user)
        if owned >= self.settings.max_commands_per_user:
            message = f"at most {self.settings.max_commands_per_user} uncollected commands per user"
            self.refuse(operation, "too_many", message, user=login.user, session=session.sid)
            raise HTTPFault("too_many", message)
        loop = asyncio.get_running_loop()
        cid = f"{next(self._ids)}-{secrets.token_hex(8)}"
        future = self.worker.submit(call)
        command = Command(cid, login.user, session.sid, operation, future, self.clock())
        session.running += 1
        max_bytes = self.settings.max_response_bytes

        def finished(fut: concurrent.futures.Future[Any]) -> None:
            status, body = _encode_outcome(cid, fut, max_bytes)
            loop.call_soon_threadsafe(self._complete, command, status, body)

        self.commands[cid] = command
        future.add_done_callback(finished)
        return command

    def _complete(self, command: Command, status: int, body: bytes) -> None:
        command.status, command.body = status, body
        command.finished = self.clock()
        session = self.sessions.get(command.sid)
        if session is not None:
            session.running -= 1
            session.last_used = command.finished
        command.done_event.set()

    def command_of(self, login: LoginSession, cid: str) -> Command:
        command = self.commands.get(cid)
        if command is None or command.user != login.user:
            message = "unknown or expired command"
            self.refuse("fetch", "not_found", message, user=login.user)
            raise HTTPFault("not_found", message)
        return command

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

    async def logout(self, login: LoginSession) -> None:
        self.auth.logout(login.digest)
        for sid in [s.sid for s in self.sessions.values() if s.login == login.digest]:
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
        body = json.dumps(_error_body("too_large", f"request body exceeds {self.limit} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse_headers(self, send: Send) -> None:
        body = json.dumps(_error_body("too_large", f"request headers exceed {MAX_HEADER_BYTES} bytes")).encode()
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
        await server.run(lambda rt: rt.info())
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


def _current_login(request: Request, server: Annotated[StudyServer, Depends(_state)]) -> LoginSession:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 1024:
        message = "missing bearer token: log in first"
        server.refuse(_operation(request), AuthError.kind, message)
        raise AuthError(message)
    try:
        login = server.auth.resolve(token.strip())
    except AuthError as exc:
        server.refuse(_operation(request), exc.kind, exc.message)
        raise
    request.state.user = login.user  # for the audit line of a request refused later on
    return login


Server = Annotated[StudyServer, Depends(_state)]
Login = Annotated[LoginSession, Depends(_current_login)]
# How long a request may wait for its command's outcome (submits too: one round trip when it is quick).
Wait = Annotated[float, Query(ge=0, le=3600)]


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

    app = FastAPI(title=f"pydsbase study {settings.study}", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)

    @app.exception_handler(StudyError)
    async def _study_error(request: Request, exc: StudyError) -> JSONResponse:
        headers = {"Retry-After": str(int(exc.retry_after) + 1)} if isinstance(exc, RateLimited) else None
        if isinstance(exc, AuthError):
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return _error_response(exc.kind, exc.message, headers)

    @app.exception_handler(HTTPFault)
    async def _fault(request: Request, exc: HTTPFault) -> JSONResponse:
        return _error_response(exc.kind, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _validation_message(exc)
        server = getattr(request.app.state, "study_server", None)
        if server is not None:
            server.refuse(_operation(request), "bad_request", message, user=getattr(request.state, "user", None))
        return _error_response("bad_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "bad_request")
        response = _error_response(kind, str(exc.detail))
        response.status_code = exc.status_code if 400 <= exc.status_code < 500 else 400
        return response

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return _error_response("internal", "internal error")

    def pending(command: Command) -> JSONResponse:
        return JSONResponse({"command": command.cid, "status": "pending"}, status_code=202)

    async def outcome(server: StudyServer, command: Command, wait: float) -> Response:
        """The command's outcome if it is in within ``wait`` s (then delivered, once), else 202."""
        if command.body is None and wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(command.done_event.wait(), min(wait, settings.max_wait))
        if command.body is None:
            return pending(command)
        server.commands.pop(command.cid, None)  # delivered: a finished command is answered once
        return Response(command.body, status_code=command.status, media_type="application/json")

    # -- unauthenticated --
    @app.get(f"{API}/health")
    async def health(server: Server) -> JSONResponse:
        if not (server.warmed and server.worker.alive()):
            failed = server.worker.failed is not None or server.warm_failed
            status = "failed" if failed else "starting"
            return JSONResponse({"status": status, "study": settings.study}, status_code=503)
        return JSONResponse({"status": "ok", "study": settings.study})

    @app.post(f"{API}/login")
    async def login(body: LoginRequest, request: Request, server: Server) -> JSONResponse:
        address = _client_address(request)
        loop = asyncio.get_running_loop()
        try:
            if body.token is not None and body.user is None and body.password is None:
                user, token = await loop.run_in_executor(None, server.auth.login_token, body.token, address)
            elif body.user is not None and body.password is not None and body.token is None:
                user = body.user
                token = await loop.run_in_executor(
                    None, server.auth.login_password, body.user, body.password, address
                )
            else:
                raise HTTPFault("bad_request", "log in with either user and password, or a token")
        except (AuthError, HTTPFault) as exc:
            server.refuse("login", exc.kind, exc.message, user=body.user)
            raise
        if server.audit is not None:
            server.audit.record(user=user, session=None, operation="login", outcome="ok")
        return JSONResponse({"token": token, "user": user, "idle_timeout": settings.idle_timeout})

    # -- authenticated --
    @app.post(f"{API}/logout")
    async def logout(login: Login, server: Server) -> JSONResponse:
        await server.logout(login)
        return JSONResponse({"status": "ok"})

    @app.get(f"{API}/tables")
    async def tables(login: Login, server: Server) -> JSONResponse:
        return JSONResponse(list(await server.run(lambda rt: rt.list_tables())))

    @app.get(f"{API}/tables/{{table}}/variables")
    async def variables(table: str, login: Login, server: Server) -> JSONResponse:
        if len(table) > 256:
            raise CallRejected("table name too long")
        return JSONResponse(list(await server.run(lambda rt: rt.table_variables(table))))

    @app.get(f"{API}/methods")
    async def methods(login: Login, server: Server,
                      kind: Annotated[str, Query(pattern="^(aggregate|assign)$")] = "aggregate") -> JSONResponse:
        return JSONResponse(list(await server.run(lambda rt: rt.list_methods(kind))))

    @app.get(f"{API}/info")
    async def info(login: Login, server: Server) -> JSONResponse:
        answer = dict(await server.run(lambda rt: rt.info()))
        answer["load"] = await server.load()
        return JSONResponse(answer)

    @app.post(f"{API}/sessions")
    async def open_session(login: Login, server: Server) -> JSONResponse:
        sid = await server.open_session(login)
        return JSONResponse({"session": sid, "idle_timeout": settings.idle_timeout}, status_code=201)

    @app.get(f"{API}/sessions/{{sid}}")
    async def touch_session(sid: str, login: Login, server: Server) -> JSONResponse:
        session = server.session_of(login, sid, "keep_alive")
        return JSONResponse({"session": session.sid, "running": session.running})

    @app.delete(f"{API}/sessions/{{sid}}")
    async def close_session(sid: str, login: Login, server: Server) -> JSONResponse:
        server.session_of(login, sid, "close_session")
        await server.close_session(sid)
        return JSONResponse({"status": "ok"})

    @app.post(f"{API}/sessions/{{sid}}/assign-table", status_code=202)
    async def assign_table(sid: str, body: AssignTableRequest, login: Login, server: Server,
                           wait: Wait = 0.0) -> Response:
        session = server.session_of(login, sid, "assign_table")
        variables = list(body.variables) if body.variables is not None else None
        return await outcome(server, server.submit(login, session, "assign_table",
                                                   lambda rt: rt.assign_table(sid, body.symbol, body.table,
                                                                              variables)), wait)

    @app.post(f"{API}/sessions/{{sid}}/assign", status_code=202)
    async def assign(sid: str, body: AssignRequest, login: Login, server: Server, wait: Wait = 0.0) -> Response:
        session = server.session_of(login, sid, "assign_expr")
        return await outcome(server, server.submit(login, session, "assign_expr",
                                                   lambda rt: rt.assign_expr(sid, body.symbol, body.expr)), wait)

    @app.post(f"{API}/sessions/{{sid}}/aggregate", status_code=202)
    async def aggregate(sid: str, body: AggregateRequest, login: Login, server: Server,
                        wait: Wait = 0.0) -> Response:
        session = server.session_of(login, sid, "aggregate")
        return await outcome(server, server.submit(login, session, "aggregate",
                                                   lambda rt: rt.aggregate(sid, body.expr)), wait)

    @app.get(f"{API}/sessions/{{sid}}/symbols")
    async def symbols(sid: str, login: Login, server: Server) -> JSONResponse:
        server.session_of(login, sid, "list_symbols")
        return JSONResponse(list(await server.run(lambda rt: rt.list_symbols(sid))))

    @app.delete(f"{API}/sessions/{{sid}}/symbols/{{symbol}}")
    async def rm_symbol(sid: str, symbol: str, login: Login, server: Server) -> JSONResponse:
        server.session_of(login, sid, "rm_symbol")
        if len(symbol) > 256:
            raise CallRejected("symbol name too long")
        await server.run(lambda rt: rt.rm_symbol(sid, symbol))
        return JSONResponse({"status": "ok"})

    @app.get(f"{API}/commands/{{cid}}")
    async def fetch(cid: str, login: Login, server: Server, wait: Wait = 0.0) -> Response:
        return await outcome(server, server.command_of(login, cid), wait)

    return app

