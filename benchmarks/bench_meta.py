"""Benchmark: pydsbase.meta against metafor::rma on the same perturbed inputs, in one run.

The workload is ds.lmerSLMA's pooling: 10 coefficients x 5 studies, each pooled with ML, REML and
FE, repeated ``--reps`` times with freshly perturbed betas and standard errors. Python pools each
repetition with :func:`pydsbase.pooling.pool_slma` (vectorised over coefficients); R fits the
same inputs with ``metafor::rma`` inside one warm Rscript process (timed after a warm-up). Both
sides' pooled numbers are compared bit for bit. Prints per-call times and the ratio.

    python benchmarks/bench_meta.py [--reps 300]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from pydsbase.pooling import pool_slma

N_COEF, N_STUDY, METHODS = 10, 5, ("ML", "REML", "FE")

R_CODE = r"""
args <- commandArgs(trailingOnly = TRUE)
reps <- as.integer(args[3]); nc <- as.integer(args[4]); ns <- as.integer(args[5])
b <- matrix(as.numeric(readLines(args[1])), ncol = ns, byrow = TRUE)
s <- matrix(as.numeric(readLines(args[2])), ncol = ns, byrow = TRUE)
run <- function() {
  out <- character(reps * nc * 6); j <- 0
  for (r in seq_len(reps)) for (p in seq_len(nc)) {
    i <- (r - 1) * nc + p
    for (m in c("ML", "REML", "FE")) {
      f <- metafor::rma(yi = b[i, ], sei = s[i, ], method = m)
      out[j + 1] <- sprintf("%a", c(f$beta)); out[j + 2] <- sprintf("%a", f$se); j <- j + 2
    }
  }
  out
}
invisible(metafor::rma(yi = b[1, ], sei = s[1, ], method = "REML"))
t0 <- proc.time()[["elapsed"]]
out <- run()
t1 <- proc.time()[["elapsed"]]
cat(t1 - t0, "\n", file = args[6])
writeLines(out, args[7])
"""


def inputs(reps: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(reps * N_COEF, N_STUDY) betas and ses: one base table, perturbed per repetition."""
    rng = np.random.default_rng(seed)
    base_b = rng.normal(0, 2, (N_COEF, 1)) + rng.normal(0, 0.3, (N_COEF, N_STUDY))
    base_s = rng.uniform(0.05, 0.6, (N_COEF, N_STUDY))
    b = np.concatenate([base_b * (1 + 0.05 * rng.normal(size=base_b.shape)) for _ in range(reps)])
    s = np.concatenate([base_s * (1 + 0.05 * rng.normal(size=base_s.shape)) for _ in range(reps)])
    return b, s


def time_python(b: np.ndarray, s: np.ndarray, reps: int) -> tuple[float, list[str]]:
    pool_slma(None, b[:N_COEF].tolist(), s[:N_COEF].tolist())  # warm-up
    rows_b = [b[r * N_COEF:(r + 1) * N_COEF].tolist() for r in range(reps)]
    rows_s = [s[r * N_COEF:(r + 1) * N_COEF].tolist() for r in range(reps)]
    t0 = time.perf_counter()
    pooled = [pool_slma(None, rb, rs) for rb, rs in zip(rows_b, rows_s, strict=True)]
    elapsed = time.perf_counter() - t0
    out = []
    for p in pooled:
        for i in range(N_COEF):
            for m in METHODS:
                fit = p.results[m][i]
                out += [fit.beta.hex(), fit.se.hex()]
    return elapsed, out


def time_r(b: np.ndarray, s: np.ndarray, reps: int) -> tuple[float, list[str]]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise SystemExit("Rscript not found: the benchmark needs R with metafor")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "b.txt").write_text("\n".join(v.hex() for v in b.ravel()) + "\n")
        (d / "s.txt").write_text("\n".join(v.hex() for v in s.ravel()) + "\n")
        (d / "bench.R").write_text(R_CODE)
        subprocess.run([rscript, str(d / "bench.R"), str(d / "b.txt"), str(d / "s.txt"), str(reps), str(N_COEF),
                        str(N_STUDY), str(d / "time.txt"), str(d / "out.txt")], check=True, capture_output=True)
        return float((d / "time.txt").read_text()), (d / "out.txt").read_text().split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    reps = parser.parse_args().reps
    warnings.simplefilter("ignore")  # metafor's ll0check warnings, identical on both sides
    b, s = inputs(reps)
    calls = reps * N_COEF * len(METHODS)
    py_time, py_out = time_python(b, s, reps)
    r_time, r_out = time_r(b, s, reps)
    same = sum(float.fromhex(x) == float.fromhex(y) for x, y in zip(py_out, r_out, strict=True))
    print(f"{reps} repetitions x {N_COEF} coefficients x {N_STUDY} studies x {len(METHODS)} methods"
          f" = {calls} rma calls")
    print(f"python (pydsbase.pooling.pool_slma): {py_time * 1e3 / calls:.4f} ms per rma call ({py_time:.2f} s)")
    print(f"R (metafor::rma, warm process):      {r_time * 1e3 / calls:.4f} ms per rma call ({r_time:.2f} s)")
    print(f"speed-up: {r_time / py_time:.1f}x; identical beta/se doubles: {same} of {len(r_out)}")


if __name__ == "__main__":
    main()
