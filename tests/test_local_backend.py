"""The local backend: one process per study, each seeing only its own folder, failures in fetch()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from datashield import DSLoginBuilder

from pydsbase.drivers.local import LocalConnection, LocalDriver, reuse_workers
from pydsbase.errors import SessionCallError, StudyCallError
from pydsbase.rvalue import RAtomic
from pydsbase.session import Session

pytestmark = pytest.mark.needs_r


@pytest.fixture()
def two_studies(tmp_path: Path, data_dir: Path) -> list:
    builder = DSLoginBuilder()
    for i in (1, 2):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        shutil.copy(data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv", folder / f"CLUSTER_INT{i}.csv")
        builder.add(f"study{i}", url=f"local://{folder}", user="analyst", password="x",
                    driver="pydsbase.LocalDriver")
    return builder.build()


def test_each_study_is_its_own_process_and_sees_only_its_folder(two_studies: list) -> None:
    with Session(two_studies) as session:
        conns = session.conns
        assert conns is not None and all(isinstance(c, LocalConnection) for c in conns)
        pids = {c.pid for c in conns}  # type: ignore[attr-defined]
        assert len(pids) == 2
        assert session.tables() == {"study1": ["CLUSTER_INT1"], "study2": ["CLUSTER_INT2"]}
        session.assign_table("D", table="CLUSTER_INT1", conn_names=["study1"])
        with pytest.raises(SessionCallError) as info:
            session.assign_table("D", table="CLUSTER_INT1", conn_names=["study2"])
        assert list(info.value.errors) == ["study2"]
        session.assign_table("D", table="CLUSTER_INT2", conn_names=["study2"])
        cols = session.aggregate('colnamesDS("D")')
        assert list(cols) == ["study1", "study2"]
        first = cols["study1"]
        assert isinstance(first, RAtomic) and first.data[:3] == ["idPatient", "idSurgery", "trtGrp"]


def test_result_reports_failure_in_fetch_not_in_is_completed(two_studies: list) -> None:
    conn = LocalDriver.new_connection(two_studies[0])
    try:
        conn.start_session()
        result = conn.aggregate('colnamesDS("nothere")')
        assert result.wait(60)
        assert result.is_completed() is True
        with pytest.raises(StudyCallError, match="object 'nothere' not found"):
            result.fetch()
    finally:
        conn.disconnect()
    assert conn._process.proc.poll() is not None


def test_reused_worker_gives_the_next_login_a_fresh_session_and_stops_on_exit(two_studies: list) -> None:
    with reuse_workers():
        first = LocalDriver.new_connection(two_studies[0])
        first.start_session()
        first.assign_table("D", "CLUSTER_INT1").fetch()
        assert first.list_symbols() == ["D"]
        pid, process = first.pid, first._process
        first.disconnect()
        assert process.proc.poll() is None  # kept, its R session closed
        second = LocalDriver.new_connection(two_studies[0])
        assert second.pid == pid
        second.start_session()
        assert second.list_symbols() == []  # nothing of the first session is left
        other = LocalDriver.new_connection(two_studies[1])  # another study: its own process
        assert other.pid != pid
        second.disconnect()
        other.disconnect()
        other._process.proc.kill()  # an idle process that dies is released, not handed to the next login
        other._process.proc.wait()
        fourth = LocalDriver.new_connection(two_studies[1])
        assert fourth.pid != other.pid and other._process.proc.stdout.closed
        fourth.disconnect()
    assert process.proc.poll() is not None and fourth._process.proc.poll() is not None
    third = LocalDriver.new_connection(two_studies[0])  # reuse is off again
    try:
        assert third.pid != pid
    finally:
        third.disconnect()
    assert third._process.proc.poll() is not None


def test_bad_url_is_refused() -> None:
    info = DSLoginBuilder().add("s", url="local://relative/path", user="u", password="p").build()[0]
    with pytest.raises(ValueError, match="local:///absolute/folder"):
        LocalDriver.new_connection(info)


def test_lmer_progress_bar_ticks_once_per_study_and_keeps_the_value(
    two_studies: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydsbase import ds_lmer_slma
    from pydsbase.progress import StudyProgress

    ticks: list[tuple[str, bool]] = []
    monkeypatch.setattr(StudyProgress, "done", lambda self, name, failed=False: ticks.append((name, failed)))
    with Session(two_studies) as session:
        session.assign_table("D", tables={"study1": "CLUSTER_INT1", "study2": "CLUSTER_INT2"})
        formula = "BMI ~ trtGrp + Male + (1|idDoctor)"
        plain = ds_lmer_slma(session, formula=formula, data_name="D")
        with_bar = ds_lmer_slma(session, formula=formula, data_name="D", progress=True)
        assert session.on_study_done is None
    assert ticks == [("study1", False), ("study2", False)]
    assert with_bar == plain
