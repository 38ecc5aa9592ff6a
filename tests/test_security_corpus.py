"""The hand-written attack corpus through a real StudyRuntime, and the canary detector's controls."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server.runtime import StudyRuntime  # noqa: E402
from security.canary import Canary  # noqa: E402
from security.corpus import MIN_PER_CATEGORY, load_corpus, run_attack  # noqa: E402

CATEGORIES = {
    "system_file_connections",
    "backticks_semicolons",
    "evaluators",
    "namespace_environment",
    "dollar_chains",
    "huge_nested",
    "unicode_lookalikes",
    "formula_tricks",
    "string_injection",
    "symbols_tables",
}


def test_corpus_size_and_categories() -> None:
    attacks = load_corpus()
    per = Counter(a.category for a in attacks)
    assert len(attacks) >= 200
    assert set(per) == CATEGORIES
    assert min(per.values()) >= MIN_PER_CATEGORY, per
    assert len({a.id for a in attacks}) == len(attacks)
    assert sum(a.probe for a in attacks) <= 10  # probes are the documented exceptions, not the rule
    # string injection reaches every string argument of every server function
    from r_server.functions import AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS, ArgKind

    texts = [a.text for a in attacks if a.category == "string_injection"]
    for table in (AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS):
        for sig in table.values():
            for p in sig.params:
                if ArgKind.STRING in p.kinds:
                    assert any(t.startswith(sig.func + "(") and f"{p.name} = " in t for t in texts), (sig.func, p.name)


@pytest.fixture()
def canary(tmp_path: Path):
    c = Canary(tmp_path)
    yield c
    c.close()


@pytest.mark.needs_r
def test_every_attack_is_refused_without_side_effect_or_leak(canary: Canary) -> None:
    runtime = StudyRuntime("attacked", canary.write_table())
    sid = runtime.open_session("attacker")
    other = runtime.open_session("bystander")
    runtime.assign_table(sid, "D", "T")
    runtime.assign_table(other, "E", "T")
    before = set(runtime.list_symbols(sid))
    attacks = load_corpus()
    outcomes = [run_attack(runtime, sid, a, canary.substitute) for a in attacks]
    answered = [o.attack.id for o in outcomes if not o.refused and not o.attack.probe]
    assert answered == []
    for o in outcomes:
        if o.refused:
            assert o.kind in ("rejected", "r_error"), (o.attack.id, o.kind)
            assert 10 <= len(o.message) <= 600 and o.message.isprintable(), (o.attack.id, o.message[:200])
    assert set(runtime.list_symbols(sid)) - {"attack_out"} == before
    assert runtime.list_symbols(other) == ["E"]
    assert not canary.file_created()
    texts = [o.message for o in outcomes] + [json.dumps(o.answer) for o in outcomes]
    texts += [json.dumps(r) for r in runtime.audit.records]
    assert not canary.leaked_in(texts)
    assert runtime.aggregate(sid, 'colnamesDS("D")')["data"] == ["id", "grp", "trt", "male", "age", "BMI", "label"]
    refusals = [r for r in runtime.audit.records if r["user"] == "attacker" and r["outcome"] != "ok"]
    assert len(refusals) >= len(attacks) - sum(a.probe for a in attacks)


@pytest.mark.needs_r
def test_canary_detector_fires_when_an_attack_is_evaluated_naively(canary: Canary) -> None:
    """Positive control: the same payloads, evaluated as dsBase-style eval(parse(text)), trip the detector."""
    import rpy2.rinterface as ri

    from r_server.rbridge import default_bridge

    default_bridge().versions()  # R started by the one bridge of this process
    create = next(a for a in load_corpus() if a.text == 'system("touch {CREATE}")')
    read = next(a for a in load_corpus() if a.text == 'readLines("{SECRET_FILE}")')
    env_read = next(a for a in load_corpus() if a.text == 'Sys.getenv("{SECRET_ENV}")')

    def naive(text: str) -> list[str]:
        value = ri.baseenv["eval"](ri.baseenv["parse"](text=ri.StrSexpVector([canary.substitute(text)])))
        return [str(v) for v in value] if value.typeof == ri.RTYPES.STRSXP else []

    assert not canary.file_created()
    naive(create.text)
    assert canary.file_created()
    assert canary.leaked_in(naive(read.text))
    assert canary.leaked_in(naive(env_read.text))
    # and through the study server the same attacks are refused
    runtime = StudyRuntime("attacked", canary.write_table())
    sid = runtime.open_session("attacker")
    canary.create_path.unlink()
    for attack in (create, read, env_read):
        outcome = run_attack(runtime, sid, attack, canary.substitute)
        assert outcome.refused and outcome.kind == "rejected"
        assert not canary.leaked_in([outcome.message])
    assert not canary.file_created()
