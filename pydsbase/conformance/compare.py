"""Compare a runner output with a golden case.

Fails on differences in ``outcome``, ``result``, ``error.message``, ``datashield_errors`` and
``stdout``; reports differences in ``messages`` and ``warnings`` without failing (DSLite forwards
server-side lme4 conditions that a remote server does not); ignores everything else (``printed``,
``stderr``, timings, versions).

Doubles must be bitwise identical, except in cases whose ``reproducibility.bitwise_identical_in_all_runs``
is false (fits that vary with the R process's memory state). There, structure, names and classes
must match everywhere except under ``optinfo`` and ``iterations``; ``betamatrix.all``,
``sematrix.all`` and ``SLMA.pooled.ests.matrix`` must agree within twice the golden's own
``max_rel_diff_*`` for that block; other doubles within twice ``max_rel_diff_sematrix.all``;
``optinfo``, ``iterations`` and numbers inside convergence messages are reported only.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Comparison", "compare", "compare_files"]

_BLOCKS = ("betamatrix.all", "sematrix.all", "SLMA.pooled.ests.matrix")
_LOOSE_SUBTREES = ("optinfo", "iterations")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class Comparison:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Rules:
    bitwise: bool
    block_tolerance: dict[str, float]
    other_tolerance: float


def _rules(golden: dict[str, Any]) -> _Rules:
    repro = golden.get("reproducibility") or {}
    if repro.get("bitwise_identical_in_all_runs", True):
        return _Rules(True, {}, 0.0)
    se_tol = 2 * float(repro.get("max_rel_diff_sematrix.all") or 0.0)
    blocks = {name: 2 * float(repro.get(f"max_rel_diff_{name}") or 0.0) for name in _BLOCKS}
    return _Rules(False, blocks, se_tol)


def compare(golden: dict[str, Any], out: dict[str, Any]) -> Comparison:
    result = Comparison()
    rules = _rules(golden)
    if golden.get("outcome") != out.get("outcome"):
        result.failures.append(f"outcome: golden {golden.get('outcome')!r}, ours {out.get('outcome')!r}")
    golden_message = (golden.get("error") or {}).get("message")
    our_message = (out.get("error") or {}).get("message")
    if golden_message != our_message:
        result.failures.append(f"error.message: golden {golden_message!r}, ours {our_message!r}")
    _compare_node(golden.get("datashield_errors"), out.get("datashield_errors"), ("datashield_errors",), rules, result)
    _compare_node(golden.get("result"), out.get("result"), ("result",), rules, result)
    _compare_lines("stdout", golden.get("stdout") or [], out.get("stdout") or [], rules, result, fail=True)
    for key in ("messages", "warnings"):
        _compare_lines(key, golden.get(key) or [], out.get(key) or [], rules, result, fail=False)
    return result


def _compare_lines(key: str, golden: list[str], ours: list[str], rules: _Rules, result: Comparison, fail: bool) -> None:
    if golden == ours:
        return
    loose = not rules.bitwise and len(golden) == len(ours) and all(
        _mask(a) == _mask(b) for a, b in zip(golden, ours, strict=True)
    )
    text = f"{key}: golden {golden!r}, ours {ours!r}"
    (result.failures if fail and not loose else result.notes).append(text)


def _mask(text: str) -> str:
    return _NUMBER.sub("<n>", text)


def _loose_subtree(path: tuple[str, ...]) -> bool:
    return any(part in _LOOSE_SUBTREES for part in path)


def _say(path: tuple[str, ...]) -> str:
    return "/".join(path)


def _compare_node(golden: Any, ours: Any, path: tuple[str, ...], rules: _Rules, result: Comparison) -> None:
    sink = result.notes if (not rules.bitwise and _loose_subtree(path)) else result.failures
    if golden is None or ours is None:
        if golden is not ours:
            sink.append(f"{_say(path)}: golden {_short(golden)}, ours {_short(ours)}")
        return
    if not isinstance(golden, dict) or not isinstance(ours, dict):
        if golden != ours:
            sink.append(f"{_say(path)}: golden {_short(golden)}, ours {_short(ours)}")
        return
    keys = [k for k in golden if k != "data"] + [k for k in ours if k not in golden and k != "data"]
    for key in keys:
        if key == "attributes":
            _compare_named(golden.get(key) or {}, ours.get(key) or {}, (*path, "@attr"), rules, result)
        elif golden.get(key) != ours.get(key):
            sink.append(f"{_say(path)}: {key} differs: golden {_short(golden.get(key))}, ours {_short(ours.get(key))}")
    if "data" not in golden and "data" not in ours:
        return
    gdata, odata = golden.get("data"), ours.get("data")
    if golden.get("type") == "list":
        if isinstance(gdata, dict) and isinstance(odata, dict):
            _compare_named(gdata, odata, path, rules, result)
        elif isinstance(gdata, list) and isinstance(odata, list) and len(gdata) == len(odata):
            names = golden.get("names") or [""] * len(gdata)
            for i, (g, o) in enumerate(zip(gdata, odata, strict=True)):
                _compare_node(g, o, (*path, names[i] or f"[[{i + 1}]]"), rules, result)
        else:
            sink.append(f"{_say(path)}: list layout differs")
        return
    _compare_atomic(golden.get("type"), gdata, odata, path, rules, result, sink)


def _compare_named(golden: dict[str, Any], ours: dict[str, Any], path: tuple[str, ...], rules: _Rules,
                   result: Comparison) -> None:
    sink = result.notes if (not rules.bitwise and _loose_subtree(path)) else result.failures
    if list(golden) != list(ours):
        sink.append(f"{_say(path)}: names differ: golden {list(golden)}, ours {list(ours)}")
    for name in golden:
        if name in ours:
            _compare_node(golden[name], ours[name], (*path, name), rules, result)


def _compare_atomic(rtype: Any, gdata: Any, odata: Any, path: tuple[str, ...], rules: _Rules, result: Comparison,
                    sink: list[str]) -> None:
    if not isinstance(gdata, list) or not isinstance(odata, list) or len(gdata) != len(odata):
        sink.append(f"{_say(path)}: data length differs")
        return
    if rtype == "character" and gdata != odata:
        if not rules.bitwise and all(
            _mask(str(a)) == _mask(str(b)) for a, b in zip(gdata, odata, strict=True)
        ):
            result.notes.append(f"{_say(path)}: numbers in text differ: golden {_short(gdata)}, ours {_short(odata)}")
        else:
            sink.append(f"{_say(path)}: golden {_short(gdata)}, ours {_short(odata)}")
        return
    if rtype != "double":
        if gdata != odata:
            sink.append(f"{_say(path)}: golden {_short(gdata)}, ours {_short(odata)}")
        return
    tolerance = _tolerance(path, rules)
    worst = 0.0
    for i, (g, o) in enumerate(zip(gdata, odata, strict=True)):
        if _same_double(g, o):
            continue
        if tolerance is None or isinstance(g, str) or isinstance(o, str):
            sink.append(f"{_say(path)}[{i + 1}]: golden {g!r}, ours {o!r}")
            return
        rel = abs(g - o) / max(abs(g), abs(o))
        worst = max(worst, rel)
        if rel > tolerance:
            sink.append(f"{_say(path)}[{i + 1}]: golden {g!r}, ours {o!r} (relative {rel:.3g} > {tolerance:.3g})")
            return
    if worst:
        result.notes.append(f"{_say(path)}: within tolerance (largest relative difference {worst:.3g})")


def _tolerance(path: tuple[str, ...], rules: _Rules) -> float | None:
    if rules.bitwise:
        return None
    if _loose_subtree(path):
        return math.inf
    for block in _BLOCKS:
        if block in path:
            return rules.block_tolerance[block]
    return rules.other_tolerance


def _same_double(g: Any, o: Any) -> bool:
    if isinstance(g, str) or isinstance(o, str):
        return bool(g == o)
    return bool(struct.pack("<d", float(g)) == struct.pack("<d", float(o)))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 160 else text[:157] + "..."


def compare_files(golden_path: Path, out_path: Path) -> Comparison:
    golden = json.loads(Path(golden_path).read_text(encoding="utf-8"))
    out = json.loads(Path(out_path).read_text(encoding="utf-8"))
    return compare(golden, out)
