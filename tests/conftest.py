"""Shared test set-up: engine detection, and the rule that a declared engine must be present.

A test marked ``needs_r``, ``needs_docker`` or ``needs_compiled`` (the decoder's mypyc build, setup.py)
skips (saying why) when the engine is absent, unless the run declares it present with
PYDSBASE_REQUIRE_R=1 / PYDSBASE_REQUIRE_DOCKER=1 / PYDSBASE_REQUIRE_COMPILED=1 (as CI does): then the
absence fails the test.

No test decides on how fast something ran (issue 14): the Hypothesis profile below has no deadline
and no ``too_slow`` health check, so a loaded machine changes how long a run takes, never its result.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("pydsbase", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pydsbase")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PYDSBASE_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden" / "dsbaseclient"
DATA = SHARED / "data"


@functools.cache
def r_missing_reason() -> str | None:
    """Why R with lme4 and metafor cannot be used here, or None when it can."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        [rscript, "-e", "library(lme4); library(metafor)"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        return f"R lacks lme4/metafor: {probe.stderr.strip()[-200:]}"
    try:
        import rpy2  # noqa: F401
    except ImportError:
        return "rpy2 is not installed"
    return None


@functools.cache
def docker_missing_reason() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed"
    try:
        docker.from_env().ping()
    except Exception as exc:  # any failure to reach the engine means: no engine here
        return f"no Docker engine reachable: {exc}"
    return None


# Seconds each of the longest test files took in a quiet fresh-clone CI run (`--durations=0`, summed per
# file, 2026-12-07). Only the order of files uses them: refresh when a file's cost changes a lot.
FILE_SECONDS = {
    "contract/test_contract.py": 196, "test_conformance_kit.py": 104, "test_docker_parity.py": 89,
    "test_parity_plain_r.py": 80, "test_docker.py": 73, "test_tutorial.py": 73, "test_parity.py": 72,
    "test_meta_vs_r.py": 70, "test_reliability_faults.py": 65, "test_cli_e2e.py": 60, "test_http_parity.py": 58,
    "test_wire_scrub.py": 50, "test_lme4_numerics.py": 42, "test_tables_golden.py": 40,
}
SLOW_SECONDS = 30  # a file holding a `slow` test that is not listed above


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (order within a file kept): scripts/test.sh hands whole files to two workers
    in collection order, so the long ones start early and the workers finish together."""
    tests = Path(__file__).resolve().parent
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}

    def seconds(path: Path) -> int:
        known = FILE_SECONDS.get(path.resolve().relative_to(tests).as_posix())
        return known if known is not None else SLOW_SECONDS if path in slow_files else 0

    cost = {path: seconds(path) for path in {item.path for item in items}}
    items.sort(key=lambda item: -cost[item.path])


def compiled_decoder_missing_reason() -> str | None:
    """Why the decoder imported here is not setup.py's mypyc build of pydsbase/rserialize.py, or None."""
    from pydsbase import rserialize

    if Path(rserialize.__file__).suffix != ".so":
        return "pydsbase.rserialize is the pure-Python source (built with PYDSBASE_COMPILE=0 or without a C compiler)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """A compiled decoder older than its source would test code nobody reads: refuse to run. mypyc writes
    the module's code into ``rserialize__mypyc.*.so`` and a shim as ``rserialize.*.so`` that a rebuild may
    leave as it was: the newest of them is the build's time."""
    from pydsbase import rserialize

    built = Path(rserialize.__file__)
    source = built.with_name("rserialize.py")
    if compiled_decoder_missing_reason() is None:
        newest = max(path.stat().st_mtime for path in built.parent.glob("rserialize*.so"))
        if source.stat().st_mtime > newest:
            raise pytest.UsageError(f"the compiled decoder (rserialize*.so) is older than {source.name}: rebuild it"
                                    " (bash scripts/setup.sh)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, reason_of, env in (
        ("needs_r", r_missing_reason, "PYDSBASE_REQUIRE_R"),
        ("needs_docker", docker_missing_reason, "PYDSBASE_REQUIRE_DOCKER"),
        ("needs_compiled", compiled_decoder_missing_reason, "PYDSBASE_REQUIRE_COMPILED"),
    ):
        if item.get_closest_marker(marker) is None:
            continue
        reason = reason_of()
        if reason is None:
            continue
        if os.environ.get(env) == "1":
            pytest.fail(f"{env}=1 but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.fail(f"golden cases not found at {GOLDEN}", pytrace=False)
    return GOLDEN


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data not found at {DATA}", pytrace=False)
    return DATA
