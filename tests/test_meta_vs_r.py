"""pydsbase.meta.rma against metafor::rma run by Rscript in the same test run, compared bit for bit.

One Rscript call fits every case (hex floats in, hex floats out, through files). Every field
must be identical to the bit, the p-values included: pval comes from pydsbase._rmath's port of
R's pnorm and QEp from its port of R's pchisq/pgamma (both checked input by input against R in
tests/test_rmath_pchisq_vs_r.py). Error messages, warnings and the Fisher scoring iteration count
(read from metafor's verbose output) must be identical too. Per-field difference counts are printed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from rdoubles import parse_r_double, same_double

from pydsbase.meta import METHODS, Outcome, rma_rows

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

N_RANDOM = 2000
FIELDS = ("beta", "se", "zval", "pval", "ci_lb", "ci_ub", "tau2", "se_tau2", "QE", "QEp", "I2", "H2")

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
lines <- readLines(args[1])
out <- file(args[2], "w")
hx <- function(x) if (is.null(x) || length(x) == 0) "NA" else if (is.na(x) && !is.nan(x)) "NA" else sprintf("%a", x)
num <- function(s) if (s == "NA") NA_real_ else as.numeric(s)
esc <- function(s) gsub("\n", "\\n", s, fixed = TRUE)
for (ln in lines) {
  f <- strsplit(ln, " ", fixed = TRUE)[[1]]
  k <- as.integer(f[3])
  yi <- vapply(f[4:(3 + k)], num, 0.0, USE.NAMES = FALSE)
  sei <- vapply(f[(4 + k):(3 + 2 * k)], num, 0.0, USE.NAMES = FALSE)
  W <- character(0); r <- NULL; txt <- character(0)
  err <- tryCatch(withCallingHandlers({
      txt <- capture.output(r <- metafor::rma(yi = yi, sei = sei, method = f[2], verbose = TRUE)); NULL
    }, warning = function(w) { W <<- c(W, conditionMessage(w)); invokeRestart("muffleWarning") }),
    error = function(e) conditionMessage(e))
  wtxt <- paste(vapply(W, esc, ""), collapse = "|")
  if (!is.null(err)) {
    writeLines(paste(f[1], "ERR", esc(err), wtxt, sep = "\t"), out)
  } else {
    it <- regmatches(txt, regexpr("converged after [0-9]+ iterations", txt))
    it <- if (length(it)) sub("converged after ([0-9]+) iterations", "\\1", it) else "0"
    vals <- c(hx(c(r$beta)), hx(r$se), hx(r$zval), hx(r$pval), hx(r$ci.lb), hx(r$ci.ub), hx(r$tau2),
              hx(r$se.tau2), hx(r$QE), hx(r$QEp), hx(r$I2), hx(r$H2), as.character(r$k), it)
    writeLines(paste(f[1], "OK", paste(vals, collapse = " "), wtxt, sep = "\t"), out)
  }
}
close(out)
"""

Case = tuple[list[float], list[float]]


def random_cases(n: int, seed: int = 20240611) -> list[Case]:
    """Seeded inputs: k = 1..30, effects and standard errors over many scales and heterogeneities."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for _ in range(n):
        k = int(rng.integers(1, 31)) if rng.random() < 0.8 else int(rng.integers(1, 4))
        se_scale = 10.0 ** rng.uniform(-3, 2)
        sei = se_scale * 10.0 ** rng.uniform(-0.7, 0.7, k)
        tau = se_scale * 10.0 ** rng.uniform(-3, 3) if rng.random() < 0.85 else 0.0
        mu = rng.normal(0, 10.0 ** rng.uniform(-2, 3))
        yi = mu + rng.normal(0, 1, k) * np.sqrt(sei**2 + tau**2)
        style = rng.random()
        if style < 0.1:
            yi, sei = np.round(yi, 2), np.maximum(np.round(sei, 2), 0.01)
        elif style < 0.15:
            sei = np.full(k, sei[0])
        cases.append((yi.tolist(), sei.tolist()))
    return cases


def edge_cases() -> list[Case]:
    nan, inf = math.nan, math.inf
    cases: list[Case] = [
        ([1.5], [0.3]), ([-2.0], [1e-9]), ([3.0], [0.0]), ([nan], [1.0]), ([1.0], [nan]), ([1.0], [inf]),
        ([0.1, 0.3], [0.1, 0.2]), ([0.1, 0.3], [0.2, 0.2]), ([1.0, 1.0], [0.5, 0.5]), ([0.0, 10.0], [0.1, 0.1]),
        ([0.2, 0.4, 0.6], [0.1, 0.1, 0.1]), ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]),
        ([1.0, 2.0, 3.0], [1e-9, 1e-9, 1e-9]), ([1.0, 2.0, 3.0], [1e6, 1e6, 1e6]),
        ([1.0, 2.0, 3.0], [1e-9, 1.0, 1e6]), ([1.0, 2.0, 3.0], [1e-160, 1.0, 1.0]),
        ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]), ([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]),
        ([1.0, 2.0, 3.0], [-0.5, 0.5, -1.0]), ([1.0, 2.0, 3.0], [inf, 1.0, inf]), ([1.0, 2.0, 3.0], [inf, inf, inf]),
        ([1.0, inf, 3.0], [1.0, 1.0, 1.0]), ([1.0, -inf, 3.0], [1.0, 1.0, 1.0]), ([1.0, nan, 3.0], [1.0, 1.0, 1.0]),
        ([1.0, 2.0, 3.0], [1.0, nan, 1.0]), ([nan, nan], [1.0, 1.0]), ([1.0, 2.0], [nan, nan]),
        ([nan, 2.0, 3.0], [1.0, 1.0, nan]), ([5.0] * 6, [0.1 * (i + 1) for i in range(6)]),
        ([0.0] * 5, [1.0] * 5), ([0.5, -0.5, 0.5, -0.5], [0.25, 0.25, 0.25, 0.25]),
        ([1e300, 2e300, 3e300], [1.0, 1.0, 1.0]), ([1e-300, 2e-300], [1e-300, 1e-300]),
        ([1e11 * (1 + i % 7) for i in range(30)], [1e-8 * (1 + i % 3) for i in range(30)]),  # QE ~ 1e40
    ]
    rng = np.random.default_rng(7)
    for k in (2, 3, 5, 10, 30):
        base_y = rng.normal(0, 1, k)
        base_s = rng.uniform(0.05, 0.5, k)
        for scale in (1e-8, 1e-4, 1.0, 1e2, 1e4, 1e5, 1e6, 1e8):
            cases.append(((base_y * scale).tolist(), base_s.tolist()))  # tau2 up to ~1e16
            cases.append(((base_y * scale).tolist(), (base_s * scale).tolist()))
    return cases


def _hex(x: float) -> str:
    return "NA" if math.isnan(x) else x.hex()


def _run_r(cases: list[Case], tmp: Path) -> dict[str, tuple[str, list[str], list[str]]]:
    lines = []
    for i, (yi, sei) in enumerate(cases):
        for m in METHODS:
            vals = " ".join(_hex(v) for v in yi + sei)
            lines.append(f"{i}:{m} {m} {len(yi)} {vals}")
    (tmp / "cases.txt").write_text("\n".join(lines) + "\n")
    (tmp / "run.R").write_text(R_SCRIPT)
    rscript = shutil.which("Rscript")
    assert rscript is not None
    subprocess.run([rscript, str(tmp / "run.R"), str(tmp / "cases.txt"), str(tmp / "out.txt")], check=True,
                   timeout=600, capture_output=True)
    answers = {}
    for line in (tmp / "out.txt").read_text().splitlines():
        cid, status, body, warns = line.split("\t")
        wlist = [w.replace("\\n", "\n") for w in warns.split("|")] if warns else []
        answers[cid] = (status, body.replace("\\n", "\n").split(" ") if status == "OK" else [body.replace("\\n", "\n")],
                        wlist)
    return answers


def test_rma_matches_metafor_bit_for_bit(tmp_path: Path) -> None:
    cases = random_cases(N_RANDOM) + edge_cases()
    answers = _run_r(cases, tmp_path)
    diffs: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    examples: list[str] = []
    n_ok = 0
    for m in METHODS:
        outcomes: list[Outcome] = rma_rows([c[0] for c in cases], [c[1] for c in cases], m)
        for i, ours in enumerate(outcomes):
            status, body, r_warnings = answers[f"{i}:{m}"]
            bad = []
            seen.update(f"R warned: {w[:60]}" for w in r_warnings)
            if status == "ERR":
                seen[f"R stopped: {body[0][:60]}"] += 1
            if ours.warnings != r_warnings:
                bad.append("warnings")
            if status == "ERR":
                if ours.error != body[0]:
                    bad.append("error")
            elif ours.error is not None or ours.result is None:
                bad.append("error")
            else:
                n_ok += 1
                res = ours.result
                for field, text in zip(FIELDS, body, strict=False):
                    if not same_double(getattr(res, field), parse_r_double(text)):
                        bad.append(field)
                if res.k != int(body[12]):
                    bad.append("k")
                if res.iterations != int(body[13]):
                    bad.append("iterations")
            diffs.update(bad)
            if bad and len(examples) < 10:
                examples.append(f"case {i} {m} {bad}: yi={cases[i][0]} sei={cases[i][1]} R={status} {body[:3]}")
    total = len(cases) * len(METHODS)
    print(f"\n{total} rma calls ({len(cases)} inputs x {len(METHODS)} methods), {n_ok} returned results in R")
    for field in (*FIELDS, "k", "iterations", "error", "warnings"):
        print(f"  {field:>10}: {diffs[field]} differing")
    for what, count in sorted(seen.items()):
        print(f"  {count:5d} x {what}")
    assert not diffs, "\n".join(examples)
