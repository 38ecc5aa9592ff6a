"""Where the CPU of one ``ds_lmer_slma`` goes: R inside a study (``Rprof``) and Python (``cProfile``).

Study side: a ``StudyRuntime`` in this process (what a study process runs) holds the table as ``D``;
``Rprof`` samples R while the ``lmerSLMADS2`` aggregate (grammar, allow-list, R call, serialization)
runs ``--runs`` times, and ``cProfile`` the Python part of the same calls. Client side: ``cProfile`` of
``pydsbase.ds_lmer_slma`` against local study processes (their CPU is not in it; the script prints the
client's share of the CPU of all processes). Plain ``summary(lme4::lmer(...))`` on the same data frame is
timed in the same R for scale. Table loading is outside every figure (done before).

    python benchmarks/profile_lmer.py [--case small|large] [--runs 20] [--top 25]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import _common as c
from bench_lmer import case_tables

import pydsbase
from pydsbase.lmer import _combine, lmer_call_text
from pydsbase.rserialize import unserialize

# R functions whose share is printed whatever their rank: ours (the pre-check, the wire) and lme4's
SELECTED = ("c('\"lme4::lmer\"', '\"summary.merMod\"', '\".lmer_prepare\"', '\".lmer_counts\"', "
            "'\".lmer_disclosure_checks\"', '\"stats::glm\"', '\"glm.fit\"', '\"model.frame.default\"', "
            "'\"model.matrix.default\"', '\".lmer_binary_too_small\"', '\"utils::capture.output\"', "
            "'\".ds_serialize\"', '\".ds_scrub\"', '\"serialize\"', '\".ds_value\"', '\".lmer_control\"', "
            "'\"testObjExistsDS\"')")


def study_side(table: str, csv: Path, runs: int, top: int) -> None:
    from r_server.runtime import StudyRuntime

    with tempfile.TemporaryDirectory(prefix="pydsbase-prof-") as folder:
        shutil.copyfile(csv, Path(folder) / f"{table}.csv")
        runtime = StudyRuntime("study1", folder)
        sid = runtime.open_session("bench")
        runtime.assign_table(sid, "D", table)
        call = lmer_call_text(c.FORMULA, data_name="D")
        runtime.aggregate(sid, call, "rds")  # warm
        ri = runtime._bridge._ri
        r = ri.baseenv["eval"]

        def rcode(text: str) -> Any:
            return r(ri.parse(text), ri.globalenv)

        # plain lmer + summary on the same data frame, in the same R, for scale
        rcode(f"D.prof <- utils::read.csv({c.r_string(csv)})")

        def plain_once() -> None:
            rcode(f"invisible(summary(lme4::lmer({c.FORMULA}, data = D.prof)))")

        def ours_once() -> None:
            runtime.aggregate(sid, "testObjExistsDS('D')", "rds")
            runtime.aggregate(sid, call, "rds")

        # interleaved, so that load from other users falls on both alike
        spent = {plain_once: 0.0, ours_once: 0.0}
        for i in range(runs):
            for fn in (plain_once, ours_once) if i % 2 else (ours_once, plain_once):
                start = time.process_time()
                fn()
                spent[fn] += time.process_time() - start
        plain, ours = spent[plain_once] / runs, spent[ours_once] / runs
        prof_file = Path(folder) / "Rprof.out"
        profile = cProfile.Profile()
        rcode(f"Rprof({c.r_string(prof_file)}, interval = 0.002)")
        profile.enable()
        for _ in range(runs):
            ours_once()
        profile.disable()
        rcode("Rprof(NULL)")
        print(f"study, CPU per fit (testObjExistsDS + lmerSLMADS2 + serialize): {ours * 1e3:.1f} ms;"
              f" plain summary(lme4::lmer()) in the same R: {plain * 1e3:.1f} ms; ratio {ours / plain:.2f}")
        summary = rcode(
            f"utils::capture.output(local({{ s <- summaryRprof({c.r_string(prof_file)}); t <- s$by.total; "
            f"print(head(t[, c('total.pct', 'self.pct')], {top})); "
            f"cat('selected:\\n'); print(t[intersect(rownames(t), {SELECTED}), c('total.pct', 'self.pct')]); "
            f"print(s$sampling.time) }}))")
        print("Rprof, by total time (R functions, % of R's samples):")
        print("\n".join(summary))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
        print("cProfile of the study's Python (cumulative):")
        print(out.getvalue())


def client_side(table: str, csvs: list[Path], runs: int, top: int) -> None:
    with contextlib.ExitStack() as stack:
        folders = stack.enter_context(c.study_folders([{table: p} for p in csvs]))
        session = stack.enter_context(c.open_session(c.local_logins(folders)))
        session.assign_table("D", table=table)
        pids = c.study_pids(session)

        def fit() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydsbase.ds_lmer_slma(session, formula=c.FORMULA, data_name="D")

        fit()
        client0, studies0 = time.process_time(), c.process_cpu(pids)
        for _ in range(runs):
            fit()
        client, studies = time.process_time() - client0, c.process_cpu(pids) - studies0
        print(f"client CPU per fit {client / runs * 1e3:.1f} ms, studies {studies / runs * 1e3:.1f} ms"
              f" ({client / (client + studies):.0%} of all CPU in the client)")
        # the parts of the client's work: decoding the studies' answers, pooling
        raw = [conn._process.call("aggregate", sid=conn._sid(), expr_text=lmer_call_text(c.FORMULA, data_name="D"),
                                  encoding="rds") for conn in session.conns]
        start = time.process_time()
        for _ in range(runs):
            summaries = [unserialize(r) for r in raw]
        decode = (time.process_time() - start) / runs
        start = time.process_time()
        for _ in range(runs):
            _combine(summaries, True, False)
        pool = (time.process_time() - start) / runs
        print(f"of which: decoding {len(raw)} summaries {decode * 1e3:.1f} ms,"
              f" combining and pooling {pool * 1e3:.1f} ms")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(runs):
            fit()
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
        print("cProfile of the client (cumulative):")
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["small", "large"], default="small")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--side", choices=["study", "client", "both"], default="both")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    table, csvs = case_tables(opts.case, opts.data_dir)
    if opts.side in ("study", "both"):
        study_side(table, csvs[0], opts.runs, opts.top)
    if opts.side in ("client", "both"):
        client_side(table, csvs, opts.runs, opts.top)


if __name__ == "__main__":
    main()
