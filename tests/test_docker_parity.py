"""The golden cases of the passing list through study containers (``--backend docker``) with OpalDriver.

One runner invocation, as tests/test_parity.py runs the local backend: the runner groups the cases by
study set, so the containers are started once per set (3 sets for the 40 cases), each case logging in
afresh over HTTP (Opal's API, R's serialization) and compared with its golden.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parity import listed_failures, passing_cases, run_stripped_cases

pytestmark = [pytest.mark.needs_docker, pytest.mark.needs_r, pytest.mark.slow]


def test_listed_cases_pass_through_containers(golden_dir: Path, tmp_path: Path) -> None:
    outputs = run_stripped_cases(golden_dir, passing_cases(), tmp_path, backend="docker")
    failures = listed_failures(golden_dir, outputs)
    assert not failures, json.dumps(failures, indent=1)
