"""MOLGENIS Armadillo's DataSHIELD API, beside Opal's, on the same server, runtime, logins and audit.

The routes DSMolgenisArmadillo 2.0.10 (and ``pydsbase.ArmadilloDriver``) use, with the shapes of
molgenis-service-armadillo's ``DataController``. No ``/ws`` prefix. A login is what Opal's routes call
a login too (``r_server.auth``); here its cookie is ``JSESSIONID``, and ``Authorization: Basic`` or
``Bearer <access token>`` opens it (DSMolgenisArmadillo sends Basic on ``/select-profile`` only and
then relies on the cookie; with a token it sends ``Bearer`` on every request). Each login has one R
session (opened by ``/select-profile`` or the first call that needs one) and one *last command*.

=========================================  ===========================================================
``POST /select-profile``                   body: the profile name (``default``) -> 204; a fresh R session
``GET  /profiles``                         ``{"available": ["default"], "current": "default"}``
``POST /load-table?symbol=&table=``        ``PROJECT/FOLDER/TABLE`` (or a top-level ``TABLE``), optional
                                           ``variables=a,b``; ``async=true`` -> 201 ``Location: /lastcommand``
``POST /symbols/{s}?async=``               ``text/plain`` body an expression: ``s <- expression``
``POST /execute?async=``                   ``text/plain`` body an expression -> R's ``serialize(value, NULL)``
``GET  /lastresult``                       blocks until the last command is done: 200 octet-stream, or 404
                                           (failed, no value, or no command)
``GET  /lastcommand``                      ``{id, expression, status, createDate, startDate, endDate,
                                           withResult, message}`` (404 when there is none)
``GET  /symbols``, ``DELETE /symbols/{s}`` the session's symbols (JSON) / removes one (absent: no error)
``GET  /tables``, ``HEAD /tables/{p}/{f}/{t}``  table names / 200 or 404 (``HEAD /tables/{t}`` too)
``GET  /methods/{aggregate|assign}``       ``[{"name", "function", "package", "version"}]``
``GET  /packages``                         ``[{"name", "version", "built", "libPath"}]``
``POST /logout``                           ends the login, closing its R session
``GET  /actuator/info``                    unauthenticated: ``{"build": {"name", "version"}}`` (keep-alive)
``GET  /workspaces``, ``/resources``       ``[]``; saving, loading workspaces or resources: 400
=========================================  ===========================================================

One command runs per session at a time: a submit while the last command runs answers 409 (Armadillo
queues it behind the first and forgets the first's result; DSMolgenisArmadillo never does this).
A failed command's ``message`` embeds a JSON object ``{"status": kind, "message": R's try() text,
"condition": R's bare message}``; DSMolgenisArmadillo extracts it with a regex and ``fromJSON`` and shows
``message``, which is R's ``Error in <call> : ...`` as Armadillo's Rock sends it (and dsBaseClient's tests
expect); ``condition``, our addition, gives pydsbase's client R's condition message as every backend has it.
``expression`` is written as Armadillo writes it: ``try(base::serialize({EXPR}, NULL))`` for an
execute, ``is.null(base::assign('S', value={EXPR}))`` for an assign, ``Load table T`` for a table.
Errors of the routes themselves are Spring's JSON (``{"timestamp", "status", "error", "message",
"path"}``, see ``r_server.http._error_response``).

Every call goes through the same ``StudyRuntime`` as Opal's routes: grammar, allow-list, name checks,
the wire scrub and the audit log. Table names: see ``StudyRuntime._find_table`` (Opal's two levels and
Armadillo's three name files of one tables folder).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from pydsbase import __version__
from r_server.auth import LoginSession
from r_server.errors import CallRejected
from r_server.http import (
    _REASONS,
    RDS_MEDIA,
    HTTPFault,
    HTTPSettings,
    Login,
    Runtime,
    Server,
    StudyServer,
    _check_name,
    _flag,
    _now_iso,
    _refuse_unsupported,
    _script,
    end_login,
)
from r_server.runtime import check_symbol

__all__ = ["add_routes"]

LAST_COMMAND = "/lastcommand"
MAX_VARIABLES = 10_000
PROFILE = "default"


@dataclass
class _Last:
    """The session's last command, as Armadillo describes it."""

    command: Any  # r_server.http.Command
    uid: str
    expression: str

    def dto(self) -> dict[str, Any]:
        command = self.command
        if command.finished is None:
            status = "IN_PROGRESS" if command.started_at is not None else "PENDING"
        else:
            status = "FAILED" if command.error is not None else "COMPLETED"
        out: dict[str, Any] = {"id": self.uid, "expression": self.expression, "status": status,
                               "createDate": command.created_at, "withResult": command.media is not None}
        if command.started_at is not None:
            out["startDate"] = command.started_at
        if command.ended_at is not None:
            out["endDate"] = command.ended_at
        if command.error is not None:
            out["message"] = failure_message(command.status, command.error, *_failure_of(command.body))
        return out


@dataclass
class ArmadilloSession:
    """A login's R session and last command (``StudyServer.armadillo``, keyed by the login's digest)."""

    sid: str
    profile: str = PROFILE
    last: _Last | None = None


def failure_message(status: int, shown: str, kind: str, condition: str) -> str:
    """The ``message`` of a failed command: the HTTP reason and a JSON object holding R's try() text
    (``shown``, what Armadillo's clients read) and its bare condition message."""
    inner = json.dumps({"status": kind, "message": shown, "condition": condition}, ensure_ascii=False)
    return f'{status} {_REASONS.get(status, "Error")}: "{inner}"'


def _failure_of(body: bytes | None) -> tuple[str, str]:
    """A failed command's kind and R's bare condition message, from its error JSON."""
    try:
        error = json.loads(body or b"{}")
        return str(error.get("status", "internal")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "internal", "internal error"


def _known(server: StudyServer, login: LoginSession) -> ArmadilloSession | None:
    """The login's Armadillo session while its R session is open (else None)."""
    state: ArmadilloSession | None = server.armadillo.get(login.digest)
    return state if state is not None and state.sid in server.sessions else None


async def _session(server: StudyServer, login: LoginSession) -> ArmadilloSession:
    """The login's Armadillo session, with an open R session (a new one when it expired or was closed)."""
    state = _known(server, login)
    if state is not None:
        return state
    opened = await server.open_session(login)
    state = _known(server, login)
    if state is not None:  # another request opened one meanwhile
        await server.close_session(opened.sid)
        return state
    state = ArmadilloSession(opened.sid)
    server.armadillo[login.digest] = state
    return state


def _checked(server: StudyServer, login: LoginSession, operation: str, check: Callable[[], Any]) -> Any:
    """Run a name check of the HTTP layer; a refusal is audited, then answered (400)."""
    try:
        return check()
    except CallRejected as exc:
        server.refuse(operation, exc.kind, exc.message, user=login.user)
        raise


def _variables(text: str | None) -> list[str] | None:
    if text is None or text == "":
        return None
    names = [name.strip() for name in text.split(",")]
    if len(names) > MAX_VARIABLES or not all(names) or any(len(n) > 256 for n in names):
        raise CallRejected("variables is a comma-separated list of column names")
    return names


def add_routes(app: FastAPI, settings: HTTPSettings) -> None:
    """Register Armadillo's routes on the study server's app (``r_server.http.create_app``)."""

    async def submit(request: Request, server: StudyServer, login: LoginSession, operation: str,
                     expression: str, media: str | None, call: Callable[[Runtime], Any]) -> Response:
        asynchronous = _flag(request.query_params.get("async"), "async", False)
        state = await _session(server, login)
        if state.last is not None and state.last.command.body is None:
            message = "the last command of this session is still running: fetch /lastresult first"
            server.refuse(operation, "conflict", message, user=login.user, session=state.sid)
            raise HTTPFault("conflict", message)
        session = server.session_of(login, state.sid, operation)
        if state.last is not None:  # one command per session: forget the previous one
            server.commands.pop(state.last.command.cid, None)
        command = server.submit(login, session, operation, expression, media, call)
        state.last = _Last(command, str(uuid.uuid4()), expression)
        if asynchronous:
            location = str(request.base_url).rstrip("/") + LAST_COMMAND
            return Response(status_code=201, headers={"Location": location})
        await command.done_event.wait()
        if command.error is not None:
            message = failure_message(500, command.error, *_failure_of(command.body))
            return JSONResponse({"timestamp": _now_iso(), "status": 500, "error": _REASONS[500],
                                 "message": message, "path": request.url.path}, status_code=500)
        if media is None:
            return Response(status_code=200)
        return Response(command.body, status_code=200, media_type=media)

    # -- login, profiles --
    @app.post("/select-profile")
    async def select_profile(request: Request, login: Login, server: Server) -> Response:
        name = (await request.body()).decode("utf-8", errors="replace").strip()
        if not name:
            raise HTTPFault("bad_request", "the profile name is empty")
        if name != PROFILE:
            server.refuse("select_profile", "not_found", "unknown profile", user=login.user)
            raise HTTPFault("not_found", f"Profile not found: '{name[:64]}' (this study has the default profile)")
        state = server.armadillo.get(login.digest)
        if state is not None:  # as Armadillo: selecting a profile starts a fresh R session
            if state.last is not None:
                server.commands.pop(state.last.command.cid, None)
            await server.close_session(state.sid)
        await _session(server, login)
        if server.audit is not None:
            server.audit.record(user=login.user, session=None, operation="select_profile", outcome="ok")
        return Response(status_code=204)

    @app.get("/profiles")
    async def profiles(login: Login) -> JSONResponse:
        return JSONResponse({"available": [PROFILE], "current": PROFILE})

    @app.post("/logout")
    async def logout(request: Request, login: Login, server: Server) -> Response:
        return await end_login(request, server, login.digest)

    @app.get("/actuator/info")
    async def actuator_info() -> JSONResponse:
        return JSONResponse({"build": {"name": "pydsbase study server", "version": __version__}})

    # -- tables --
    @app.get("/tables")
    async def tables(login: Login, server: Server) -> JSONResponse:
        names = list(await server.run(lambda rt: rt.list_tables()))
        return JSONResponse([n for n in names if "/" in n or "." not in n])

    async def table_exists(server: StudyServer, table: str) -> Response:
        found = bool(await server.run(lambda rt: rt.has_table(table)))
        return Response(status_code=200 if found else 404)

    @app.head("/tables/{project}/{folder}/{table}")
    async def has_table(project: str, folder: str, table: str, login: Login, server: Server) -> Response:
        return await table_exists(server, f"{project}/{folder}/{table}")

    @app.head("/tables/{table}")
    async def has_top_table(table: str, login: Login, server: Server) -> Response:
        return await table_exists(server, table)

    @app.post("/load-table")
    async def load_table(request: Request, login: Login, server: Server) -> Response:
        query = request.query_params
        symbol, table = query.get("symbol") or "", query.get("table") or ""
        _checked(server, login, "assign_table", lambda: check_symbol(symbol))
        _checked(server, login, "assign_table", lambda: _check_name(table, "table"))
        variables = _checked(server, login, "assign_table", lambda: _variables(query.get("variables")))
        if not await server.run(lambda rt: rt.has_table(table)):
            server.refuse("load_table", "not_found", "table not found", user=login.user)
            raise HTTPFault("not_found", f"Table '{table[:128]}' not found in study {settings.study}")
        state = await _session(server, login)
        sid = state.sid
        return await submit(request, server, login, "assign_table", f"Load table {table}", None,
                            lambda rt: rt.assign_table(sid, symbol, table, variables))

    # -- assign, execute, results --
    @app.post("/symbols/{symbol}")
    async def assign(symbol: str, request: Request, login: Login, server: Server) -> Response:
        _checked(server, login, "assign_expr", lambda: check_symbol(symbol))
        _, text = await _script(request, ("text/plain",))
        sid = (await _session(server, login)).sid
        expression = f"is.null(base::assign('{symbol}', value={{{text}}}))"
        return await submit(request, server, login, "assign_expr", expression, None,
                            lambda rt: rt.assign_expr(sid, symbol, text))

    @app.post("/execute")
    async def execute(request: Request, login: Login, server: Server) -> Response:
        _, text = await _script(request, ("text/plain",))
        sid = (await _session(server, login)).sid
        call: Callable[[Runtime], Any] = lambda rt: rt.aggregate(sid, text, encoding="rds")  # type: ignore[call-arg]  # noqa: E731
        return await submit(request, server, login, "aggregate", f"try(base::serialize({{{text}}}, NULL))",
                            RDS_MEDIA, call)

    @app.get("/lastresult")
    async def last_result(login: Login, server: Server) -> Response:
        state = _known(server, login)
        if state is None or state.last is None:
            return Response(status_code=404)
        command = state.last.command
        await command.done_event.wait()
        if command.error is not None or command.media is None or command.body is None:
            return Response(status_code=404)  # as Armadillo: a failure, or a command without a value
        return Response(command.body, status_code=200, media_type=command.media)

    @app.get(LAST_COMMAND)
    async def last_command(login: Login, server: Server) -> Response:
        state = _known(server, login)
        if state is None or state.last is None:
            return Response(status_code=404)
        return JSONResponse(state.last.dto())

    # -- symbols --
    @app.get("/symbols")
    async def symbols(login: Login, server: Server) -> JSONResponse:
        sid = (await _session(server, login)).sid
        server.session_of(login, sid, "list_symbols")
        return JSONResponse(list(await server.run(lambda rt: rt.list_symbols(sid))))

    @app.delete("/symbols/{symbol}")
    async def rm_symbol(symbol: str, login: Login, server: Server) -> Response:
        _checked(server, login, "rm_symbol", lambda: check_symbol(symbol))
        sid = (await _session(server, login)).sid
        server.session_of(login, sid, "rm_symbol")
        try:
            await server.run(lambda rt: rt.rm_symbol(sid, symbol))
        except CallRejected as exc:  # as Armadillo (R's rm() only warns): removing an absent symbol is no error
            if exc.message != f"object '{symbol}' not found":
                raise
        return Response(status_code=200)

    # -- configuration --
    @app.get("/methods/{kind}")
    async def methods(kind: str, login: Login, server: Server) -> JSONResponse:
        if kind not in ("aggregate", "assign"):
            server.refuse("list_methods", "not_found", "unknown environment", user=login.user)
            raise HTTPFault("not_found", "the environment is aggregate or assign")
        names = list(await server.run(lambda rt: rt.list_methods(kind)))
        return JSONResponse([{"name": n, "function": f"dsBase::{n}", "package": "dsBase", "version": "6.3.0"}
                             for n in names])

    @app.get("/packages")
    async def packages(login: Login, server: Server) -> JSONResponse:
        versions = dict(await server.run(lambda rt: rt.info()))
        built = str(versions.get("R", ""))
        return JSONResponse([{"name": "dsBase", "version": "6.3.0", "built": built, "libPath": "pydsbase"},
                             {"name": "lme4", "version": str(versions.get("lme4", "")), "built": built,
                              "libPath": "site-library"}])

    # -- what pydsbase studies do not have --
    @app.get("/workspaces")
    async def workspaces(login: Login) -> JSONResponse:
        return JSONResponse([])

    @app.get("/resources")
    async def resources(login: Login) -> JSONResponse:
        return JSONResponse([])

    @app.head("/resources/{project}/{folder}/{resource}")
    async def has_resource(project: str, folder: str, resource: str, login: Login) -> Response:
        return Response(status_code=404)

    @app.api_route("/workspaces/{name}", methods=["POST", "DELETE"])
    async def workspace(name: str, login: Login) -> Response:
        raise _refuse_unsupported("workspaces")

    @app.post("/load-workspace")
    async def load_workspace(login: Login) -> Response:
        raise _refuse_unsupported("workspaces")

    @app.post("/load-resource")
    async def load_resource(login: Login) -> Response:
        raise _refuse_unsupported("resources")
