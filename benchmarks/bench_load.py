"""Benchmark 4: loading a 1,000,000-row CSV into a study vs R's read.csv and data.table::fread.

Contenders, interleaved in one run on the same file (the synthetic generator, 14 CLUSTER columns):

- the study: ``StudyRuntime.assign_table`` of a table not read before (the study's own code path:
  ``utils::read.csv`` in its embedded R), run in this process with its table cache emptied between
  repetitions (a study reads a table once, then serves it from memory);
- plain R (one warm ``Rscript``): ``utils::read.csv``; ``data.table::fread``; and an exact candidate,
  ``fread`` for the tokenising with every non-integer column re-parsed by ``utils::type.convert`` (R's own
  number parser, as read.csv), names from read.csv.

Then every shared CSV (and the synthetic files) is read by read.csv, fread and the candidate, and the
double cells that differ from read.csv are counted (R 4.2.2's read.csv is one ulp off the correctly rounded
value in 39 cells of the shared CSVs; a loader must reproduce them to keep parity).

    python benchmarks/bench_load.py [--runs 20] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
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
compare <- function(p) {
  ref <- utils::read.csv(p);
  f <- data.table::fread(p, data.table = FALSE, showProgress = FALSE);
  e <- exact_fread(p);
  sprintf("%d|%d|%s|%d", sum(vapply(ref, is.double, logical(1))) * nrow(ref), diff_cells(ref, f),
          identical(ref, e), diff_cells(ref, e))
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "pydsbase-bench-data")
    opts = parser.parse_args()
    print(c.machine())
    (csv,) = synth.ensure(opts.data_dir, rows=opts.rows, studies=1, stem="LOAD")
    print(f"file: {csv.name}, {opts.rows:,} rows x {len(synth.COLUMNS)} columns, {csv.stat().st_size / 1e6:.0f} MB")
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(c.WarmR())
        r.run(R_SETUP)
        folder = Path(tempfile.mkdtemp(prefix="pydsbase-bench-load-"))
        stack.callback(shutil.rmtree, folder, True)
        shutil.copyfile(csv, folder / "LOAD.csv")
        from r_server.runtime import StudyRuntime

        runtime = StudyRuntime("load", folder)
        sid = runtime.open_session("bench")

        def study_load() -> float:
            runtime._tables.clear()  # the study's cache: every repetition reads the file
            if "D" in runtime.list_symbols(sid):
                runtime.rm_symbol(sid, "D")
            return c.repeat(lambda: runtime.assign_table(sid, "D", "LOAD"), 1)[0]

        path = c.r_string(folder / "LOAD.csv")
        contenders = {
            "study (read.csv)": study_load,
            "R utils::read.csv": lambda: r.elapsed(f"x <- utils::read.csv({path}); rm(x)"),
            "R data.table::fread": lambda: r.elapsed(f"x <- data.table::fread({path}, data.table = FALSE); rm(x)"),
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
            print(f"{name:28s} {c.spread(times[name])}   ratio to read.csv {ratio:.2f}")

        print("\ndouble cells differing from utils::read.csv (file: doubles, fread, exact candidate identical?):")
        files = sorted((c.SHARED / "data").rglob("*.csv")) + [csv]
        total = {"cells": 0, "fread": 0, "exact": 0}
        for path_ in files:
            cells, fread_diff, identical, exact_diff = r.run(f"compare({c.r_string(path_)})").split("|")
            total["cells"] += int(cells)
            total["fread"] += int(fread_diff)
            total["exact"] += int(exact_diff)
            print(f"  {path_.name:36s} {int(cells):9,d} doubles  fread {int(fread_diff):4d} differ"
                  f"  exact candidate identical: {identical} ({exact_diff} differ)")
        print(f"all files: {total['cells']:,} doubles; fread differs in {total['fread']}, the exact candidate in"
              f" {total['exact']}")


if __name__ == "__main__":
    main()
