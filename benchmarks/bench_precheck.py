"""Benchmark: the lmer disclosure pre-check alone (``.lmer_prepare``), this tree against a baseline commit.

Each tree's ``r_server/R`` files are sourced into a fresh ``Rscript`` (one process per measurement, the
trees alternating over ``--rounds``) holding one synthetic table of ``--rows`` rows as ``D``; after one
``lmer`` fit and three warm-up calls, ``--calls`` calls of ``.lmer_prepare`` (BMI ~ trtGrp + Male +
(1|idDoctor)) are timed: CPU per call and the garbage collection in it (``gc.time``). The claim is the
ratio this / baseline, medians over rounds. The baseline commit is checked out in a temporary
``git worktree`` (removed at the end).

    python benchmarks/bench_precheck.py [--baseline 843815e] [--rows 100000] [--calls 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import tempfile
from pathlib import Path

import _common as c
import synth
from bench_lmer import baseline_tree

R_PROBE = """
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
srv <- new.env()
for (f in sort(Sys.glob(file.path(args[1], "r_server", "R", "*.R")))) sys.source(f, envir = srv, keep.source = FALSE)
session <- new.env(parent = globalenv())
assign("D", utils::read.csv(args[2]), envir = session)
srv$.ds_ctx$session <- session
srv$.ds_ctx$settings <- list(nfilter.tab = 3, nfilter.glm = 0.33)
f <- stats::as.formula("BMI ~ trtGrp + Male + (1|idDoctor)", env = session)
invisible(summary(lme4::lmer(f, data = get("D", envir = session))))
prepare <- function() srv$.lmer_prepare(f, NULL, NULL, "D", NULL, NULL, NULL)
for (i in 1:3) prepare()
calls <- as.integer(args[3])
g0 <- gc.time()[[1]]; t0 <- proc.time()
for (i in seq_len(calls)) prepare()
t1 <- proc.time(); g1 <- gc.time()[[1]]
cat(sum((t1 - t0)[1:2]) / calls, (g1 - g0) / calls, "\\n")
"""


def measure(tree: Path, probe: Path, table: Path, calls: int) -> tuple[float, float]:
    out = subprocess.run(["Rscript", "--vanilla", str(probe), str(tree), str(table), str(calls)],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="843815e")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    table = synth.ensure(opts.data_dir, rows=opts.rows, studies=1, groups=200)[0]
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(baseline_tree(opts.baseline))
        probe = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pydsbase-precheck-"))) / "probe.R"
        probe.write_text(R_PROBE)
        trees = {"this tree": c.REPO, f"baseline {opts.baseline}": base}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for i in range(opts.rounds):
            for name in list(trees)[i % 2:] + list(trees)[:i % 2]:
                figures[name].append(measure(trees[name], probe, table, opts.calls))
    print(f"\n.lmer_prepare on {opts.rows:,} rows, {opts.calls} calls per process, {opts.rounds} rounds (medians):")
    for name, values in figures.items():
        cpu = statistics.median(v[0] for v in values) * 1e3
        gc = statistics.median(v[1] for v in values) * 1e3
        print(f"{name:24s} CPU {cpu:7.1f} ms per call, of which garbage collection {gc:6.1f} ms")
    this, base_name = list(figures)
    ratio = statistics.median(v[0] for v in figures[this]) / statistics.median(v[0] for v in figures[base_name])
    print(f"ratio this / baseline: CPU {ratio:.2f}")


if __name__ == "__main__":
    main()
