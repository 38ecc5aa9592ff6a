"""Golden results with the tables as Parquet: the CLUSTER tables written as Parquet from read.csv's own
doubles (bit for bit, the one-ulp cells included) give the golden answers of three cases, bit for bit,
through the local backend (``conformance compare``, as the parity suite)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_parity import run_stripped_cases

from pydsbase.conformance.compare import compare_files

CASES = ["int_bmi_ri", "int_bmi_ri_ml", "slo_age_slope_by_doctor"]


@pytest.mark.needs_r
@pytest.mark.slow
def test_golden_cases_with_parquet_tables(golden_dir: Path, tmp_path: Path) -> None:
    from r_server.rbridge import default_bridge

    bridge = default_bridge()
    source = golden_dir.parents[1] / "data" / "CLUSTER"
    target = tmp_path / "root" / "shared" / "data" / "CLUSTER"
    target.mkdir(parents=True)
    for csv in sorted(source.glob("*.csv")):
        pq.write_table(bridge.frame_to_arrow(bridge.read_csv(csv)), target / (csv.stem + ".parquet"))
    (tmp_path / "work").mkdir()
    outputs = run_stripped_cases(golden_dir, CASES, tmp_path / "work", data_root=tmp_path / "root",
                                 table_suffix=".parquet")
    for case_id in CASES:
        result = compare_files(golden_dir / f"{case_id}.json", outputs[case_id])
        assert result.ok, (case_id, result.failures[:5])
