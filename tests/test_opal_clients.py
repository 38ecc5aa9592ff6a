"""Clients we did not write, from PyPI, against three of our study servers (processes with R).

``datashield`` + ``datashield-opal`` (which speaks Opal's REST API through ``obiba-opal``) log in,
list and assign tables, aggregate synchronously and through asynchronous commands, list and remove
symbols and log out; the lmerSLMADS2 answer comes through Rock's JSON and its numbers equal the
goldens' after rounding to the 15 significant digits that JSON keeps, and ``pydsbase.ds_lmer_slma`` runs
on such a stock session (restoring the JSON into pydsbase's value model, with a warning that the result
is not exact). Study 1 serves its table at the top level (reached through the study's default project),
studies 2 and 3 under a project folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import datashield.api as datashield
import datashield_opal  # noqa: F401  (the driver the logins name; in the test extra, so a missing one fails)
import obiba_opal
import pytest
from serverproc import StudyProcess

import pydsbase
from pydsbase.rvalue import RAtomic, to_node
from r_server.auth import hash_password, new_token, token_digest

pytestmark = pytest.mark.needs_r


PASSWORD = "analyst-password-1"
TOKEN = new_token()
VARIABLES = ["incid_rate", "trtGrp", "Male", "idDoctor", "BMI", "idSurgery"]
LMER = 'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'
TABLES = ["study1.CLUSTER_INT1", "CLUSTER.CLUSTER_INT2", "CLUSTER.CLUSTER_INT3"]


class Study(StudyProcess):
    """One study server named NAME on ``http://localhost:PORT`` (the host opalr accepts over plain HTTP)."""

    def __init__(self, root: Path, name: str, users: Path, extra: Sequence[str] = ()) -> None:
        self.name = name
        super().__init__(root, ["--name", name, "--tables", str(root / "tables"), "--users", str(users), *extra],
                         host="localhost")

    def wait_healthy(self, timeout: float = 300) -> None:
        super().wait_healthy(timeout)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[list[Study]]:
    root = tmp_path_factory.mktemp("opal-clients")
    users = root / "users.json"
    users.write_text(json.dumps({"users": [
        {"name": "analyst", "password_hash": hash_password(PASSWORD, n=2**12), "token_sha256": token_digest(TOKEN)},
    ]}))
    started = []
    try:
        for i in (1, 2, 3):
            home = root / f"study{i}"
            folder = home / "tables" if i == 1 else home / "tables" / "CLUSTER"
            folder.mkdir(parents=True)
            csv = data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv"
            (folder / csv.name).write_bytes(csv.read_bytes())
            started.append(Study(home, f"study{i}", users))
        for study in started:
            study.wait_healthy()
        yield started
    finally:
        for study in started:
            study.stop()


def _logins(studies: list[Study], token_for: int | None = None) -> Any:
    builder = datashield.DSLoginBuilder()
    for i, study in enumerate(studies):
        if i == token_for:
            builder.add(study.name, url=study.url, token=TOKEN, driver="datashield_opal.OpalDriver")
        else:
            builder.add(study.name, url=study.url, user="analyst", password=PASSWORD,
                        driver="datashield_opal.OpalDriver")
    return builder.build()


def _doubles_match(golden: dict[str, Any], answer: dict[str, Any], where: str) -> int:
    """Compare a golden node with jsonlite's serializeJSON of the same value; return the doubles compared."""
    assert answer["type"] == golden["type"], where
    if golden["type"] == "list":
        if isinstance(golden["data"], dict):
            names = answer["attributes"]["names"]["value"]
            pairs = [(golden["data"][n], item, f"{where}${n}") for n, item in zip(names, answer["value"], strict=True)]
        else:
            pairs = [(g, item, f"{where}[[{i}]]")
                     for i, (g, item) in enumerate(zip(golden["data"], answer["value"], strict=True))]
        compared = 0
        for expected, item, inner in pairs:
            if expected is not None and item.get("type") in ("list", "double", "integer", "character", "logical"):
                compared += _doubles_match(expected, item, inner)
        return compared
    if golden["type"] == "double":
        got = answer["value"]
        assert len(got) == len(golden["data"]), where
        for g, a in zip(golden["data"], got, strict=True):
            if isinstance(g, str):  # NA, NaN, Inf in the golden encoding
                assert isinstance(a, str), where
            else:
                assert a == float(f"{g:.15g}"), (where, g, a)
        return len(got)
    assert answer["value"] == golden["data"], where
    return 0


def test_datashield_opal_session_round_trip(studies: list[Study], golden_dir: Path) -> None:
    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text())["result"]["data"]["output.summary"]["data"]
    session = datashield.DSSession(_logins(studies, token_for=2))
    session.open()
    try:
        assert session.tables() == {s.name: [t] for s, t in zip(studies, TABLES, strict=True)}
        assert session.profiles()[studies[0].name]["available"] == ["default"]
        assert "lmerSLMADS2" in [m["name"] for m in session.methods("aggregate")[studies[0].name]]
        tables = {s.name: t for s, t in zip(studies, TABLES, strict=True)}
        columns = session.variables(tables=tables)
        assert all(VARIABLES[0] in [v["name"] for v in columns[s.name]] for s in studies)
        session.assign_table("D", tables=tables, variables=VARIABLES, asynchronous=False)
        assert not session.has_errors(), session.get_errors()
        assert session.ls() == {s.name: ["D"] for s in studies}
        session.rm("D")
        session.assign_table("D", tables=tables, variables=VARIABLES)  # asynchronous commands
        assert not session.has_errors(), session.get_errors()
        assert session.ls() == {s.name: ["D"] for s in studies}
        sync = session.aggregate('colnamesDS("D")', asynchronous=False)
        asynchronous = session.aggregate('colnamesDS("D")', asynchronous=True)
        assert sync == asynchronous == {s.name: VARIABLES for s in studies}
        answers = session.aggregate(LMER)
        for i, study in enumerate(studies, start=1):
            assert _doubles_match(golden[f"study{i}"], answers[study.name], f"study{i}") > 20
        session.assign_expr("x", "D$BMI")
        assert all("x" in symbols for symbols in session.ls().values())
        session.rm("x")
        assert not any("x" in symbols for symbols in session.ls().values())
    finally:
        session.close()
    for study in studies:
        lines = [(r["user"], r["operation"], r["outcome"]) for r in study.audit_lines()]
        assert ("analyst", "close_session", "ok") in lines
        # obiba-opal sends its credentials on every request and never a cookie: the server checks them
        # at its two logins (subject profile) and reuses that login for everything else
        assert lines.count(("analyst", "login", "ok")) <= 2


def test_failed_commands_and_refusals_surface_in_the_client(studies: list[Study]) -> None:
    from datashield.interface import DSError
    from datashield_opal.impl import OpalDriver

    conn = OpalDriver.new_connection(_logins(studies[:1])[0])
    try:
        result = conn.aggregate('system("id")')
        while not result.is_completed():
            time.sleep(0.05)
        with pytest.raises(DSError) as caught:
            result.fetch()
        assert str(caught.value).endswith("failed on study1: call rejected: function system() is not allowed")
        for table in ("study1.CLUSTER_INT1/../x", "study1..CLUSTER_INT1", "study1.NOPE"):
            with pytest.raises(DSError):
                conn.assign_table("D", table, asynchronous=False)
        with pytest.raises(DSError):
            conn.assign_resource("R", "p.r", asynchronous=False)
        with pytest.raises(DSError):
            conn.assign_table("D", "study1.CLUSTER_INT1", id_name="idPatient", asynchronous=False)
        assert conn.list_symbols() == []
    finally:
        conn.disconnect()


def test_obiba_opal_client_reads_the_version_and_logs_out(studies: list[Study]) -> None:
    study = studies[0]
    client = obiba_opal.OpalClient.buildWithAuthentication(study.url, "analyst", PASSWORD)
    try:
        assert client.version == "4.7.0" and client.compare_version("4.2") == 1
        assert client.profile["principal"] == "analyst"
        request = client.new_request().accept_json().get().resource("/datashield/profiles")
        assert request.send().from_json() == [{"name": "default", "enabled": True, "restrictedAccess": False}]
        response = client.new_request().accept_json().get().resource("/datasources").send()
        assert response.code == 200 and response.get_version() == "4.7.0"
        missing = client.new_request().accept_json().get().resource("/datashield/session/nope").send()
        assert missing.code == 404 and missing.from_json()["status"] == "session"
    finally:
        client.new_request().resource("/auth/session/_current").delete().send()
        client.close()
    with pytest.raises(Exception):  # noqa: B017 (the client raises its own HTTPError type)
        obiba_opal.OpalClient.buildWithAuthentication(study.url, "analyst", "wrong-password").new_request(
        ).accept_json().get().resource("/datasources").fail_on_error().send()


def _rounded_like_json(golden: Any) -> Any:
    """The golden node with every double as JSON carries it: 15 significant digits."""
    if isinstance(golden, dict):
        return {k: _rounded_like_json(v) for k, v in golden.items()}
    if isinstance(golden, list):
        return [_rounded_like_json(v) for v in golden]
    return float(f"{golden:.15g}") if isinstance(golden, float) else golden


def test_ds_lmer_slma_on_a_stock_datashield_opal_session(studies: list[Study], golden_dir: Path) -> None:
    """int_bmi_ri through datashield + datashield-opal (JSON): the per-study summaries are the golden's
    after JSON's rounding, element for element; the pooled matrix is metafor's on those rounded inputs."""
    golden = json.loads((golden_dir / "int_bmi_ri.json").read_text())["result"]["data"]
    session = datashield.DSSession(_logins(studies))
    session.open()
    try:
        session.assign_table("D", tables={s.name: t for s, t in zip(studies, TABLES, strict=True)})
        with pytest.warns(pydsbase.InexactResultWarning, match="15 significant digits") as caught:
            fit = pydsbase.ds_lmer_slma(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)", data_name="D")
    finally:
        session.close()
    assert "study1, study2, study3 answered in Rock's JSON" in str(caught[0].message)
    assert not fit.exact and fit.inexact == tuple(s.name for s in studies)
    assert to_node(fit["output.summary"]) == _rounded_like_json(golden["output.summary"])
    for key in ("betamatrix.valid", "sematrix.valid", "num.valid.studies"):
        assert to_node(fit[key]) == _rounded_like_json(golden[key]), key
    pooled = fit["SLMA.pooled.ests.matrix"]
    expected = golden["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic) and pooled.dimnames == expected["dimnames"]
    # Inputs rounded to 15 significant digits move each input by at most 5e-15 of itself; metafor's
    # estimates and standard errors are smooth in them (REML/ML iterate to a tolerance far below that),
    # so they move by a few times that: 1e-12 is the loss named, with room, not a guess at noise.
    assert pooled.data == pytest.approx(expected["data"], rel=1e-12, abs=0)
    assert not pydsbase.slma_result(fit).exact
