"""Just enough of lme4's formula language for the adapters: ``y ~ fixed + (re | g) + (re || g)``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Bar", "Formula", "split_formula"]


@dataclass(frozen=True)
class Bar:
    terms: str  # the left side of the bar, e.g. "1 + x1"
    group: str
    double: bool  # || (uncorrelated)


@dataclass(frozen=True)
class Formula:
    response: str
    fixed: str  # the fixed-effects right-hand side, e.g. "x1 + x2"
    bars: tuple[Bar, ...]


def _top_level_terms(rhs: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in rhs:
        depth += char == "("
        depth -= char == ")"
        if char == "+" and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return [t for t in terms if t]


def split_formula(text: str) -> Formula:
    response, _, rhs = text.partition("~")
    fixed, bars = [], []
    for term in _top_level_terms(rhs):
        match = re.fullmatch(r"\((.*?)(\|\|?)(.*)\)", term)
        if match:
            bars.append(Bar(match.group(1).strip(), match.group(3).strip(), match.group(2) == "||"))
        else:
            fixed.append(term)
    return Formula(response.strip(), " + ".join(fixed) or "1", tuple(bars))
