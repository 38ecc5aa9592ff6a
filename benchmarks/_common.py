"""What the benchmark scripts share: a warm R process, study folders, sessions, medians, the machine.

Every script measures pydsbase and plain R side by side in one run, interleaving their repetitions
(alternating which goes first) so that load from other users of the machine falls on both alike;
the ratios are the claims, the absolute times only context.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PYDSBASE_SHARED", "/work/shared"))
CLUSTER_INT = [SHARED / "data" / "CLUSTER" / f"CLUSTER_INT{i}.csv" for i in (1, 2, 3)]
FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"

# The R side of WarmR: one line of R in, one line out (the value, or "ERROR: message").
_R_LOOP = r"""
options(warn = 1)
con <- file("stdin", open = "r")
repeat {
  line <- readLines(con, n = 1L)
  if (length(line) == 0L) break
  out <- tryCatch(paste(format(eval(parse(text = line), envir = globalenv()), digits = 17), collapse = " "),
                  error = function(e) paste("ERROR:", conditionMessage(e)))
  cat(gsub("\n", " ", out, fixed = TRUE), "\n", sep = "")
  flush(stdout())
}
"""


class WarmR:
    """One long-lived ``Rscript`` process: load data once, then time code inside it on demand."""

    def __init__(self) -> None:
        rscript = shutil.which("Rscript")
        if rscript is None:
            raise SystemExit("Rscript not found: the benchmarks compare with plain R")
        self._dir = Path(tempfile.mkdtemp(prefix="pydsbase-bench-r-"))
        (self._dir / "loop.R").write_text(_R_LOOP)
        # its own session, as an R user's terminal: with Linux's autogroup scheduling the plain R process
        # gets one group's CPU share, like the client and its local studies together (HTTP study
        # servers are started in sessions of their own by the launcher)
        self.proc = subprocess.Popen([rscript, "--vanilla", str(self._dir / "loop.R")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)

    def run(self, code: str) -> str:
        """Evaluate one line of R in the process's global environment; its value, formatted."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(code.replace("\n", " ") + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().rstrip("\n")
        if line.startswith("ERROR:") or not line and self.proc.poll() is not None:
            raise RuntimeError(f"R failed on {code[:80]!r}: {line or 'process ended'}")
        return line

    def elapsed(self, code: str) -> float:
        """The elapsed seconds of :meth:`timed`."""
        return self.timed(code)[0]

    def timed(self, code: str) -> tuple[float, float]:
        """``system.time(code, gcFirst = FALSE)``: elapsed and CPU (user + system) seconds.

        Not ``system.time``'s default full collection before the code: that collection frees the previous
        repetition's garbage, a cost of plain R that the timing would then never count (at 100,000 rows
        5-13% of an lmer fit), while pydsbase's studies collect theirs inside their timed calls."""
        measure = (f'local({{ t <- system.time({{{code}}}, gcFirst = FALSE); '
                   f'c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]]) }})')
        wall, cpu = self.run(measure).split()
        return float(wall), float(cpu)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> WarmR:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def r_string(text: str | Path) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def study_folders(tables: Sequence[Mapping[str, Path]], prefix: str = "pydsbase-bench-") -> Iterator[dict[str, Path]]:
    """``study1``, ``study2``... folders holding copies of the given CSVs (table name -> CSV)."""
    from pydsbase.studies import copied_studies

    with copied_studies({f"study{i}": t for i, t in enumerate(tables, start=1)}, prefix=prefix) as folders:
        yield folders


def local_logins(folders: Mapping[str, Path]) -> list[Any]:
    """The launcher's local engine: login records only (the session starts the worker processes)."""
    from pydsbase.studies import studies_up

    with studies_up(dict(folders), "local") as federation:
        return federation.logins


@contextlib.contextmanager
def http_logins(folders: Mapping[str, Path]) -> Iterator[list[Any]]:
    """One ``python -m r_server`` per study on a free loopback port (the launcher's process engine)."""
    from pydsbase.studies import studies_up

    with studies_up(dict(folders), "process") as federation:
        yield federation.logins


@contextlib.contextmanager
def http_federation(folders: Mapping[str, Path]) -> Iterator[tuple[list[Any], list[int]]]:
    """``http_logins`` and the server process ids (for CPU and memory figures)."""
    from pydsbase.studies import studies_up

    with studies_up(dict(folders), "process") as federation:
        children = federation.engine_handle()._children
        yield federation.logins, with_descendants([children[name][0].pid for name in folders])


@contextlib.contextmanager
def open_session(logins: list[Any]) -> Iterator[Any]:
    import pydsbase

    session = pydsbase.Session(logins)
    session.open()
    try:
        yield session
    finally:
        session.close()


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by the given processes (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def with_descendants(pids: Sequence[int]) -> list[int]:
    """The processes and all their descendants (an HTTP study server runs R in a child process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def study_pids(session: Any) -> list[int]:
    """The study process ids of a local session (``LocalConnection.pid``)."""
    return with_descendants([conn.pid for conn in session.conns])


def timed(fn: Callable[[], Any], pids: Sequence[int]) -> tuple[float, float]:
    """Wall seconds of ``fn()`` and the CPU seconds it cost this process and the study processes."""
    cpu0, studies0 = time.process_time(), process_cpu(pids)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu0 + process_cpu(pids) - studies0


def repeat(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def spread(values: Sequence[float]) -> str:
    """Median and interquartile range, in ms."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{statistics.median(values) * 1e3:9.1f} ms  (IQR {q[0] * 1e3:.1f}-{q[2] * 1e3:.1f}, n={len(values)})"


def machine() -> str:
    """Core count, load and versions: the context every figure needs."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    answer = subprocess.run(["Rscript", "--version"], capture_output=True, text=True)
    r_version = (answer.stdout + answer.stderr).strip()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    try:
        autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        autogroup = False
    return (f"machine: {cores} cores ({usable} usable by this process), load average {load} (shared with other"
            f" users: ratios measured in the same run are the claims); autogroup scheduling"
            f" {'on' if autogroup else 'off'}; Python {platform.python_version()}; {r_version}")
