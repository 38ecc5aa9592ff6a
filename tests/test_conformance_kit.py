"""The conformance kit: reference cases, generated suites, plug-ins and their grades.

One tiny suite is generated (and referenced through R) once per session, by the CLI in a separate
process, and every test that needs R reuses it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pydsbase.conformance.numbers import LRE_MAX, TIERS, grade, lre, read_table, to_hex, ulp_distance, write_table
from pydsbase.conformance.plugins import CommandImplementation, PythonImplementation
from pydsbase.conformance.score import LINE_KEYS, read_scores, score_suite, tiers, write_reports
from pydsbase.conformance.servers import LOOSE_DISCLOSURE, CommandServer, PythonServer

REPO = Path(__file__).resolve().parents[1]
TINY = ("ri_reml", "slope_uncorrelated", "unequal_coefficients", "refuse_binary_covariate", "refuse_saturation",
        "nonconv_check_conv_grad", "one_study")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    path = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, "-m", "pydsbase", "conformance", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, check=False)


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "suite"
    done = _cli("generate", "--seed", "19", "--out", str(out), "--cases", ",".join(TINY))
    assert done.returncode == 0, done.stderr
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "environment.json"}


# -- numbers (no R) -------------------------------------------------------------------------------


def test_ulp_and_lre_edges() -> None:
    assert ulp_distance(1.0, math.nextafter(1.0, 2.0)) == 1
    assert ulp_distance(-0.0, 0.0) == 0
    assert ulp_distance(math.nextafter(0.0, -1.0), math.nextafter(0.0, 1.0)) == 2
    assert grade(1.0, 1.0).tier == "identical" and grade(1.0, 1.0).lre == LRE_MAX
    assert grade(1.0, math.nextafter(1.0, 2.0)).tier == "ulp4"
    assert grade(1.0, 1.0 + 5e-11).tier == "lre10"
    assert grade(1.0, 1.0 + 5e-7).tier == "lre6"
    assert grade(1.0, 1.001).tier == "lre3"
    assert grade(1.0, 2.0).tier == "worse"
    # reference 0: LRE from the absolute error
    assert lre(0.0, 1e-8) == pytest.approx(8.0)
    assert grade(0.0, 1e-8).tier == "lre6"
    assert grade(0.0, 5e-324).tier == "ulp4"
    # not finite: the same value is exact, anything else has no correct digit
    assert grade(math.nan, math.nan).tier == "identical" and lre(math.nan, math.nan) == LRE_MAX
    assert grade(math.inf, math.inf).tier == "identical"
    assert grade(math.inf, -math.inf).tier == "worse" and lre(math.inf, 1.0) == 0.0
    assert grade(math.nan, 1.0).ulp is None and grade(1.0, math.nan).tier == "worse"


def test_table_round_trips_every_bit() -> None:
    numbers = {("s1", None, "x", "estimate"): 0.1, (None, "REML", "x", "tau2"): 0.0,
               ("s1", None, None, "sigma"): math.nan, (None, "FE", "(Intercept)", "QEp"): -math.inf}
    back = read_table(write_table(numbers))
    assert list(back) == list(numbers)
    assert [to_hex(v) for v in back.values()] == [to_hex(v) for v in numbers.values()]


def test_generation_is_byte_identical_across_processes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = _cli("generate", "--seed", "7", "--out", str(tmp_path / name), "--no-reference")
        assert done.returncode == 0, done.stderr
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first == second and len(first) > 40
    other = tmp_path / "c"
    assert _cli("generate", "--seed", "8", "--out", str(other), "--no-reference").returncode == 0
    assert _files(other)["ri_reml/data/study1.csv"] != first["ri_reml/data/study1.csv"]


def test_every_listed_feature_has_a_case() -> None:
    from pydsbase.conformance.generate import CASES, FEATURES

    covered = {f for recipe in CASES.values() for f in recipe.features}
    assert covered == set(FEATURES)


# -- with R: one tiny suite -------------------------------------------------------------------------


@pytest.mark.needs_r
@pytest.mark.slow
def test_reference_case_contents(tiny_suite: Path) -> None:
    case = tiny_suite / "slope_uncorrelated"
    table = read_table((case / "reference.tsv").read_text(encoding="utf-8"))
    keys = {(k[2], k[3]) for k in table if k[0] == "study1"}
    assert {("g:(Intercept)", "variance_component"), ("g:x1", "variance_component"),
            ("Residual", "variance_component"), (None, "REMLcrit"), (None, "Nvalid")} <= keys
    pooled = {k[3] for k in table if k[0] is None and k[1] == "REML"}
    assert pooled >= {"b", "se", "zval", "pval", "ci.lb", "ci.ub", "tau2", "se.tau2", "QE", "QEp", "I2", "H2", "k"}
    env = json.loads((case / "environment.json").read_text(encoding="utf-8"))
    assert {"R", "lme4", "Matrix", "nloptr", "BLAS", "eigen_cache_sizes"} <= set(env["study_server"])
    structure = json.loads((tiny_suite / "refuse_binary_covariate" / "structure.json").read_text(encoding="utf-8"))
    assert structure["studies"]["study2"]["status"] == "disclosure"
    unequal = json.loads((tiny_suite / "unequal_coefficients" / "result.json").read_text(encoding="utf-8"))
    assert unequal["outcome"] == "error"  # dsBaseClient stops; the table still pools by term name
    unequal_table = read_table((tiny_suite / "unequal_coefficients" / "reference.tsv").read_text(encoding="utf-8"))
    assert unequal_table[(None, "REML", "x3", "k")] == 2.0
    # the pooled reference numbers are the ones ds.lmerSLMA returned (metafor's b and se, REML)
    result = json.loads((tiny_suite / "ri_reml" / "result.json").read_text(encoding="utf-8"))
    slma = result["result"]["data"]["SLMA.pooled.ests.matrix"]
    ri = read_table((tiny_suite / "ri_reml" / "reference.tsv").read_text(encoding="utf-8"))
    n = slma["dim"][0]
    for i, term in enumerate(slma["dimnames"][0]):
        assert to_hex(float(slma["data"][n * 2 + i])) == to_hex(ri[(None, "REML", term, "b")])  # pooled.REML
        assert to_hex(float(slma["data"][n * 3 + i])) == to_hex(ri[(None, "REML", term, "se")])  # se.REML


@pytest.mark.needs_r
@pytest.mark.slow
def test_reference_is_byte_identical_in_another_process(tiny_suite: Path, tmp_path: Path) -> None:
    done = _cli("generate", "--seed", "19", "--out", str(tmp_path), "--cases", "ri_reml")
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "ri_reml") == _files(tiny_suite / "ri_reml")


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_copy_of_the_reference_is_identical_everywhere(tiny_suite: Path, tmp_path: Path) -> None:
    done = _cli("score", "--impl", "kit_plugins:Copy", "--suite", str(tiny_suite), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    scores = read_scores(tmp_path / "scores.jsonl")
    assert scores and all(list(s) == list(LINE_KEYS) for s in scores)
    assert {s["tier"] for s in scores} == {"identical"}
    assert {s["case"] for s in scores} == set(TINY)
    assert "<script" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'failures="0"' in (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "coverage" in done.stdout


@pytest.mark.needs_r
@pytest.mark.slow
def test_one_ulp_on_every_estimate_is_ulp4_there(tiny_suite: Path) -> None:
    lines = score_suite(tiny_suite, PythonImplementation("kit_plugins:OneUlp"))
    estimates = [x for x in lines if x.study is not None and x.quantity == "estimate"]
    assert estimates and {(x.tier, x.ulp) for x in estimates} == {("ulp4", 1)}
    others = [x for x in lines if x.study is not None and x.quantity != "estimate"]
    assert {x.tier for x in others} == {"identical"}


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_dropped_term_is_structure(tiny_suite: Path) -> None:
    lines = score_suite(tiny_suite / "ri_reml", PythonImplementation("kit_plugins:DropLastTerm"))
    dropped = [x for x in lines if x.term == "x2"]
    assert {x.tier for x in dropped if x.study is not None} == {"structure"}
    assert {x.tier for x in dropped if x.study is None} == {"structure"}  # not pooled at all
    assert {x.tier for x in lines if x.term == "x1"} == {"identical"}


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_raising_plug_in_never_stops_the_run(tiny_suite: Path, tmp_path: Path) -> None:
    lines = score_suite(tiny_suite, PythonImplementation("kit_plugins:Raises"))
    ri = [x for x in lines if x.case == "ri_reml"]
    assert {x.tier for x in ri if x.study == "study1"} == {"error"}
    assert {x.tier for x in ri if x.study == "study2"} == {"unsupported"}
    assert {x.tier for x in ri if x.study == "study3"} == {"identical"}
    assert {x.tier for x in ri if x.study is None} == {"error"}  # its pool raised
    assert {x.case for x in lines} == set(TINY)
    paths = write_reports(lines, tmp_path, "raises")
    assert tiers(lines)["error"] == sum(1 for s in read_scores(paths["scores"]) if s["tier"] == "error")


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_command_plug_in(tiny_suite: Path, tmp_path: Path) -> None:
    script = tmp_path / "impl.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "import kit_plugins\n"
        "task = json.load(open(sys.argv[1]))\n"
        "if task['task'] == 'fit_study':\n"
        "    answer = kit_plugins.Copy.fit_study(None, task['spec'])\n"
        "else:\n"
        "    answer = {'unsupported': 'no pooling'}\n"
        "json.dump(answer, open(sys.argv[2], 'w'))\n",
        encoding="utf-8",
    )
    impl = CommandImplementation(f"{sys.executable} {script}")
    lines = score_suite(tiny_suite / "one_study", impl)
    assert lines and {x.tier for x in lines} == {"identical"}


# -- lme4's convergence --------------------------------------------------------------------------------


def _structure(case: Path) -> dict[str, dict[str, object]]:
    studies: dict[str, dict[str, object]] = json.loads((case / "structure.json").read_text(encoding="utf-8"))["studies"]
    return studies


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_plug_in_that_lies_about_convergence_is_worse_there(tiny_suite: Path) -> None:
    case = tiny_suite / "nonconv_check_conv_grad"
    recorded = _structure(case)
    failed = {s for s, v in recorded.items() if v["converged"] is False}
    warned = {s for s, v in recorded.items() if v["convergence"]}
    assert failed and warned  # lme4 warned in this case: the lie shows
    lines = score_suite(case, PythonImplementation("kit_plugins:ClaimsConvergence"))
    converged = {x.study: x for x in lines if x.quantity == "converged"}
    assert set(converged) == set(recorded)
    assert {s for s, x in converged.items() if x.tier == "worse"} == failed
    assert all((x.reference, x.value) == (0.0, 1.0) for s, x in converged.items() if s in failed)
    messages = {x.study: x for x in lines if x.quantity == "messages"}
    assert {s for s, x in messages.items() if x.tier == "worse"} == warned
    assert {x.tier for x in lines if x.quantity not in ("converged", "messages")} == {"identical"}
    # the truth is identical; silence is not_reported
    honest = score_suite(case, PythonImplementation("kit_plugins:Copy"))
    assert {x.tier for x in honest} == {"identical"}
    assert {x.quantity for x in honest} >= {"converged", "messages"}
    silent = score_suite(case, PythonImplementation("kit_plugins:Silent"))
    assert {x.tier for x in silent if x.quantity in ("converged", "messages")} == {"not_reported"}


# -- server-level plug-ins: one stand-up per server kind ------------------------------------------------


def _refused(suite: Path) -> set[tuple[str, str]]:
    return {(case.name, study) for case in (suite / c for c in TINY)
            for study, v in _structure(case).items() if v["status"] not in ("fitted", "not_selected")}


@pytest.mark.needs_r
@pytest.mark.slow
@pytest.mark.parametrize("api", ["opal", "armadillo"])
def test_our_own_server_is_identical_everywhere_refusals_included(tiny_suite: Path, api: str) -> None:
    refused = _refused(tiny_suite)
    assert {c for c, _ in refused} == {"refuse_binary_covariate", "refuse_saturation"}
    lines = score_suite(tiny_suite, PythonServer("pydsbase.conformance.servers:PYDSBASE", api))
    assert {x.tier for x in lines} == {"identical"}
    assert {x.case for x in lines} == set(TINY)
    assert {(x.case, x.study) for x in lines if x.quantity == "refusal"} == refused
    assert {x.quantity for x in lines} >= {"estimate", "se", "variance_component", "converged", "messages", "b"}


@pytest.mark.needs_r
@pytest.mark.slow
def test_a_leaky_server_is_structure_on_exactly_the_refused_studies(tiny_suite: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(LOOSE_DISCLOSURE), encoding="utf-8")
    command = f"{sys.executable} -m pydsbase studies up --engine process --disclosure {loose} --studies-json"
    done = _cli("score", "--impl-server-cmd", command, "--impl-server-api", "armadillo", "--suite", str(tiny_suite),
                "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    scores = read_scores(tmp_path / "report" / "scores.jsonl")
    assert scores and all(list(s) == list(LINE_KEYS) for s in scores)
    assert {s["tier"] for s in scores} <= set(TIERS)
    refused = _refused(tiny_suite)
    study_lines = [s for s in scores if s["study"] is not None]
    assert {(s["case"], s["study"]) for s in study_lines if s["tier"] != "identical"} == refused
    assert {s["tier"] for s in study_lines if s["tier"] != "identical"} == {"structure"}
    refusals = {(s["case"], s["study"]): (s["reference"], s["value"]) for s in scores if s["quantity"] == "refusal"}
    assert set(refusals) == refused
    assert refusals[("refuse_binary_covariate", "study2")] == (1.0, 0.0)  # it answered where dsBase refuses
    # the leak reaches the pooled numbers of those cases only (the client pools what the server answered)
    pooled = {s["case"] for s in scores if s["study"] is None and s["tier"] != "identical"}
    assert pooled <= {c for c, _ in refused}
    assert 'failures="0"' not in (tmp_path / "report" / "junit.xml").read_text(encoding="utf-8").split(
        'name="refuse_binary_covariate"')[1].split(">")[0]


@pytest.mark.needs_r
def test_a_server_that_never_starts_is_error_everywhere(tiny_suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    impl = CommandServer(f"{sys.executable} -c 'import sys; print(\"no logins\"); sys.exit(3)'")
    lines = score_suite(tiny_suite / "ri_reml", impl)
    assert lines and {x.tier for x in lines} == {"error"}
    assert "exited (3) before giving every login" in capsys.readouterr().err
