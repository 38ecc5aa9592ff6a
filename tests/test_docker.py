"""The study image and the docker launcher, against a real Docker engine.

Builds the image from the repository's Dockerfile (layer cache on), stands three CLUSTER_INT studies
up as containers once for the module, runs golden cases through them and checks isolation for real.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.needs_docker, pytest.mark.needs_r, pytest.mark.slow]

IMAGE = "pydsbase-study:test"
SERVERS = ("cluster.int1", "cluster.int2", "cluster.int3")
GOLDEN_CASES = ("int_bmi_ri", "int_bmi_ri_ml")


def _labelled(run_id: str) -> list[str]:
    """The launch's containers: label ``pydsbase`` and its ``pydsbase.run`` (other test runs may share the engine)."""
    import docker

    client = docker.from_env()
    try:
        filters = {"label": ["pydsbase", f"pydsbase.run={run_id}"]}
        return [c.id for c in client.containers.list(all=True, filters=filters)]
    finally:
        client.close()


@pytest.fixture(scope="module")
def image() -> str:
    from pydsbase.studies import build_image

    started = time.monotonic()
    build_image(IMAGE)
    print(f"image {IMAGE} built in {time.monotonic() - started:.1f} s")
    return IMAGE


@pytest.fixture(scope="module")
def folders(data_dir: Path) -> Iterator[dict[str, Path]]:
    from pydsbase.studies import copied_studies

    tables = {server: {f"CLUSTER_INT{i}": data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv"}
              for i, server in enumerate(SERVERS, start=1)}
    with copied_studies(tables) as result:
        yield result


@pytest.fixture(scope="module")
def federation(image: str, folders: dict[str, Path]) -> Iterator[Any]:
    from pydsbase.studies import studies_up

    started = time.monotonic()
    with studies_up(folders, engine="docker", image=image, memory="768m", cpus=1.0) as fed:
        print(f"three study containers healthy in {time.monotonic() - started:.1f} s")
        run_id = fed.run_id
        assert len(_labelled(run_id)) == 3
        yield fed
    assert _labelled(run_id) == []


@contextlib.contextmanager
def _session(logins: list[Any]) -> Iterator[Any]:
    from pydsbase.session import Session

    session = Session(logins)
    session.open()
    try:
        yield session
    finally:
        session.close()


# -- the image --------------------------------------------------------------------------------------


def test_image_runs_unprivileged_with_a_health_check(image: str) -> None:
    import docker

    client = docker.from_env()
    try:
        config = client.images.get(image).attrs["Config"]
    finally:
        client.close()
    assert config["User"] == "study"
    assert config["Healthcheck"]["Test"][0] == "CMD" and "/health" in config["Healthcheck"]["Test"][-1]
    assert config["Entrypoint"][:3] == ["python", "-m", "r_server"]
    assert config["Entrypoint"][3:] == ["--tables", "/data", "--host", "0.0.0.0", "--port", "8080",
                                        "--users", "/run/pydsbase/users.json"]


def test_containers_are_confined(federation: Any) -> None:
    engine = federation.engine_handle()
    for name, study in federation.studies.items():
        container = engine.container(name)
        container.reload()
        host = container.attrs["HostConfig"]
        assert container.labels["pydsbase"] == "1" and container.labels["pydsbase.study"] == name
        (binding,) = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
        assert binding["HostIp"] == "127.0.0.1" and study.url == f"http://127.0.0.1:{binding['HostPort']}"
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert set(mounts) == {"/data", "/run/pydsbase/users.json"}
        assert mounts["/data"]["Source"] == str(study.folder) and mounts["/data"]["RW"] is False
        assert mounts["/run/pydsbase/users.json"]["RW"] is False
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert host["Memory"] == 768 * 2**20 and host["NanoCpus"] == 10**9 and host["PidsLimit"] == 256
        assert all(u["Soft"] <= 20000 and u["Hard"] <= 20000 for u in host["Ulimits"])
        assert container.attrs["State"]["Health"]["Status"] in ("starting", "healthy")
        uid = container.exec_run(["id", "-u"]).output.decode().strip()
        assert uid == "10001"
        # The study sees its own table only.
        listing = container.exec_run(["ls", "/data"]).output.decode().split()
        assert listing == [next(iter(p.name for p in study.folder.iterdir()))]


# -- golden cases through the containers -------------------------------------------------------------


@pytest.mark.parametrize("case_id", GOLDEN_CASES)
def test_golden_cases_identical_to_local_backend_and_golden(federation: Any, golden_dir: Path, data_dir: Path,
                                                           case_id: str) -> None:
    from pydsbase.conformance import runner
    from pydsbase.conformance.compare import compare

    case = runner.read_case(golden_dir / f"{case_id}.json")
    assert tuple(study.server for study in case.studies) == SERVERS
    ours = runner.run_case(case, data_dir.parent.parent, logins=federation.logins)
    local = runner.run_case(case, data_dir.parent.parent, "local")
    assert ours["outcome"] == "returned", ours["error"]
    assert ours["result"] == local["result"]  # identical nodes: doubles bit for bit
    golden = json.loads((golden_dir / f"{case_id}.json").read_text())
    comparison = compare(golden, ours)
    assert comparison.ok, comparison.failures[:5]
    # The per-study lmerSLMADS2 values, not only the pooled ones: study 2's fixed effects.
    ours_study2 = ours["result"]["data"]["output.summary"]["data"]["study2"]["data"]["coefficients"]
    golden_study2 = golden["result"]["data"]["output.summary"]["data"]["study2"]["data"]["coefficients"]
    assert ours_study2 == golden_study2


# -- isolation ---------------------------------------------------------------------------------------


def test_a_token_opens_its_own_study_only(federation: Any) -> None:
    from pydsbase.drivers.http import HTTPConnection
    from pydsbase.errors import StudyCallError

    login1 = federation.logins[0]
    own = HTTPConnection(login1)
    try:
        from r_server.http import default_project

        assert own.list_tables() == [f"{default_project(SERVERS[0])}.CLUSTER_INT1"]  # Opal's PROJECT.TABLE
    finally:
        own.disconnect()
    for other in federation.logins[1:]:
        with pytest.raises(StudyCallError) as refused:
            HTTPConnection(login1.model_copy(update={"url": other.url}))
        assert refused.value.kind == "auth"


def test_another_studys_table_is_refused(federation: Any) -> None:
    from pydsbase.errors import SessionCallError

    with _session(federation.logins[:1]) as session:
        with pytest.raises(SessionCallError, match="CLUSTER_INT2"):
            session.assign_table("X", table="CLUSTER_INT2")
        session.assign_table("D", table="CLUSTER_INT1")
        assert session.ls() == {SERVERS[0]: ["D"]}


def _probe(host: str, port: int) -> str:
    """Python source that prints ``connected`` or ``refused <error>`` for one TCP connection attempt."""
    return ("import socket\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), timeout=3).close(); print('connected')\n"
            "except OSError as e:\n"
            "    print('refused', type(e).__name__)\n")


def _tcp_from(container: Any, host: str, port: int) -> str:
    return str(container.exec_run(["python", "-c", _probe(host, port)]).output.decode().strip())


def test_containers_cannot_reach_each_other(federation: Any) -> None:
    engine = federation.engine_handle()
    containers = [engine.container(name) for name in SERVERS]
    for c in containers:
        c.reload()
    addresses = [next(iter(c.attrs["NetworkSettings"]["Networks"].values())) for c in containers]
    first = containers[0]
    # The probe works: a container reaches its own server.
    assert _tcp_from(first, "127.0.0.1", 8080) == "connected"
    for other, address, study in zip(containers[1:], addresses[1:], list(federation.studies.values())[1:],
                                     strict=True):
        assert address["IPAddress"] and address["NetworkID"] != addresses[0]["NetworkID"]
        # Not directly, ...
        assert _tcp_from(first, address["IPAddress"], 8080).startswith("refused")
        # ... nor through the other study's published port on the host.
        host_port = int(study.url.rsplit(":", 1)[1])
        assert _tcp_from(first, addresses[0]["Gateway"], host_port).startswith("refused")
        assert _tcp_from(other, addresses[0]["IPAddress"], 8080).startswith("refused")


def test_study_networks_have_no_route_out(federation: Any) -> None:
    """Outbound traffic is off by the network's own settings (no probe leaves this machine)."""
    engine = federation.engine_handle()
    for name in federation.studies:
        container = engine.container(name)
        container.reload()
        (net_name,) = container.attrs["NetworkSettings"]["Networks"]
        options = engine._client.networks.get(net_name).attrs["Options"]
        assert options["com.docker.network.bridge.enable_icc"] == "false"
        assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false"
