"""lmer_slma_result through a Session, and the per-study fan-out (the session's) with progress bars.

The studies are the golden-answer driver of test_cli (``test_cli.GoldenDriver``) and, for timing
and failures, a small scripted driver defined here.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from datashield.interface import DSConnection, DSDriver, DSLoginInfo, DSResult, RSession
from test_cli import CALLS, GOLDEN, LMER_CALL

import pydsbase
from pydsbase.drivers.base import ReadySession
from pydsbase.errors import StudyCallError
from pydsbase.dsi import aggregate_by_study
from pydsbase.progress import StudyProgress, session_progress, study_progress
from pydsbase.results import lmer_call_text
from pydsbase.rvalue import from_node

FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"


def golden_logins(case: str, drop: dict[int, str] | None = None, studies: int = 3) -> list[DSLoginInfo]:
    return [
        DSLoginInfo(
            name=f"cluster.int{i}",
            url=f"golden://{case}/{i}" + (f"?drop={drop[i]}" if drop and i in drop else ""),
            user="u",
            password="p",
            driver="test_cli.GoldenDriver",
        )
        for i in range(1, studies + 1)
    ]


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def test_call_text_is_ds_lmer_slmas() -> None:
    assert lmer_call_text(FORMULA, data_name="D") == LMER_CALL
    text = lmer_call_text(
        "BMI ~ trtGrp + Male + (1|idSurgery/idDoctor)",
        offset="off.age",
        weights="w.age",
        data_name="D",
        reml=False,
        control_type="xtol_rel",
        control_value=1e-10,
        optimizer="nloptwrap",
        verbose=1,
    )
    assert text == (
        "lmerSLMADS2(BMI ~ trtGrp + Male + yyy1xxxidSurgerypppidDoctorzzz, "
        '"off.age", "w.age", "D", FALSE, "xtol_rel", "1e-10", "nloptwrap", 1)'
    )


def test_rich_result_through_a_session_keeps_the_r_compatible_list() -> None:
    with pydsbase.Session(golden_logins("int_no_metafor")) as session:
        result = pydsbase.lmer_slma_result(session, FORMULA, data_name="D")
    assert [c[2] for c in CALLS] == [LMER_CALL] * 3
    golden = from_node(json.loads((GOLDEN / "int_no_metafor.json").read_text())["result"])
    assert result.r_value == golden
    assert result.study_names == ["cluster.int1", "cluster.int2", "cluster.int3"]
    assert len(result.pooled) == 9


def test_differing_coefficients_never_fail_and_have_no_r_value() -> None:
    with pydsbase.Session(golden_logins("int_bmi_ri", drop={1: "trtGrp"})) as session:
        with pytest.raises(Exception, match="number of items to replace"):
            pydsbase.ds_lmer_slma(session, formula=FORMULA, data_name="D")
        result = pydsbase.lmer_slma_result(session, FORMULA, data_name="D")
    assert result.r_value is None
    assert [(e.study, e.term, e.kind) for e in result.exclusions] == [("cluster.int1", "trtGrp", "missing_coefficient")]
    assert result.get("trtGrp", "REML").studies == ("cluster.int2", "cluster.int3")
    assert result.get("Male", "REML").k == 3


def test_datasources_select_studies_in_the_order_given() -> None:
    with pydsbase.Session(golden_logins("int_bmi_ri")) as session:
        chosen = ["cluster.int3", "cluster.int1"]
        result = pydsbase.lmer_slma_result(session, FORMULA, data_name="D", datasources=chosen)
        with pytest.raises(ValueError, match="unknown study names"):
            pydsbase.lmer_slma_result(session, FORMULA, datasources=["nobody"])
    assert result.study_names == ["cluster.int3", "cluster.int1"]
    assert sorted(c[0] for c in CALLS) == ["cluster.int1", "cluster.int3"]


# -- the fan-out ------------------------------------------------------------------------------------


class _Later(DSResult):
    def __init__(self, delay: float, value: Any) -> None:
        self.ready = time.monotonic() + delay
        self.value = value

    def is_completed(self) -> bool:
        return time.monotonic() >= self.ready

    def fetch(self) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class ScriptedConnection(DSConnection):
    """scripted://DELAY/VALUE: answers after DELAY seconds with VALUE ('fail' raises, 'refuse' at submit)."""

    submits_without_waiting = True  # a submit returns at once (the session needs no thread for it)

    def __init__(self, info: DSLoginInfo) -> None:
        self.name = info.name
        delay, _, self.behaviour = info.url.removeprefix("scripted://").partition("/")
        self.delay = float(delay)

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

    def aggregate(self, expr: str, asynchronous: bool = True) -> DSResult:
        if self.behaviour == "refuse":
            raise StudyCallError(self.name, "call rejected", kind="rejected")
        if self.behaviour == "fail":
            return _Later(self.delay, StudyCallError(self.name, "object 'x' not found", kind="r_error"))
        return _Later(self.delay, f"{self.name}:{expr}")

    def disconnect(self) -> None:
        pass

    def keep_alive(self) -> None:
        pass


class ScriptedDriver(DSDriver):
    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> DSConnection:
        return ScriptedConnection(args)


def scripted(**studies: str) -> pydsbase.Session:
    logins = [
        DSLoginInfo(name=name, url=f"scripted://{spec}", user="u", password="p", driver=f"{__name__}.ScriptedDriver")
        for name, spec in studies.items()
    ]
    return pydsbase.Session(logins)


def test_fan_out_keeps_connection_order_and_every_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    finished: list[str] = []
    original = StudyProgress.done

    def spy(self: StudyProgress, name: str, failed: bool = False) -> None:
        finished.append(f"{name}{'!' if failed else ''}")
        original(self, name, failed)

    monkeypatch.setattr(StudyProgress, "done", spy)
    with scripted(a="0.15/ok", b="0.0/fail", c="0.05/ok", d="0/refuse") as session:
        names = session.get_connection_names()
        with session_progress(session, names, enabled=True):
            answers, errors = aggregate_by_study(session, "f()", names)
    assert answers == {"a": "a:f()", "c": "c:f()"}
    assert list(errors) == ["b", "d"]
    assert str(errors["b"]) == "object 'x' not found" and str(errors["d"]) == "call rejected"
    # The bar ticks once per study as each finishes: the refused one at once, the others as they answer
    # (their relative order depends on the machine's load, so only the set is checked for them).
    assert finished[0] == "d!" and sorted(finished[1:]) == ["a", "b!", "c"]


def test_fan_out_times_out_naming_the_late_study() -> None:
    with scripted(fast="0/ok", slow="30/ok") as session:
        started = time.monotonic()
        answers, errors = aggregate_by_study(session, "f()", session.get_connection_names(), timeout=0.2)
    assert time.monotonic() - started < 5
    assert answers == {"fast": "fast:f()"}
    assert isinstance(errors["slow"], StudyCallError) and errors["slow"].kind == "timeout"


def test_server_errors_become_reasons_in_the_rich_result() -> None:
    with scripted(a="0/fail", b="0/refuse") as session:
        result = pydsbase.lmer_slma_result(session, FORMULA, data_name="D")
    assert [(e.study, e.kind, e.message) for e in result.exclusions] == [
        ("a", "server_error", "object 'x' not found"),
        ("b", "server_error", "call rejected"),
    ]
    assert result.pooled == () and result.r_value is None


def test_progress_bar_counts_studies(capsys: pytest.CaptureFixture[str]) -> None:
    with study_progress(["s1", "s2"], enabled=True, desc="fit") as bar:
        bar.done("s1")
        bar.done("s2", failed=True)
        assert bar._bar is not None and bar._bar.n == 2 and bar._bar.total == 2
    assert bar.finished == ["s1", "s2"]
    assert "fit" in capsys.readouterr().err
    with study_progress(["s1"], enabled=False) as quiet:
        quiet.done("s1")
    assert quiet._bar is None and threading.active_count() >= 1
