"""The DataSHIELD contract: the same operations give the same answers on every backend.

Each test runs once per backend listed in ``backends.py`` (local, http, armadillo, docker). The
expected values come from the CSV files and the golden outputs of the real R packages, never from
another backend, so a backend cannot pass by agreeing with a wrong one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from backends import Federation

import pydsbase
from pydsbase.errors import SessionCallError, StudyCallError
from pydsbase.rvalue import RAtomic, from_node, to_node

VARIABLES = ["incid_rate", "trtGrp", "Male", "idDoctor", "BMI", "idSurgery"]
LMER = 'lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidDoctorzzz, NULL, NULL, "D", TRUE, NULL, NULL, NULL, 0)'


def _header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def _golden(golden_dir: Path, case: str) -> dict[str, Any]:
    return dict(json.loads((golden_dir / f"{case}.json").read_text(encoding="utf-8")))


def _canonical(node: Any) -> Any:
    """A node normalised through the R-value model (so key order and optional keys cannot differ)."""
    return to_node(from_node(node))


def _study_errors(failed: SessionCallError) -> dict[str, tuple[str, str]]:
    out = {}
    for study, err in failed.errors.items():
        assert isinstance(err, StudyCallError), err
        out[study] = (err.kind, str(err))
    return out


def test_each_study_serves_only_its_own_table(federation: Federation) -> None:
    with federation.session() as session:
        for conn in session.conns:
            name = conn.get_name()
            table = federation.csv[name].stem
            listed = conn.list_tables()  # Opal's API: PROJECT.TABLE, a top-level table under the study's project;
            # Armadillo's: PROJECT/FOLDER/TABLE, a top-level table by its name
            assert len(listed) == 1 and listed[0].rpartition(".")[2] == table and conn.has_table(table)
            assert conn.list_table_variables(table) == _header(federation.csv[name])


def test_assign_table_and_colnames(federation: Federation) -> None:
    with federation.session() as session:
        session.assign_table("D", table="", tables={s: p.stem for s, p in federation.csv.items()},
                             variables=VARIABLES)
        answer = session.aggregate('colnamesDS("D")')
        assert list(answer) == list(federation.csv)
        for value in answer.values():
            assert isinstance(value, RAtomic) and value.type == "character"
            assert value.data == VARIABLES
        session.assign_table("E", tables={s: p.stem for s, p in federation.csv.items()})
        full = session.aggregate('colnamesDS("E")')
        assert {s: v.data for s, v in full.items()} == {s: _header(p) for s, p in federation.csv.items()}
        assert session.ls() == {s: ["D", "E"] for s in federation.csv}
        session.rm("E")
        assert session.ls() == {s: ["D"] for s in federation.csv}


def test_lmer_study_outputs_equal_the_golden_ones(federation: Federation, golden_dir: Path) -> None:
    golden = _golden(golden_dir, "int_bmi_ri")["result"]["data"]["output.summary"]["data"]
    with federation.session() as session:
        session.assign_table("D", tables={s: p.stem for s, p in federation.csv.items()}, variables=VARIABLES)
        answer = session.aggregate(LMER)
    for i, study in enumerate(federation.csv, start=1):
        assert to_node(answer[study]) == _canonical(golden[f"study{i}"]), study


def test_ds_lmer_slma_equals_the_golden_result(federation: Federation, golden_dir: Path) -> None:
    case = _golden(golden_dir, "int_bmi_weights_ones")  # setup: ds.make, then weights through the formula
    with federation.session() as session:
        session.assign_table("D", tables={s: p.stem for s, p in federation.csv.items()},
                             variables=case["login"]["variables"])
        pydsbase.ds_make(session, to_assign="D$BMI/D$BMI", newobj="some.weights")
        result = pydsbase.ds_lmer_slma(session, formula="BMI ~ trtGrp + Male + (1|idDoctor)",
                                       weights="some.weights", data_name="D")
    assert to_node(result) == _canonical(case["result"])


def test_r_errors_reach_the_client_with_rs_message(federation: Federation) -> None:
    with federation.session() as session:
        session.assign_table("D", tables={s: p.stem for s, p in federation.csv.items()}, variables=VARIABLES)
        with pytest.raises(SessionCallError) as failed:
            session.aggregate(LMER.replace("BMI ~", "diab_dis ~"))
        errors = _study_errors(failed.value)
        assert set(errors) == set(federation.csv)
        assert {kind for kind, _ in errors.values()} == {"r_error"}
        assert all("diab_dis" in message for _, message in errors.values()), errors
        # the session is still usable afterwards
        assert session.aggregate('colnamesDS("D")')[next(iter(federation.csv))].data == VARIABLES


def test_calls_outside_the_allow_list_are_rejected_and_run_nothing(federation: Federation,
                                                                     tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    with federation.session() as session:
        session.assign_table("D", tables={s: p.stem for s, p in federation.csv.items()})
        for attack in (f'system("touch {canary}")', f'file.create("{canary}")',
                       f'colnamesDS(system("touch {canary}"))'):
            with pytest.raises(SessionCallError) as failed:
                session.aggregate(attack)
            assert {kind for kind, _ in _study_errors(failed.value).values()} == {"rejected"}, attack
            with pytest.raises(SessionCallError) as failed:
                session.assign_expr("x", attack)
            assert {kind for kind, _ in _study_errors(failed.value).values()} == {"rejected"}, attack
        assert session.ls() == {s: ["D"] for s in federation.csv}
    assert not canary.exists()


def test_sessions_are_isolated(federation: Federation) -> None:
    with federation.session() as first, federation.session() as second:
        first.assign_table("secret", tables={s: p.stem for s, p in federation.csv.items()})
        assert second.ls() == {s: [] for s in federation.csv}
        with pytest.raises(SessionCallError) as failed:
            second.aggregate('colnamesDS("secret")')
        assert set(_study_errors(failed.value)) == set(federation.csv)
        assert first.ls() == {s: ["secret"] for s in federation.csv}
