"""Benchmark 5: pooling throughput, pydsbase (pure Python) vs metafor::rma in a warm R, same inputs.

The workload of ``bench_meta.py`` (ds.lmerSLMA's pooling: 10 coefficients x 5 studies, each pooled by
ML, REML and FE, ``--reps`` perturbed repetitions per batch), timed as ``--runs`` batches per side,
interleaved; R runs in one warm ``Rscript`` with the inputs loaded (``system.time`` around the rma
calls only). Every pooled estimate and standard error is compared bit for bit.

    python benchmarks/bench_pooling.py [--runs 20] [--reps 20]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import _common as c
from bench_meta import METHODS, N_COEF, N_STUDY, inputs

from pydsbase.pooling import pool_slma

R_SETUP = """
b <- matrix(as.numeric(readLines({b})), ncol = {ns}, byrow = TRUE);
s <- matrix(as.numeric(readLines({s})), ncol = {ns}, byrow = TRUE);
pool <- function() {{
  out <- character(nrow(b) * 6L); j <- 0L;
  for (i in seq_len(nrow(b))) for (m in c("ML", "REML", "FE")) {{
    f <- metafor::rma(yi = b[i, ], sei = s[i, ], method = m);
    out[j + 1L] <- sprintf("%a", c(f$beta)); out[j + 2L] <- sprintf("%a", f$se); j <- j + 2L
  }};
  out
}};
pooled <- pool()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reps", type=int, default=20)
    opts = parser.parse_args()
    print(c.machine())
    warnings.simplefilter("ignore")  # metafor's ll0check warnings, identical on both sides
    b, s = inputs(opts.reps)
    calls = opts.reps * N_COEF * len(METHODS)
    rows_b = [b[r * N_COEF:(r + 1) * N_COEF].tolist() for r in range(opts.reps)]
    rows_s = [s[r * N_COEF:(r + 1) * N_COEF].tolist() for r in range(opts.reps)]

    def python_batch() -> list[str]:
        out = []
        for pooled in [pool_slma(None, rb, rs) for rb, rs in zip(rows_b, rows_s, strict=True)]:
            for i in range(N_COEF):
                for m in METHODS:
                    fit = pooled.results[m][i]
                    out += [fit.beta.hex(), fit.se.hex()]
        return out

    with tempfile.TemporaryDirectory() as tmp, c.WarmR() as r:
        d = Path(tmp)
        (d / "b.txt").write_text("\n".join(v.hex() for v in b.ravel()) + "\n")
        (d / "s.txt").write_text("\n".join(v.hex() for v in s.ravel()) + "\n")
        r.run(R_SETUP.format(b=c.r_string(d / "b.txt"), s=c.r_string(d / "s.txt"), ns=N_STUDY))
        r_out = r.run('paste(pooled, collapse = " ")').split()
        py_out = python_batch()
        same = sum(float.fromhex(x) == float.fromhex(y) for x, y in zip(py_out, r_out, strict=True))
        py_times: list[float] = []
        r_times: list[float] = []
        for i in range(opts.runs):
            if i % 2:
                r_times.append(r.elapsed("pool()"))
            py_times += c.repeat(python_batch, 1)
            if not i % 2:
                r_times.append(r.elapsed("pool()"))
    print(f"{opts.reps} repetitions x {N_COEF} coefficients x {N_STUDY} studies x {len(METHODS)} methods"
          f" = {calls} rma fits per batch, {opts.runs} batches per side")
    py, rr = c.median(py_times), c.median(r_times)
    print(f"pydsbase.pooling.pool_slma  {c.spread(py_times)}  = {calls / py:8.0f} fits/s")
    print(f"metafor::rma (warm R)       {c.spread(r_times)}  = {calls / rr:8.0f} fits/s")
    print(f"ratio pydsbase / metafor time: {py / rr:.2f} (throughput {rr / py:.1f}x);"
          f" identical beta/se doubles: {same} of {len(r_out)}")


if __name__ == "__main__":
    main()
