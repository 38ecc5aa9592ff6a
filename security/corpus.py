"""The hand-written attack corpus (``security/corpus/attacks.txt``): loading and running it.

``load_corpus()`` expands the file's placeholders and ``@each-string-argument`` lines into
``Attack`` records; ``run_attack`` sends one through a ``StudyRuntime`` and returns what happened.

    python security/corpus.py            # runs every attack through a real StudyRuntime (needs R)
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server.errors import StudyError
from r_server.functions import AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS, ArgKind, Param, Signature
from r_server.runtime import StudyRuntime

__all__ = ["CORPUS", "MIN_PER_CATEGORY", "Attack", "Outcome", "load_corpus", "run_attack"]

CORPUS = Path(__file__).resolve().parent / "corpus" / "attacks.txt"
MODES = ("agg", "asg", "sym", "tab", "var", "rm")
MIN_PER_CATEGORY = 15
_REPEAT = re.compile(r"\{REPEAT:(\d+):([^}]*)\}")
_CONTROLS = {"{NL}": "\n", "{CR}": "\r", "{TAB}": "\t", "{NUL}": "\x00"}

# A valid value for each parameter an attack does not target (so the attack is the only fault).
_VALID: dict[str, str] = {
    "formula": "BMI~age+yyy1xxxgrpzzz",
    "dataName": '"D"',
    "x": '"D"',
    "x1.transmit": '"D"',
    "vectors": '"D"',
    "df.name": '"D"',
    "V1.name": '"D$age"',
    "V2.name": '"30"',
    "Boolean.operator.n": "1",
    "na.assign.text": '"0"',
    "test.obj.name": '"D"',
    "message.object.name": '"D"',
    "xvect": "D$age",
    "weights": "D$age",
}


@dataclass(frozen=True)
class Attack:
    id: str
    category: str
    mode: str
    text: str
    probe: bool = False
    """May be answered (harmless); must still have no side effect and leak nothing."""


@dataclass(frozen=True)
class Outcome:
    attack: Attack
    refused: bool
    kind: str | None
    message: str
    answer: Any = None


def _expand(text: str) -> str:
    text = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
    for key, char in _CONTROLS.items():
        text = text.replace(key, char)
    return text


def _string_params(sig: Signature) -> list[Param]:
    return [p for p in sig.params if ArgKind.STRING in p.kinds]


def _call_with(sig: Signature, target: Param, payload: str) -> str:
    args = []
    for p in sig.params:
        if p is target:
            args.append(f'{p.name} = "{payload}"')
        elif p.required:
            args.append(f"{p.name} = {_VALID.get(p.name, 'NULL')}")
    return f"{sig.func}({', '.join(args)})"


def _each_string_argument(payload: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for mode, table in (("agg", AGGREGATE_FUNCTIONS), ("asg", ASSIGN_FUNCTIONS)):
        for sig in table.values():
            for param in _string_params(sig):
                out.append((mode, _call_with(sig, param, payload)))
    return out


def load_corpus(path: Path = CORPUS) -> list[Attack]:
    attacks: list[Attack] = []
    category = ""
    counters: Counter[str] = Counter()
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1]
            continue
        if not category:
            raise ValueError(f"{path.name}:{lineno}: attack before any [category]")
        if line.startswith("@each-string-argument "):
            entries = _each_string_argument(line.split(" ", 1)[1])
        else:
            mode, _, text = line.partition(" ")
            if mode.rstrip("?") not in MODES:
                raise ValueError(f"{path.name}:{lineno}: unknown mode {mode!r}")
            entries = [(mode, text)]
        for mode, text in entries:
            counters[category] += 1
            probe = mode.endswith("?")
            ident = f"{category}-{counters[category]:03d}"
            attacks.append(Attack(ident, category, mode.rstrip("?"), _expand(text), probe))
    return attacks


def run_attack(runtime: StudyRuntime, sid: str, attack: Attack, substitute: Callable[[str], str]) -> Outcome:
    """Send ``attack`` (placeholders filled by ``substitute``) through ``runtime``."""
    text = substitute(attack.text)
    try:
        answer: Any = None
        if attack.mode == "agg":
            answer = runtime.aggregate(sid, text)
        elif attack.mode == "asg":
            runtime.assign_expr(sid, "attack_out", text)
        elif attack.mode == "sym":
            runtime.assign_expr(sid, text, "D$age")
        elif attack.mode == "tab":
            runtime.assign_table(sid, "attack_out", text)
        elif attack.mode == "var":
            runtime.assign_table(sid, "attack_out", "T", [text])
        elif attack.mode == "rm":
            runtime.rm_symbol(sid, text)
        else:
            raise ValueError(attack.mode)
    except StudyError as exc:
        return Outcome(attack, True, exc.kind, exc.message)
    return Outcome(attack, False, None, "", answer)


def main() -> int:
    import tempfile

    from security.canary import Canary

    attacks = load_corpus()
    with tempfile.TemporaryDirectory() as work:
        canary = Canary(Path(work))
        runtime = StudyRuntime("attacked", canary.write_table())
        sid = runtime.open_session("attacker")
        runtime.assign_table(sid, "D", "T")
        before = runtime.list_symbols(sid)
        outcomes = [run_attack(runtime, sid, a, canary.substitute) for a in attacks]
        after = runtime.list_symbols(sid)
        alive = runtime.aggregate(sid, 'colnamesDS("D")')
        texts = [o.message for o in outcomes] + [json.dumps(o.answer) for o in outcomes]
        texts += [json.dumps(r) for r in runtime.audit.records]
        summary = {
            "attacks": len(attacks),
            "per_category": dict(Counter(a.category for a in attacks)),
            "refused": sum(o.refused for o in outcomes),
            "refused_by_kind": dict(Counter(o.kind for o in outcomes if o.refused)),
            "probes": sum(a.probe for a in attacks),
            "answered_attacks": [o.attack.id for o in outcomes if not o.refused and not o.attack.probe],
            "answered_probes": [o.attack.id for o in outcomes if not o.refused and o.attack.probe],
            "symbols_unchanged": set(before) == set(after) - {"attack_out"},
            "canary_file_created": canary.file_created(),
            "secret_leaked": canary.leaked_in(texts),
            "study_answers_after": alive is not None,
        }
        canary.close()
    print(json.dumps(summary, indent=2))
    ok = not summary["answered_attacks"] and summary["symbols_unchanged"] and not summary["canary_file_created"]
    return 0 if ok and not summary["secret_leaked"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
