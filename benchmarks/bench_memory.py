"""Benchmark 6: peak memory of each study process on the large case vs R's own object.size.

``--studies`` local study processes (``pydsbase.LocalDriver``; 3) and as many HTTP study servers
(``python -m r_server``) each load their synthetic table of ``--rows`` rows (100,000) as ``D`` and fit
``ds_lmer_slma`` (BMI ~ trtGrp + Male + (1|idDoctor)) ``--fits`` times. Reported per study: the peak
resident memory (``VmHWM`` of the process and its children, from ``/proc``), the same for a study process
that has only started (R and lme4 loaded, no table), and ``object.size(D)`` of the table in R. For scale,
one fresh plain ``Rscript`` doing one study's work (read study 1's table, fit it ``--fits`` times).

    python benchmarks/bench_memory.py [--fits 3] [--rows 100000] [--studies 3]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import warnings
from pathlib import Path

import _common as c
import synth

import pydsbase


def peak_mb(pids: list[int], field: str = "VmHWM") -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    csvs = synth.ensure(opts.data_dir, rows=opts.rows, studies=opts.studies, groups=200)
    warnings.simplefilter("ignore")
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(c.WarmR())
        r.run("suppressMessages(library(lme4)); 0")
        r_idle = peak_mb([r.proc.pid])
        sizes = []
        for i, p in enumerate(csvs):
            sizes.append(float(r.run(f"D <- utils::read.csv({c.r_string(p)}); as.numeric(object.size(D))")) / 2**20)
            if i == 0:
                for _ in range(opts.fits):
                    r.run("invisible(summary(lme4::lmer(BMI ~ trtGrp + Male + (1|idDoctor), data = D))); 0")
                r_peak = peak_mb([r.proc.pid])
        folders = stack.enter_context(c.study_folders([{"SYNTH": p} for p in csvs]))
        local = stack.enter_context(c.open_session(c.local_logins(folders)))
        logins, server_pids = stack.enter_context(c.http_federation(folders))
        http = stack.enter_context(c.open_session(logins))
        rows = []
        for label, session, pids in (("local", local, [[p] for p in c.study_pids(local)]),
                                     ("HTTP", http, [c.with_descendants([p]) for p in server_pids[:3]])):
            session.ls()  # every study has started R (local studies start it with the first session)
            idle = [peak_mb(p) for p in pids]
            session.assign_table("D", table="SYNTH")
            for _ in range(opts.fits):
                pydsbase.ds_lmer_slma(session, formula=c.FORMULA, data_name="D")
            rows.append((label, idle, [peak_mb(p) for p in pids], [peak_mb(p, "VmRSS") for p in pids]))
    print(f"table: {opts.rows:,} rows x {len(synth.COLUMNS)} columns per study; R object.size(D):"
          f" {', '.join(f'{s:.1f}' for s in sizes)} MiB")
    for label, idle, peak, rss in rows:
        for i, (a, b, now) in enumerate(zip(idle, peak, rss, strict=True)):
            print(f"{label:5s} study{i + 1}: peak {b:6.0f} MiB (started, no table: {a:4.0f} MiB; now {now:4.0f} MiB);"
                  f" peak - started = {b - a:5.0f} MiB = {(b - a) / sizes[i]:.1f}x object.size(D)")
    print(f"plain Rscript, one study's work: peak {r_peak:.0f} MiB (lme4 loaded, no table: {r_idle:.0f} MiB);"
          f" peak - started = {r_peak - r_idle:.0f} MiB = {(r_peak - r_idle) / sizes[0]:.1f}x object.size(D)")


if __name__ == "__main__":
    main()
