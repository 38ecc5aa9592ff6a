"""Faults on the HTTP backend with real ``python -m r_server`` processes on loopback (issue 8, part 1).

Three studies; study2 serves a 200,000-row synthetic table so its fit takes seconds and can be
killed while it runs ("mid-fit" is observed, not guessed: the analyst's own R session reports a
running command for half a second). Studies 1 and 3 serve CLUSTER_INT1 and CLUSTER_INT3.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reliability_harness as h  # noqa: E402
import synth  # noqa: E402

import pydsbase  # noqa: E402
from pydsbase.drivers.http import STALE_LOGIN_MESSAGE  # noqa: E402
from pydsbase.dsi import DataSHIELDErrors  # noqa: E402
from pydsbase.errors import SessionCallError, StudyCallError  # noqa: E402
from pydsbase.rvalue import RList, to_node  # noqa: E402

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

LMER = 'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'
# Seconds from SIGKILL to the per-study error. A reset connection is noticed at once (well under a second);
# a kill noticed only when the long-poll's own request times out would take _POLL_SLICE + _POLL_GRACE = 45 s.
# 15 s lies between: many times the expected value, and still fails that regression.
KILL_TO_ERROR_LIMIT = 15.0


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[h.Federation]:
    big = synth.write_study(tmp_path_factory.mktemp("big") / "BIG.csv", rows=200_000, groups=200, seed=8)
    with h.Federation(3, analysts=2, csvs={1: big}) as federation:
        yield federation


def _nodes(values: dict[str, Any]) -> dict[str, Any]:
    return {name: to_node(value) for name, value in values.items()}


def _strip(result: RList) -> RList:
    """The R-compatible list without the attributes ``on_study_failure="exclude"`` adds."""
    return dataclasses.replace(result, attributes={})


def _wait_running(conn: Any, seconds: float = 0.5, timeout: float = 120.0) -> None:
    """Until ``conn``'s R session has had a command running for ``seconds`` (event-loop only: no R).

    A condition waited for, not a stopwatch: a loaded machine only makes it come later. ``timeout``
    (120 s against a fit that starts within seconds) only stops a test whose fit never runs.
    """
    sid = conn.get_session().sid
    since: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = conn.request("GET", f"/datashield/session/{sid}")["status"] == "BUSY"  # Opal's RSessionDto
        now = time.monotonic()
        since = (since or now) if running else None
        if since is not None and now - since >= seconds:
            return
        time.sleep(0.05)
    raise AssertionError("the fit never ran")


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _kill_mid_fit(fed: h.Federation, session: Any, call: Callable[[], Any]) -> tuple[dict[str, Any], float]:
    """Run ``call`` in a thread, SIGKILL study2 while its fit runs; the outcome and kill -> outcome seconds."""
    thread, outcome = _in_thread(call)
    _wait_running(session.conns[1])
    killed = time.monotonic()
    fed.servers[1].kill()
    thread.join(120)
    assert not thread.is_alive(), "the call did not return after the kill"
    return outcome, outcome["at"] - killed


def test_sigkill_mid_fit(fed: h.Federation) -> None:
    # references before any fault: the raw per-study answers and the pooled fit of studies 1 and 3
    with h.open_session(fed.logins(1), timeout=120) as session:
        raw = _nodes(session.aggregate(LMER))
        survivors = h.fit(session, datasources=["study1", "study3"])

    # 1. a raw aggregate: study2's error is clear and quick, studies 1 and 3 answered intact
    with h.open_session(fed.logins(1), timeout=120) as session:
        outcome, seconds = _kill_mid_fit(fed, session, lambda: session.aggregate(LMER))
    failure = outcome["error"]
    assert isinstance(failure, SessionCallError) and list(failure.errors) == ["study2"]
    err = failure.errors["study2"]
    assert isinstance(err, StudyCallError) and err.study == "study2" and err.kind == "unavailable"
    assert str(err).startswith(f"cannot reach the study server at {fed.servers[1].url}")
    assert seconds < KILL_TO_ERROR_LIMIT
    assert _nodes(failure.results) == {"study1": raw["study1"], "study3": raw["study3"]}

    # 2. ds_lmer_slma (default): raises as dsBaseClient does, naming study2 only
    fed.servers[1].restart()
    with h.open_session(fed.logins(1), timeout=120) as session:
        outcome, seconds = _kill_mid_fit(fed, session, lambda: h.fit(session))
    failure = outcome["error"]
    assert isinstance(failure, DataSHIELDErrors) and seconds < KILL_TO_ERROR_LIMIT
    assert str(failure) == "There are some DataSHIELD errors, list them with datashield.errors()"
    assert list(failure.datashield_errors) == ["study2"]
    assert failure.datashield_errors["study2"][0].startswith("cannot reach the study server")

    # 3. ds_lmer_slma(on_study_failure="exclude"): the survivors' pooled fit, study2 named with its error
    fed.servers[1].restart()
    with h.open_session(fed.logins(1), timeout=120) as session:
        outcome, seconds = _kill_mid_fit(fed, session, lambda: h.fit(session, on_study_failure="exclude"))
        assert seconds < KILL_TO_ERROR_LIMIT
        result = outcome["value"]
        assert _strip(result) == survivors  # every element bit for bit, study1/study2 = studies 1 and 3
        failed = result.attributes["failed.studies"]
        assert failed.names == ["study2"] and failed.data[0].startswith("cannot reach the study server")
        assert result.attributes["datasources"].data == ["study1", "study3"]
        # with study2 still down, "exclude" keeps answering and "raise" keeps raising
        again = h.fit(session, on_study_failure="exclude")
        assert _strip(again) == survivors and again.attributes["failed.studies"].names == ["study2"]
        with pytest.raises(DataSHIELDErrors) as raised:
            h.fit(session)
        assert list(raised.value.datashield_errors) == ["study2"]
    fed.servers[1].restart()


def test_exclude_without_failures_equals_raise_and_says_so(fed: h.Federation) -> None:
    with h.open_session(fed.logins(1), timeout=120) as session:
        plain = h.fit(session)
        excluding = h.fit(session, on_study_failure="exclude")
        with pytest.raises(ValueError, match="on_study_failure"):
            h.fit(session, on_study_failure="skip")
    assert _strip(excluding) == plain
    assert excluding.attributes["failed.studies"].data == []
    assert excluding.attributes["datasources"].data == ["study1", "study2", "study3"]


def test_every_study_failing_still_raises_with_exclude(fed: h.Federation) -> None:
    with h.open_session(fed.logins(1), timeout=120) as session, pytest.raises(DataSHIELDErrors) as raised:
        pydsbase.ds_lmer_slma(session, formula=h.FORMULA, data_name="D", offset="nothere",
                              on_study_failure="exclude")
    assert list(raised.value.datashield_errors) == ["study1", "study2", "study3"]


def test_restarted_server_gives_stale_session_error_and_fresh_login_works(fed: h.Federation) -> None:
    with h.open_session(fed.logins(1), timeout=120) as session:
        before = _nodes(session.aggregate('colnamesDS("D")'))
        fed.servers[2].restart()
        with pytest.raises(SessionCallError) as stale:
            session.aggregate('colnamesDS("D")')
        err = stale.value.errors["study3"]
        assert list(stale.value.errors) == ["study3"]
        assert isinstance(err, StudyCallError) and (err.kind, str(err)) == ("session", STALE_LOGIN_MESSAGE)
        assert _nodes(stale.value.results) == {k: before[k] for k in ("study1", "study2")}
    with h.open_session(fed.logins(1), timeout=120) as fresh:
        assert _nodes(fresh.aggregate('colnamesDS("D")')) == before


def test_r_error_inside_a_fit_leaves_the_server_serving(fed: h.Federation) -> None:
    with h.open_session(fed.logins(1), timeout=120) as session:
        expected = h.fit(session, datasources=["study1"])
        for _ in range(3):
            with pytest.raises(DataSHIELDErrors) as raised:
                pydsbase.ds_lmer_slma(session, formula=h.FORMULA, data_name="D", offset="Male",
                                      datasources=["study1"])
            assert raised.value.datashield_errors == {"study1": ["object 'Male' not found"]}
            assert h.fit(session, datasources=["study1"]) == expected
    counts = fed.counts(0)
    assert counts["running"] == 0 and counts["sessions"] == 0


def _raw(url: str, payload: bytes, half_close: bool = False, read_timeout: float = 10.0) -> bytes:
    """Send raw bytes to the server; what it answers (b"" when it only closes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


RSCRIPT = {"Content-Type": "application/x-rscript", "Accept": "application/octet-stream"}


def _client(fed: h.Federation, study: int) -> httpx.Client:
    """Logged in with the access token once; the opalsid cookie (kept by the client) from then on."""
    server = fed.servers[study]
    client = httpx.Client(base_url=server.url + "/ws", timeout=60)
    reply = client.get("/system/subject-profile/_current", headers={"X-Opal-Auth": h.token_for("analyst2", fed.run)})
    assert reply.status_code == 200 and client.cookies.get("opalsid")
    return client


def _open(client: httpx.Client) -> str:
    return str(client.post("/datashield/sessions").json()["id"])


def test_malformed_truncated_and_oversized_requests_get_4xx(fed: h.Federation) -> None:
    server = fed.servers[0]
    client = _client(fed, 0)
    try:
        sid = _open(client)
        aggregate = f"/datashield/session/{sid}/aggregate"
        cases = {
            "not R": (b"colnamesDS(D", "application/x-rscript"),
            "truncated string": (b'colnamesDS("D)', "application/x-rscript"),
            "JSON": (b'{"expr": 1}', "application/json"),
            "no content type": (b"colnamesDS(D)", ""),
            "two calls": (b"colnamesDS(D); ls()", "application/x-rscript"),
            "empty": (b"", "application/x-rscript"),
            "not UTF-8": (b"colnamesDS(\xff\xfe)", "application/x-rscript"),
        }
        for label, (body, content_type) in cases.items():
            reply = client.post(aggregate, params={"async": "false"}, content=body,
                                headers={**RSCRIPT, "content-type": content_type})
            assert 400 <= reply.status_code < 500, label
            assert reply.json()["status"] in ("bad_request", "rejected", "unsupported_media"), label
        assert client.post(aggregate, content=b"x" * 2_000_000, headers=RSCRIPT).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies to what streams in
            for _ in range(40):
                yield b"x" * 65536

        assert client.post(aggregate, content=chunks()).status_code == 413
        assert client.get(f"/datashield/session/{sid}/command/nothere").status_code == 404
        running = client.post(aggregate, params={"async": "true"}, content='colnamesDS("D")', headers=RSCRIPT).text
        assert client.get(f"/datashield/session/{sid}/command/{running}", params={"wait": "soon"}).status_code == 400
        assert client.put("/datasources").status_code == 405
        assert 400 <= client.get("/" + "a" * 60_000).status_code < 500
        assert 400 <= client.get("/datasources", headers={"X-Big": "b" * 200_000}).status_code < 500
        # a body shorter than its Content-Length, the client half-closing: refused or dropped, never served
        head = f"POST /ws{aggregate} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-rscript\r\n"
        head += f"Cookie: opalsid={client.cookies['opalsid']}\r\nContent-Length: 1000\r\n\r\n"
        answer = _raw(server.url, head.encode() + b"colnam", half_close=True)
        assert answer == b"" or 400 <= _status(answer) < 500
        assert 400 <= _status(_raw(server.url, b"HELLO THERE\r\n\r\n")) < 500
        negative = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
        assert 400 <= _status(_raw(server.url, negative)) < 500
        assert "Traceback" not in server.log()
        # and the server still serves: a fit on the same login
        with h.open_session(fed.logins(2)[:1], timeout=120) as session:
            assert h.fit(session)["num.valid.studies"].data == [1.0]
    finally:
        client.delete("/auth/session/_current")
        client.close()


_KILLED_CLIENT = """
import sys, httpx
url, token, expr = sys.argv[1:4]
c = httpx.Client(base_url=url + "/ws", timeout=120)
c.get("/system/subject-profile/_current", headers={"X-Opal-Auth": token}).raise_for_status()
sid = c.post("/datashield/sessions").json()["id"]
c.put(f"/datashield/session/{sid}/symbol/D/table/CLUSTER", params={"async": "false"}).raise_for_status()
cid = c.post(f"/datashield/session/{sid}/aggregate", params={"async": "true"}, content=expr,
             headers={"Content-Type": "application/x-rscript"}).text
print("submitted", flush=True)
c.get(f"/datashield/session/{sid}/command/{cid}/result", params={"wait": "100"})
"""


def test_clients_that_disconnect_mid_call_leave_no_stuck_worker(fed: h.Federation) -> None:
    server = fed.servers[1]  # the large table: its fit takes seconds
    baseline = fed.counts(1)
    # a client process killed while it long-polls for its fit
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, server.url, h.token_for("analyst2", fed.run),
                              LMER], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "submitted"
    time.sleep(0.3)  # lets it start its long-poll; killed a little earlier, it leaves the same fit behind
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    # a client that gives up on its long-poll and drops the connection without logging out
    quitter = _client(fed, 1)
    sid = _open(quitter)
    assert quitter.put(f"/datashield/session/{sid}/symbol/D/table/CLUSTER", params={"async": "false"}
                       ).status_code == 200
    cid = quitter.post(f"/datashield/session/{sid}/aggregate", params={"async": "true"}, content=LMER,
                       headers=RSCRIPT).text
    with pytest.raises(httpx.ReadTimeout):  # the fit takes seconds (more on a loaded machine): 0.3 s is far inside
        quitter.get(f"/datashield/session/{sid}/command/{cid}/result", params={"wait": 100}, timeout=0.3)
    quitter.close()
    # a request cut off mid-upload
    _raw(server.url, b"POST /ws/datashield/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"tok",
         read_timeout=1)
    # the worker goes on: another analyst's fit is answered, and nothing is left running
    # (a stuck worker fails this by the session's 120 s timeout; no stopwatch on a fit queued behind two others)
    with h.open_session(fed.logins(1)[1:2], timeout=120) as session:
        assert h.fit(session)["num.valid.studies"].data == [1.0]
    counts = fed.counts(1)
    assert counts["running"] == 0
    # the two abandoned logins keep their R sessions until their idle timeout (as designed)
    assert counts["sessions"] == baseline["sessions"] + 2
    assert counts["r_sessions"] == baseline["r_sessions"] + 2


def test_a_stopped_server_times_out_on_time_and_recovers(fed: h.Federation) -> None:
    with h.open_session(fed.logins(1), timeout=120) as session:
        expected = _nodes(session.aggregate('colnamesDS("D")'))
        fed.servers[2].signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(SessionCallError) as late:
                session.aggregate('colnamesDS("D")', timeout=3)
            seconds = time.monotonic() - started
        finally:
            fed.servers[2].signal(signal.SIGCONT)
        err = late.value.errors["study3"]
        assert list(late.value.errors) == ["study3"]
        assert isinstance(err, StudyCallError) and (err.kind, str(err)) == ("timeout", "no answer within 3 s")
        # By design the call gives up 3 s + the session's 1 s grace for a late thread = 4 s after it began, plus
        # milliseconds of overhead; a call left to its long-poll's transport timeout would take 3 + 15 = 18 s.
        # 12 s lies between: 8 s of slack for a loaded machine, and that regression still fails.
        assert seconds < 12
        assert _nodes(late.value.results) == {k: expected[k] for k in ("study1", "study2")}
        assert _nodes(session.aggregate('colnamesDS("D")')) == expected
