"""Parity over HTTP: the cases in ``parity_passing.txt`` pass through Opal's API (``--backend http``,
``pydsbase.OpalDriver``) and through Armadillo's (``--backend armadillo``, ``pydsbase.ArmadilloDriver``:
``POST /select-profile``, ``/load-table``, ``/execute``, ``/lastresult``), the same rule as the local
backend's parity test (``test_parity.py``).

One runner invocation: every study of every case is a ``python -m r_server`` process on loopback that
sees only its own table, started once per study set and answering both APIs on its port; each case
runs through each API in fresh sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parity import listed_failures, passing_cases, run_stripped_backends

BACKENDS = ["http", "armadillo"]


@pytest.mark.needs_r
@pytest.mark.slow
def test_listed_cases_pass_over_opals_and_armadillos_api(golden_dir: Path, tmp_path: Path) -> None:
    outputs = run_stripped_backends(golden_dir, passing_cases(), tmp_path, BACKENDS)
    failures = {backend: listed_failures(golden_dir, outputs[backend]) for backend in BACKENDS}
    assert failures == {backend: {} for backend in BACKENDS}, json.dumps(failures, indent=1)
