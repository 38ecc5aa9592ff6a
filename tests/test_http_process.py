"""The real study server: ``python -m r_server`` processes on loopback, with R, driven over HTTP.

The study's tables folder holds CLUSTER_INT1.csv only. Three users (alice with a password and a token,
bob and carol with a password); failed logins limited to 3 per 600 s window: no test waits for the window
to pass (test_http_server.py checks that on a fake clock), so a slow machine cannot make the limit lapse.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datashield.api import DSLoginBuilder

from pydsbase.errors import SessionCallError, StudyCallError
from pydsbase.rvalue import from_node, to_node
from pydsbase.session import Session
from r_server.auth import new_token, token_digest, verify_password

pytestmark = pytest.mark.needs_r

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-password-333"}
TOKEN = new_token()
VARIABLES = ["incid_rate", "trtGrp", "Male", "idDoctor", "BMI", "idSurgery"]
LMER = 'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'


def _hash(password: str) -> str:
    """Through the CLI helper, as a custodian would make it."""
    done = subprocess.run([sys.executable, "-m", "r_server", "hash-password"], input=password + "\n",
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    def __init__(self, root: Path, tables: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.audit = root / "audit.jsonl"
        self.log = (root / "server.log").open("wb")
        users = root / "users.json"
        users.write_text(json.dumps({"users": [
            {"name": "alice", "password_hash": _hash(PASSWORDS["alice"]), "token_sha256": token_digest(TOKEN)},
            {"name": "bob", "password_hash": _hash(PASSWORDS["bob"])},
            {"name": "carol", "password_hash": _hash(PASSWORDS["carol"])},  # locked out by the rate-limit test
        ]}))
        env = {**os.environ, "PYDSBASE_STUDY": "cluster.int1"}  # the name comes from the environment
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "r_server", "--tables", str(tables), "--users", str(users),
             "--port", str(self.port), "--audit-log", str(self.audit), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )

    def wait_healthy(self, timeout: float = 180) -> None:
        # 180 s only stops a server that never comes up: R starts in seconds even on a loaded machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited"
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not healthy in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("http-study")
    tables = root / "tables"
    tables.mkdir()
    (tables / "CLUSTER_INT1.csv").write_bytes((data_dir / "CLUSTER" / "CLUSTER_INT1.csv").read_bytes())
    srv = ServerProcess(root, tables, "--login-failures", "3", "--login-window", "600", "--max-request", "100000")
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


def _session(server: ServerProcess, **login: Any) -> Session:
    credentials = login or {"user": "alice", "password": PASSWORDS["alice"]}
    builder = DSLoginBuilder().add("cluster.int1", url=server.url, driver="pydsbase.HTTPDriver", **credentials)
    return Session(builder.build(), timeout=300)


def _login(server: ServerProcess, user: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url + "/v1", timeout=60)
    reply = client.post("/login", json={"user": user, "password": PASSWORDS[user]})
    assert reply.status_code == 200, reply.text
    client.headers["Authorization"] = "Bearer " + reply.json()["token"]
    return client


def test_hash_password_cli_makes_verifiable_hashes() -> None:
    encoded = _hash("correct horse battery")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse battery!", encoded)


def test_colnames_and_lmer_equal_the_golden_study1(server: ServerProcess, golden_dir: Path) -> None:
    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text())
    expected = to_node(from_node(golden["result"]["data"]["output.summary"]["data"]["study1"]))
    with _session(server, token=TOKEN) as session:
        assert session.conns[0].list_tables() == ["CLUSTER_INT1"]
        session.assign_table("D", table="CLUSTER_INT1", variables=VARIABLES)
        assert session.aggregate('colnamesDS("D")')["cluster.int1"].data == VARIABLES
        assert to_node(session.aggregate(LMER)["cluster.int1"]) == expected
        info = session.conns[0].info()
    assert info["study"] == "cluster.int1"
    assert info["lme4"] == "1.1.31" and info["R"].startswith("R version 4.2.2")


def test_r_error_message_and_rejections_surface_in_fetch(server: ServerProcess) -> None:
    with _session(server) as session:
        conn = session.conns[0]
        result = conn.aggregate('colnamesDS("nothere")')
        assert result.wait(120)
        assert result.is_completed()
        with pytest.raises(StudyCallError) as caught:
            result.fetch()
        assert caught.value.kind in ("r_error", "rejected") and "nothere" in str(caught.value)
        with pytest.raises(SessionCallError) as failed:
            session.aggregate('system("id")')
        err = failed.value.errors["cluster.int1"]
        assert isinstance(err, StudyCallError) and err.kind == "rejected"


def test_users_are_isolated(server: ServerProcess) -> None:
    alice, bob = _login(server, "alice"), _login(server, "bob")
    try:
        sid = alice.post("/sessions").json()["session"]
        done = alice.post(f"/sessions/{sid}/assign-table", json={"symbol": "D", "table": "CLUSTER_INT1"})
        assert alice.get(f"/commands/{done.json()['command']}", params={"wait": 60}).status_code == 200
        assert bob.get(f"/sessions/{sid}/symbols").status_code == 404
        stolen = bob.post(f"/sessions/{sid}/aggregate", json={"expr": 'colnamesDS("D")'})
        assert stolen.status_code == 404 and stolen.json()["error"]["kind"] == "session"
        bobs = bob.post("/sessions").json()["session"]
        assert bob.get(f"/sessions/{bobs}/symbols").json() == []
        assert alice.get(f"/sessions/{sid}/symbols").json() == ["D"]
    finally:
        alice.close()
        bob.close()


def test_auth_failures_and_rate_limit(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url + "/v1", timeout=60) as client:
        assert client.get("/tables").status_code == 401
        assert client.get("/tables", headers={"Authorization": "Bearer " + new_token()}).status_code == 401
        assert client.post("/login", json={"token": new_token()}).status_code == 401
        codes = [client.post("/login", json={"user": "carol", "password": f"wrong-{i}-pw"}).status_code
                 for i in range(4)]
        assert codes == [401, 401, 401, 429]
        locked = client.post("/login", json={"user": "carol", "password": PASSWORDS["carol"]})
        assert locked.status_code == 429  # even the right password, while locked
        # the window given on the command line, less the time since carol's first failure (well under 100 s)
        assert 500 < int(locked.headers["retry-after"]) <= 601
        # other users are not locked out by carol's failures
        assert client.post("/login", json={"user": "bob", "password": PASSWORDS["bob"]}).status_code == 200
    with pytest.raises(StudyCallError) as failed, _session(server, user="alice", password="not-it") as session:
        session.ls()
    assert (failed.value.study, failed.value.kind, str(failed.value)) == ("cluster.int1", "auth",
                                                                          "invalid credentials")


def test_malformed_and_oversized_requests_are_4xx(server: ServerProcess) -> None:
    client = _login(server, "alice")
    try:
        sid = client.post("/sessions").json()["session"]
        for body in (b"{", b'{"expr": 1}', b'{"expr": "x", "more": 2}'):
            reply = client.post(f"/sessions/{sid}/aggregate", content=body)
            assert reply.status_code == 400 and reply.json()["error"]["kind"] == "bad_request"
        reply = client.post(f"/sessions/{sid}/aggregate", json={"expr": "x" * 200_000})
        assert reply.status_code == 413 and reply.json()["error"]["kind"] == "too_large"
        assert "Traceback" not in reply.text
    finally:
        client.close()


def test_audit_log_has_one_line_per_call(server: ServerProcess) -> None:
    before = len(server.audit_lines())
    client = _login(server, "bob")
    try:
        sid = client.post("/sessions").json()["session"]
        commands = [
            client.post(f"/sessions/{sid}/assign-table", json={"symbol": "D", "table": "CLUSTER_INT1"}),
            client.post(f"/sessions/{sid}/aggregate", json={"expr": 'colnamesDS("D")'}),
            client.post(f"/sessions/{sid}/aggregate", json={"expr": 'system("id")'}),
            client.post(f"/sessions/{sid}/assign", json={"symbol": "x", "expr": 'eval(parse(text="1"))'}),
        ]
        for c in commands:
            client.get(f"/commands/{c.json()['command']}", params={"wait": 60})
        client.get("/sessions/not-a-session/symbols")
    finally:
        client.close()
    lines = server.audit_lines()[before:]
    assert [(r["user"], r["operation"], r["function"], r["symbol"], r["outcome"]) for r in lines] == [
        ("bob", "login", None, None, "ok"),
        ("bob", "open_session", None, None, "ok"),
        ("bob", "assign_table", "CLUSTER_INT1", "D", "ok"),
        ("bob", "aggregate", "colnamesDS", None, "ok"),
        ("bob", "aggregate", "system", None, "rejected"),
        ("bob", "assign_expr", None, "x", "rejected"),
        ("bob", "list_symbols", None, None, "session"),
    ]
    assert all(r["duration_ms"] >= 0 and r["time"].endswith("Z") for r in lines)
