"""After an exception inside ``studies_up`` no pydsbase container or network is left (real engine).

``docker ps -a --filter label=pydsbase`` (narrowed to the launch's own ``pydsbase.run`` label, so
that another test run on the same engine does not interfere) holds the study while inside and is empty
after; its network is gone too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_docker, pytest.mark.slow]

IMAGE = "pydsbase-study:test"


def _docker_ps_labelled(run_id: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=pydsbase",
                          "--filter", f"label=pydsbase.run={run_id}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


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
    with pytest.raises(RuntimeError, match="inside"), studies_up({"s1": folder}, engine="docker",
                                                                  image=IMAGE) as fed:
        run_id = fed.run_id
        assert len(_docker_ps_labelled(run_id)) == 1
        raise RuntimeError("inside")
    assert _docker_ps_labelled(run_id) == []
    client = docker.from_env()
    try:
        assert client.networks.list(filters={"label": f"pydsbase.run={run_id}"}) == []
    finally:
        client.close()
