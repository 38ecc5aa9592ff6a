"""Armadillo's API on the study server, with the stand-in runtime of ``test_http_server.py`` (no R).

The routes and shapes DSMolgenisArmadillo 2.0.10 relies on (``r_server/armadillo.py``): the login on
``/select-profile`` and its ``JSESSIONID`` cookie, Bearer tokens, ``/load-table`` and ``/execute`` with
``Location: /lastcommand``, ``/lastresult`` blocking until the command is done, ``/lastcommand``'s JSON
with R's message embedded as DSMolgenisArmadillo extracts it, 409 for a second command in flight,
Spring's error JSON; and ``pydsbase.ArmadilloDriver`` over them, alone and beside ``OpalDriver``.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datashield.api import DSLoginBuilder
from test_http_server import ALICE_TOKEN, PASSWORDS, FakeRuntime, ThreadServer, basic

from pydsbase.errors import SessionCallError, StudyCallError
from pydsbase.rserialize import unserialize
from pydsbase.rvalue import RAtomic
from pydsbase.session import Session

TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer("study1", sweep_interval=3600, max_sessions_per_user=100) as srv:
        yield srv


def login(server: ThreadServer, user: str = "alice") -> httpx.Client:
    """A client that logged in on /select-profile with Basic credentials, then sends only its cookie."""
    client = httpx.Client(base_url=server.url)
    server.clients.append(client)
    reply = client.post("/select-profile", content="default", headers=basic(user, PASSWORDS[user]))
    assert reply.status_code == 204, reply.text
    assert client.cookies.get("JSESSIONID")
    return client


def spring_error(reply: httpx.Response) -> str:
    body = reply.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}, body
    assert body["status"] == reply.status_code
    return str(body["message"])


def r_message(command: dict[str, Any], key: str = "message") -> str:
    """R's message as DSMolgenisArmadillo 2.0.10 extracts it: ``fromJSON(str_extract(message, "\\{(.*)\\}"))``
    (``key`` "condition": the bare message our servers add for pydsbase's client)."""
    found = re.search(r"\{(.*)\}", command["message"])
    assert found is not None, command
    return str(json.loads(found.group(0))[key])


def test_select_profile_opens_a_login_with_a_jsessionid_cookie(server: ThreadServer) -> None:
    client = httpx.Client(base_url=server.url)
    server.clients.append(client)
    reply = client.post("/select-profile", content="default", headers=basic("alice", PASSWORDS["alice"]))
    assert reply.status_code == 204
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith("JSESSIONID=") and "HttpOnly" in cookie and "opalsid" not in cookie
    assert client.get("/profiles").json() == {"available": ["default"], "current": "default"}
    assert client.post("/select-profile", content="other").status_code == 404
    assert "message" in client.post("/select-profile", content="  ").json()
    anonymous = httpx.post(server.url + "/select-profile", content="default")
    assert anonymous.status_code == 401 and "credentials" in spring_error(anonymous)
    wrong = httpx.post(server.url + "/select-profile", content="default", headers=basic("alice", "nope-nope"))
    assert wrong.status_code == 401
    assert httpx.get(server.url + "/actuator/info").json()["build"]["name"] == "pydsbase study server"


def test_a_bearer_token_on_every_request_reuses_one_login(server: ThreadServer) -> None:
    bearer = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    first = httpx.post(server.url + "/load-table", params={"symbol": "T", "table": "CLUSTER_INT1", "async": "true"},
                       headers=bearer)
    assert first.status_code == 201, first.text
    assert httpx.get(server.url + "/lastresult", headers=bearer).status_code == 404  # a table load has no value
    assert httpx.get(server.url + "/symbols", headers=bearer).json() == ["T"]  # the same login, no cookie
    assert httpx.get(server.url + "/symbols", headers={"Authorization": "Bearer " + "x" * 43}).status_code == 401


def test_load_table_answers_201_with_the_last_command(server: ThreadServer) -> None:
    client = login(server)
    reply = client.post("/load-table", params={"symbol": "D", "table": "CLUSTER_INT1", "variables": "BMI,trtGrp",
                                               "async": "true"})
    assert reply.status_code == 201 and reply.headers["location"] == server.url + "/lastcommand"
    assert client.get("/lastresult").status_code == 404
    command = client.get("/lastcommand").json()
    assert command["status"] == "COMPLETED" and command["expression"] == "Load table CLUSTER_INT1"
    assert command["withResult"] is False and "message" not in command
    assert set(command) == {"id", "expression", "status", "createDate", "startDate", "endDate", "withResult"}
    assert client.get("/symbols").json() == ["D"]
    value = unserialize(client.post("/execute", content='colnamesDS("D")', headers=TEXT).content)
    assert isinstance(value, RAtomic) and value.data == ["BMI", "trtGrp"]
    assert client.head("/tables/CLUSTER_INT1").status_code == 200
    assert client.head("/tables/proj/core/none").status_code == 404
    missing = client.post("/load-table", params={"symbol": "E", "table": "proj/core/none"})
    assert missing.status_code == 404 and "not found" in spring_error(missing)
    assert client.delete("/symbols/D").status_code == 200
    assert client.delete("/symbols/D").status_code == 200  # absent: no error, as R's rm() only warns
    assert client.get("/symbols").json() == []


def test_execute_and_lastresult_block_until_done_and_a_second_command_is_409(server: ThreadServer) -> None:
    client = login(server)
    FakeRuntime.release.clear()
    try:
        assert client.post("/execute", params={"async": "true"}, content="hold()", headers=TEXT).status_code == 201
        assert client.get("/lastcommand").json()["status"] in ("PENDING", "IN_PROGRESS")
        second = client.post("/execute", params={"async": "true"}, content="doubles()", headers=TEXT)
        assert second.status_code == 409 and "still running" in spring_error(second)
        answers: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: answers.append(client.get("/lastresult")))
        waiter.start()
        assert not answers  # blocked until the command is done
    finally:
        FakeRuntime.release.set()
    waiter.join(30)
    assert answers[0].status_code == 200 and answers[0].headers["content-type"] == "application/octet-stream"
    assert unserialize(answers[0].content).data == [1.0]
    command = client.get("/lastcommand").json()
    assert command["status"] == "COMPLETED" and command["withResult"] is True
    assert command["expression"] == "try(base::serialize({hold()}, NULL))"
    assert client.get("/lastresult").content == answers[0].content  # kept until the next command


def test_a_failed_command_carries_rs_message_as_dsmolgenisarmadillo_reads_it(server: ThreadServer) -> None:
    client = login(server)
    assert client.post("/execute", params={"async": "true"}, content='colnamesDS("nope")',
                       headers=TEXT).status_code == 201
    assert client.get("/lastresult").status_code == 404
    command = client.get("/lastcommand").json()
    assert command["status"] == "FAILED" and r_message(command) == "Error : object 'nope' not found"  # try()'s
    assert r_message(command, "condition") == "object 'nope' not found"
    assert client.post("/symbols/x", params={"async": "true"}, content="system('id')", headers=TEXT).status_code == 201
    assert client.get("/lastresult").status_code == 404
    command = client.get("/lastcommand").json()
    assert command["expression"] == "is.null(base::assign('x', value={system('id')}))"
    assert "not allowed" in r_message(command) and client.get("/symbols").json() == []
    sync = client.post("/execute", content='colnamesDS("nope")', headers=TEXT)
    assert sync.status_code == 500 and "object 'nope' not found" in spring_error(sync)


def test_bad_names_are_refused_with_400_and_audited(server: ThreadServer) -> None:
    client = login(server)
    for params in ({"symbol": "1D", "table": "CLUSTER_INT1"}, {"symbol": "D;q()", "table": "CLUSTER_INT1"},
                   {"symbol": "D", "table": "../../etc/passwd"}, {"symbol": "D", "table": "CLUSTER_INT1",
                                                                  "variables": "a,,b"}):
        reply = client.post("/load-table", params=params)
        assert reply.status_code == 400, (params, reply.text)
        assert spring_error(reply)
    assert client.post("/symbols/a%3Bb", content="1", headers=TEXT).status_code == 400
    refused = [line for line in server.audit.records if line.get("outcome") == "rejected"]
    assert any("1D" in (line.get("message") or "") for line in refused)


def test_logout_closes_the_r_session(server: ThreadServer) -> None:
    client = login(server)
    client.post("/load-table", params={"symbol": "D", "table": "CLUSTER_INT1"})
    open_before = len(server.runtime.sessions)
    assert client.post("/logout").status_code == 200
    assert len(server.runtime.sessions) == open_before - 1
    assert client.get("/symbols").status_code == 401


def test_users_see_only_their_own_last_command(server: ThreadServer) -> None:
    alice, bob = login(server), login(server, "bob")
    alice.post("/execute", params={"async": "true"}, content="doubles()", headers=TEXT)
    assert bob.get("/lastcommand").status_code == 404 and bob.get("/lastresult").status_code == 404
    assert alice.get("/lastresult").status_code == 200


def test_armadillo_driver_beside_the_opal_driver_in_one_session(server: ThreadServer) -> None:
    builder = DSLoginBuilder()
    builder.add("opal", url=server.url, user="alice", password=PASSWORDS["alice"], driver="pydsbase.OpalDriver")
    builder.add("armadillo", url=server.url, user="alice", password=PASSWORDS["alice"],
                driver="pydsbase.ArmadilloDriver")
    builder.add("token", url=server.url, token=ALICE_TOKEN, driver="pydsbase.ArmadilloDriver")
    with Session(builder.build()) as session:
        session.assign_table("D", table="CLUSTER_INT1", variables=["BMI", "trtGrp"])
        assert {s: v.data for s, v in session.aggregate('colnamesDS("D")').items()} == {
            "opal": ["BMI", "trtGrp"], "armadillo": ["BMI", "trtGrp"], "token": ["BMI", "trtGrp"]}
        doubles = session.aggregate("doubles()")
        assert doubles["armadillo"] == doubles["opal"]
        with pytest.raises(SessionCallError) as failed:
            session.aggregate('colnamesDS("nope")')
        errors = failed.value.errors
        assert {s: (e.kind, str(e)) for s, e in errors.items() if isinstance(e, StudyCallError)} == {
            s: ("r_error", "object 'nope' not found") for s in ("opal", "armadillo", "token")}
        with pytest.raises(SessionCallError) as failed:
            session.assign_expr("x", "system('id')")
        assert {e.kind for e in failed.value.errors.values() if isinstance(e, StudyCallError)} == {"rejected"}
        assert session.ls() == {s: ["D"] for s in ("opal", "armadillo", "token")}
        armadillo = session.conns[1]
        assert armadillo.list_tables() == ["CLUSTER_INT1"] and armadillo.has_table("CLUSTER_INT1")
        assert armadillo.list_methods("assign") == ["dataFrameDS"]
        assert armadillo.info()["study"] == "study1"


def test_tls_is_verified_as_for_opal_and_the_cookie_is_secure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydsbase.drivers.armadillo import ArmadilloConnection
    from pydsbase.drivers.http import _tls_context

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=study",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    with ThreadServer("tls", tls=(cert, key), sweep_interval=3600) as srv:
        login = DSLoginBuilder().add("tls", url=srv.url, user="alice", password=PASSWORDS["alice"],
                                     driver="pydsbase.ArmadilloDriver").build()[0]
        _tls_context.cache_clear()
        try:
            with pytest.raises(StudyCallError) as refused:  # a certificate nobody vouches for
                ArmadilloConnection(login)
            assert refused.value.kind == "unavailable"
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the process's trust store, as for OpalDriver
            _tls_context.cache_clear()
            conn = ArmadilloConnection(login)
            try:
                assert conn.list_symbols() == []
            finally:
                conn.disconnect()
        finally:
            monkeypatch.delenv("SSL_CERT_FILE")
            _tls_context.cache_clear()
        reply = httpx.post(srv.url + "/select-profile", content="default", headers=basic("alice", PASSWORDS["alice"]),
                           verify=srv.verify)
        attributes = [a.strip() for a in reply.headers["set-cookie"].split(";")]
        assert attributes[0].startswith("JSESSIONID=") and "Secure" in attributes and "HttpOnly" in attributes


def test_one_resolver_names_files_for_both_apis(tmp_path: Path) -> None:
    from r_server.errors import CallRejected
    from r_server.runtime import StudyRuntime

    for relative in ("TOP.csv", "proj/TWO.csv", "proj/core/THREE.csv", "proj/core/notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("a\n1\n")
    (tmp_path / "proj" / "core" / "LINK.csv").symlink_to(tmp_path.parent)  # a link leaving the folder
    runtime = StudyRuntime("s", tmp_path, bridge=object())  # type: ignore[arg-type]  # no R needed here
    assert runtime.list_tables() == ["TOP", "proj.TWO", "proj/core/THREE"]
    for name in ("TOP", "s.TOP", "proj.TOP", "proj.TWO", "proj/core/THREE"):
        assert runtime.has_table(name), name
    for name in ("proj/core/TWO", "proj/other/THREE", "proj/core/LINK", "proj.THREE", "proj/core/notes"):
        assert not runtime.has_table(name), name
    for name in ("proj/../TOP", "proj/core/THREE/x", "proj//THREE", "/proj/core/THREE", "a.b.c", "p/f/T.csv", ""):
        with pytest.raises(CallRejected):
            runtime.has_table(name)
