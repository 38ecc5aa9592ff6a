"""pydsbase._rmath's pchisq_upper and pnorm_upper against R's pchisq/pnorm, bit for bit.

One Rscript run computes ``pchisq(q, df, lower.tail = FALSE)`` and ``pnorm(x, lower.tail = FALSE)``
for every input (hex floats in and out, through files; R also echoes each input so a parsing
slip cannot go unnoticed). The chi-square inputs cover df = 1..60 and larger degrees of freedom
(the large ones reach pgamma's asymptotic ppois_asymp branch), q = 0, denormals, tiny values,
both sides of every branch boundary of R's pgamma_raw, values around df, far tails where the
result underflows to 0, +-Inf and NaN, plus seeded random draws. Every result must be the same
double as R's (NaN matches NaN).
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
from rdoubles import parse_r_double, same_double

from pydsbase._rmath import pchisq_upper, pnorm_upper

pytestmark = pytest.mark.needs_r

N_RANDOM = 4000
DFS = [*range(1, 61), 61, 99, 100, 101, 390, 391, 392, 393, 400, 500, 1000, 2000, 10_000, 100_000]

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
hx <- function(x) ifelse(is.na(x) & !is.nan(x), "NA", sprintf("%a", x))
chi <- read.table(args[1], colClasses = c("character", "integer"), col.names = c("q", "df"))
q <- as.numeric(chi$q)
writeLines(paste(hx(q), hx(pchisq(q, chi$df, lower.tail = FALSE))), args[3])
x <- as.numeric(readLines(args[2]))
writeLines(paste(hx(x), hx(pnorm(x, lower.tail = FALSE))), args[4])
"""


def _nudge(v: float) -> list[float]:
    """v and its two neighbouring doubles."""
    return [math.nextafter(v, -math.inf), v, math.nextafter(v, math.inf)]


def chisq_inputs() -> list[tuple[float, int]]:
    fixed = [0.0, -0.0, -1.0, -math.inf, math.inf, math.nan, 5e-324, 1e-320, 2.2250738585072014e-308, 1e-300,
             1e-200, 1e-100, 1e-50, 1e-20, 1e-15, 1e-10, 1e-5, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.99, 1.0,
             1.5, 3.0, 5.0, 7.5, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 1400.0, 1417.0, 1450.0,
             1500.0, 2000.0, 5000.0, 1e4, 1e5, 1e6, 1e8, 1e10, 1e15, 1e20, 1e40, 1e100, 1e300, 1.7976931348623157e308,
             *_nudge(2.0)]  # q = 2 is pgamma's x = 1 (series for x < 1)
    cases: list[tuple[float, int]] = []
    for df in DFS:
        qs = list(fixed)
        for c in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0, 1.01, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0,
                  5.0, 10.0):
            qs.append(df * c)
        for d in (-4, -2, -1, 1, 2, 4):
            qs.append(float(df + d))
        # Branch boundaries of pgamma_raw at x = q/2, alph = df/2: x <= alph - 1, x < 0.8 (alph + 50),
        # alph < 0.8 (x + 50); and q where the result nears underflow (res < DBL_MIN / DBL_EPSILON).
        for b in (float(df - 2), 0.8 * (df + 100), df / 0.8 - 100):
            if b > 0:
                qs += _nudge(b)
        cases += [(q, df) for q in qs]
    rng = np.random.default_rng(20240612)
    for _ in range(N_RANDOM):
        df = int(rng.integers(1, 61)) if rng.random() < 0.85 else int(rng.choice([75, 150, 450, 800, 3000]))
        style = rng.random()
        if style < 0.5:
            q = df * math.exp(rng.normal(0, 0.5))  # around df: the usual QE
        elif style < 0.8:
            q = 10.0 ** rng.uniform(-12, 4)
        else:
            q = df + 10.0 ** rng.uniform(0, 4.2)  # far upper tail, down to underflow
        cases.append((q, df))
    return cases


def pnorm_inputs() -> list[float]:
    xs = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e-300, 1e-17, 1e-16, 1e-10, 0.1, 0.5, 1.0, 1.96,
          2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 37.0, 38.0, 40.0, 1e3, 1e300]
    for b in (0.67448975, 5.656854249492380195206754896838, 8.2924, 37.5193, 1.1102230246251565e-16):
        xs += _nudge(b)
    xs += [-x for x in xs]
    rng = np.random.default_rng(99)
    xs += rng.normal(0, 3, 1000).tolist() + (10.0 ** rng.uniform(-8, 1.6, 500)).tolist()
    return xs


def _hex(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Inf" if x == math.inf else "-Inf" if x == -math.inf else x.hex())


@pytest.fixture(scope="module")
def r_answers(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[str]], list[list[str]]]:
    tmp = tmp_path_factory.mktemp("rmath")
    (tmp / "chi.txt").write_text("".join(f"{_hex(q)} {df}\n" for q, df in chisq_inputs()))
    (tmp / "norm.txt").write_text("".join(f"{_hex(x)}\n" for x in pnorm_inputs()))
    (tmp / "run.R").write_text(R_SCRIPT)
    rscript = shutil.which("Rscript")
    assert rscript is not None
    paths = [str(tmp / n) for n in ("run.R", "chi.txt", "norm.txt", "chi_out.txt", "norm_out.txt")]
    subprocess.run([rscript, *paths], check=True, timeout=600, capture_output=True)
    chi = [ln.split(" ") for ln in (tmp / "chi_out.txt").read_text().splitlines()]
    norm = [ln.split(" ") for ln in (tmp / "norm_out.txt").read_text().splitlines()]
    return chi, norm


def test_pchisq_upper_matches_r_bit_for_bit(r_answers: tuple[list[list[str]], list[list[str]]]) -> None:
    cases = chisq_inputs()
    chi, _ = r_answers
    assert len(chi) == len(cases)
    bad: list[str] = []
    for (q, df), (echo, r_val) in zip(cases, chi, strict=True):
        assert same_double(parse_r_double(echo), q), f"R read {echo} for {q.hex()}"
        ours = float(pchisq_upper(np.array([q]), df)[0])
        if not same_double(ours, parse_r_double(r_val)):
            bad.append(f"pchisq({q!r}, {df}): ours {_hex(ours)}, R {r_val}")
    # Vectorised call over one df gives the same doubles as the scalar calls.
    qs = np.array([q for q, df in cases if df == 7])
    want = [parse_r_double(v) for (q, df), (_, v) in zip(cases, chi, strict=True) if df == 7]
    assert all(same_double(float(a), b) for a, b in zip(pchisq_upper(qs, 7), want, strict=True))
    n_zero = sum(parse_r_double(v) == 0.0 for _, v in chi)
    print(f"\npchisq: {len(cases)} inputs ({n_zero} underflow to 0 in R), {len(cases) - len(bad)} bit-identical")
    assert not bad, "\n".join(bad[:20])


def test_pnorm_upper_matches_r_bit_for_bit(r_answers: tuple[list[list[str]], list[list[str]]]) -> None:
    xs = pnorm_inputs()
    _, norm = r_answers
    assert len(norm) == len(xs)
    ours = pnorm_upper(np.array(xs))
    bad = []
    for x, mine, (echo, r_val) in zip(xs, ours, norm, strict=True):
        assert same_double(parse_r_double(echo), x), f"R read {echo} for {x.hex()}"
        if not same_double(float(mine), parse_r_double(r_val)):
            bad.append(f"pnorm({x!r}): ours {_hex(float(mine))}, R {r_val}")
    print(f"\npnorm: {len(xs)} inputs, {len(xs) - len(bad)} bit-identical")
    assert not bad, "\n".join(bad[:20])
