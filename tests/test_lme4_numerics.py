"""The two pins of r_server/lme4_numerics.py, checked in fresh study-like processes.

Each probe starts R through RBridge (which applies the pins as configured by the environment) and
then looks inside lme4 with the golden case ``slo_age_slope_by_doctor``'s data (study 1):

- Eigen's cache sizes: lme4's REML criterion at the golden's own theta. With the pinned 32 KiB L1
  size its pieces equal the golden's ``devcomp`` bit for bit; with 48 KiB (the L1 of the CPU these
  tests were written on) ldRX2 moves while CHOLMOD's ldL2 does not.
- CHOLMOD's ordering: the fill-reducing permutation lme4 gets for the model of the cases
  ``slo_nonconvergence_*``. Repaired to CHOLMOD's default strategy it is the same in every process
  (and the wrapper saw exactly the stub's write); forced to "try every method" it is another one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from r_server import lme4_numerics

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, sys
import rpy2.rinterface as ri
from r_server import lme4_numerics
from r_server.rbridge import RBridge

bridge = RBridge()
versions = bridge.versions()  # starts R, loads lme4, applies the pins as configured
r = lambda text: ri.baseenv["eval"](ri.parse(text))
r('''
D <- utils::read.csv(CSV)
lmod <- lme4::lFormula(BMI ~ age + Male + (1 + age | idDoctor), data = D)
devfun <- do.call(lme4::mkLmerDevfun, lmod)
theta <- c(2.862010082542275, 0.0403055395639463, 0)
fit <- lme4::mkMerMod(environment(devfun), list(par = theta, fval = devfun(theta), conv = 0, feval = 1,
                      message = ""), lmod$reTrms, fr = lmod$fr)
cmp <- fit@devcomp$cmp
lmod2 <- lme4::lFormula(BMI ~ trtGrp + Male + (1 | idDoctor) + (1 + trtGrp | idSurgery), data = D)
perm <- environment(do.call(lme4::mkLmerDevfun, lmod2))$pp$L()@perm
'''.replace("CSV", json.dumps(sys.argv[1])))
cmp = r("cmp")
lme4_path = r('getLoadedDLLs()[["lme4"]][["path"]]')[0]
print(json.dumps({"versions": versions, "cmp": dict(zip(cmp.names, [float(x).hex() for x in cmp])),
                  "perm": list(r("perm")), "analyze": lme4_numerics.analyze_counts(lme4_path)}))
"""


def _probe(csv: Path, **settings: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in (lme4_numerics.CACHE_ENV, lme4_numerics.NMETHODS_ENV)}
    env.update(settings)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(csv)], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def slo1(golden_dir: Path) -> Path:
    return golden_dir.parents[1] / "data" / "CLUSTER" / "CLUSTER_SLO1.csv"


@pytest.fixture(scope="module")
def golden_cmp(golden_dir: Path) -> dict[str, str]:
    case = json.loads((golden_dir / "slo_age_slope_by_doctor.json").read_text(encoding="utf-8"))
    cmp = case["result"]["data"]["output.summary"]["data"]["study1"]["data"]["devcomp"]["data"]["cmp"]
    return {name: float(x).hex() for name, x in zip(cmp["names"], cmp["data"], strict=True) if x != "NA"}


@pytest.fixture(scope="module")
def default_probes(slo1: Path) -> list[dict[str, Any]]:
    return [_probe(slo1) for _ in range(3)]


@pytest.mark.needs_r
def test_pinned_cache_sizes_give_the_golden_doubles(
    slo1: Path, golden_cmp: dict[str, str], default_probes: list[dict[str, Any]]
) -> None:
    pinned = default_probes[0]
    assert pinned["versions"]["eigen_cache_sizes"] == "32768,1048576,33554432"
    assert {k: v for k, v in pinned["cmp"].items() if k in golden_cmp} == golden_cmp

    wider = _probe(slo1, **{lme4_numerics.CACHE_ENV: "49152,1048576,33554432"})
    assert wider["versions"]["eigen_cache_sizes"] == "49152,1048576,33554432"
    assert wider["cmp"]["ldRX2"] != golden_cmp["ldRX2"]
    assert wider["cmp"]["ldL2"] == golden_cmp["ldL2"]  # CHOLMOD's part does not depend on Eigen's blocks


@pytest.mark.needs_r
def test_repaired_cholmod_strategy_gives_one_permutation(slo1: Path, default_probes: list[dict[str, Any]]) -> None:
    # three processes, each with lme4.so wherever address-space randomization put it
    perms = {tuple(p["perm"][:7]) for p in default_probes}
    assert perms == {(6, 5, 4, 3, 2, 0, 1)}
    for probe in default_probes:
        assert probe["versions"]["cholmod_nmethods"] == "0"
        repaired, passed = probe["analyze"]
        assert repaired == 2 and passed == 0  # both fits: the stub's write was found and undone

    every_method = _probe(slo1, **{lme4_numerics.NMETHODS_ENV: "9"})
    assert every_method["versions"]["cholmod_nmethods"] == "9"
    assert every_method["perm"][:7] == [0, 1, 2, 3, 4, 5, 6]

    host = _probe(slo1, **{lme4_numerics.NMETHODS_ENV: "host"})
    assert host["versions"]["cholmod_nmethods"] == "host"
    assert host["analyze"] == [0, 0]  # nothing routed through the wrapper


def test_configured_cache_sizes() -> None:
    assert lme4_numerics.configured_cache_sizes({}) == lme4_numerics.DEFAULT_CACHE_SIZES
    assert lme4_numerics.configured_cache_sizes({lme4_numerics.CACHE_ENV: "host"}) is None
    assert lme4_numerics.configured_cache_sizes({lme4_numerics.CACHE_ENV: " 16384,262144,8388608 "}) == (
        16384,
        262144,
        8388608,
    )
    for bad in ("32768", "a,b,c", "0,1,2", "1,2,3,4", "-1,2,3"):
        with pytest.raises(lme4_numerics.NumericsPinError, match="three positive byte counts"):
            lme4_numerics.configured_cache_sizes({lme4_numerics.CACHE_ENV: bad})


def test_configured_nmethods() -> None:
    assert lme4_numerics.configured_nmethods({}) == 0
    assert lme4_numerics.configured_nmethods({lme4_numerics.NMETHODS_ENV: "host"}) is None
    assert lme4_numerics.configured_nmethods({lme4_numerics.NMETHODS_ENV: "9"}) == 9
    for bad in ("10", "-1", "x", "1.5"):
        with pytest.raises(lme4_numerics.NumericsPinError, match="0..9"):
            lme4_numerics.configured_nmethods({lme4_numerics.NMETHODS_ENV: bad})


def test_pins_a_build_does_not_allow_are_reported_unless_asked_for(tmp_path: Path) -> None:
    absent = str(tmp_path / "lme4.so")
    pins = lme4_numerics.pin_all(absent, str(tmp_path / "libR.so"), environ={})
    assert (pins.eigen_cache_sizes, pins.cholmod_nmethods) == (None, None)
    described = pins.describe()
    assert described["eigen_cache_sizes"] == f"unavailable: {absent} is not loaded in this process"
    assert described["cholmod_nmethods"] == f"unavailable: {absent} is not loaded in this process"
    with pytest.raises(lme4_numerics.NumericsPinError, match="not loaded"):
        lme4_numerics.pin_all(absent, str(tmp_path / "libR.so"), environ={lme4_numerics.NMETHODS_ENV: "0"})


def test_unloaded_library_is_reported(tmp_path: Path) -> None:
    with pytest.raises(lme4_numerics.NumericsPinError, match="not loaded"):
        lme4_numerics.pin_cache_sizes(str(tmp_path / "absent.so"), lme4_numerics.DEFAULT_CACHE_SIZES)
    with pytest.raises(lme4_numerics.NumericsPinError, match="not loaded"):
        lme4_numerics.pin_cholmod_nmethods(str(tmp_path / "absent.so"), str(tmp_path / "libR.so"), 0)
