"""Parity with dsBaseClient 6.3.0 on the public golden cases, through the conformance runner.

Every golden case is copied with only the keys the runner may read, all cases run in ONE runner
invocation (R starts once per study process, not once per test), then each output is compared with
its golden. ``tests/parity_passing.txt`` lists the cases that must pass; it only grows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pydsbase.conformance.compare import compare_files
from pydsbase.conformance.runner import CASE_KEYS

PASSING = Path(__file__).with_name("parity_passing.txt")


def passing_cases() -> list[str]:
    return [line.strip() for line in PASSING.read_text().splitlines() if line.strip() and not line.startswith("#")]


def run_stripped_cases(golden_dir: Path, case_ids: list[str], work: Path, backend: str = "local",
                       data_root: Path | None = None, table_suffix: str = ".csv") -> dict[str, Path]:
    """Copy the cases with only the keys the runner may read, run them all in ONE runner invocation
    with ``backend``, and return the outputs written, by case id. ``data_root`` (default: the one
    holding ``shared/``) and ``table_suffix`` (``.parquet``: the cases' tables are those files) let a
    test stand the studies on other copies of the tables."""
    return run_stripped_backends(golden_dir, case_ids, work, [backend], data_root, table_suffix)[backend]


def run_stripped_backends(golden_dir: Path, case_ids: list[str], work: Path, backends: list[str],
                          data_root: Path | None = None, table_suffix: str = ".csv") -> dict[str, dict[str, Path]]:
    """:func:`run_stripped_cases` through several backends of one engine in ONE runner invocation (the
    studies start once per study set and answer each backend's API): backend -> case id -> output."""
    cases, outputs = work / "cases", work / "out"
    cases.mkdir()
    for case_id in case_ids:
        raw = json.loads((golden_dir / f"{case_id}.json").read_text(encoding="utf-8"))
        stripped = {k: raw[k] for k in CASE_KEYS if k in raw}
        stripped["setup"] = [{"call": step["call"]} for step in raw.get("setup") or []]
        for study in stripped["studies"]:
            study["csv"] = str(Path(study["csv"]).with_suffix(table_suffix))
        (cases / f"{case_id}.json").write_text(json.dumps(stripped), encoding="utf-8")
    if data_root is None:
        data_root = golden_dir.parents[2]  # the directory that contains shared/
    subprocess.run(
        [sys.executable, "-m", "pydsbase", "conformance", "run", *sorted(map(str, cases.glob("*.json"))),
         "--data-root", str(data_root), "--out-dir", str(outputs),
         *[arg for backend in backends for arg in ("--backend", backend)]],
        check=True, timeout=3600, stdout=subprocess.DEVNULL,
    )
    folders = {backend: outputs / backend if len(backends) > 1 else outputs for backend in backends}
    return {backend: {path.stem: path for path in folder.glob("*.json")} for backend, folder in folders.items()}


def listed_failures(golden_dir: Path, outputs: dict[str, Path]) -> dict[str, list[str]]:
    """``conformance compare``'s failures for every case of the passing list (none: all pass)."""
    failures = {}
    for case_id in passing_cases():
        output = outputs.get(case_id)
        if output is None:
            failures[case_id] = ["no output written"]
            continue
        result = compare_files(golden_dir / f"{case_id}.json", output)
        if not result.ok:
            failures[case_id] = result.failures[:5]
    return failures


@pytest.fixture(scope="module")
def parity_outputs(golden_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    every_case = [path.stem for path in sorted(golden_dir.glob("*.json"))]
    return run_stripped_cases(golden_dir, every_case, tmp_path_factory.mktemp("parity"))


@pytest.mark.needs_r
@pytest.mark.slow
def test_listed_cases_pass(golden_dir: Path, parity_outputs: dict[str, Path]) -> None:
    failures = listed_failures(golden_dir, parity_outputs)
    assert not failures, json.dumps(failures, indent=1)


def test_passing_list_names_only_golden_cases(golden_dir: Path) -> None:
    listed = passing_cases()
    assert len(listed) == len(set(listed))
    assert all((golden_dir / f"{case_id}.json").is_file() for case_id in listed)


def test_cases_with_the_same_studies_share_one_stand_up(golden_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """run_cases stands studies up once per distinct study set, runs every case through each backend of
    that engine on it, and writes every output."""
    import contextlib
    from types import SimpleNamespace

    from pydsbase.conformance import runner

    paths = sorted(golden_dir.glob("*.json"))
    stood_up: list[tuple[str, ...]] = []

    @contextlib.contextmanager
    def fake_studies(case, data_root, backend="local"):  # type: ignore[no-untyped-def]
        stood_up.append(tuple(study.table for study in case.studies))
        logins = [f"opal-{study.server}" for study in case.studies]
        yield SimpleNamespace(engine="process", api="opal", logins=logins,
                              logins_for=lambda api: [f"{api}-{study.server}" for study in case.studies])

    seen: dict[tuple[str, str], list[str]] = {}

    def fake_run(case, data_root, backend_name="local", logins=None):  # type: ignore[no-untyped-def]
        seen[backend_name, case.case_id] = list(logins)
        return {"case_id": case.case_id, "outcome": "returned"}

    monkeypatch.setattr(runner, "case_studies", fake_studies)
    monkeypatch.setattr(runner, "run_case", fake_run)
    written = runner.run_cases(paths, golden_dir.parents[2], tmp_path, ["http", "armadillo"])
    studies = {tuple(s.table for s in runner.read_case(p).studies) for p in paths}
    assert sorted(stood_up) == sorted(studies) and len(stood_up) < len(paths)
    assert len(written) == 2 * len(paths)
    for path in paths:
        case = runner.read_case(path)
        for backend, api in (("http", "opal"), ("armadillo", "armadillo")):
            assert seen[backend, case.case_id] == [f"{api}-{s.server}" for s in case.studies]
            assert json.loads((tmp_path / backend / f"{case.case_id}.json").read_text())["case_id"] == case.case_id
    with pytest.raises(ValueError, match="one engine"):
        runner.run_cases(paths, golden_dir.parents[2], tmp_path, ["local", "armadillo"])
