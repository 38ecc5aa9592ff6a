"""``pydsbase lmer`` end to end: real study servers (local backend, R), the command run as a process.

Three local studies serve the CLUSTER_INT tables of the golden cases; the command's pooled
estimates and standard errors must be dsBaseClient's doubles (golden ``int_bmi_ri``), and its
R-compatible output must equal dsBaseClient's ``combine.with.metafor = FALSE`` list
(golden ``int_no_metafor``) node for node.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pydsbase.rvalue import RAtomic, RList, from_node, loads

FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]


@pytest.fixture(scope="module")
def studies_config(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    shared = data_dir / "CLUSTER"
    root = tmp_path_factory.mktemp("studies")
    servers = []
    for i in (1, 2, 3):
        folder = root / f"s{i}"
        folder.mkdir()
        shutil.copy(shared / f"CLUSTER_INT{i}.csv", folder / "CLUSTER_INT.csv")
        servers.append(
            {
                "name": f"cluster.int{i}",
                "url": f"local://{folder}",
                "user": "analyst",
                "password": "e2e",
                "driver": "pydsbase.LocalDriver",
            }
        )
    config = root / "studies.yml"
    config.write_text(yaml.safe_dump({"servers": servers}))
    return config


def pydsbase_lmer(config: Path, *args: str) -> str:
    argv = [sys.executable, "-m", "pydsbase", "lmer", "--config", str(config), "--table", "CLUSTER_INT"]
    done = subprocess.run([*argv, "--formula", FORMULA, *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def golden(golden_dir: Path, case: str) -> RList:
    value = from_node(json.loads((golden_dir / f"{case}.json").read_text())["result"])
    assert isinstance(value, RList)
    return value


def test_json_output_pools_to_dsbaseclients_doubles(studies_config: Path, golden_dir: Path) -> None:
    data = json.loads(pydsbase_lmer(studies_config, "--output", "json"))
    assert [s["name"] for s in data["studies"]] == ["cluster.int1", "cluster.int2", "cluster.int3"]
    assert data["exclusions"] == [] and data["failures"] == []
    pooled = golden(golden_dir, "int_bmi_ri")["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic)
    assert len(data["pooled"]) == 9
    for row in data["pooled"]:
        t = data["terms"].index(row["term"])
        m = ["ML", "REML", "FE"].index(row["method"])
        assert float(row["estimate"]).hex() == pooled.data[2 * m * 3 + t].hex(), row
        assert float(row["se"]).hex() == pooled.data[(2 * m + 1) * 3 + t].hex(), row


def test_r_json_output_is_dsbaseclients_list(studies_config: Path, golden_dir: Path) -> None:
    value = loads(pydsbase_lmer(studies_config, "--output", "r-json"))
    assert value == golden(golden_dir, "int_no_metafor")


def test_plot_output(studies_config: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is an optional extra")
    out = pydsbase_lmer(studies_config, "--output", "plot", "--plot-dir", str(tmp_path), "--plot-format", "svg")
    assert out.split() == [str(tmp_path / f"forest_{t}.svg") for t in ("Intercept", "trtGrp", "Male")]
    svg = (tmp_path / "forest_trtGrp.svg").read_text()
    assert all(f'id="study:cluster.int{i}"' in svg for i in (1, 2, 3))
