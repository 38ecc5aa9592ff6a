"""Never serialize a session: the bytes of both answer formats hold no environment and no data row.

A formula in a value (``summary.merMod$call`` and the like) carries its environment, and
``serialize()`` would ship that environment whole: the session, its data frames, their rows. The
bridge scrubs every value it serializes (``r_server/R/wire.R``). Here the raw bytes of both formats
of Opal's API (R's XDR serialization, walked item by item by ``tests/rstream.py``; Rock's JSON) are
scanned for environments (ENVSXP) and for a planted canary row: its 8-byte double and its text.

* a positive control: a value carrying a session's formula, serialized with the scrub switched off,
  holds the session (an ENVSXP, the canary's double and level); scrubbed, none of them;
* every golden case that reaches the servers, on a copy of the shared data whose tables with a
  ``BMI`` column gain one canary row each;
* every answered probe of the attack corpus, on the corpus's canary table.
"""

from __future__ import annotations

import csv
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.needs_r

from rstream import ENVSXP, sexp_types  # noqa: E402
from test_runtime_golden import _cases as _golden_cases  # noqa: E402

from security.canary import CANARY_LEVEL, CANARY_VALUE, Canary  # noqa: E402
from security.corpus import load_corpus, run_attack  # noqa: E402

CANARY_BYTES = struct.pack(">d", CANARY_VALUE)
CANARY_TEXT = repr(CANARY_VALUE).encode()
GOLDEN_CASES = _golden_cases()


def _leaks(raw: bytes, text: bytes) -> list[str]:
    """What a pair of answers (XDR bytes, JSON bytes) leaks; empty when clean."""
    found = []
    if sexp_types(raw)[ENVSXP]:
        found.append("an environment in the XDR answer")
    if CANARY_BYTES in raw or CANARY_LEVEL.encode() in raw or CANARY_TEXT in raw:
        found.append("the canary row in the XDR answer")
    if CANARY_TEXT in text or CANARY_LEVEL.encode() in text:
        found.append("the canary row in the JSON answer")
    # serializeJSON writes an environment as {"type":"environment",...}: only an empty one may pass
    if text.count(b'"type":"environment"') != text.count(b'"type":"environment","attributes":{},"value":{}'):
        found.append("an environment with contents in the JSON answer")
    return found


def _scanning_runtime() -> Any:
    from r_server.runtime import StudyRuntime

    class ScanningRuntime(StudyRuntime):
        """Every aggregate's value is also encoded in both wire formats and scanned."""

        answers: list[tuple[bytes, bytes]] = []

        def _encode(self, value: Any, encoding: str) -> Any:
            ScanningRuntime.answers.append((self._bridge.serialize(value), self._bridge.to_json(value)))
            return super()._encode(value, encoding)

    ScanningRuntime.answers = []
    return ScanningRuntime


def test_positive_control_a_session_formula_ships_the_session_unless_scrubbed(tmp_path: Path) -> None:
    from r_server.rbridge import RObject
    from r_server.runtime import StudyRuntime

    canary = Canary(tmp_path)
    try:
        runtime = StudyRuntime("s", canary.write_table())
        sid = runtime.open_session("u")
        runtime.assign_table(sid, "D", "T")
        bridge = runtime._bridge
        env = runtime._sessions[sid].env.sexp
        import rpy2.rinterface as ri

        formula = ri.baseenv["eval"](ri.parse("function(env) list(call = stats::as.formula('BMI ~ age', env = env))"))
        value = RObject(formula(env))
        bridge.scrub = False
        try:
            raw, text = bridge.serialize(value), bridge.to_json(value)
        finally:
            bridge.scrub = True
        assert sexp_types(raw)[ENVSXP] >= 1
        assert CANARY_BYTES in raw and CANARY_LEVEL.encode() in raw
        assert _leaks(raw, text)  # the detector fires
        raw, text = bridge.serialize(value), bridge.to_json(value)
        assert _leaks(raw, text) == []
        assert sexp_types(raw)[253] >= 1  # the formula's environment is now the global one (a marker)
        # a closure made in the session, and an environment as a value, are scrubbed too
        maker = ri.baseenv["eval"](ri.parse("function(env) list(f = local(function() D, env), e = env)"))
        raw = bridge.serialize(RObject(maker(env)))
        assert _leaks(raw, bridge.to_json(RObject(maker(env)))) == []
    finally:
        canary.close()


def _plant(data: Path, into: Path) -> Path:
    """A copy of the shared data whose every table with a BMI column gains a row with the canary BMI."""
    shutil.copytree(data, into)
    for path in into.rglob("*.csv"):
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if "BMI" not in rows[0] or len(rows) < 2:
            continue
        row = list(rows[1])
        row[rows[0].index("BMI")] = repr(CANARY_VALUE)
        with path.open("a", newline="") as handle:
            csv.writer(handle, quoting=csv.QUOTE_MINIMAL).writerow(row)
    return into


@pytest.mark.parametrize("case_id", GOLDEN_CASES)
def test_golden_answers_hold_no_environment_and_no_row(case_id: str, data_dir: Path, golden_dir: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import test_runtime_golden as golden

    from r_server.errors import StudyError

    planted = _plant(data_dir, tmp_path / "data")
    scanning = _scanning_runtime()
    monkeypatch.setattr(golden, "DATA", planted)
    monkeypatch.setattr(golden, "StudyRuntime", scanning)
    case = golden._load(case_id)
    for study in case["studies"]:
        try:
            golden._run_study(case, study["server"])
        except (StudyError, AssertionError):
            pass  # a case's error (or a planted row changing an answer) still leaves answers to scan
    assert len(scanning.answers) >= 2, "no answers were scanned"
    for raw, text in scanning.answers:
        assert _leaks(raw, text) == []
        json.loads(text)


def test_attack_corpus_answers_hold_no_environment_and_no_row(tmp_path: Path) -> None:
    canary = Canary(tmp_path)
    try:
        scanning = _scanning_runtime()
        runtime = scanning("attacked", canary.write_table())
        sid = runtime.open_session("attacker")
        runtime.assign_table(sid, "D", "T")
        for attack in load_corpus():
            run_attack(runtime, sid, attack, canary.substitute)
        runtime.aggregate(sid, 'colnamesDS("D")')
        assert len(scanning.answers) >= 2
        for raw, text in scanning.answers:
            assert _leaks(raw, text) == []
    finally:
        canary.close()


def test_the_scrub_changes_nothing_but_environments(tmp_path: Path) -> None:
    """Values without a foreign environment come back identical (dimnames of matrices included)."""
    import rpy2.rinterface as ri

    from r_server.rbridge import RObject, default_bridge

    bridge = default_bridge()
    values = ri.baseenv["eval"](ri.parse(
        "list(m = matrix(1:4, 2, dimnames = list(c('a', 'b'), c('x', 'y'))), a = array(1:3, 3, list(c('p', 'q', 'r'))),"
        " f = factor(c('u', 'v')), d = data.frame(x = 1:2, y = c('s', 't')), n = NULL, na = c(NA, 1.5, NaN, -0),"
        " g = y ~ x, l = list(list(1L, 'z'), quote(f(x, 1)), TRUE))"))
    raw = bridge.serialize(RObject(values))
    back = ri.baseenv["unserialize"](ri.baseenv["as.raw"](ri.IntSexpVector(list(raw))))
    assert ri.baseenv["identical"](back, values)[0] is True
    text = bridge.to_json(RObject(values))
    assert b'"dimnames"' in text and b'"x","y"' in text
