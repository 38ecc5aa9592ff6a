"""The real study server: ``python -m r_server`` processes on loopback, with R, driven over HTTP.

The study's tables folder holds CLUSTER_INT1.csv only. Three users (alice with a password and a token,
bob and carol with a password); failed logins limited to 3 per 600 s window: no test waits for the window
to pass (test_http_server.py checks that on a fake clock), so a slow machine cannot make the limit lapse.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datashield.api import DSLoginBuilder
from serverproc import StudyProcess

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


class ServerProcess(StudyProcess):
    def __init__(self, root: Path, tables: Path, *extra: str) -> None:
        users = root / "users.json"
        users.write_text(json.dumps({"users": [
            {"name": "alice", "password_hash": _hash(PASSWORDS["alice"]), "token_sha256": token_digest(TOKEN)},
            {"name": "bob", "password_hash": _hash(PASSWORDS["bob"])},
            {"name": "carol", "password_hash": _hash(PASSWORDS["carol"])},  # locked out by the rate-limit test
        ]}))
        env = {**os.environ, "PYDSBASE_STUDY": "cluster.int1"}  # the name comes from the environment
        super().__init__(root, ["--tables", str(tables), "--users", str(users), *extra], env=env)


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


PROFILE = "/system/subject-profile/_current"
RSCRIPT = {"Content-Type": "application/x-rscript", "Accept": "application/octet-stream"}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _login(server: ServerProcess, user: str) -> httpx.Client:
    """Basic credentials once; the opalsid cookie (kept by the client) from then on."""
    client = httpx.Client(base_url=server.url + "/ws", timeout=60)
    reply = client.get(PROFILE, headers=_basic(user, PASSWORDS[user]))
    assert reply.status_code == 200, reply.text
    assert client.cookies.get("opalsid")
    return client


def _open(client: httpx.Client) -> str:
    reply = client.post("/datashield/sessions")
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def test_hash_password_cli_makes_verifiable_hashes() -> None:
    encoded = _hash("correct horse battery")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse battery!", encoded)


def test_colnames_and_lmer_equal_the_golden_study1(server: ServerProcess, golden_dir: Path) -> None:
    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text())
    expected = to_node(from_node(golden["result"]["data"]["output.summary"]["data"]["study1"]))
    with _session(server, token=TOKEN) as session:
        # Opal's names: the study's top-level tables are in its default project (its name, dots made _)
        assert session.conns[0].list_tables() == ["cluster_int1.CLUSTER_INT1"]
        session.assign_table("D", table="CLUSTER_INT1", variables=VARIABLES)
        assert session.aggregate('colnamesDS("D")')["cluster.int1"].data == VARIABLES
        assert to_node(session.aggregate(LMER)["cluster.int1"]) == expected
        info = session.conns[0].info()
    assert info["study"] == "cluster.int1"
    assert info["lme4"] == "1.1.31" and info["R"].startswith("R version 4.2.2")
    # BLAS and LAPACK are read without sessionInfo() (r_server/R/zz_bridge.R): the same paths it gives
    r_says = subprocess.run(["Rscript", "--vanilla", "-e", 'si <- sessionInfo(); cat(si$BLAS, si$LAPACK, sep = "\\n")'],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert [info["BLAS"], info["LAPACK"]] == r_says and all(path.endswith(".so") or ".so." in path for path in r_says)


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
        sid = _open(alice)
        done = alice.put(f"/datashield/session/{sid}/symbol/D/table/cluster_int1.CLUSTER_INT1",
                         params={"async": "false"})
        assert done.status_code == 200, done.text
        assert bob.get(f"/datashield/session/{sid}/symbols").status_code == 404
        stolen = bob.post(f"/datashield/session/{sid}/aggregate", content='colnamesDS("D")', headers=RSCRIPT)
        assert stolen.status_code == 404 and stolen.json()["status"] == "session"
        bobs = _open(bob)
        assert bob.get(f"/datashield/session/{bobs}/symbols").json() == []
        assert alice.get(f"/datashield/session/{sid}/symbols").json() == ["D"]
    finally:
        alice.close()
        bob.close()


def test_auth_failures_and_rate_limit(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url + "/ws", timeout=60) as client:
        assert client.get("/datasources").status_code == 401
        assert client.get("/datasources", headers={"Cookie": "opalsid=" + new_token()}).status_code == 401
        assert client.get(PROFILE, headers={"X-Opal-Auth": new_token()}).status_code == 401
        codes = [client.get(PROFILE, headers=_basic("carol", f"wrong-{i}-pw")).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        locked = client.get(PROFILE, headers=_basic("carol", PASSWORDS["carol"]))
        assert locked.status_code == 429  # even the right password, while locked
        # the window given on the command line, less the time since carol's first failure (well under 100 s)
        assert 500 < int(locked.headers["retry-after"]) <= 601
        # other users are not locked out by carol's failures
        assert client.get(PROFILE, headers=_basic("bob", PASSWORDS["bob"])).status_code == 200
    with pytest.raises(StudyCallError) as failed, _session(server, user="alice", password="not-it") as session:
        session.ls()
    assert (failed.value.study, failed.value.kind, str(failed.value)) == ("cluster.int1", "auth",
                                                                          "invalid credentials")


def test_malformed_and_oversized_requests_are_4xx(server: ServerProcess) -> None:
    client = _login(server, "alice")
    try:
        sid = _open(client)
        aggregate = f"/datashield/session/{sid}/aggregate"
        for body in (b"\xff(", b"", b"  "):
            reply = client.post(aggregate, content=body, headers=RSCRIPT)
            assert reply.status_code == 400 and reply.json()["status"] == "bad_request"
        reply = client.post(aggregate, content=b'{"expr": 1}', headers={"Content-Type": "application/json"})
        assert reply.status_code == 415 and reply.json()["status"] == "unsupported_media"
        reply = client.post(aggregate, content=b"x" * 200_000, headers=RSCRIPT)
        assert reply.status_code == 413 and reply.json()["status"] == "too_large"
        assert "Traceback" not in reply.text
    finally:
        client.close()


def test_audit_log_has_one_line_per_call(server: ServerProcess) -> None:
    before = len(server.audit_lines())
    client = _login(server, "bob")
    try:
        sid = _open(client)
        session = f"/datashield/session/{sid}"
        commands = [
            client.put(f"{session}/symbol/D", params={"async": "true"}, content="CLUSTER_INT1",
                       headers={"Content-Type": "application/x-opal"}),
            client.post(f"{session}/aggregate", params={"async": "true"}, content='colnamesDS("D")', headers=RSCRIPT),
            client.post(f"{session}/aggregate", params={"async": "true"}, content='system("id")', headers=RSCRIPT),
            client.put(f"{session}/symbol/x", params={"async": "true"}, content='eval(parse(text="1"))',
                       headers=RSCRIPT),
        ]
        for c in commands:
            client.get(f"{session}/command/{c.text}/result", params={"wait": "true"})
        client.get("/datashield/session/not-a-session/symbols")
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


def test_what_dsopal_sends_and_gets(server: ServerProcess, golden_dir: Path) -> None:
    """deparse()d calls split over lines with 1L literals; answers in R's serialization and Rock's JSON."""
    from rstream import ENVSXP, sexp_types

    from pydsbase.rserialize import unserialize

    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text())
    expected = to_node(from_node(golden["result"]["data"]["output.summary"]["data"]["study1"]))
    client = _login(server, "alice")
    try:
        sid = _open(client)
        session = f"/datashield/session/{sid}"
        filt = "name().any('" + "','".join(VARIABLES) + "')"
        assert client.put(f"{session}/symbol/D", params={"async": "false", "variables": filt},
                          content="cluster_int1.CLUSTER_INT1",
                          headers={"Content-Type": "application/x-opal"}).status_code == 200
        deparsed = LMER.replace("NULL, NULL, NULL, 0)", "NULL, \n    NULL, NULL, 0L)")
        raw = client.post(f"{session}/aggregate", content=deparsed, headers=RSCRIPT)
        assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
        assert to_node(unserialize(raw.content)) == expected
        assert raw.content.startswith(b"X\n\x00\x00\x00\x03") and sexp_types(raw.content)[ENVSXP] == 0
        rock = client.post(f"{session}/aggregate", content='colnamesDS("D")',
                           headers={**RSCRIPT, "Accept": "application/json"})
        assert rock.headers["content-type"] == "application/json" and rock.json() == VARIABLES
        symbols = client.get(f"{session}/symbols", headers={"Accept": "application/octet-stream"})
        assert symbols.content.startswith(b"X\n") and b"\x00\x00\x00\x01D" in symbols.content
        # path traversal in table names: refused, whichever way it is written
        for table in ("../../etc/passwd", "cluster_int1/../../x", "/etc/passwd", "..", "a.b.c"):
            reply = client.put(f"{session}/symbol/E", params={"async": "false"}, content=table,
                               headers={"Content-Type": "application/x-opal"})
            assert reply.status_code == 400 and reply.json()["status"] == "rejected", table
        for path in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "cluster_int1.%2E%2E"):
            reply = client.put(f"{session}/symbol/E/table/{path}", params={"async": "false"})
            assert 400 <= reply.status_code < 500, path
        assert "E" not in client.get(f"{session}/symbols").json()
        # as Opal: removing a symbol that is not there answers 200 (DSI's datashield.rm goes on to the next
        # server); a name that is no symbol name is still refused
        assert client.delete(f"{session}/symbol/nothere").status_code == 200
        assert client.delete(f"{session}/symbol/a b").status_code == 400
    finally:
        client.close()
