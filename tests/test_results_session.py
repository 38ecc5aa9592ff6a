"""lmer_slma_result through a Session, and the per-study fan-out (the session's) with progress bars.

The studies are the golden-answer driver of test_cli (``test_cli.GoldenDriver``) and, for timing
and failures, a small scripted driver defined here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from datashield.interface import DSConnection, DSDriver, DSLoginInfo, DSResult, RSession
from fakeclock import FakeClock
from test_cli import CALLS, GOLDEN, LMER_CALL

import pydsbase
import pydsbase.session
from pydsbase import meta
from pydsbase.drivers.base import ReadySession
from pydsbase.dsi import aggregate_by_study
from pydsbase.errors import StudyCallError
from pydsbase.progress import StudyProgress, session_progress, study_progress
from pydsbase.results import lmer_call_text
from pydsbase.rvalue import RAtomic, RList, dumps, from_node, r_character

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
    assert isinstance(result.r_value, pydsbase.SLMAValue) and result.r_value.servers == tuple(result.study_names)
    assert pydsbase.slma_result(result.r_value, formula=FORMULA).to_json() == result.to_json()
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
    clock: Callable[[], float] = time.monotonic  # a test may fake it (with pydsbase.session's clock)

    def __init__(self, delay: float, value: Any) -> None:
        self.ready = self.clock() + delay
        self.value = value

    def is_completed(self) -> bool:
        return self.clock() >= self.ready

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
        return _Later(self.delay, r_character([f"{self.name}:{expr}"]))  # an R value, as our drivers give

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
    assert answers == {"a": r_character(["a:f()"]), "c": r_character(["c:f()"])}
    assert list(errors) == ["b", "d"]
    assert str(errors["b"]) == "object 'x' not found" and str(errors["d"]) == "call rejected"
    # The bar ticks once per study as each finishes: the refused one at once, the others as they answer
    # (their relative order depends on the machine's load, so only the set is checked for them).
    assert finished[0] == "d!" and sorted(finished[1:]) == ["a", "b!", "c"]


def test_fan_out_times_out_naming_the_late_study(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fake clock shared by the fan-out and the studies: pauses move it on, nothing waits."""
    clock = FakeClock()
    monkeypatch.setattr(pydsbase.session, "time", clock.as_time_module())
    monkeypatch.setattr(_Later, "clock", clock)
    with scripted(fast="0/ok", slow="30/ok") as session:
        answers, errors = aggregate_by_study(session, "f()", session.get_connection_names(), timeout=0.2)
    assert answers == {"fast": r_character(["fast:f()"])}
    assert isinstance(errors["slow"], StudyCallError) and errors["slow"].kind == "timeout"
    assert 0.2 < sum(clock.sleeps) < 0.2 + 0.02  # gave up at the first look past the deadline, not at 30 s


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


# -- the server names travel beside ds_lmer_slma's value ---------------------------------------------


def test_slma_result_names_the_studies_by_server_without_being_told() -> None:
    golden = from_node(json.loads((GOLDEN / "int_bmi_ri.json").read_text())["result"])
    with pydsbase.Session(golden_logins("int_bmi_ri")) as session:
        fit = pydsbase.ds_lmer_slma(session, formula=FORMULA)
    assert fit == golden and dumps(fit) == dumps(golden)  # R's value is untouched: study1..3 inside
    assert isinstance(fit, pydsbase.SLMAValue) and isinstance(fit, RList)
    assert fit.servers == ("cluster.int1", "cluster.int2", "cluster.int3") and fit.failed == {}
    assert "cluster.int1" not in dumps(fit)
    rich = pydsbase.slma_result(fit)
    assert rich.study_names == ["cluster.int1", "cluster.int2", "cluster.int3"]
    assert rich.r_value is fit
    pooled = fit["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic) and pooled.dim is not None
    nrow = pooled.dim[0]
    for p, term in enumerate(rich.terms):
        for c, method in enumerate(("ML", "REML", "FE")):
            row = rich.get(term, method)
            assert row.estimate.hex() == pooled.data[2 * c * nrow + p].hex()
            assert row.se.hex() == pooled.data[(2 * c + 1) * nrow + p].hex()


def test_slma_result_reuses_ds_lmer_slmas_metafor_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    with pydsbase.Session(golden_logins("int_bmi_ri")) as session:
        fit = pydsbase.ds_lmer_slma(session, formula=FORMULA)
    assert fit.pooling is not None
    calls: list[str] = []
    original = meta.rma_rows

    def counting(yis: Any, seis: Any, method: str) -> Any:
        calls.append(method)
        return original(yis, seis, method)

    monkeypatch.setattr(meta, "rma_rows", counting)
    rich = pydsbase.slma_result(fit)
    assert calls == [] and len(rich.pooled) == 9  # every term under every method, no fit redone
    plain = pydsbase.slma_result(RList(fit.data, fit.names), list(fit.servers))  # no fits travelled
    assert len(calls) == 9 and plain.to_json() == rich.to_json()


def test_study_names_given_are_checked_against_those_that_travelled() -> None:
    with pydsbase.Session(golden_logins("int_bmi_ri")) as session:
        fit = pydsbase.ds_lmer_slma(session, formula=FORMULA, datasources=["cluster.int3", "cluster.int1"])
    assert fit.servers == ("cluster.int3", "cluster.int1")
    assert pydsbase.slma_result(fit, ["cluster.int3", "cluster.int1"]).study_names == ["cluster.int3", "cluster.int1"]
    with pytest.raises(ValueError, match=r"do not match the studies this value came from, in its order"):
        pydsbase.slma_result(fit, ["cluster.int1", "cluster.int3"])  # wrong order: would mislabel
    with pytest.raises(ValueError, match="do not match"):
        pydsbase.slma_result(fit, ["study1", "study2"])
    with pytest.raises(ValueError, match="study_names are needed"):
        pydsbase.slma_result(RList(fit.data, fit.names))  # a plain list does not name its studies


def test_exclude_keeps_the_survivors_beside_the_value() -> None:
    with scripted(a="0/fail", b="0/ok") as session:
        with pytest.raises(pydsbase.DataSHIELDErrors):
            pydsbase.ds_lmer_slma(session, formula=FORMULA)
    logins = golden_logins("int_bmi_ri")
    logins[1] = DSLoginInfo(name="down", url="scripted://0/fail", user="u", password="p",
                            driver=f"{__name__}.ScriptedDriver")
    with pydsbase.Session(logins) as session:
        fit = pydsbase.ds_lmer_slma(session, formula=FORMULA, on_study_failure="exclude")
    assert fit.servers == ("cluster.int1", "cluster.int3") and fit.failed == {"down": "object 'x' not found"}
    rich = pydsbase.slma_result(fit)
    assert rich.study_names == ["cluster.int1", "cluster.int3", "down"]
    assert [(e.study, e.kind) for e in rich.exclusions] == [("down", "server_error")]
