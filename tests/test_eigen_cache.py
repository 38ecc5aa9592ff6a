"""Eigen's cache sizes are pinned in every study process, so lme4 gives the same doubles on any CPU.

The numeric test evaluates lme4's REML criterion of the golden case ``slo_age_slope_by_doctor``
(study 1) at the golden's own theta: with the pinned 32 KiB L1 size the pieces equal the golden's
``devcomp`` bit for bit, with a 48 KiB L1 size (a CPU like the one these tests were written on)
they do not. Each run is a fresh process, because Eigen reads the sizes once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r_server import eigen_cache

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, sys
import rpy2.rinterface as ri
from r_server import eigen_cache
from r_server.rbridge import RBridge

bridge = RBridge()
versions = bridge.versions()  # starts R, loads lme4 and pins the sizes as configured
r = lambda text: ri.baseenv["eval"](ri.parse(text))
r('''
lmod <- lme4::lFormula(BMI ~ age + Male + (1 + age | idDoctor), data = utils::read.csv(CSV))
devfun <- do.call(lme4::mkLmerDevfun, lmod)
theta <- c(2.862010082542275, 0.0403055395639463, 0)
fit <- lme4::mkMerMod(environment(devfun), list(par = theta, fval = devfun(theta), conv = 0, feval = 1,
                      message = ""), lmod$reTrms, fr = lmod$fr)
cmp <- fit@devcomp$cmp
'''.replace("CSV", json.dumps(sys.argv[1])))
cmp = r("cmp")
print(json.dumps({"versions": versions, "cmp": dict(zip(cmp.names, [float(x).hex() for x in cmp]))}))
"""


def _probe(csv: Path, setting: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != eigen_cache.ENV_VAR}
    if setting is not None:
        env[eigen_cache.ENV_VAR] = setting
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(csv)], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def golden_cmp(golden_dir: Path) -> dict[str, str]:
    case = json.loads((golden_dir / "slo_age_slope_by_doctor.json").read_text(encoding="utf-8"))
    cmp = case["result"]["data"]["output.summary"]["data"]["study1"]["data"]["devcomp"]["data"]["cmp"]
    return {name: float(x).hex() for name, x in zip(cmp["names"], cmp["data"], strict=True) if x != "NA"}


@pytest.mark.needs_r
def test_pinned_sizes_give_the_golden_doubles(golden_dir: Path, golden_cmp: dict[str, str]) -> None:
    csv = golden_dir.parents[1] / "data" / "CLUSTER" / "CLUSTER_SLO1.csv"
    pinned = _probe(csv, None)
    assert pinned["versions"]["eigen_cache_sizes"] == "32768,1048576,33554432"  # type: ignore[index]
    ours = {k: v for k, v in pinned["cmp"].items() if k in golden_cmp}  # type: ignore[attr-defined]
    assert ours == golden_cmp

    wider = _probe(csv, "49152,1048576,33554432")
    assert wider["versions"]["eigen_cache_sizes"] == "49152,1048576,33554432"  # type: ignore[index]
    assert wider["cmp"]["ldRX2"] != golden_cmp["ldRX2"]  # type: ignore[index]
    assert wider["cmp"]["ldL2"] == golden_cmp["ldL2"]  # type: ignore[index]  # CHOLMOD's part does not move


def test_configured_sizes() -> None:
    assert eigen_cache.configured_sizes({}) == eigen_cache.DEFAULT_SIZES
    assert eigen_cache.configured_sizes({eigen_cache.ENV_VAR: "host"}) is None
    assert eigen_cache.configured_sizes({eigen_cache.ENV_VAR: " 16384,262144,8388608 "}) == (16384, 262144, 8388608)
    for bad in ("32768", "a,b,c", "0,1,2", "1,2,3,4", "-1,2,3"):
        with pytest.raises(eigen_cache.EigenCacheError, match="three positive byte counts"):
            eigen_cache.configured_sizes({eigen_cache.ENV_VAR: bad})


def test_unloaded_library_is_reported(tmp_path: Path) -> None:
    with pytest.raises(eigen_cache.EigenCacheError, match="not loaded"):
        eigen_cache.pin(str(tmp_path / "absent.so"), eigen_cache.DEFAULT_SIZES)
