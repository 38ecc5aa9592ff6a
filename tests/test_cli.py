"""``pydsbase lmer``: logins from a datashield YAML config, the exact server call, every output form.

The studies here are a stand-in driver (``test_cli.GoldenDriver``, loaded by the config's ``driver``
field exactly as a real one) that answers ``lmerSLMADS2`` with the study summaries the real R
packages produced (golden files). ``test_cli_e2e.py`` runs the same command against real studies.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from datashield.interface import DSConnection, DSDriver, DSLoginInfo, DSResult, RSession

from pydsbase.cli import main, register_cli, run_lmer
from pydsbase.drivers.base import ReadySession
from pydsbase.rvalue import RAtomic, RList, RValue, from_node, loads

GOLDEN = (
    Path(os.environ.get("PYDSBASE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "golden" / "dsbaseclient"
)
CALLS: list[tuple[str, str, Any]] = []
FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"
LMER_CALL = 'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'


class _Done(DSResult):
    def __init__(self, value: Any) -> None:
        self.value = value

    def is_completed(self) -> bool:
        return True

    def fetch(self) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class GoldenConnection(DSConnection):
    """golden://CASE/STUDY[?drop=TERM]: answers lmerSLMADS2 with that study's golden summary."""

    def __init__(self, info: DSLoginInfo) -> None:
        self.name = info.name
        url = urlparse(info.url)
        self.case, self.study = url.netloc, int(url.path.strip("/"))
        self.drop = dict(p.split("=", 1) for p in url.query.split("&") if p).get("drop")

    def get_name(self) -> str:
        return self.name

    def has_session(self) -> bool:
        return True

    def start_session(self, asynchronous: bool = True) -> RSession:
        return ReadySession("fake")

    def is_session_started(self) -> bool:
        return True

    def get_session(self) -> RSession:
        return ReadySession("fake")

    def assign_table(self, symbol: str, table: str, *args: Any, **kwargs: Any) -> DSResult:
        CALLS.append((self.name, "assign_table", (symbol, table, args[0] if args else None)))
        return _Done(None)

    def aggregate(self, expr: str, asynchronous: bool = True) -> DSResult:
        CALLS.append((self.name, "aggregate", expr))
        data = json.loads((GOLDEN / f"{self.case}.json").read_text())
        value = from_node(data["result"])
        assert isinstance(value, RList)
        inner = value.get("output.summary")
        summary = (inner if isinstance(inner, RList) else value)[f"study{self.study}"]
        if self.drop and isinstance(summary, RList):
            summary = _without(summary, self.drop)
        return _Done(summary)

    def disconnect(self) -> None:
        pass

    def keep_alive(self) -> None:
        pass


def _without(summary: RList, term: str) -> RList:
    matrix = summary["coefficients"]
    assert isinstance(matrix, RAtomic) and matrix.dim and matrix.dimnames
    nrow, ncol = matrix.dim
    rows = list(matrix.dimnames[0] or [])
    keep = [i for i, name in enumerate(rows) if name != term]
    reduced = RAtomic(
        "double",
        [matrix.data[j * nrow + i] for j in range(ncol) for i in keep],
        dim=[len(keep), ncol],
        dimnames=[[rows[i] for i in keep], list(matrix.dimnames[1] or [])],
    )
    items: list[RValue | None] = [reduced if n == "coefficients" else v for n, v in summary.items()]
    return RList(items, names=summary.names, r_class=summary.r_class)


class GoldenDriver(DSDriver):
    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> DSConnection:
        return GoldenConnection(args)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def config(tmp_path: Path, case: str, studies: int = 3, drop: dict[int, str] | None = None) -> Path:
    servers = [
        {
            "name": f"cluster.int{i}",
            "url": f"golden://{case}/{i}" + (f"?drop={(drop or {})[i]}" if i in (drop or {}) else ""),
            "user": "analyst",
            "password": "not-a-secret",
            "driver": "test_cli.GoldenDriver",
        }
        for i in range(1, studies + 1)
    ]
    path = tmp_path / "studies.yml"
    path.write_text(yaml.safe_dump({"servers": servers}))
    return path


def run(argv: list[str]) -> tuple[int, str]:
    import argparse

    parser = argparse.ArgumentParser(prog="pydsbase")
    register_cli(parser.add_subparsers(dest="command", required=True))
    opts = parser.parse_args(argv)
    out = io.StringIO()
    code = run_lmer(opts, out=out)
    return code, out.getvalue()


def golden_pooled(case: str) -> RAtomic:
    value = from_node(json.loads((GOLDEN / f"{case}.json").read_text())["result"])
    assert isinstance(value, RList)
    pooled = value["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic)
    return pooled


def test_json_output_assigns_the_table_sends_the_exact_call_and_pools(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_bmi_ri")
    code, out = run(["lmer", "--config", str(cfg), "--table", "CLUSTER_INT", "--formula", FORMULA, "--output", "json"])
    assert code == 0
    assert CALLS == [
        *((f"cluster.int{i}", "assign_table", ("D", "CLUSTER_INT", None)) for i in (1, 2, 3)),
        *((f"cluster.int{i}", "aggregate", LMER_CALL) for i in (1, 2, 3)),
    ]
    data = json.loads(out)
    assert [s["name"] for s in data["studies"]] == ["cluster.int1", "cluster.int2", "cluster.int3"]
    pooled = golden_pooled("int_bmi_ri")
    for row in data["pooled"]:
        t = data["terms"].index(row["term"])
        m = ["ML", "REML", "FE"].index(row["method"])
        assert row["estimate"] == pooled.data[2 * m * 3 + t]
        assert row["se"] == pooled.data[(2 * m + 1) * 3 + t]
        assert row["k"] == 3
    assert data["exclusions"] == []


def test_table_output_shows_the_pooled_rows_of_one_method(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_bmi_ri")
    code, out = run(["lmer", "--config", str(cfg), "--data-name", "D", "--formula", FORMULA, "--method", "REML"])
    assert code == 0
    assert [c[1] for c in CALLS] == ["aggregate"] * 3  # no --table: nothing assigned
    lines = out.splitlines()
    assert lines[0] == f"SLMAResult({FORMULA}: 3 of 3 studies)"
    header = next(i for i, line in enumerate(lines) if line.startswith("term"))
    rows = lines[header + 1 : header + 4]
    pooled = golden_pooled("int_bmi_ri")
    for t, (row, term) in enumerate(zip(rows, ["(Intercept)", "trtGrp", "Male"], strict=True)):
        cells = row.split()
        assert cells[:2] == [term, "REML"]
        assert float(cells[2]) == float(f"{pooled.data[2 * 3 + t]:.6g}")
    assert len(lines) == header + 4  # only the REML rows


def test_dropped_coefficient_pools_the_rest_and_names_the_missing_one(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_interaction", drop={2: "trtGrp:Male"})
    formula = "BMI ~ trtGrp*Male + (1|idDoctor)"
    code, out = run(["lmer", "--config", str(cfg), "--table", "CLUSTER_INT", "--formula", formula, "--output", "json"])
    assert code == 0
    data = json.loads(out)
    assert data["exclusions"] == [
        {
            "study": "cluster.int2",
            "term": "trtGrp:Male",
            "kind": "missing_coefficient",
            "message": "cluster.int2 has no coefficient 'trtGrp:Male' (the term is not in this study's fitted model)",
        }
    ]
    ks = {(r["term"], r["method"]): r["k"] for r in data["pooled"]}
    assert ks[("trtGrp:Male", "REML")] == 2 and ks[("Male", "REML")] == 3
    pooled = golden_pooled("int_interaction")
    male_fe = next(r for r in data["pooled"] if r["term"] == "Male" and r["method"] == "FE")
    assert male_fe["estimate"] == pooled.data[4 * 4 + 2]  # unaffected terms: dsBaseClient's doubles


def test_r_json_output_is_the_r_compatible_list(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_no_metafor")
    code, out = run(
        ["lmer", "--config", str(cfg), "--table", "CLUSTER_INT", "--formula", FORMULA, "--output", "r-json"]
    )
    assert code == 0
    golden = from_node(json.loads((GOLDEN / "int_no_metafor.json").read_text())["result"])
    assert loads(out) == golden


def test_plot_output_writes_png_and_svg_per_term(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is an optional extra")
    cfg = config(tmp_path, "int_bmi_ri")
    plots = tmp_path / "plots"
    argv = ["lmer", "--config", str(cfg), "--table", "T", "--formula", FORMULA, "--output", "plot"]
    code, out = run([*argv, "--plot-dir", str(plots)])
    assert code == 0
    expected = [plots / f"forest_{t}.{f}" for t in ("Intercept", "trtGrp", "Male") for f in ("png", "svg")]
    assert out.split() == [str(p) for p in expected]
    assert all(p.is_file() for p in expected)
    assert 'id="study:cluster.int3"' in (plots / "forest_Male.svg").read_text()


def test_nothing_poolable_exits_1_with_the_reasons(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_no_random_effect")
    code, out = run(["lmer", "--config", str(cfg), "--table", "T", "--formula", "incid_rate ~ trtGrp + Male"])
    assert code == 1
    assert "cluster.int1: fit error: No random effects terms specified in formula" in out


def test_studies_subset_and_per_study_tables(tmp_path: Path) -> None:
    cfg = config(tmp_path, "int_bmi_ri")
    argv = ["lmer", "--config", str(cfg), "--formula", FORMULA, "--output", "json", "--studies", "cluster.int3"]
    code, out = run([*argv, "--table", "cluster.int3=OTHER", "--table", "cluster.int1=X"])
    assert code == 0
    assert CALLS == [("cluster.int3", "assign_table", ("D", "OTHER", None)), ("cluster.int3", "aggregate", LMER_CALL)]
    assert [s["name"] for s in json.loads(out)["studies"]] == ["cluster.int3"]


def test_bad_config_and_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"servers": [{"name": "s1", "url": "x"}]}))  # no user or token
    assert run(["lmer", "--config", str(bad), "--formula", FORMULA])[0] == 2
    assert "cannot read logins" in capsys.readouterr().err
    cfg = config(tmp_path, "int_bmi_ri")
    assert run(["lmer", "--config", str(cfg), "--formula", FORMULA, "--table", "nobody=T"])[0] == 2
    assert "no study named 'nobody'" in capsys.readouterr().err
    assert run(["lmer", "--config", str(cfg), "--formula", FORMULA, "--control-type", "xtol_rel"])[0] == 2
    assert "control_type needs a control_value" in capsys.readouterr().err
    assert CALLS == []


def test_main_accepts_the_subcommand_or_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, "int_single_study", studies=1)
    assert main(["--config", str(cfg), "--table", "T", "--formula", FORMULA, "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["k"] for r in data["pooled"]] == [1] * 9
