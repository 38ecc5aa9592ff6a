"""The golden cases of the passing list through study containers, through Opal's API (``--backend
docker``, OpalDriver) and Armadillo's (``--backend armadillo-docker``, ArmadilloDriver).

One runner invocation, as tests/test_parity.py runs the local backend: the runner groups the cases by
study set, so the containers are started once per set (3 sets for the 40 cases) and answer both APIs on
their port; each case logs in afresh through each API (R's serialization) and is compared with its golden.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parity import listed_failures, passing_cases, run_stripped_backends

pytestmark = [pytest.mark.needs_docker, pytest.mark.needs_r, pytest.mark.slow]

BACKENDS = ["docker", "armadillo-docker"]


def test_listed_cases_pass_through_containers(golden_dir: Path, tmp_path: Path) -> None:
    outputs = run_stripped_backends(golden_dir, passing_cases(), tmp_path, BACKENDS)
    failures = {backend: listed_failures(golden_dir, outputs[backend]) for backend in BACKENDS}
    assert failures == {backend: {} for backend in BACKENDS}, json.dumps(failures, indent=1)
