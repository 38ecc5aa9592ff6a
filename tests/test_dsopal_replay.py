"""Replay what the real R clients sent, and compare our answers with the ones they got and accepted.

``tests/fixtures/dsopal_int_bmi_ri.json`` holds every request DSI 1.5.0 + DSOpal 1.4.1 + opalr 3.5.2
+ dsBaseClient 6.3.0 sent (``ds.lmerSLMA`` of golden case ``int_bmi_ri``, after ``datashield.login``)
to three of our study servers through Opal's API; ``tests/fixtures/dsmolgenisarmadillo_int_bmi_ri.json``
the same with DSI 1.5.0 + DSMolgenisArmadillo 2.0.10 + MolgenisAuth 0.0.25 through Armadillo's API
(tables ``golden/CLUSTER/CLUSTER_INTi``). Both were recorded by a proxy (``tools/record_exchanges.py``)
with our answers, the ones from which the real client reproduced the golden result. Secrets are
replaced by ``<secret-N>``; the R session, command and login ids of the recording are mapped to this
run's. Every answer must have the recorded status and content type; values (the octet-stream results,
R's serialization) must be the same bytes, and JSON answers the same JSON up to ids and dates. Polls
made without ``wait`` (Opal's) and ``/lastcommand`` before ``/lastresult`` (Armadillo's) may find a
command still running or already done, so only their status code (and the command's expression) is
compared.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_opal_clients import Study  # the study-server process helper

pytestmark = pytest.mark.needs_r

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# recording -> the scheme its client sends the credentials with
CLIENTS = {"dsopal_int_bmi_ri.json": "X-Opal-Auth", "dsmolgenisarmadillo_int_bmi_ri.json": "Basic",
           "dsopal_objects.json": "X-Opal-Auth"}  # objects: study1 only, ds.ls ... ds.rm on CNSIM.CNSIM1, permissive
REPLAYS = [(fixture, index) for fixture in list(CLIENTS)[:2] for index in (0, 1, 2)] + [("dsopal_objects.json", 0)]
COOKIES = ("opalsid", "JSESSIONID")
PASSWORD = "alice-password-1"
_VOLATILE = {"id", "creationDate", "lastAccessDate", "createDate", "startDate", "endDate", "link"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Any:
    from r_server.auth import hash_password

    root = tmp_path_factory.mktemp("replay")
    users = root / "users.json"
    users.write_text(json.dumps({"users": [{"name": "alice", "password_hash": hash_password(PASSWORD, n=2**12)}]}))
    started = []
    try:
        for i in (1, 2, 3):
            home = root / f"study{i}"
            csv = data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv"
            for folder in (home / "tables" / "CLUSTER", home / "tables" / "golden" / "CLUSTER"):  # Opal, Armadillo
                folder.mkdir(parents=True)
                (folder / csv.name).write_bytes(csv.read_bytes())
            extra: list[str] = []
            if i == 1:  # also the objects fixture's table and privacy level
                (home / "tables" / "CNSIM").mkdir()
                (home / "tables" / "CNSIM" / "CNSIM1.csv").write_bytes((data_dir / "CNSIM" / "CNSIM1.csv").read_bytes())
                (home / "disclosure.json").write_text('{"datashield.privacyControlLevel": "permissive"}')
                extra = ["--disclosure", str(home / "disclosure.json")]
            started.append(Study(home, f"cluster.int{i}", users, extra))
        for study in started:
            study.wait_healthy()
        yield started
    finally:
        for study in started:
            study.stop()


@pytest.mark.parametrize(("fixture", "index"), REPLAYS, ids=[f"{f.split('.')[0]}-{i + 1}" for f, i in REPLAYS])
def test_replayed_r_client_requests_get_the_recorded_answers(studies: Any, fixture: str, index: int) -> None:
    recorded = json.loads((FIXTURES / fixture).read_text())["studies"][f"study{index + 1}"]
    study = studies[index]
    ids: dict[str, str] = {}  # recorded id -> live id (R session, commands, login)
    credentials = f"{CLIENTS[fixture]} " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    previous = ""
    compared_values = 0
    with httpx.Client(base_url=study.url, timeout=300) as client:
        for n, exchange in enumerate(recorded):
            path = exchange["path"]
            for old, new in ids.items():
                path = path.replace(old, new)
            headers = {k: v for k, v in exchange["headers"].items() if k != "authorization"}
            if "authorization" in exchange["headers"]:
                headers["Authorization"] = credentials
            reply = client.request(exchange["method"], path + ("?" + exchange["query"] if exchange["query"] else ""),
                                   content=exchange["body"].encode(), headers=headers)
            where = (n, exchange["method"], exchange["path"])
            assert reply.status_code == exchange["status"], (where, reply.text[:300])
            assert reply.headers.get("content-type") == exchange["content_type"], where
            assert reply.headers["x-opal-version"] == "4.7.0"
            expected = base64.b64decode(exchange["body_b64"])
            for cookie in COOKIES:
                if cookie in reply.cookies:
                    ids["<secret-2>"] = reply.cookies[cookie]
            if exchange["path"] == "/ws/datashield/sessions":
                ids[json.loads(expected)["id"]] = reply.json()["id"]
            elif exchange["content_type"] == "text/plain; charset=utf-8":  # a submitted command's id
                ids[expected.decode()] = reply.text
            elif exchange["content_type"] == "application/octet-stream":  # a value: the same bytes
                assert reply.content == expected, where
                compared_values += 1
            elif exchange["content_type"] == "application/json":
                polled = re.search(r"/command/[^/]+$", exchange["path"]) and "wait=true" not in exchange["query"]
                if exchange["path"] == "/lastcommand" and previous != "/lastresult":  # before the result
                    assert reply.json()["expression"] == json.loads(expected)["expression"], where
                elif "/methods" in exchange["path"]:  # the allow-list grows: every recorded method is there
                    live = {m["name"]: m for m in reply.json()}
                    assert all(live.get(m["name"], {}).keys() == m.keys() for m in json.loads(expected)), where
                elif not polled:
                    assert _strip(reply.json()) == _strip(json.loads(expected)), where
            previous = exchange["path"]
    assert compared_values >= 2  # exists("D") and the lmerSLMADS2 summary
