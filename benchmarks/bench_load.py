"""Benchmark 4: loading a 1,000,000-row table into a study vs R's read.csv (time, exactness, memory).

Contenders, interleaved in one run on the same file (the synthetic generator, 14 CLUSTER columns):

- the study, CSV: ``StudyRuntime.assign_table`` of a table not read before (the study's own path:
  ``RBridge.read_table``, i.e. ``r_server/tables.py``), run in this process with its table cache emptied
  between repetitions (a study reads a table once, then serves it from memory);
- the study, Parquet: the same, the table as ``LOAD.parquet`` written from the study's data frame;
- plain R (one warm ``Rscript``): ``utils::read.csv`` (the baseline), ``data.table::fread`` (not exact; for
  scale) and the earlier exact candidate, ``fread`` for the tokenising with every non-integer column re-parsed
  by ``utils::type.convert`` (names from read.csv).

Then exactness: every shared CSV and the synthetic file read by the study, compared in R with
``identical()`` to read.csv's data frame (and the double cells where fread differs from read.csv counted).

Then memory (``--memory``, on by default): a fresh study process per contender (R and lme4 started, one
small table of the same format read first so that every library is loaded), its high-water mark reset
(``/proc/self/clear_refs``), then the table read; the peak above the resident size before the read, against
``object.size`` of the data frame.

    python benchmarks/bench_load.py [--runs 5] [--rows 1000000] [--no-memory]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as c
import synth

R_SETUP = r"""
suppressMessages(library(data.table));
exact_fread <- function(p) {
  typed <- data.table::fread(p, data.table = FALSE, showProgress = FALSE);
  redo <- unname(which(!vapply(typed, is.integer, logical(1))));
  if (length(redo)) {
    text <- data.table::fread(p, select = redo, colClasses = "character", data.table = FALSE, showProgress = FALSE);
    for (k in seq_along(redo)) typed[[redo[k]]] <- utils::type.convert(text[[k]], as.is = TRUE, na.strings = "NA")
  };
  names(typed) <- names(utils::read.csv(p, nrows = 1L));
  typed
};
diff_cells <- function(a, b) {
  if (!identical(dim(a), dim(b))) return(NA_integer_);
  n <- 0L;
  for (j in seq_along(a)) if (is.double(a[[j]])) {
    x <- a[[j]]; y <- as.double(b[[j]]);
    n <- n + sum(xor(is.na(x), is.na(y)) | (!is.na(x) & !is.na(y) & x != y))
  };
  n
};
fread_diff <- function(p) {
  ref <- utils::read.csv(p);
  f <- data.table::fread(p, data.table = FALSE, showProgress = FALSE);
  sprintf("%d|%d", sum(vapply(ref, is.double, logical(1))) * nrow(ref), diff_cells(ref, f))
}
"""


def peak(kind: str, path: Path, warm: Path) -> dict[str, float]:
    """In this (fresh) process: the memory high-water mark of one table read above the resident size before."""
    from r_server.rbridge import RBridge

    bridge = RBridge()
    bridge.fast_csv_bytes = 0  # the fast reader on every file, however small: it is what is measured
    bridge.read_table(warm)  # R, lme4, pyarrow loaded
    bridge.read_csv(warm)
    if path.suffix == ".parquet":  # pyarrow's Parquet reader loaded too
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as tmp:
            pq.write_table(bridge.frame_to_arrow(bridge.read_csv(warm)), Path(tmp) / "warm.parquet")
            bridge.read_table(Path(tmp) / "warm.parquet")

    def status(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(field)

    with bridge._r() as ri:
        ri.baseenv["gc"]()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = status("VmRSS")
    frame = bridge.read_csv(path) if kind == "read.csv" else bridge.read_table(path)
    high = status("VmHWM")
    with bridge._r() as ri:
        utils = ri.baseenv["asNamespace"](ri.StrSexpVector(["utils"]))
        size = float(utils["object.size"](frame.sexp)[0]) / 2**20
    return {"before": before, "peak": high - before, "size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    parser.add_argument("--peak", nargs=3, metavar=("KIND", "PATH", "WARM"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.peak:
        print(json.dumps(peak(opts.peak[0], Path(opts.peak[1]), Path(opts.peak[2]))))
        return
    print(c.machine())
    (csv,) = synth.ensure(opts.data_dir, rows=opts.rows, studies=1, stem="LOAD")
    print(f"file: {csv.name}, {opts.rows:,} rows x {len(synth.COLUMNS)} columns, {csv.stat().st_size / 1e6:.0f} MB")
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(c.WarmR())
        r.run(R_SETUP)
        folder = Path(tempfile.mkdtemp(prefix="pydsbase-bench-load-"))
        stack.callback(shutil.rmtree, folder, True)
        shutil.copyfile(csv, folder / "LOAD.csv")
        import pyarrow.parquet as pq

        from r_server.runtime import StudyRuntime

        runtime = StudyRuntime("load", folder)
        bridge = runtime._bridge
        bridge.fast_csv_bytes = 0  # the fast reader on every file (the small shared ones too): it is what is measured
        frame = bridge.read_table(folder / "LOAD.csv")
        (folder / "P").mkdir()
        pq.write_table(bridge.frame_to_arrow(frame), folder / "P" / "LOAD.parquet")
        parquet_identical = _identical(bridge, bridge.read_table(folder / "P" / "LOAD.parquet"), frame)
        del frame
        sid = runtime.open_session("bench")

        def study_load(table: str) -> float:
            runtime._tables.clear()  # the study's cache: every repetition reads the file
            if "D" in runtime.list_symbols(sid):
                runtime.rm_symbol(sid, "D")
            return c.repeat(lambda: runtime.assign_table(sid, "D", table), 1)[0]

        path = c.r_string(folder / "LOAD.csv")
        contenders = {
            "study, CSV (r_server/tables.py)": lambda: study_load("LOAD"),
            "study, Parquet": lambda: study_load("P.LOAD"),
            "R utils::read.csv": lambda: r.elapsed(f"x <- utils::read.csv({path}); rm(x)"),
            "R data.table::fread (not exact)":
                lambda: r.elapsed(f"x <- data.table::fread({path}, data.table = FALSE); rm(x)"),
            "R exact fread+type.convert": lambda: r.elapsed(f"x <- exact_fread({path}); rm(x)"),
        }
        for fn in contenders.values():
            fn()  # warm-up (file in the page cache, code compiled)
        names = list(contenders)
        times: dict[str, list[float]] = {name: [] for name in names}
        for i in range(opts.runs):
            for name in names[i % len(names):] + names[:i % len(names)]:
                times[name].append(contenders[name]())
        base = times["R utils::read.csv"]
        for name in names:
            ratio = c.median(times[name]) / c.median(base)
            print(f"{name:34s} {c.spread(times[name])}   ratio to read.csv {ratio:.2f}")

        print("\nexactness: the study's data frame identical() to read.csv's (and fread's differing doubles):")
        files = sorted((c.SHARED / "data").rglob("*.csv")) + [folder / "LOAD.csv"]
        total = {"cells": 0, "fread": 0, "identical": 0}
        for path_ in files:
            same = _identical(bridge, bridge.read_table(path_), bridge.read_csv(path_))
            cells, fread_diff = r.run(f"fread_diff({c.r_string(path_)})").split("|")
            total["cells"] += int(cells)
            total["fread"] += int(fread_diff)
            total["identical"] += same
            print(f"  {path_.name:36s} {int(cells):9,d} doubles  study identical: {same}"
                  f"  fread: {int(fread_diff)} differ")
        print(f"all {len(files)} files: {total['cells']:,} doubles; the study identical on {total['identical']} of"
              f" {len(files)}; fread differs in {total['fread']} cells")
        print(f"Parquet written from the study's frame read back identical: {parquet_identical}")

    if opts.memory:
        print("\npeak memory of one read in a fresh study process, above its resident size before the read:")
        warm = sorted((c.SHARED / "data" / "CLUSTER").glob("*.csv"))[0]
        parquet = Path(tempfile.mkdtemp(prefix="pydsbase-bench-load-")) / "LOAD.parquet"
        try:
            from r_server.rbridge import default_bridge

            pq.write_table(default_bridge().frame_to_arrow(default_bridge().read_table(csv)), parquet)
            for kind, target in (("study, CSV", csv), ("study, Parquet", parquet), ("read.csv", csv)):
                out = subprocess.run([sys.executable, __file__, "--peak", kind, str(target), str(warm)],
                                     capture_output=True, text=True, check=True)
                m = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"  {kind:16s} +{m['peak']:7.1f} MiB over {m['before']:.0f} MiB; object.size {m['size']:.1f} MiB:"
                      f" {m['peak'] / m['size']:.2f}x")
        finally:
            shutil.rmtree(parquet.parent, ignore_errors=True)


def _identical(bridge: object, a: object, b: object) -> bool:
    with bridge._r() as ri:  # type: ignore[attr-defined]
        return bool(ri.baseenv["identical"](a.sexp, b.sexp)[0])  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
