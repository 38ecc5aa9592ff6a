"""Disclosure control: the canary row never leaves the study; nfilter thresholds; answer fields."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server.errors import RCallError, StudyError  # noqa: E402
from r_server.grammar import parse_assign  # noqa: E402
from r_server.runtime import StudyRuntime  # noqa: E402
from r_server.settings import DisclosureSettings  # noqa: E402
from security.campaign import run_campaign  # noqa: E402
from security.canary import CANARY_VALUE, TABLE_ROWS, Canary  # noqa: E402

pytestmark = pytest.mark.needs_r

LMER = 'lmerSLMADS2({}, NULL, NULL, "D", TRUE, NULL, NULL, NULL)'

# The top-level fields each aggregate answer may have (lmerSLMADS2: summary.merMod without its
# residuals plus dsBase's additions; its disclosure answer: the error messages and the risk flag).
ALLOWED_FIELDS: dict[str, set[str]] = {
    "lmerSLMADS2": {
        "methTitle", "objClass", "devcomp", "isLmer", "useScale", "logLik", "family", "link", "ngrps",
        "coefficients", "sigma", "vcov", "varcor", "AICtab", "call", "fitMsgs", "optinfo", "errorMessage",
        "disclosure.risk", "iterations", "control.info", "Ntotal", "Nvalid", "Nmissing", "",
    },
    "testObjExistsDS": {"test.obj.exists", "test.obj.class"},
    "listDisclosureSettingsDS": set(DisclosureSettings().as_r_list()),
}  # fmt: skip


@pytest.fixture()
def canary(tmp_path: Path):
    c = Canary(tmp_path)
    yield c
    c.close()


def _field(out: dict, name: str) -> Any:
    """A named element of a list node (named data, or unnamed data with a ``names`` vector)."""
    data = out["data"]
    if isinstance(data, dict):
        return data[name]
    return data[out["names"].index(name)]


def _runtime(canary: Canary, **settings: float) -> tuple[StudyRuntime, str]:
    runtime = StudyRuntime("s", canary.write_table(), settings=DisclosureSettings(**settings))  # type: ignore[arg-type]
    sid = runtime.open_session("analyst")
    runtime.assign_table(sid, "D", "T")
    return runtime, sid


def test_canary_never_appears_over_a_randomized_campaign() -> None:
    report = run_campaign(250, seed=11)
    assert report.leaks == []
    assert report.outcomes["answered"] > 100 and report.outcomes["refused"] > 0
    assert len(report.functions) >= 14  # every server function of the workflow was exercised


def test_canary_detector_positive_control(canary: Canary) -> None:
    """The detector sees the canary when real R data carrying it is encoded (what a leak would look like)."""
    runtime, sid = _runtime(canary)
    bridge = runtime._bridge
    session = runtime._session(sid)
    column = bridge.encode(bridge.evaluate(session.env, parse_assign("D$BMI")))
    assert Canary.row_value_in(column)
    assert CANARY_VALUE in column["data"]
    levels = bridge.encode(bridge.evaluate(session.env, parse_assign("D$label")))
    assert Canary.row_value_in(levels)


def test_subset_thresholds_follow_the_study_settings(canary: Canary) -> None:
    runtime, sid = _runtime(canary)
    # BMI > 90 keeps only the canary row: refused (dsBase: subset smaller than nfilter.subset)
    with pytest.raises(RCallError, match=r"Subset to be created is too small \(<nfilter.subset\)"):
        runtime.assign_expr(sid, "S", 'dataFrameSubsetDS2("D", "D$BMI", "90", 5, NULL, NULL, FALSE)')
    assert "S" not in runtime.list_symbols(sid)
    # the complement differs from D by one row: allowed, but flagged as a possible differencing step
    warned = runtime.aggregate(sid, 'dataFrameSubsetDS1("D", "D$BMI", "90", 4, NULL, NULL, FALSE)')
    assert "difference-based attack" in " ".join(str(x["data"][0]) for x in warned["data"])
    # 40 rows (grp == 1 ... 2 of 6 groups) are enough by default, not with nfilter.subset = 50
    text = 'dataFrameSubsetDS2("D", "D$grp", "2", 4, NULL, NULL, FALSE)'
    runtime.assign_expr(sid, "S", text)
    strict, sid2 = _runtime(canary, nfilter_subset=50)
    with pytest.raises(RCallError, match="too small"):
        strict.assign_expr(sid2, "S", text)
    # dataFrameDS: a data frame with fewer rows than nfilter.subset is refused (120 rows < 200)
    frame = 'dataFrameDS("D", NULL, FALSE, TRUE, "id,grp,trt,male,age,BMI,label")'
    runtime.assign_expr(sid, "F", frame)
    stricter, sid3 = _runtime(canary, nfilter_subset=200)
    with pytest.raises(RCallError, match="nfilter.trap: dataframe has less than nfilter.subset rows"):
        stricter.assign_expr(sid3, "F", frame)
    assert "F" not in stricter.list_symbols(sid3)


def test_lmer_refuses_a_binary_covariate_that_singles_out_the_canary(canary: Canary) -> None:
    runtime, sid = _runtime(canary)
    runtime.assign_expr(sid, "ind", 'BooleDS("D$BMI", "90", 5, "0", TRUE)')  # 1 for the canary row only
    runtime.assign_expr(sid, "D2", 'dataFrameDS("D,ind", NULL, FALSE, TRUE, "id,grp,trt,male,age,BMI,label,ind")')
    out = runtime.aggregate(sid, LMER.format("age~ind+yyy1xxxgrpzzz").replace('"D"', '"D2"'))
    assert _field(out, "disclosure.risk")["data"] == [1]
    assert "errorMessage.x" in str(out)
    assert not Canary.row_value_in(out)
    # the canary's own level as a factor: its dummy column has one 1 -> refused the same way
    out = runtime.aggregate(sid, LMER.format("BMI~factoryyylabelzzz+yyy1xxxgrpzzz"))
    assert _field(out, "disclosure.risk")["data"] == [1]
    assert not Canary.row_value_in(out)
    # as the response variable: binary y with a category of 1 < nfilter.tab
    out = runtime.aggregate(sid, LMER.format("ind~age+yyy1xxxgrpzzz").replace('"D"', '"D2"'))
    assert _field(out, "disclosure.risk")["data"] == [1]
    assert "errorMessage.y" in str(out)


def test_lmer_oversaturation_threshold_is_the_studys(canary: Canary) -> None:
    text = LMER.format("BMI~factoryyyidzzz+yyy1xxxgrpzzz")  # one parameter per row
    runtime, sid = _runtime(canary)
    out = runtime.aggregate(sid, text)
    assert _field(out, "disclosure.risk")["data"] == [1]
    assert "oversaturated" in str(out)
    # a modest model passes with the default nfilter.glm (0.33) and is refused at nfilter.glm = 0.01
    modest = LMER.format("BMI~age+trt+male+yyy1xxxgrpzzz")
    assert _field(runtime.aggregate(sid, modest), "disclosure.risk")["data"] == [0]
    strict, sid2 = _runtime(canary, nfilter_glm=0.01)
    out = strict.aggregate(sid2, modest)
    assert _field(out, "disclosure.risk")["data"] == [1] and "oversaturated" in str(out)
    assert TABLE_ROWS * 0.01 < 4


def test_clients_cannot_change_the_settings(canary: Canary) -> None:
    runtime, sid = _runtime(canary, nfilter_tab=7)
    for attack in (
        "options(nfilter.tab = 0)",
        "listDisclosureSettingsDS(nfilter.tab = 0)",
        'Sys.setenv(nfilter.tab = "0")',
    ):
        with pytest.raises(StudyError):
            runtime.aggregate(sid, attack)
    settings = runtime.aggregate(sid, "listDisclosureSettingsDS()")
    assert settings["data"]["nfilter.tab"]["data"] == [7.0]


def test_answers_carry_only_allow_listed_fields(canary: Canary) -> None:
    runtime, sid = _runtime(canary)
    runtime.assign_expr(sid, "ind", 'BooleDS("D$BMI", "90", 5, "0", TRUE)')
    runtime.assign_expr(sid, "D2", 'dataFrameDS("D,ind", NULL, FALSE, TRUE, "id,grp,trt,male,age,BMI,label,ind")')
    answers = {
        "lmerSLMADS2": [
            runtime.aggregate(sid, LMER.format("BMI~age+trt+yyy1xxxgrpzzz")),
            runtime.aggregate(sid, LMER.format("age~ind+yyy1xxxgrpzzz").replace('"D"', '"D2"')),
            runtime.aggregate(sid, LMER.format("BMI~age+yyy1xxxnothere2zzz")),
        ],
        "testObjExistsDS": [runtime.aggregate(sid, 'testObjExistsDS("D")')],
        "listDisclosureSettingsDS": [runtime.aggregate(sid, "listDisclosureSettingsDS()")],
    }
    fitted = answers["lmerSLMADS2"][0]["data"]
    assert "residuals" not in fitted and "coefficients" in fitted
    for func, outs in answers.items():
        for out in outs:
            assert isinstance(out["data"], dict | list)
            names = set(out["data"]) if isinstance(out["data"], dict) else set(out.get("names") or [])
            assert names <= ALLOWED_FIELDS[func], (func, names - ALLOWED_FIELDS[func])
            assert not Canary.row_value_in(out)
