"""One real study server (``python -m r_server``, with R) answering Opal's and Armadillo's APIs at once.

Its tables folder holds a table at each depth: ``CLUSTER_INT1.csv`` (Opal ``cluster_int.CLUSTER_INT1``,
the study's default project), ``CLUSTER/CLUSTER_INT2.csv`` (Opal ``CLUSTER.CLUSTER_INT2``) and
``proj/core/CLUSTER_INT3.csv`` (Armadillo ``proj/core/CLUSTER_INT3``). A mixed federation, two studies
through ``OpalDriver`` and one through ``ArmadilloDriver`` (each connection its own login and R
session on this one server, so the test starts one R), gives the golden ``ds.lmerSLMA`` result bit
for bit, and the rich result names the studies.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datashield.api import DSLoginBuilder
from serverproc import StudyProcess

import pydsbase
from pydsbase.rvalue import from_node, to_node
from pydsbase.session import Session
from r_server.auth import hash_password, new_token, token_digest

pytestmark = pytest.mark.needs_r

PASSWORD = "alice-password-1"
TOKEN = new_token()
VARIABLES = ["incid_rate", "trtGrp", "Male", "idDoctor", "BMI", "idSurgery"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[StudyProcess]:
    root = tmp_path_factory.mktemp("two-apis")
    tables = root / "tables"
    for relative, source in (("CLUSTER_INT1.csv", "CLUSTER_INT1"), ("CLUSTER/CLUSTER_INT2.csv", "CLUSTER_INT2"),
                             ("proj/core/CLUSTER_INT3.csv", "CLUSTER_INT3")):
        (tables / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / "CLUSTER" / f"{source}.csv", tables / relative)
    users = root / "users.json"
    users.write_text(json.dumps({"users": [{"name": "alice", "password_hash": hash_password(PASSWORD),
                                            "token_sha256": [token_digest(TOKEN)]}]}))
    process = StudyProcess(root, ["--name", "cluster.int", "--tables", str(tables), "--users", str(users)])
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def test_one_study_names_its_tables_in_both_apis(server: StudyProcess) -> None:
    opal = httpx.Client(base_url=server.url + "/ws", auth=("alice", PASSWORD))
    armadillo = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"})
    with opal, armadillo:
        datasources = {d["name"]: d["table"] for d in opal.get("/datasources").json()}
        assert datasources == {"cluster_int": ["CLUSTER_INT1"], "CLUSTER": ["CLUSTER_INT2"]}
        assert armadillo.get("/tables").json() == ["CLUSTER_INT1", "proj/core/CLUSTER_INT3"]
        assert armadillo.head("/tables/proj/core/CLUSTER_INT3").status_code == 200
        assert armadillo.head("/tables/proj/other/CLUSTER_INT3").status_code == 404
        for table in ("proj/core/../../CLUSTER_INT1", "proj/core", "a/b/c/d", "/etc/passwd"):
            reply = armadillo.post("/load-table", params={"symbol": "D", "table": table})
            assert reply.status_code in (400, 404) and reply.json()["message"], table
        # the variables filter selects and orders columns, as over Opal's API
        reply = armadillo.post("/load-table", params={"symbol": "D", "table": "proj/core/CLUSTER_INT3",
                                                      "variables": "BMI,Male", "async": "true"})
        assert reply.status_code == 201
        assert armadillo.get("/lastcommand").json()["status"] in ("PENDING", "IN_PROGRESS", "COMPLETED")
        assert armadillo.get("/lastresult").status_code == 404  # done; a table load has no value
        assert armadillo.get("/lastcommand").json()["status"] == "COMPLETED"
        assert armadillo.get("/symbols").json() == ["D"]
        # a failed command: R's try() text, as Armadillo's Rock reports it and dsBaseClient's tests match it
        # (DSMolgenisArmadillo reads "message"), and the bare condition message our client reads
        call = 'dataFrameSubsetDS1("M", "D$BMI", "D$BMI", 4, NULL, NULL, FALSE)'
        reply = armadillo.post("/execute", params={"async": "true"}, content=call,
                               headers={"Content-Type": "text/plain"})
        assert reply.status_code == 201
        assert armadillo.get("/lastresult").status_code == 404
        found = re.search(r"\{(.*)\}", armadillo.get("/lastcommand").json()["message"])
        assert found is not None
        embedded = json.loads(found.group(0))
        assert embedded["condition"] == "object 'M' not found"
        assert embedded["message"] == "Error in data.frame(M) : object 'M' not found"
        assert armadillo.post("/logout").status_code == 200


def _canonical(node: Any) -> Any:
    return to_node(from_node(node))


def test_a_mixed_opal_and_armadillo_federation_gives_the_golden_result(server: StudyProcess,
                                                                       golden_dir: Path) -> None:
    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text(encoding="utf-8"))
    builder = DSLoginBuilder()
    builder.add("cluster.int1", url=server.url, user="alice", password=PASSWORD, driver="pydsbase.OpalDriver")
    builder.add("cluster.int2", url=server.url, token=TOKEN, driver="pydsbase.OpalDriver")
    builder.add("cluster.int3", url=server.url, user="alice", password=PASSWORD, driver="pydsbase.ArmadilloDriver")
    with Session(builder.build(), timeout=300) as session:
        session.assign_table("D", tables={"cluster.int1": "cluster_int.CLUSTER_INT1",
                                          "cluster.int2": "CLUSTER.CLUSTER_INT2",
                                          "cluster.int3": "proj/core/CLUSTER_INT3"}, variables=VARIABLES)
        fit = pydsbase.ds_lmer_slma(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)", data_name="D")
    assert to_node(fit) == _canonical(golden["result"])
    rich = pydsbase.slma_result(fit)
    assert rich.study_names == ["cluster.int1", "cluster.int2", "cluster.int3"]
