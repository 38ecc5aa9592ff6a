"""Parity over HTTP: the cases in ``parity_passing.txt`` pass through ``--backend http`` as well.

One runner invocation: every study of every case is a ``python -m r_server`` process on loopback
that sees only its own table. The same rule as the local backend's parity test (``test_parity.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_parity import passing_cases

from pydsbase.conformance.compare import compare_files
from pydsbase.conformance.runner import CASE_KEYS


@pytest.mark.needs_r
@pytest.mark.slow
def test_listed_cases_pass_over_http(golden_dir: Path, tmp_path: Path) -> None:
    cases, outputs = tmp_path / "cases", tmp_path / "out"
    cases.mkdir()
    listed = passing_cases()
    for case_id in listed:
        raw = json.loads((golden_dir / f"{case_id}.json").read_text(encoding="utf-8"))
        stripped = {k: raw[k] for k in CASE_KEYS if k in raw}
        stripped["setup"] = [{"call": step["call"]} for step in raw.get("setup") or []]
        (cases / f"{case_id}.json").write_text(json.dumps(stripped), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "pydsbase", "conformance", "run", *sorted(map(str, cases.glob("*.json"))),
         "--data-root", str(golden_dir.parents[2]), "--out-dir", str(outputs), "--backend", "http"],
        check=True, timeout=3600, stdout=subprocess.DEVNULL,
    )
    failures = {}
    for case_id in listed:
        output = outputs / f"{case_id}.json"
        if not output.is_file():
            failures[case_id] = ["no output written"]
            continue
        result = compare_files(golden_dir / f"{case_id}.json", output)
        if not result.ok:
            failures[case_id] = result.failures[:5]
    assert not failures, json.dumps(failures, indent=1)
