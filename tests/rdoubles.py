"""Doubles as R prints them with sprintf("%a"), for the tests that compare with R bit for bit."""

from __future__ import annotations

import math


def parse_r_double(text: str) -> float:
    """R's ``sprintf("%a", x)`` text (or NA, NaN, Inf, -Inf) as the same double."""
    if text in ("NA", "NaN"):
        return math.nan
    if text in ("Inf", "-Inf"):
        return math.inf if text == "Inf" else -math.inf
    return float.fromhex(text)


def same_double(ours: float, theirs: float) -> bool:
    """The same IEEE-754 double (any NaN equals any NaN)."""
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    return ours.hex() == theirs.hex()
