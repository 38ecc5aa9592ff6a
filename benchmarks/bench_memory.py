"""Benchmark 6: peak memory of each study process on the large case vs plain R doing the same work.

``--studies`` local study processes (``pydsbase.LocalDriver``; 3) and as many HTTP study servers
(``python -m r_server``), study i holding synthetic table i of ``--rows`` rows (100,000), each load it
as ``D`` and fit ``ds_lmer_slma`` (BMI ~ trtGrp + Male + (1|idDoctor)) up to the largest number in
``--fits`` (3,10). Reported per study: the peak resident memory (``VmHWM`` of the process and its
children, from ``/proc``), the same for a study process that has only started (R and lme4 loaded, no
table), and their difference, after each number of fits in ``--fits`` (the peak only grows, so one run
gives every one).

Plain R does one study's work (``library(lme4)``, then ``read.csv`` of table i and the same fits of
``summary(lmer())``), once per table, each in a fresh process, in two forms: typed into a warm ``Rscript``
(the line loop of ``_common.WarmR``) and as an ``Rscript file.R``. The forms run the same R calls, yet
after 3 fits their peaks differ by ~40% (78 vs 111 MiB at 100,000 rows, the same on every table): R frees
garbage at its collections, whose schedule depends on everything the process allocated before, so the
peak of identical work moves with it (one more `gc()` after loading lme4 moves the file form's to 70).
By 10 fits every contender has met its highest point of the cycle (both forms 115-119 MiB in every run). Ratios are
printed against both forms (medians over the tables) after each number of fits.

    python benchmarks/bench_memory.py [--fits 3,10] [--rows 100000] [--studies 3]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
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


# one study's work in a plain ``Rscript file.R``: its own VmHWM growth after lme4 is loaded, in MiB
R_FILE = """
hwm <- function() {{
  line <- grep("^VmHWM:", readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(line, "[[:space:]]+")[[1]][2]) / 1024
}}
suppressMessages(library(lme4)); started <- hwm()
D <- utils::read.csv({path})
grown <- numeric(0)
for (i in seq_len({fits})) {{
  invisible(summary(lme4::lmer({formula}, data = D)))
  grown[i] <- hwm() - started
}}
cat(as.numeric(object.size(D)) / 2^20, grown[c({checkpoints})], "\\n")
"""


def plain_loop(csv: Path, checkpoints: list[int]) -> list[float]:
    """Peak - started of one study's work typed into a fresh warm ``Rscript``, after each checkpoint (MiB)."""
    grown = []
    with c.WarmR() as r:
        r.run("suppressMessages(library(lme4)); 0")
        started = peak_mb([r.proc.pid])
        r.run(f"D <- utils::read.csv({c.r_string(csv)}); 0")
        for fit in range(1, checkpoints[-1] + 1):
            r.run(f"invisible(summary(lme4::lmer({c.FORMULA}, data = D))); 0")
            if fit in checkpoints:
                grown.append(peak_mb([r.proc.pid]) - started)
    return grown


def plain_file(csv: Path, checkpoints: list[int]) -> tuple[list[float], float]:
    """Peak - started of one study's work as ``Rscript file.R`` after each checkpoint (MiB), and
    ``object.size(D)`` (MiB)."""
    with tempfile.TemporaryDirectory(prefix="pydsbase-bench-r-") as folder:
        script = Path(folder) / "work.R"
        script.write_text(R_FILE.format(path=c.r_string(csv), fits=checkpoints[-1], formula=c.FORMULA,
                                        checkpoints=", ".join(map(str, checkpoints))))
        out = subprocess.run(["Rscript", "--vanilla", str(script)], capture_output=True, text=True, check=True)
    size, *grown = (float(v) for v in out.stdout.split())
    return grown, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", default="3,10", help="numbers of fits after which the peak is read")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    csvs = synth.ensure(opts.data_dir, rows=opts.rows, studies=opts.studies, groups=200)
    warnings.simplefilter("ignore")
    checkpoints = sorted({int(n) for n in opts.fits.split(",")})
    # grown[contender][k][i]: peak - started after checkpoints[k] fits, table i
    grown: dict[str, list[list[float]]] = {}
    loops = [plain_loop(p, checkpoints) for p in csvs]
    grown["plain R, warm loop"] = [list(per_fit) for per_fit in zip(*loops, strict=True)]
    files = [plain_file(p, checkpoints) for p in csvs]
    grown["plain R, Rscript file"] = [list(per_fit) for per_fit in zip(*(g for g, _ in files), strict=True)]
    sizes = [s for _, s in files]
    with contextlib.ExitStack() as stack:
        folders = stack.enter_context(c.study_folders([{"SYNTH": p} for p in csvs]))
        local = stack.enter_context(c.open_session(c.local_logins(folders)))
        logins, server_pids = stack.enter_context(c.http_federation(folders))
        http = stack.enter_context(c.open_session(logins))
        for label, session, pids in (("pydsbase local", local, [[p] for p in c.study_pids(local)]),
                                     ("pydsbase HTTP", http, [c.with_descendants([p]) for p in server_pids])):
            session.ls()  # every study has started R (local studies start it with the first session)
            idle = [peak_mb(p) for p in pids]
            session.assign_table("D", table="SYNTH")
            grown[label] = []
            for fit in range(1, checkpoints[-1] + 1):
                pydsbase.ds_lmer_slma(session, formula=c.FORMULA, data_name="D")
                if fit in checkpoints:
                    grown[label].append([peak_mb(p) - a for p, a in zip(pids, idle, strict=True)])
            print(f"{label}: peak per study {', '.join(f'{peak_mb(p):.0f}' for p in pids)} MiB"
                  f" (started, no table: {', '.join(f'{a:.0f}' for a in idle)} MiB)")
    print(f"table: {opts.rows:,} rows x {len(synth.COLUMNS)} columns per study; R object.size(D):"
          f" {', '.join(f'{s:.1f}' for s in sizes)} MiB")
    for k, fits in enumerate(checkpoints):
        print(f"peak - started after {fits} fits, MiB, per table (median):")
        for label, values in grown.items():
            print(f"  {label:22s} {', '.join(f'{v:5.0f}' for v in values[k])}   ({c.median(values[k]):.0f})")
        for label in ("pydsbase local", "pydsbase HTTP"):
            ratios = "; ".join(
                f"/ {base}: {c.median(grown[label][k]) / c.median(grown[base][k]):.2f}"
                for base in ("plain R, warm loop", "plain R, Rscript file"))
            print(f"  ratio {label} {ratios}")


if __name__ == "__main__":
    main()
