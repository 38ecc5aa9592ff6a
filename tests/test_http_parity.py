"""Parity over HTTP: the cases in ``parity_passing.txt`` pass through ``--backend http`` as well.

One runner invocation: every study of every case is a ``python -m r_server`` process on loopback
that sees only its own table. The same rule as the local backend's parity test (``test_parity.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parity import listed_failures, passing_cases, run_stripped_cases


@pytest.mark.needs_r
@pytest.mark.slow
def test_listed_cases_pass_over_http(golden_dir: Path, tmp_path: Path) -> None:
    outputs = run_stripped_cases(golden_dir, passing_cases(), tmp_path, backend="http")
    failures = listed_failures(golden_dir, outputs)
    assert not failures, json.dumps(failures, indent=1)
