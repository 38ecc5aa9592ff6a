"""The HTTP study server and HTTPDriver, over real loopback HTTP, with a stand-in runtime (no R).

The stand-in has StudyRuntime's API and audits its calls like it; each server runs uvicorn in a
thread of this process on a free port. Tests with the real runtime are in test_http_process.py.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl as stdlib_ssl
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from datashield.api import DSLoginBuilder
from datashield.interface import DSError
from fakeclock import FakeClock
from rstream import xdr_of_node

from pydsbase.drivers.http import HTTPConnection
from pydsbase.errors import SessionCallError, StudyCallError
from pydsbase.rvalue import NA, RAtomic
from pydsbase.session import Session
from r_server.audit import AuditLog
from r_server.auth import Authenticator, hash_password, new_token, parse_users, token_digest
from r_server.errors import CallRejected, RCallError, SessionError
from r_server.http import HTTPSettings, create_app, parse_variables_filter

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
ALICE_TOKEN = new_token()
# Cheapest accepted scrypt cost: these tests check the protocol, test_http_auth.py the cost.
USERS = parse_users({"users": [
    {"name": "alice", "password_hash": hash_password(PASSWORDS["alice"], n=2**12),
     "token_sha256": [token_digest(ALICE_TOKEN)]},
    {"name": "bob", "password_hash": hash_password(PASSWORDS["bob"], n=2**12)},
]})
COLUMNS = ["idPatient", "BMI", "trtGrp", "Male", "idDoctor"]


def _dbl(values: list[Any]) -> dict[str, Any]:
    return {"type": "double", "class": ["numeric"], "length": len(values), "data": values}


class FakeRuntime:
    """StudyRuntime's API over a dict; records the thread of every call."""

    # meet(): waits here until every study of a fan-out is inside its call at the same time
    meeting: threading.Barrier | None = None
    # hold(): runs until the test sets this
    release = threading.Event()

    def __init__(self, name: str, audit: AuditLog) -> None:
        self.name = name
        self.audit = audit
        self.sessions: dict[str, dict[str, Any]] = {}
        self.threads: set[int] = set()
        self.closed: list[str] = []
        self.calls: list[str] = []  # every operation asked of the runtime, in order

    def _call(self, sid: str | None, operation: str, function: str | None, symbol: str | None, run: Any) -> Any:
        self.calls.append(operation)
        self.threads.add(threading.get_ident())
        user = None
        start = time.perf_counter()
        try:
            if sid is not None:
                if sid not in self.sessions:
                    raise SessionError("unknown session")
                user = self.sessions[sid]["__user__"]
            value = run()
        except (CallRejected, RCallError, SessionError) as exc:
            self.audit.record(user=user, session=sid, operation=operation, function=function, symbol=symbol,
                              outcome=exc.kind, duration_ms=(time.perf_counter() - start) * 1e3,
                              message=exc.message)
            raise
        self.audit.record(user=user, session=sid, operation=operation, function=function, symbol=symbol,
                          duration_ms=(time.perf_counter() - start) * 1e3)
        return value

    def list_tables(self) -> list[str]:
        return self._call(None, "list_tables", None, None, lambda: ["CLUSTER_INT1"])

    def table_variables(self, table: str) -> list[str]:
        def run() -> list[str]:
            if table != "CLUSTER_INT1":
                raise CallRejected(f"no such table: {table}")
            return COLUMNS
        return self._call(None, "table_variables", None, None, run)

    def has_table(self, table: str) -> bool:
        def run() -> bool:
            if "/" in table and len(table.split("/")) != 3:
                raise CallRejected(f"not a table name: {table!r}")
            return table == "CLUSTER_INT1"
        return self._call(None, "has_table", table, None, run)

    def table_dictionary(self, table: str) -> None:
        return None  # an untyped table

    def open_session(self, user: str) -> str:
        self.threads.add(threading.get_ident())
        sid = uuid.uuid4().hex
        self.sessions[sid] = {"__user__": user}
        return sid

    def close_session(self, sid: str) -> None:
        self.sessions.pop(sid, None)
        self.closed.append(sid)

    def assign_table(self, sid: str, symbol: str, table: str, variables: list[str] | None = None) -> None:
        def run() -> None:
            if table != "CLUSTER_INT1":
                raise CallRejected(f"no such table: {table}")
            self.sessions[sid][symbol] = [c for c in COLUMNS if variables is None or c in variables]
        self._call(sid, "assign_table", None, symbol, run)

    def assign_expr(self, sid: str, symbol: str, expr: str) -> None:
        def run() -> None:
            if expr.startswith("system"):
                raise CallRejected("function 'system' is not allowed")
            self.sessions[sid][symbol] = expr
        self._call(sid, "assign_expr", expr.split("(")[0], symbol, run)

    def aggregate(self, sid: str, expr: str, encoding: str = "json") -> Any:
        """The value as the server sends it: ``rds``, R's serialize() bytes (tests/rstream.py's writer);
        ``json``, the fake's stand-in for Rock's JSON (the node's JSON text)."""

        def run() -> Any:
            node = value()
            return xdr_of_node(node) if encoding == "rds" else json.dumps(node).encode()

        def value() -> Any:
            env = self.sessions[sid]
            if expr.startswith("colnamesDS("):
                name = expr[len('colnamesDS("'):-2]
                if name not in env:
                    raise RCallError(f"object '{name}' not found")
                return {"type": "character", "class": ["character"], "length": len(env[name]),
                        "data": env[name]}
            if expr == "meet()":
                assert FakeRuntime.meeting is not None
                # 60 s only stops a hung test; the other studies arrive within milliseconds
                return _dbl([float(FakeRuntime.meeting.wait(timeout=60))])
            if expr == "hold()":
                # 60 s only stops a hung test: the test releases the command within a second
                return _dbl([float(FakeRuntime.release.wait(timeout=60))])
            if expr.startswith("sleep("):
                time.sleep(float(expr[6:-1]))
                return _dbl([float(expr[6:-1])])
            if expr == "doubles()":
                return _dbl([0.1, 1 / 3, 1e-300, 5e-324, -0.0, "NaN", "NA", "Inf", 2.0**53 + 1])
            if expr.startswith("big("):
                return {"type": "character", "class": ["character"], "length": 1,
                        "data": ["x" * int(expr[4:-1])]}
            if expr == "crash()":
                raise KeyError("secret internal detail")
            raise CallRejected(f"function '{expr.split('(')[0]}' is not allowed")
        return self._call(sid, "aggregate", expr.split("(")[0], None, run)

    def list_symbols(self, sid: str) -> list[str]:
        return self._call(sid, "list_symbols", None, None,
                          lambda: sorted(k for k in self.sessions[sid] if k != "__user__"))

    def rm_symbol(self, sid: str, symbol: str) -> None:
        self._call(sid, "rm_symbol", None, symbol, lambda: self.sessions[sid].pop(symbol, None))

    def list_methods(self, kind: str) -> list[str]:
        return ["colnamesDS", "lmerSLMADS2"] if kind == "aggregate" else ["dataFrameDS"]

    def start(self) -> None:  # no R to start
        self.calls.append("start")

    def info(self) -> dict[str, Any]:
        self.calls.append("info")
        return {"study": self.name, "r_version": "fake"}


class ThreadServer:
    """uvicorn serving one app in a thread of this process, on a free loopback port."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic,
                 tls: tuple[Path, Path] | None = None, **settings: Any) -> None:
        self.audit = AuditLog()
        self.runtime = FakeRuntime(name, self.audit)
        self.clock = clock  # the logins' and R sessions' clock: a test may fake it (see FakeClock)
        self.sweeps = 0
        self.auth = Authenticator(
            USERS,
            idle_timeout=settings.pop("idle_timeout", 60.0),
            user_failures=settings.pop("user_failures", 3),
            address_failures=settings.pop("address_failures", 50),
            failure_window=settings.pop("failure_window", 60.0),
            clock=clock,
        )
        self.settings = HTTPSettings(study=name, **settings)
        self.app = app = create_app(self.settings, lambda: self.runtime, self.auth, self.audit)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        ssl = {} if tls is None else {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}
        self.verify: Any = True if tls is None else stdlib_ssl.create_default_context(cafile=str(tls[0]))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False, **ssl))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self.clients: list[httpx.Client] = []

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        # 20 s only stops a hung start: an in-process server is up in well under a second
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        while httpx.get(self.url + "/health", verify=self.verify).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("test server is not healthy")
            time.sleep(0.01)
        study = self.app.state.study_server
        study.clock = self.clock
        sweep = study.sweep

        def counted_sweep() -> Any:
            self.sweeps += 1
            return sweep()

        study.sweep = counted_sweep
        return self

    def wait_for_a_sweep(self) -> None:
        """Until a whole sweep has run after this call (it then saw the clock as it is now)."""
        seen = self.sweeps
        # 20 s only stops a hung test: sweeps run every sweep_interval (0.05 s where this is used)
        deadline = time.monotonic() + 20
        while self.sweeps < seen + 2:  # sweep seen + 1 started after this call; it ended when seen + 2 began
            if time.monotonic() > deadline:
                raise RuntimeError("no sweep ran")
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()
        self.server.should_exit = True
        self.thread.join(20)
        self._sock.close()

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url + "/ws", verify=self.verify)
        self.clients.append(client)
        return client

    def login(self, user: str = "alice") -> httpx.Client:
        """A client logged in with Basic credentials once, then carrying only the opalsid cookie."""
        client = self.client()
        reply = client.get(PROFILE, headers=basic(user, PASSWORDS[user]))
        assert reply.status_code == 200, reply.text
        assert reply.json()["principal"] == user and client.cookies.get("opalsid")
        return client


PROFILE = "/system/subject-profile/_current"
RDS = "application/octet-stream"
RSCRIPT = {"Content-Type": "application/x-rscript", "Accept": "application/json"}


def basic(user: str, password: str, scheme: str = "Basic") -> dict[str, str]:
    return {"Authorization": f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer("study1", sweep_interval=3600, max_sessions_per_user=100) as srv:
        yield srv


@contextmanager
def session_on(*servers: ThreadServer, user: str = "alice", **kwargs: Any) -> Iterator[Session]:
    builder = DSLoginBuilder()
    for i, srv in enumerate(servers):
        builder.add(f"study{i + 1}", url=srv.url, user=user, password=PASSWORDS[user], driver="pydsbase.HTTPDriver")
    session = Session(builder.build(), **kwargs)
    session.open()
    try:
        yield session
    finally:
        session.close()


def _error(reply: httpx.Response) -> dict[str, Any]:
    """Opal's error JSON, as {"kind": status, "message": message} (arguments hold the message too)."""
    body = reply.json()
    assert set(body) >= {"code", "status", "arguments", "message"}, body
    assert body["code"] == reply.status_code and body["arguments"] == [body["message"]]
    return {"kind": body["status"], "message": body["message"]}


def _open(client: httpx.Client) -> str:
    reply = client.post("/datashield/sessions")
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _submit(client: httpx.Client, sid: str, expr: str, symbol: str | None = None) -> str:
    """An asynchronous aggregate (or assign of ``symbol``) -> its command id."""
    if symbol is None:
        reply = client.post(f"/datashield/session/{sid}/aggregate", params={"async": "true"}, content=expr,
                            headers=RSCRIPT)
    else:
        reply = client.put(f"/datashield/session/{sid}/symbol/{symbol}", params={"async": "true"}, content=expr,
                           headers=RSCRIPT)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain"), reply.text
    return reply.text


def _assign_table(client: httpx.Client, sid: str, symbol: str, table: str) -> str:
    reply = client.put(f"/datashield/session/{sid}/symbol/{symbol}", params={"async": "true"}, content=table,
                       headers={"Content-Type": "application/x-opal"})
    assert reply.status_code == 200, reply.text
    return reply.text


def _wait_done(client: httpx.Client, sid: str, command: str, wait: float = 10.0) -> httpx.Response:
    reply = client.get(f"/datashield/session/{sid}/command/{command}/result", params={"wait": wait})
    assert reply.status_code != 204, "command still running"
    return reply


# -- the driver and session -------------------------------------------------------------------------


def test_driver_round_trip_through_session(server: ThreadServer) -> None:
    with session_on(server) as session:
        session.assign_table("D", table="CLUSTER_INT1", variables=["BMI", "trtGrp"])
        answer = session.aggregate('colnamesDS("D")')
        assert list(answer) == ["study1"]
        value = answer["study1"]
        assert isinstance(value, RAtomic) and value.type == "character"
        assert value.data == ["BMI", "trtGrp"]
        assert session.ls() == {"study1": ["D"]}
        session.rm("D")
        assert session.ls() == {"study1": []}
        conn = session.conns[0]
        # Opal's names: a top-level table belongs to the project named after the study
        assert conn.list_tables() == ["study1.CLUSTER_INT1"]
        assert conn.has_table("study1.CLUSTER_INT1") and conn.has_table("CLUSTER_INT1")
        assert conn.list_table_variables("CLUSTER_INT1") == COLUMNS
        assert conn.list_table_variables("study1.CLUSTER_INT1") == COLUMNS
        assert conn.list_methods("aggregate") == ["colnamesDS", "lmerSLMADS2"]
        assert conn.info()["study"] == "study1"


def test_doubles_travel_bit_exact(server: ThreadServer) -> None:
    with session_on(server) as session:
        value = session.aggregate("doubles()")["study1"]
    assert isinstance(value, RAtomic)
    got = value.data
    expected = [0.1, 1 / 3, 1e-300, 5e-324, -0.0]
    assert [struct.pack("<d", x) for x in got[:5]] == [struct.pack("<d", x) for x in expected]
    assert got[5] != got[5]  # NaN
    assert repr(got[6]) == "NA"
    assert got[7] == float("inf") and got[8] == 2.0**53


def test_study_errors_surface_in_fetch_with_r_message(server: ThreadServer) -> None:
    with session_on(server) as session:
        conn = session.conns[0]
        result = conn.aggregate('colnamesDS("nothere")')
        assert result.wait(10)
        assert result.is_completed() is True
        with pytest.raises(DSError) as caught:
            result.fetch()
        assert str(caught.value) == "object 'nothere' not found"
        assert isinstance(caught.value, StudyCallError) and caught.value.kind == "r_error"
        rejected = conn.assign_expr("x", "system('touch /tmp/pwned')")
        with pytest.raises(StudyCallError) as caught:
            rejected.fetch(10)
        assert caught.value.kind == "rejected" and str(caught.value) == "function 'system' is not allowed"
        with pytest.raises(SessionCallError) as failed:
            session.aggregate("crash()")
        err = failed.value.errors["study1"]
        assert isinstance(err, StudyCallError)
        assert (err.kind, str(err)) == ("internal", "internal error")
        assert "secret" not in str(failed.value)


def test_is_completed_never_raises_when_the_server_is_gone() -> None:
    with ThreadServer("gone", sweep_interval=3600) as srv:
        builder = DSLoginBuilder().add("s", url=srv.url, user="alice", password=PASSWORDS["alice"],
                                       driver="pydsbase.HTTPDriver")
        conn = HTTPConnection(builder.build()[0])
        result = conn.aggregate("sleep(0.3)")  # submitted without waiting; its outcome stays on the server
    assert result.is_completed() is True  # the outcome is "unreachable", found without raising
    with pytest.raises(StudyCallError) as caught:
        result.fetch()
    assert caught.value.kind == "unavailable"
    conn.disconnect()  # never raises either


def test_token_login(server: ThreadServer) -> None:
    builder = DSLoginBuilder().add("s", url=server.url, token=ALICE_TOKEN, driver="pydsbase.HTTPDriver")
    conn = HTTPConnection(builder.build()[0])
    try:
        assert conn.user == "alice"
        assert conn.list_tables() == ["study1.CLUSTER_INT1"]
    finally:
        conn.disconnect()
    reply = server.client().get(PROFILE, headers={"X-Opal-Auth": new_token()})
    assert reply.status_code == 401 and _error(reply)["kind"] == "auth"
    # opalr's form of user and password: Authorization: X-Opal-Auth base64(user:password)
    client = server.client()
    reply = client.get(PROFILE, headers=basic("bob", PASSWORDS["bob"], scheme="X-Opal-Auth"))
    assert reply.status_code == 200 and reply.json()["principal"] == "bob"
    assert client.get("/datasources").status_code == 200  # the cookie alone from then on


def test_fan_out_runs_studies_concurrently() -> None:
    """All three studies are inside their call at once: each waits at a barrier only all three can pass."""
    FakeRuntime.meeting = threading.Barrier(3)
    try:
        with ThreadServer("a", sweep_interval=3600) as a, ThreadServer("b", sweep_interval=3600) as b, \
                ThreadServer("c", sweep_interval=3600) as c, session_on(a, b, c) as session:
            answer = session.aggregate("meet()")
    finally:
        FakeRuntime.meeting = None
    assert list(answer) == ["study1", "study2", "study3"]
    assert sorted(v.data[0] for v in answer.values()) == [0.0, 1.0, 2.0]  # each passed the barrier, in turn


def test_long_poll_returns_when_done_not_at_the_deadline(server: ThreadServer) -> None:
    client = server.login()
    sid = _open(client)
    FakeRuntime.release.clear()
    command = _submit(client, sid, "hold()")
    result = f"/datashield/session/{sid}/command/{command}/result"
    assert client.get(result).status_code == 204  # held: still running
    running = client.get(f"/datashield/session/{sid}/command/{command}").json()
    assert running["id"] == command and running["status"] in ("PENDING", "IN_PROGRESS")
    assert running["script"] == "hold()" and running["withResult"] is True
    assert [c["id"] for c in client.get(f"/datashield/session/{sid}/commands").json()] == [command]
    threading.Timer(0.3, FakeRuntime.release.set).start()  # ends while the long-poll below waits
    # The server may hold this request 60 s (its longest long-poll); the client gives up after 30 s, so an
    # answer at the deadline fails the test. The command ends 0.3 s after the poll began: a 100-fold margin,
    # and a loaded machine only ever makes a passing run slower, never a failing one.
    done = client.get(f"/datashield/session/{sid}/command/{command}", params={"wait": "true"}, timeout=30).json()
    assert done["status"] == "COMPLETED" and "error" not in done and {"startDate", "endDate"} <= set(done)
    reply = client.get(result, params={"wait": 20})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == _dbl([1.0])
    # answered once: the command is gone afterwards
    assert client.get(result).status_code == 404
    assert client.get(f"/datashield/session/{sid}/commands").json() == []


def test_a_failed_command_carries_its_message_and_commands_can_be_dropped(server: ThreadServer) -> None:
    client = server.login()
    sid = _open(client)
    failed = _submit(client, sid, 'colnamesDS("nothere")')
    dto = client.get(f"/datashield/session/{sid}/command/{failed}", params={"wait": "true"}).json()
    # the command's error is R's try() text, as Opal shows it (this fake R error has no call); the error JSON
    # keeps the bare message
    assert dto["status"] == "FAILED" and dto["error"] == "Error : object 'nothere' not found"
    reply = client.get(f"/datashield/session/{sid}/command/{failed}/result")
    assert reply.status_code == 422 and _error(reply) == {"kind": "r_error", "message": "object 'nothere' not found"}
    dropped = _submit(client, sid, "sleep(0)")
    assert client.delete(f"/datashield/session/{sid}/command/{dropped}").status_code == 200
    assert client.get(f"/datashield/session/{sid}/command/{dropped}").status_code == 404


def test_synchronous_submits_answer_the_outcome(server: ThreadServer) -> None:
    client = server.login()
    sid = _open(client)
    assert client.put(f"/datashield/session/{sid}/symbol/D/table/CLUSTER_INT1",
                      params={"async": "false", "variables": "name().any('BMI','Male')"}).status_code == 200
    reply = client.post(f"/datashield/session/{sid}/aggregate", content='colnamesDS("D")', headers=RSCRIPT)
    assert reply.status_code == 200 and reply.json()["data"] == ["BMI", "Male"]
    reply = client.post(f"/datashield/session/{sid}/aggregate", content='colnamesDS("zz")', headers=RSCRIPT)
    assert reply.status_code == 422 and _error(reply)["kind"] == "r_error"
    # our extension: an asynchronous submit with ?wait=S answers the outcome when it is in within S s
    reply = client.post(f"/datashield/session/{sid}/aggregate", params={"async": "true", "wait": "10"},
                        content="sleep(0)", headers=RSCRIPT)
    assert reply.status_code == 200 and reply.json() == _dbl([0.0])
    reply = client.post(f"/datashield/session/{sid}/aggregate", params={"async": "true", "wait": "0"},
                        content="sleep(0.5)", headers=RSCRIPT)
    assert reply.status_code == 202 and reply.headers["content-type"].startswith("text/plain")
    assert _wait_done(client, sid, reply.text).json() == _dbl([0.5])


@pytest.mark.parametrize(("table", "variables", "expected"), [
    ("study1.CLUSTER_INT1", "name().any('BMI','trtGrp')", ["BMI", "trtGrp"]),  # DSOpal
    ("CLUSTER_INT1", 'name.any("Male","idDoctor")', ["Male", "idDoctor"]),  # datashield-opal
    ("CLUSTER_INT1", "BMI", ["BMI"]),  # a bare name
    ("CLUSTER_INT1", None, COLUMNS),
])
def test_table_assign_in_both_forms_with_variables_filters(server: ThreadServer, table: str,
                                                           variables: str | None, expected: list[str]) -> None:
    client = server.login()
    sid = _open(client)
    params = {"async": "false"} if variables is None else {"async": "false", "variables": variables}
    body = client.put(f"/datashield/session/{sid}/symbol/A", params=params, content=table,
                      headers={"Content-Type": "application/x-opal"})
    path = client.put(f"/datashield/session/{sid}/symbol/B/table/{table}", params=params)
    assert body.status_code == path.status_code == 200, (body.text, path.text)
    for symbol in ("A", "B"):
        reply = client.post(f"/datashield/session/{sid}/aggregate", content=f'colnamesDS("{symbol}")',
                            headers=RSCRIPT)
        assert reply.json()["data"] == expected


@pytest.mark.parametrize("variables", [
    "name().any('a'); java.lang.System.exit(0)", "name().all('a')", "$('BMI')", "name().any('a\\'b')",
    "name().any()", "eval('x')", "a b", "name().any('a',)", "",
])
def test_other_variables_filters_are_refused_not_evaluated(server: ThreadServer, variables: str) -> None:
    client = server.login()
    sid = _open(client)
    reply = client.put(f"/datashield/session/{sid}/symbol/D/table/CLUSTER_INT1",
                       params={"async": "false", "variables": variables})
    if variables == "":  # no filter: every column
        assert reply.status_code == 200
        return
    assert reply.status_code == 400 and _error(reply)["kind"] == "rejected"


@pytest.mark.parametrize(("method", "path", "params"), [
    ("PUT", "/datashield/session/{sid}/symbol/R/resource/p.r", {}),
    ("POST", "/datashield/session/{sid}/workspaces", {"save": "w"}),
    ("PUT", "/datashield/session/{sid}/workspace/w", {}),
    ("GET", "/service/r/workspaces", {}),
    ("GET", "/projects", {}),
    ("POST", "/datashield/sessions", {"restore": "w"}),
    ("PUT", "/datashield/session/{sid}/symbol/D/table/CLUSTER_INT1", {"id": "idcol"}),
    ("PUT", "/datashield/session/{sid}/symbol/D/table/CLUSTER_INT1", {"identifiers": "ids"}),
])
def test_workspaces_resources_and_identifiers_are_refused(server: ThreadServer, method: str, path: str,
                                                          params: dict[str, str]) -> None:
    client = server.login()
    sid = _open(client)
    reply = client.request(method, path.format(sid=sid), params=params)
    assert reply.status_code == 400 and _error(reply)["kind"] == "unsupported", reply.text
    assert "not supported by pydsbase studies" in _error(reply)["message"]


def test_opal_configuration_routes(server: ThreadServer) -> None:
    client = server.login()
    assert client.get("/datasources").json() == [{"name": "study1", "table": ["CLUSTER_INT1"], "type": "pydsbase"}]
    table = client.get("/datasource/study1/table/CLUSTER_INT1").json()
    assert (table["name"], table["datasourceName"], table["variableCount"]) == ("CLUSTER_INT1", "study1", 5)
    variables = client.get("/datasource/study1/table/CLUSTER_INT1/variables").json()
    assert [v["name"] for v in variables] == COLUMNS
    assert client.get("/datasource/study1/table/NOPE").status_code == 400
    assert client.get("/datashield/profiles").json() == [{"name": "default", "enabled": True,
                                                          "restrictedAccess": False}]
    methods = client.get("/datashield/env/aggregate/methods").json()
    assert [m["name"] for m in methods] == ["colnamesDS", "lmerSLMADS2"]
    assert methods[0]["DataShield.RFunctionDataShieldMethodDto.method"]["func"] == "dsBase::colnamesDS"
    sid = _open(client)
    dto = client.get(f"/datashield/session/{sid}").json()
    assert dto["id"] == sid and dto["user"] == "alice" and dto["context"] == "DataSHIELD"
    listed = client.get("/datashield/sessions").json()
    assert sid in [s["id"] for s in listed] and {s["user"] for s in listed} == {"alice"}
    assert client.delete(f"/datashield/session/{sid}").status_code == 200
    assert client.get(f"/datashield/session/{sid}").status_code == 404


def test_r_runs_on_one_thread_off_the_event_loop(server: ThreadServer) -> None:
    with session_on(server) as session:
        session.aggregate("sleep(0)")
        session.assign_table("D", table="CLUSTER_INT1")
        session.ls()
    assert len(server.runtime.threads) == 1
    (r_thread,) = server.runtime.threads
    assert r_thread not in (threading.get_ident(), server.thread.ident)


# -- authentication, isolation, limits ------------------------------------------------------------


def test_warm_up_starts_r_and_runs_nothing_else() -> None:
    # R's collection schedule follows from everything R ran before: a warm-up that ran R code (it once
    # asked for the package versions) gave an HTTP study other collections than a local one for the same
    # fits (docs/PERFORMANCE.md, run G)
    with ThreadServer("study9") as srv:  # healthy: the warm-up has ended
        assert srv.runtime.calls == ["start"]


def test_every_route_but_health_needs_a_login(server: ThreadServer) -> None:
    client = server.client()
    assert httpx.get(server.url + "/health").json() == {"status": "ok", "study": "study1"}
    routes = [("GET", "/datasources"), ("GET", "/pydsbase/info"), ("GET", "/datashield/env/aggregate/methods"),
              ("POST", "/datashield/sessions"), ("DELETE", "/auth/session/_current"),
              ("GET", "/datashield/session/x/command/1-abc"), ("GET", "/datashield/session/x/symbols"),
              ("GET", PROFILE)]
    for method, path in routes:
        reply = client.request(method, path)
        assert reply.status_code == 401, (method, path)
        assert _error(reply)["kind"] == "auth" and reply.headers["www-authenticate"] == "X-Opal-Auth"
        reply = client.request(method, path, headers={"Cookie": f"opalsid={new_token()}"})
        assert reply.status_code == 401 and _error(reply)["message"] == "not logged in, or the login has expired"
        reply = client.request(method, path, headers={"Authorization": f"Bearer {new_token()}"})
        assert reply.status_code == 401 and _error(reply)["kind"] == "auth"


def test_every_response_carries_the_opal_version_and_no_xsrf_token(server: ThreadServer) -> None:
    client = server.login()
    replies = [httpx.get(server.url + "/health"), client.get("/datasources"), client.get("/nowhere"),
               server.client().get("/datasources"), client.post("/datashield/sessions")]
    for reply in replies:
        assert reply.headers["x-opal-version"] == "4.7.0", reply.request.url
        assert "xsrf" not in reply.headers.get("set-cookie", "").lower()


def test_the_opalsid_cookie(server: ThreadServer) -> None:
    first, second = server.client(), server.client()
    replies = [c.get(PROFILE, headers=basic("bob", PASSWORDS["bob"])) for c in (first, second)]
    cookies = [r.headers["set-cookie"] for r in replies]
    for cookie in cookies:
        attributes = [a.strip() for a in cookie.split(";")]
        assert attributes[0].startswith("opalsid=") and "HttpOnly" in attributes
        assert "Secure" not in attributes  # plain HTTP here; Secure under TLS (test_http_process.py)
    assert cookies[0].split(";")[0] != cookies[1].split(";")[0]  # new at each login
    # a valid cookie authenticates before any Authorization header is verified: a wrong password beside
    # it is not even checked (no failure counted, no new login), a right one opens no second login
    before = len(server.audit.records)
    for _ in range(5):
        reply = first.get("/datasources", headers=basic("bob", "wrong-password-x"))
        assert reply.status_code == 200 and "set-cookie" not in reply.headers
    assert [r for r in server.audit.records[before:] if r["operation"] == "login"] == []
    assert second.get(PROFILE, headers=basic("bob", PASSWORDS["bob"])).json()["principal"] == "bob"


def test_the_opalsid_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=study",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    with ThreadServer("tls", tls=(cert, key), sweep_interval=3600) as srv:
        client = srv.client()
        reply = client.get(PROFILE, headers=basic("alice", PASSWORDS["alice"]))
        assert reply.status_code == 200 and reply.headers["x-opal-version"] == "4.7.0"
        attributes = [a.strip() for a in reply.headers["set-cookie"].split(";")]
        assert "Secure" in attributes and "HttpOnly" in attributes
        assert client.get("/datasources").status_code == 200  # the cookie travels over TLS


def test_only_failed_credential_checks_count_toward_the_limits() -> None:
    with ThreadServer("s", sweep_interval=3600, user_failures=2, address_failures=3) as srv:
        client = srv.client()
        for _ in range(10):  # unknown cookies and missing credentials are no credential checks
            assert client.get("/datasources", headers={"Cookie": f"opalsid={new_token()}"}).status_code == 401
            assert client.get("/datasources").status_code == 401
        assert client.get(PROFILE, headers=basic("alice", PASSWORDS["alice"])).status_code == 200
        client.cookies.clear()
        codes = [client.get(PROFILE, headers=basic("alice", f"guess-{i}-xx")).status_code for i in range(3)]
        assert codes == [401, 401, 429]


def test_wrong_password_and_unknown_user_are_refused_alike() -> None:
    with ThreadServer("s", sweep_interval=3600) as srv:
        client = srv.client()
        wrong = client.get(PROFILE, headers=basic("alice", "not-her-password"))
        unknown = client.get(PROFILE, headers=basic("mallory", "whatever-it-is"))
        assert wrong.status_code == unknown.status_code == 401
        assert _error(wrong) == _error(unknown) == {"kind": "auth", "message": "invalid credentials"}
        outcomes = [(r["operation"], r["user"], r["outcome"]) for r in srv.audit.records]
        assert outcomes == [("login", "alice", "auth"), ("login", "mallory", "auth")]


def test_failed_logins_are_rate_limited() -> None:
    clock = FakeClock()
    with ThreadServer("s", clock=clock, sweep_interval=3600, user_failures=3, failure_window=1.5) as srv:
        client = srv.client()
        codes = [client.get(PROFILE, headers=basic("alice", f"guess-{i}-xx")).status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        limited = client.get(PROFILE, headers=basic("alice", PASSWORDS["alice"]))
        assert limited.status_code == 429  # even the right password, while locked
        assert _error(limited)["kind"] == "rate_limited"
        assert limited.headers["retry-after"] == "2"  # the 1.5 s window, rounded up
        # another user is not locked out by alice's failures
        assert client.get(PROFILE, headers=basic("bob", PASSWORDS["bob"])).status_code == 200
        client.cookies.clear()
        clock.advance(1.6)  # past the window
        assert client.get(PROFILE, headers=basic("alice", PASSWORDS["alice"])).status_code == 200
        assert [r["outcome"] for r in srv.audit.records if r["user"] == "alice"] == (
            ["auth"] * 3 + ["rate_limited"] * 3 + ["ok"])


def test_users_cannot_reach_each_others_sessions_or_commands(server: ThreadServer) -> None:
    alice, bob = server.login("alice"), server.login("bob")
    sid = _open(alice)
    _wait_done(alice, sid, _assign_table(alice, sid, "D", "CLUSTER_INT1"))
    command = _submit(alice, sid, 'colnamesDS("D")')
    bob_sid = _open(bob)
    before = len(server.audit.records)
    session = f"/datashield/session/{sid}"
    for method, path, body in [
        ("GET", f"{session}/symbols", None),
        ("POST", f"{session}/aggregate", 'colnamesDS("D")'),
        ("PUT", f"{session}/symbol/y", "D$BMI"),
        ("DELETE", f"{session}/symbol/D", None),
        ("GET", f"{session}/commands", None),
        ("GET", f"{session}/command/{command}/result", None),
        ("DELETE", f"{session}", None),
    ]:
        reply = bob.request(method, path, content=body, headers=RSCRIPT)
        assert reply.status_code == 404, (method, path)
        assert _error(reply) == {"kind": "session", "message": "unknown or expired session"}
    stolen = bob.get(f"/datashield/session/{bob_sid}/command/{command}/result", params={"wait": 5})
    assert stolen.status_code == 404 and _error(stolen)["kind"] == "not_found"
    # alice's own commands may finish (and be audited) meanwhile: look at bob's lines
    refusals = [r for r in server.audit.records[before:] if r["user"] == "bob"]
    assert [(r["user"], r["outcome"]) for r in refusals] == [("bob", "session")] * 7 + [("bob", "not_found")]
    # alice's session and answer are intact
    assert _wait_done(alice, sid, command).json()["data"] == COLUMNS
    assert alice.get(f"{session}/symbols").json() == ["D"]


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"\xff\xfecolnamesDS()", "application/x-rscript", "bad_request"),
        (b"", "application/x-rscript", "bad_request"),
        (b"  \n", "application/x-rscript", "bad_request"),
        (b'{"expr": "x"}', "application/json", "unsupported_media"),
        (b"x" * (300 * 1024), "application/x-rscript", "bad_request"),
        (b"x" * (2 * 1024 * 1024), "application/x-rscript", "too_large"),
    ],
    ids=["not-utf8", "empty", "blank", "wrong-content-type", "expr-too-long", "body-too-large"],
)
def test_malformed_and_oversized_requests_are_4xx(server: ThreadServer, body: bytes, content_type: str,
                                                  kind: str) -> None:
    client = server.login()
    sid = _open(client)
    reply = client.post(f"/datashield/session/{sid}/aggregate", content=body, headers={"Content-Type": content_type})
    assert 400 <= reply.status_code < 500
    assert _error(reply)["kind"] == kind
    assert "Traceback" not in reply.text


def test_streamed_oversized_body_is_refused(server: ThreadServer) -> None:
    client = server.login()

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    reply = client.post("/datashield/sessions", content=chunks())
    assert reply.status_code == 413 and _error(reply)["kind"] == "too_large"


def test_unknown_routes_and_bad_queries_are_typed_errors(server: ThreadServer) -> None:
    client = server.login()
    reply = client.get("/nowhere")
    assert reply.status_code == 404 and _error(reply)["kind"] == "not_found"
    reply = client.put("/datasources")
    assert reply.status_code == 405 and _error(reply)["kind"] == "method_not_allowed"
    reply = client.get("/datashield/env/system/methods")
    assert reply.status_code == 400 and _error(reply)["kind"] == "bad_request"
    sid = _open(client)
    command = _submit(client, sid, "sleep(0)")
    reply = client.get(f"/datashield/session/{sid}/command/{command}", params={"wait": "-1"})
    assert reply.status_code == 400
    reply = client.post(f"/datashield/session/{sid}/aggregate", params={"async": "maybe"}, content="sleep(0)",
                        headers=RSCRIPT)
    assert reply.status_code == 400 and _error(reply)["kind"] == "bad_request"


def test_oversized_answer_is_refused() -> None:
    with ThreadServer("s", sweep_interval=3600, max_response_bytes=10_000) as srv, session_on(srv) as session:
        assert session.aggregate("big(9000)")["study1"].data == ["x" * 9000]
        with pytest.raises(SessionCallError) as failed:
            session.aggregate("big(20000)")
    err = failed.value.errors["study1"]
    assert isinstance(err, StudyCallError) and err.kind == "too_large"


def test_idle_sessions_and_logins_expire() -> None:
    clock = FakeClock()
    with ThreadServer("s", clock=clock, idle_timeout=1.0, sweep_interval=0.05) as srv:
        client = srv.login()
        sid = _open(client)
        for _ in range(5):  # in use: stays alive for 4.5 s, past the timeout
            clock.advance(0.9)
            srv.wait_for_a_sweep()
            assert client.get(f"/datashield/session/{sid}").status_code == 200
        assert sid not in srv.runtime.closed
        clock.advance(1.1)
        srv.wait_for_a_sweep()
        assert sid in srv.runtime.closed and sid not in srv.runtime.sessions
        reply = client.get(f"/datashield/session/{sid}")
        assert reply.status_code == 401  # the login itself expired too


def test_logout_closes_the_logins_sessions(server: ThreadServer) -> None:
    client = server.login()
    cookie = client.cookies["opalsid"]
    sid = _open(client)
    reply = client.delete("/auth/session/_current")
    assert reply.status_code == 200 and "Max-Age=0" in reply.headers["set-cookie"]
    assert sid in server.runtime.closed
    assert client.get("/datasources", headers={"Cookie": f"opalsid={cookie}"}).status_code == 401
    # opalr's logout names its opalsid; another user's (or an unknown) one is refused
    alice, bob = server.login("alice"), server.login("bob")
    alice_sid = alice.cookies["opalsid"]
    assert bob.delete(f"/auth/session/{alice_sid}").status_code == 404
    assert alice.get("/datasources").status_code == 200
    assert alice.delete(f"/auth/session/{alice_sid}").status_code == 200
    assert alice.get("/datasources", headers={"Cookie": f"opalsid={alice_sid}"}).status_code == 401


def test_audit_has_one_line_per_call_rejected_ones_included(server: ThreadServer) -> None:
    client = server.login("bob")
    sid = _open(client)
    before = len(server.audit.records)
    commands = [
        _assign_table(client, sid, "D", "CLUSTER_INT1"),
        _submit(client, sid, 'colnamesDS("D")'),
        _submit(client, sid, "system2('ls')"),
        _submit(client, sid, "system('id')", symbol="E"),
        _submit(client, sid, 'colnamesDS("zz")'),
    ]
    statuses = [_wait_done(client, sid, c).status_code for c in commands]
    assert statuses == [200, 200, 400, 400, 422]
    client.post(f"/datashield/session/{sid}/aggregate", content=b"\xff{bad", headers=RSCRIPT)
    lines = server.audit.records[before:]
    assert [(r["user"], r["operation"], r["function"], r["symbol"], r["outcome"]) for r in lines] == [
        ("bob", "assign_table", None, "D", "ok"),
        ("bob", "aggregate", "colnamesDS", None, "ok"),
        ("bob", "aggregate", "system2", None, "rejected"),
        ("bob", "assign_expr", "system", "E", "rejected"),
        ("bob", "aggregate", "colnamesDS", None, "r_error"),
        ("bob", "aggregate", None, None, "bad_request"),
    ]
    assert all(set(r) >= {"time", "duration_ms"} for r in lines)


def test_malformed_answers_are_reported_by_fetch_not_raised_by_is_completed() -> None:
    answers = iter([(RDS, b"X\n\x00\x00"), (RDS, b"not R"), ("application/json", b'{"type": "double"}')])

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/ws" + PROFILE:
            return httpx.Response(200, json={"principal": "alice"}, headers={"Set-Cookie": "opalsid=t; HttpOnly"})
        if path == "/ws/datashield/sessions":
            return httpx.Response(201, json={"id": "s"})
        if path.endswith("/aggregate"):
            return httpx.Response(200, text="c")
        if path.endswith("/command/c/result"):
            media, content = next(answers)
            return httpx.Response(200, content=content, headers={"Content-Type": media})
        return httpx.Response(200)

    info = DSLoginBuilder().add("odd", url="http://study.invalid:1", user="alice", password="alice-secret-1",
                                driver="pydsbase.HTTPDriver").build()[0]
    conn = HTTPConnection(info, transport=httpx.MockTransport(handler))
    for _ in range(3):
        result = conn.aggregate("anything()")
        assert result.is_completed() is True
        with pytest.raises(StudyCallError) as caught:
            result.fetch()
        assert (caught.value.study, caught.value.kind) == ("odd", "http")
    conn.disconnect()


def test_variables_filter_parser() -> None:
    assert parse_variables_filter("name().any('a','b.c')") == ["a", "b.c"]
    assert parse_variables_filter(' name.any( "a" , "b" ) ') == ["a", "b"]
    assert parse_variables_filter("BMI") == ["BMI"]
    assert parse_variables_filter("name().any(\"x y\")") == ["x y"]
    for bad in ("name().any('a',\"b)", "name().any('a')+1", "name().any(a)", "any('a')", "'a'", "a,b"):
        with pytest.raises(CallRejected):
            parse_variables_filter(bad)


def test_the_stock_datashield_session_works_too(server: ThreadServer) -> None:
    from datashield.api import DSSession

    builder = DSLoginBuilder().add("study1", url=server.url, user="bob", password=PASSWORDS["bob"],
                                   driver="pydsbase.HTTPDriver")
    session = DSSession(builder.build())
    session.open()
    try:
        session.assign_table("D", table="CLUSTER_INT1", variables=["BMI"])
        assert session.aggregate('colnamesDS("D")')["study1"].data == ["BMI"]
        assert session.ls() == {"study1": ["D"]}
        with pytest.raises(DSError):
            session.aggregate('colnamesDS("nothere")')
    finally:
        session.close()


def test_opal_driver_echoes_the_xsrf_token_and_reads_r_serialization() -> None:
    """Production Opal sets an ``XSRF-TOKEN`` cookie and checks ``X-XSRF-TOKEN`` on writes; the driver
    asks for R's serialization (``Accept: application/octet-stream``) and decodes it."""
    import pydsbase

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/ws" + PROFILE:
            return httpx.Response(200, json={"principal": "alice"}, headers=[
                ("Set-Cookie", "opalsid=t; HttpOnly"), ("Set-Cookie", "XSRF-TOKEN=tok-1; Path=/")])
        if path == "/ws/datashield/sessions":
            return httpx.Response(201, json={"id": "s"})
        if path.endswith("/aggregate"):
            return httpx.Response(200, text="c")
        if path.endswith("/command/c/result"):
            body = xdr_of_node({"type": "double", "data": [0.1, "NA"]})
            return httpx.Response(200, content=body, headers={"Content-Type": RDS})
        return httpx.Response(200)

    assert pydsbase.OpalDriver is pydsbase.HTTPDriver
    info = DSLoginBuilder().add("opal", url="http://study.invalid:1", user="alice", password="alice-secret-1",
                                driver="pydsbase.OpalDriver").build()[0]
    conn = HTTPConnection(info, transport=httpx.MockTransport(handler))
    assert "x-xsrf-token" not in seen[0].headers  # the login itself: no token known yet
    value = conn.aggregate("anything()").fetch()
    assert isinstance(value, RAtomic) and value.type == "double" and value.data[0] == 0.1 and value.data[1] is NA
    writes = [r for r in seen[1:] if r.method in ("POST", "PUT", "DELETE")]
    assert writes and all(r.headers["x-xsrf-token"] == "tok-1" for r in writes)
    assert all("XSRF-TOKEN=tok-1" in r.headers["cookie"] and "opalsid=t" in r.headers["cookie"] for r in seen[1:])
    assert all(r.headers["accept"] == RDS for r in seen if "/aggregate" in r.url.path or "/result" in r.url.path)
    conn.disconnect()
