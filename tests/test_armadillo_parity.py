"""Parity over Armadillo's API: the cases in ``parity_passing.txt`` pass through ``--backend armadillo``.

One runner invocation, as ``test_http_parity.py``: every study of every case is a ``python -m r_server``
process on loopback, reached through ``pydsbase.ArmadilloDriver`` (``POST /select-profile``,
``/load-table``, ``/execute``, ``/lastresult``) instead of Opal's API. The same rule as the local backend's
parity test (``test_parity.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parity import listed_failures, passing_cases, run_stripped_cases


@pytest.mark.needs_r
@pytest.mark.slow
def test_listed_cases_pass_over_armadillos_api(golden_dir: Path, tmp_path: Path) -> None:
    outputs = run_stripped_cases(golden_dir, passing_cases(), tmp_path, backend="armadillo")
    failures = listed_failures(golden_dir, outputs)
    assert not failures, json.dumps(failures, indent=1)
