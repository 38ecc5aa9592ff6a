"""After an exception inside ``studies_up`` no pydsbase container or network is left (real engine).

A module of its own so that no other federation is up while it runs: ``docker ps -a --filter
label=pydsbase`` must be empty before, hold the study while inside, and be empty again after.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_docker, pytest.mark.slow]

IMAGE = "pydsbase-study:test"


def _docker_ps_labelled() -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=pydsbase"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_exception_inside_studies_up_leaves_nothing(tmp_path: Path, data_dir: Path) -> None:
    import docker

    from pydsbase.studies import build_image, studies_up

    build_image(IMAGE)  # a layer-cache hit after tests/test_docker.py
    folder = tmp_path / "s1"
    folder.mkdir()
    shutil.copyfile(data_dir / "CLUSTER" / "CLUSTER_INT1.csv", folder / "CLUSTER_INT1.csv")
    for path in (tmp_path, folder):
        path.chmod(0o755)
    (folder / "CLUSTER_INT1.csv").chmod(0o644)
    assert _docker_ps_labelled() == []
    with pytest.raises(RuntimeError, match="inside"), studies_up({"s1": folder}, engine="docker",
                                                                  image=IMAGE) as fed:
        assert len(_docker_ps_labelled()) == 1
        run_id = fed.run_id
        raise RuntimeError("inside")
    assert _docker_ps_labelled() == []
    client = docker.from_env()
    try:
        assert client.networks.list(filters={"label": f"pydsbase.run={run_id}"}) == []
    finally:
        client.close()
