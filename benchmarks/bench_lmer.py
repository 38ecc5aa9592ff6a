"""Benchmark 1: ``ds_lmer_slma`` end to end (local and HTTP studies) against the same fits in plain R.

Plain R: one warm ``Rscript`` with the three tables already read by ``read.csv``; timed is
``system.time`` around ``lme4::lmer`` + ``summary`` in each study, one after the other, and the
``metafor::rma`` pooling (ML, REML, FE) of every coefficient. pydsbase: ``pydsbase.ds_lmer_slma``
through a ``pydsbase.Session`` whose study processes are warm and hold the table as ``D``; the studies
fit concurrently (one process each). Repetitions of R, local and HTTP are interleaved, the order
rotating each round. Cases: ``small`` = CLUSTER_INT1-3 (~1,000 rows each), ``large`` = the synthetic
3 x 100,000 rows, 200 doctors (``benchmarks/synth.py``; ``--rows``/``--studies`` for the scale runs:
one study of 1,000,000 rows, ten of 100,000). The betas of every study are checked equal to R's, bit
for bit. Table loading is outside every figure (done before the timed repetitions).

CPU per fit is the mean over the repetitions (total CPU / runs), the median beside it. At 100,000 rows
the CPU of one fit is bimodal: R's full collections cost ~0.2 s each (mostly marking the Matrix
namespace: `gc()` with lme4 loaded takes 0.17-0.25 s, 0.03 s in bare R) and come every one or two fits,
on a schedule set by everything the process allocated before (in one study process the same 8 fits had
4 or 8 full collections depending on one call asking R for package versions at start-up; over 30 fits
both schedules spent the same 7.3-7.4 s in collections). A median of such a sample jumps with the
schedule's phase; the mean counts each collection once, where it falls: it is the cost per fit.

With more than one study, "plain R parallel" is plain R in pydsbase's shape: one warm ``Rscript`` per
study holding its own table, the fits started at the same time, then the same pooling. pydsbase's ratios
are printed against both: the sequential one is what an R user runs; the parallel one does the same work
as the studies under the same contention (on a machine with fewer cores than studies, processes running
together each cost more CPU than alone), so its ratio is pydsbase's own overhead.

With ``--baseline REV`` the commit REV is checked out in a temporary ``git worktree`` and its study
servers (``python -m r_server`` of that tree) are one more contender, driven by this tree's client:
the study side before and after a change, measured in the same run.

    python benchmarks/bench_lmer.py [--case small|large|both] [--runs 20] [--no-http] [--rows N --studies K]
                                    [--baseline REV]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common as c
import synth

PARALLEL = "plain R parallel"

R_SETUP = """
suppressMessages({{ library(lme4); library(metafor) }});
D <- lapply(c({paths}), utils::read.csv, header = TRUE);
f <- {formula};
plain <- function() {{
  co <- lapply(D, function(d) summary(lme4::lmer(f, data = d))$coefficients);
  b <- sapply(co, function(x) x[, 1]); s <- sapply(co, function(x) x[, 2]);
  for (p in seq_len(nrow(b))) for (m in c("ML", "REML", "FE")) metafor::rma(yi = b[p, ], sei = s[p, ], method = m);
  co
}};
betas <- paste(sprintf("%a", unlist(lapply(plain(), function(x) x[, 1]))), collapse = " ");
invisible(plain())
"""


# plain R with pydsbase's shape: one warm Rscript per study holding its table, the studies fitted at the
# same time, then metafor in the first one (on the same coefficients)
R_STUDY = """
suppressMessages({{ library(lme4); library(metafor) }});
d <- utils::read.csv({path}, header = TRUE);
f <- {formula};
one <- function() summary(lme4::lmer(f, data = d))$coefficients;
invisible(one())
"""
R_POOL = """
b <- matrix(c({b}), ncol = {k}); s <- matrix(c({s}), ncol = {k});
pool <- function() for (p in seq_len(nrow(b))) for (m in c("ML", "REML", "FE"))
  metafor::rma(yi = b[p, ], sei = s[p, ], method = m);
invisible(pool())
"""


def plain_parallel(stack: contextlib.ExitStack, r: Any, csvs: list[Path]) -> Callable[[], tuple[float, float]]:
    """The "plain R, one process per study" contender: wall = the slowest study + the pooling, CPU = all."""
    procs = [stack.enter_context(c.WarmR()) for _ in csvs]
    for proc, path in zip(procs, csvs, strict=True):
        proc.run(R_STUDY.format(path=c.r_string(path), formula=c.FORMULA))
    hexes = {name: r.run(f"paste(sprintf('%a', sapply(plain(), function(x) x[, {col}])), collapse = ' ')").split()
             for name, col in (("b", 1), ("s", 2))}
    procs[0].run(R_POOL.format(b=", ".join(hexes["b"]), s=", ".join(hexes["s"]), k=len(csvs)))
    pool = concurrent.futures.ThreadPoolExecutor(len(procs))
    stack.callback(pool.shutdown)

    def run() -> tuple[float, float]:
        fits = list(pool.map(lambda proc: proc.timed("one()"), procs))
        wall, cpu = procs[0].timed("pool()")
        return max(w for w, _ in fits) + wall, sum(u for _, u in fits) + cpu

    return run


def case_tables(case: str, data_dir: Path, rows: int = 100_000, studies: int = 3) -> tuple[str, list[Path]]:
    if case == "small":
        return "CLUSTER_INT", c.CLUSTER_INT
    return "SYNTH", synth.ensure(data_dir, rows=rows, studies=studies, groups=200)


def fit(session: Any) -> Any:
    import pydsbase

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydsbase.ds_lmer_slma(session, formula=c.FORMULA, data_name="D")


def betas_of(result: Any) -> list[str]:
    matrix = result["betamatrix.valid"]
    return [float(v).hex() for v in matrix.data]


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """The commit ``rev`` checked out in a temporary git worktree (removed at the end)."""
    tree = Path(tempfile.mkdtemp(prefix="pydsbase-bench-base-")) / "tree"
    subprocess.run(["git", "-C", str(c.REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(c.REPO), "worktree", "remove", "--force", str(tree)], check=False)
        tree.parent.rmdir()


@contextlib.contextmanager
def servers_of(tree: Path) -> Iterator[None]:
    """Study servers started inside the block run ``tree``'s r_server (``python -m`` imports from the cwd)."""
    cwd, path = Path.cwd(), os.environ.get("PYTHONPATH")
    os.chdir(tree)
    os.environ["PYTHONPATH"] = str(tree)
    try:
        yield
    finally:
        os.chdir(cwd)
        if path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = path


def run_case(case: str, runs: int, http: bool, data_dir: Path, rows: int = 100_000, studies: int = 3,
             baseline: Path | None = None) -> None:
    table, csvs = case_tables(case, data_dir, rows, studies)
    rows = sum(sum(1 for _ in open(p)) - 1 for p in csvs)
    print(f"\n== case {case}: {len(csvs)} studies, {rows:,} rows in all, {c.FORMULA}")
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(c.WarmR())
        r.run(R_SETUP.format(paths=", ".join(c.r_string(p) for p in csvs), formula=c.FORMULA))
        r_betas = [float.fromhex(h).hex() for h in r.run("betas").split()]
        folders = stack.enter_context(c.study_folders([{table: p} for p in csvs]))
        contenders: dict[str, Callable[[], tuple[float, float]]] = {"plain R": lambda: r.timed("plain()")}
        if len(csvs) > 1:
            contenders[PARALLEL] = plain_parallel(stack, r, csvs)
        local = stack.enter_context(c.open_session(c.local_logins(folders)))
        sessions = {"pydsbase local": (local, c.study_pids(local))}
        if http:
            logins, pids = stack.enter_context(c.http_federation(folders))
            sessions["pydsbase HTTP"] = (stack.enter_context(c.open_session(logins)), pids)
        if baseline is not None:
            with servers_of(baseline):
                logins, pids = stack.enter_context(c.http_federation(folders))
            sessions["baseline HTTP"] = (stack.enter_context(c.open_session(logins)), pids)
        for name, (session, pids) in sessions.items():
            session.assign_table("D", table=table)
            result = fit(session)
            fit(session)
            same = betas_of(result) == r_betas
            print(f"{name}: betas of every study identical to plain R's: {'yes' if same else 'NO'}")
            contenders[name] = functools.partial(c.timed, functools.partial(fit, session), pids)
        report(contenders, runs)


def report(contenders: dict[str, Callable[[], tuple[float, float]]], runs: int) -> None:
    """Run the contenders ``runs`` times, interleaved; print wall and CPU medians and ratios to the first."""
    names = list(contenders)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:
            w, u = contenders[name]()
            wall[name].append(w)
            cpu[name].append(u)
    base = names[0]
    print(f"{'':16s} {'wall time':>9s}{'':35s}CPU time (all processes): mean (median)")
    for name in names:
        print(f"{name:16s} {c.spread(wall[name])}   {c.mean(cpu[name]) * 1e3:8.1f} ms"
              f" ({c.median(cpu[name]) * 1e3:.1f})")
    for name in names[1:]:
        ratio = c.median(wall[name]) / c.median(wall[base])
        paired = c.median([a / b for a, b in zip(wall[name], wall[base], strict=True)])
        print(f"ratio {name} / {base}: wall {ratio:.2f} (median of per-round ratios {paired:.2f});"
              f" CPU {c.mean(cpu[name]) / c.mean(cpu[base]):.2f}"
              f" (medians {c.median(cpu[name]) / c.median(cpu[base]):.2f})")
    if PARALLEL in wall:
        for name in names[1:]:
            if name != PARALLEL:
                print(f"ratio {name} / {PARALLEL}: CPU {c.mean(cpu[name]) / c.mean(cpu[PARALLEL]):.2f}"
                      f" (medians {c.median(cpu[name]) / c.median(cpu[PARALLEL]):.2f});"
                      f" wall {c.median(wall[name]) / c.median(wall[PARALLEL]):.2f}")
    if "baseline HTTP" in wall and "pydsbase HTTP" in wall:
        cpu_ratio = c.mean(cpu["pydsbase HTTP"]) / c.mean(cpu["baseline HTTP"])
        paired = c.median([a / b for a, b in zip(cpu["pydsbase HTTP"], cpu["baseline HTTP"], strict=True)])
        print(f"ratio pydsbase HTTP / baseline HTTP (this tree's servers / the baseline's): CPU {cpu_ratio:.2f}"
              f" (median of per-round ratios {paired:.2f}); wall"
              f" {c.median(wall['pydsbase HTTP']) / c.median(wall['baseline HTTP']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["small", "large", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per study of the large case")
    parser.add_argument("--studies", type=int, default=3, help="studies of the large case")
    parser.add_argument("--baseline", help="also the study servers of this commit (HTTP), same run")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    with contextlib.ExitStack() as stack:
        baseline = None if opts.baseline is None else stack.enter_context(baseline_tree(opts.baseline))
        for case in (["small", "large"] if opts.case == "both" else [opts.case]):
            run_case(case, opts.runs, not opts.no_http, opts.data_dir, opts.rows, opts.studies, baseline)


if __name__ == "__main__":
    main()
