"""Seeded synthetic suites: ``pydsbase conformance generate --seed S --out DIR``.

Each case of :data:`CASES` is a data-generating recipe (linear mixed data with a grouping factor
``g``, a factor ``h`` nested in it, a crossed factor ``c``, a continuous ``x1``, a binary ``x2``, a
third covariate ``x3``, a group-level binary ``t``, weights ``w`` and an offset ``off``) plus one
ds.lmerSLMA call; together they cover every feature in :data:`FEATURES`. The data come from numpy's
PCG64 seeded with ``(seed, crc32(case_id), study index)``, are written with fixed decimals (which R's
``read.csv`` and any correctly rounded parser read to the same doubles), and the suite then goes through
:func:`pydsbase.conformance.reference.make_references`. The same seed gives byte-identical files in any
process (``environment.json`` aside, which describes the machine).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pydsbase.conformance.reference import CaseInput, make_references, write_json

__all__ = ["CASES", "FEATURES", "SIZES", "Recipe", "generate_suite"]

SIZES: dict[str, tuple[int, int]] = {"small": (8, 8), "medium": (20, 25), "large": (50, 100)}
"""rows per study = groups x rows per group."""

FEATURES = (
    "random_intercept", "random_slope_correlated", "random_slope_uncorrelated", "nested", "crossed",
    "interaction", "ML", "REML", "weights", "offset", "missing_values", "singular_fit", "tau2_zero",
    "one_study", "unequal_coefficients", "refusal_saturation", "refusal_binary_outcome",
    "refusal_binary_covariate", "refusal_binary_weights", "refusal_binary_offset", "nonconvergence_xtol_rel",
    "nonconvergence_check_conv_grad",
)

Frame = dict[str, np.ndarray]
Tweak = Callable[[Frame, np.random.Generator, int], Frame]
"""(study data, generator, study index) -> study data: a case's change to the common recipe."""


@dataclass(frozen=True)
class Recipe:
    formula: str
    features: tuple[str, ...]
    description: str
    args: str = ""
    studies: int = 3
    slope_sd: float = 0.0
    tweak: Tweak | None = None
    same_data: bool = False  # every study gets study 1's data
    extra: dict[str, Any] = field(default_factory=dict)


def _missing(frame: Frame, rng: np.random.Generator, i: int) -> Frame:
    n = len(frame["y"])
    frame["y"] = np.where(np.arange(n) % 11 == 3, np.nan, frame["y"])
    frame["x1"] = np.where(np.arange(n) % 17 == 5, np.nan, frame["x1"])
    return frame


def _collinear_in_study2(frame: Frame, rng: np.random.Generator, i: int) -> Frame:
    if i == 1:
        frame["x3"] = frame["x1"].copy()  # lme4 drops x3: study 2 has one coefficient fewer
    return frame


def _rows(frame: Frame, keep: int) -> Frame:
    return {k: v[:keep] for k, v in frame.items()}


def _study2(change: Callable[[Frame, int], Frame]) -> Tweak:
    def tweak(frame: Frame, rng: np.random.Generator, i: int) -> Frame:
        return change(frame, len(frame["y"])) if i == 1 else frame

    return tweak


def _two_ones(n: int) -> np.ndarray:
    out = np.zeros(n)
    out[[1, n // 2]] = 1.0
    return out


def _saturated(frame: Frame, n: int) -> Frame:
    return _rows(frame, 8)  # 3 coefficients > nfilter.glm (0.33) x 8 rows


def _binary_outcome(frame: Frame, n: int) -> Frame:
    frame["y"] = _two_ones(n)
    return frame


def _binary_covariate(frame: Frame, n: int) -> Frame:
    frame["x2"] = _two_ones(n)
    return frame


def _binary_weights(frame: Frame, n: int) -> Frame:
    frame["w"] = 1.0 + _two_ones(n)
    return frame


def _binary_offset(frame: Frame, n: int) -> Frame:
    frame["off"] = _two_ones(n)
    return frame


RI = "y ~ x1 + x2 + (1 | g)"
SLOPE = "y ~ x1 + x2 + (1 + x1 | g)"
CASES: dict[str, Recipe] = {
    "ri_reml": Recipe(RI, ("random_intercept", "REML"), "random intercept, REML"),
    "ri_ml": Recipe(RI, ("random_intercept", "ML"), "random intercept, ML", args=", REML = FALSE"),
    "slope_correlated": Recipe(SLOPE, ("random_slope_correlated", "REML"), "correlated random intercept and slope",
                               slope_sd=0.6),
    "slope_uncorrelated": Recipe("y ~ x1 + x2 + (x1 || g)", ("random_slope_uncorrelated",),
                                 "uncorrelated random intercept and slope (||)", slope_sd=0.6),
    "slope_ml": Recipe(SLOPE, ("random_slope_correlated", "ML"), "correlated random slope, ML",
                       args=", REML = FALSE", slope_sd=0.6),
    "nested": Recipe("y ~ x1 + (1 | g/h)", ("nested",), "h nested in g"),
    "crossed": Recipe("y ~ x1 + (1 | g) + (1 | c)", ("crossed",), "crossed grouping factors g and c"),
    "interaction": Recipe("y ~ x1 * x2 + (1 | g)", ("interaction",), "interaction x1:x2"),
    "weights": Recipe(RI, ("weights",), "prior weights w", args=', weights = "D$w"'),
    "offset": Recipe(RI, ("offset",), "offset off", args=', offset = "D$off"'),
    "missing_values": Recipe(RI, ("missing_values",), "NA in y (every 11th row) and x1 (every 17th)", tweak=_missing),
    "singular_fit": Recipe("y ~ x1 + t + (1 + t | g)", ("singular_fit",),
                           "random slope of t, which is constant within g: a boundary (singular) fit"),
    "tau2_zero": Recipe(RI, ("tau2_zero",), "every study has the same data: tau2 = 0", same_data=True),
    "one_study": Recipe(RI, ("one_study",), "one study", studies=1),
    "unequal_coefficients": Recipe("y ~ x1 + x2 + x3 + (1 | g)", ("unequal_coefficients",),
                                   "x3 equals x1 in study 2: lme4 drops it there", tweak=_collinear_in_study2),
    "refuse_saturation": Recipe(RI, ("refusal_saturation",), "study 2 has 8 rows: nfilter.glm refuses it",
                                tweak=_study2(_saturated)),
    "refuse_binary_outcome": Recipe(RI, ("refusal_binary_outcome",), "study 2's y has two 1s: nfilter.tab",
                                    tweak=_study2(_binary_outcome)),
    "refuse_binary_covariate": Recipe(RI, ("refusal_binary_covariate",), "study 2's x2 has two 1s: nfilter.tab",
                                      tweak=_study2(_binary_covariate)),
    "refuse_binary_weights": Recipe(RI, ("refusal_binary_weights", "weights"), "study 2's w has two 2s",
                                    args=', weights = "D$w"', tweak=_study2(_binary_weights)),
    "refuse_binary_offset": Recipe(RI, ("refusal_binary_offset", "offset"), "study 2's off has two 1s",
                                   args=', offset = "D$off"', tweak=_study2(_binary_offset)),
    "nonconv_xtol_rel": Recipe(SLOPE, ("nonconvergence_xtol_rel",), "xtol_rel 0.9: the optimizer stops early",
                               args=', control_type = "xtol_rel", control_value = 0.9', slope_sd=0.6),
    "nonconv_check_conv_grad": Recipe(SLOPE, ("nonconvergence_check_conv_grad",),
                                      "check.conv.grad tolerance 1e-12: lme4 reports a failed convergence",
                                      args=', control_type = "check.conv.grad", control_value = 1e-12',
                                      slope_sd=0.6),
}


def _frame(rng: np.random.Generator, groups: int, per_group: int, slope_sd: float) -> Frame:
    n = groups * per_group
    g = np.repeat(np.arange(1, groups + 1), per_group)
    h = np.tile(np.repeat([1, 2], (per_group + 1) // 2)[:per_group], groups)
    c = rng.integers(1, 6, size=n)
    x1 = rng.normal(0.0, 1.0, size=n)
    x2 = (rng.random(n) < 0.5).astype(float)
    x3 = rng.normal(0.0, 1.0, size=n)
    t = (g % 2).astype(float)
    u = rng.normal(0.0, 0.8, size=groups)[g - 1]
    s = rng.normal(0.0, slope_sd, size=groups)[g - 1] if slope_sd else np.zeros(n)
    v = rng.normal(0.0, 0.5, size=groups * 2)[(g - 1) * 2 + h - 1]
    k = rng.normal(0.0, 0.5, size=5)[c - 1]
    w = 0.5 + rng.random(n)
    off = rng.normal(0.0, 0.5, size=n)
    e = rng.normal(0.0, 1.0, size=n)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + 0.2 * x3 + u + s * x1 + v + k + off + e
    return {"y": y, "x1": x1, "x2": x2, "x3": x3, "t": t, "g": g.astype(float), "h": h.astype(float),
            "c": c.astype(float), "w": w, "off": off}


_INTEGER_COLUMNS = ("x2", "t", "g", "h", "c")


def _csv(frame: Frame) -> str:
    """Fixed decimals (4; integers for codes and all-integer columns), NA for missing: the same text on
    every machine."""
    columns = list(frame)
    integral = {name: name in _INTEGER_COLUMNS or _all_integral(frame[name]) for name in columns}
    lines = [",".join(columns)]
    for i in range(len(frame["y"])):
        cells = []
        for name in columns:
            value = float(frame[name][i])
            if np.isnan(value):
                cells.append("NA")
            else:
                cells.append(str(int(value)) if integral[name] else f"{value:.4f}")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _all_integral(values: np.ndarray) -> bool:
    finite = values[~np.isnan(values)]
    return bool(np.all(finite == np.round(finite)))


def case_inputs(case_id: str, recipe: Recipe, seed: int, size: str, data_dir: Path) -> CaseInput:
    groups, per_group = SIZES[size]
    studies = []
    for i in range(recipe.studies):
        rng = np.random.default_rng([seed, zlib.crc32(case_id.encode()), 0 if recipe.same_data else i])
        frame = _frame(rng, groups, per_group, recipe.slope_sd)
        if recipe.tweak is not None:
            frame = recipe.tweak(frame, rng, i)
        server = f"study{i + 1}"
        path = data_dir / f"{server}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_csv(frame), encoding="utf-8")
        studies.append((server, path))
    call = f'ds.lmerSLMA(formula = "{recipe.formula}", dataName = "D"{recipe.args})'
    return CaseInput(case_id, tuple(studies), call, recipe.description, recipe.features)


def generate_suite(seed: int, out: Path, size: str = "small", cases: Sequence[str] | None = None,
                   reference: bool = True, backend: str = "local") -> list[Path]:
    """Write ``out/<case_id>/`` for each case (all of :data:`CASES` by default) and ``out/suite.json``."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    chosen = list(CASES) if not cases else list(cases)
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        raise ValueError(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    out.mkdir(parents=True, exist_ok=True)
    inputs = [(case_inputs(c, CASES[c], seed, size, out / c / "data"), out / c) for c in chosen]
    write_json(out / "suite.json", {
        "schema": "pydsbase-conformance-suite/1", "seed": seed, "size": size, "cases": chosen,
        "features": {c: list(CASES[c].features) for c in chosen},
    })
    if not reference:
        from pydsbase.conformance.reference import _write_inputs

        for case, folder in inputs:
            _write_inputs(case, folder)
        return [folder for _, folder in inputs]
    return make_references(inputs, backend)
