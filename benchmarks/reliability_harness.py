"""Real study servers for the reliability tests and scripts (``tests/test_reliability*.py``,
``benchmarks/reliability_*.py``): ``python -m r_server`` processes on 127.0.0.1 that can be killed,
stopped, restarted on the same port and measured.

Each study serves one CLUSTER_INT table (study i gets CLUSTER_INT{i}.csv, as table ``CLUSTER``); the
users file holds ``analysts`` users (``analyst1``...) who log in with access tokens (no scrypt cost per
login), the same token on every study. ``Federation.counts(i)`` reads study i's ``/ws/pydsbase/info`` ``load``
counts through a login of its own (that login is counted in ``logins``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from datashield import DSLoginBuilder
from datashield.interface import DSLoginInfo

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PYDSBASE_SHARED", REPO.parent / "shared"))
CLUSTER_INT = [SHARED / "data" / "CLUSTER" / f"CLUSTER_INT{i}.csv" for i in (1, 2, 3)]
FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"
VARIABLES = ["incid_rate", "trtGrp", "Male", "idDoctor", "BMI", "idSurgery"]
TABLE = "CLUSTER"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token_for(user: str, run: str) -> str:
    """A reproducible access token per user and run (test-only: the users file holds its digest)."""
    return f"reliability-{run}-{user}-token-0123456789abcdef"


class StudyProcess:
    """One ``python -m r_server`` on a fixed loopback port (kept across restarts)."""

    def __init__(self, name: str, tables: Path, users: Path, workdir: Path, *extra: str, probe: bool = False,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        launcher = [str(Path(__file__).resolve()), "serve-probed"] if probe else ["-m", "r_server"]
        self._command = [sys.executable, *launcher, "--name", name, "--tables", str(tables),
                         "--users", str(users), "--host", "127.0.0.1", "--port", str(self.port),
                         "--audit-log", str(workdir / f"{name}.audit.jsonl"), *extra]
        self._env = {**os.environ, **(env or {})}
        if probe:  # the launcher imports r_server from this repository, as ``-m`` does from the cwd
            self._env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        self._log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            self.proc = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, env=self._env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until ``/health`` answers ok for this study."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-800:]}")
            try:
                reply = httpx.get(self.url + "/health", timeout=2)
                if reply.status_code == 200 and reply.json().get("study") == self.name:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy within {timeout:g} s")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL, then reap (the port is free again once this returns)."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()
        self.wait_healthy()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None

    def rss_mib(self) -> float:
        """Resident memory (VmRSS) of the server process, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def memory(self) -> dict[str, int]:
        """Resident memory of the server process in KiB, from ``/proc/PID/status`` and ``/proc/PID/smaps``.

        ``rss`` (VmRSS), ``hwm`` (its peak), ``anon`` and ``file`` (RssAnon, RssFile), ``threads``, and the
        resident pages by mapping: ``brk_heap`` (the ``[heap]`` the main malloc arena grows by brk),
        ``anon_maps`` (anonymous mappings: malloc's mmapped blocks and thread arenas, pymalloc's arenas,
        R's large vectors, thread stacks), ``file_maps`` (libraries and other files) and ``anon_map_count``.
        """
        status = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            status[key] = value.split()[0] if value.split() else "0"
        out = {"rss": int(status["VmRSS"]), "hwm": int(status["VmHWM"]), "anon": int(status["RssAnon"]),
               "file": int(status["RssFile"]), "threads": int(status["Threads"]),
               "brk_heap": 0, "anon_maps": 0, "file_maps": 0, "anon_map_count": 0}
        where = "file_maps"
        for line in Path(f"/proc/{self.pid}/smaps").read_text().splitlines():
            fields = line.split()
            if not fields:
                continue
            if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
                path = fields[5] if len(fields) > 5 else ""
                where = "brk_heap" if path == "[heap]" else "anon_maps" if path in ("", "[stack]") else "file_maps"
                out["anon_map_count"] += where == "anon_maps"
            elif fields[0] == "Rss:":
                out[where] += int(fields[1])
        return out

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")


class Federation:
    """``studies`` study servers (1..3, CLUSTER_INT1..3) for ``analysts`` users; a context manager.

    ``csvs``: another table for some studies (0-based index -> CSV), e.g. a large synthetic one.
    ``probe``: run the studies probed (their ``load`` counts hold R's and malloc's figures, see
    ``_probe_figures``); ``env``: environment variables for the study processes (e.g. ``MALLOC_ARENA_MAX``).
    """

    def __init__(self, studies: int = 3, analysts: int = 1, extra: tuple[str, ...] = (),
                 csvs: dict[int, Path] | None = None, probe: bool = False,
                 env: Mapping[str, str] | None = None) -> None:
        if not 1 <= studies <= 3:
            raise ValueError("1 to 3 studies")
        self.run = f"{os.getpid()}-{time.monotonic_ns()}"
        self.users = [f"analyst{i + 1}" for i in range(analysts)] + ["probe"]
        self.root = Path(tempfile.mkdtemp(prefix="pydsbase-reliability-"))
        from r_server.auth import token_digest

        users = self.root / "users.json"
        users.write_text(json.dumps({"users": [
            {"name": user, "token_sha256": token_digest(token_for(user, self.run))} for user in self.users
        ]}))
        self.servers: list[StudyProcess] = []
        try:
            for i in range(studies):
                tables = self.root / f"study{i + 1}"
                tables.mkdir()
                shutil.copyfile((csvs or {}).get(i, CLUSTER_INT[i]), tables / f"{TABLE}.csv")
                self.servers.append(StudyProcess(f"study{i + 1}", tables, users, self.root, *extra, probe=probe,
                                                 env=env))
            for server in self.servers:
                server.wait_healthy()
        except BaseException:
            self.close()
            raise

    def logins(self, user: int = 1) -> list[DSLoginInfo]:
        """Login records of ``analyst{user}`` for every study."""
        name = f"analyst{user}"
        builder = DSLoginBuilder()
        for server in self.servers:
            builder.add(server.name, url=server.url, token=token_for(name, self.run), driver="pydsbase.HTTPDriver")
        return list(builder.build())

    def counts(self, study: int) -> dict[str, int]:
        """Study ``study``'s (0-based) ``/ws/pydsbase/info`` load counts, through a login of its own."""
        server = self.servers[study]
        with httpx.Client(base_url=server.url + "/ws", timeout=60) as client:
            login = client.get("/system/subject-profile/_current",
                               headers={"X-Opal-Auth": token_for("probe", self.run)})
            login.raise_for_status()  # the opalsid cookie it set authenticates what follows
            try:
                reply = client.get("/pydsbase/info")
                reply.raise_for_status()
                return dict(reply.json()["load"])
            finally:
                client.delete("/auth/session/_current")

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Federation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(logins: list[DSLoginInfo], timeout: float = 600.0) -> Any:
    """A ``pydsbase.Session`` with the study table assigned as ``D``."""
    import pydsbase

    session = pydsbase.Session(logins, timeout=timeout)
    session.open()
    try:
        session.assign_table("D", table=TABLE, variables=VARIABLES)
    except BaseException:
        session.close()
        raise
    return session


def fit(session: Any, **options: Any) -> Any:
    """One ``ds_lmer_slma`` of ``FORMULA`` on ``D`` (it prints nothing without notify_of_progress)."""
    import pydsbase

    return pydsbase.ds_lmer_slma(session, formula=FORMULA, data_name="D", **options)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"machine: {cores} cores ({usable} usable), load average {load} (shared with other engineers)"


# -- the probed study server (the memory soak's instrument) -----------------------------------------

# R's own heap figures, read on the R thread: gc() (a full collection) and memory.profile() (the count of
# R objects on the heap by type: "symbol" is R's symbol table, "char" its global CHARSXP cache).
_PROBE_R = """function() {
  g <- gc(verbose = FALSE, full = TRUE)
  p <- memory.profile()
  c(r_ncells_used = g["Ncells", "used"], r_vcells_used = g["Vcells", "used"],
    r_ncells_trigger = g["Ncells", "gc trigger"], r_vcells_trigger = g["Vcells", "gc trigger"],
    r_ncells_max = g["Ncells", "max used"], r_vcells_max = g["Vcells", "max used"],
    r_symbols = p[["symbol"]], r_chars = p[["char"]], r_envs = p[["environment"]], r_nodes = sum(p))
}"""

_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")


def _self_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _probe_figures(runtime: Any, libc: Any, r_probe: list[Any]) -> dict[str, int]:
    """R's, glibc malloc's and Python's memory figures of this process (numbers only, no names or data).

    Called on the R thread (inside ``StudyRuntime.resources``). ``PYDSBASE_PROBE_TRIM=1``: first
    ``malloc_trim(0)`` (the RSS it gave back is ``trimmed_kib``).
    """
    import ctypes
    import gc
    import tracemalloc

    out: dict[str, int] = {}
    bridge = runtime._bridge
    with bridge._r() as ri:
        if not r_probe:
            r_probe.append(ri.baseenv["eval"](ri.parse(_PROBE_R)))
        figures = r_probe[0]()
        out.update({name: int(value) for name, value in zip(figures.names, figures, strict=True)})
    if os.environ.get("PYDSBASE_PROBE_TRIM") == "1":
        before = _self_rss_kib()
        libc.malloc_trim(0)
        out["trimmed_kib"] = before - _self_rss_kib()

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]

    libc.mallinfo2.restype = Mallinfo2
    info = libc.mallinfo2()
    # arena: bytes malloc took from the system by brk/arena heaps; hblkhd: its mmapped blocks; uordblks:
    # bytes in use; fordblks: free bytes kept inside the arenas (fragmentation); keepcost: the top pad.
    for name in ("arena", "hblkhd", "uordblks", "fordblks", "keepcost", "hblks", "ordblks"):
        out[f"malloc_{name}"] = int(getattr(info, name))
    out["py_objects"] = len(gc.get_objects())
    out["py_blocks"] = sys.getallocatedblocks()
    out["audit_records"] = len(getattr(runtime.audit, "records", ()))
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        out["py_traced"], out["py_traced_peak"] = current, peak
    return out


def _serve_probed(argv: list[str]) -> None:
    """``python -m r_server`` whose ``load`` counts also hold ``_probe_figures``. Benchmarks only.

    ``PYDSBASE_PROBE_TRACEMALLOC=N``: trace Python allocations (N frames) from the start.
    """
    import ctypes
    import tracemalloc

    frames = int(os.environ.get("PYDSBASE_PROBE_TRACEMALLOC", "0"))
    if frames > 0:
        tracemalloc.start(frames)
    from r_server import __main__ as server_main
    from r_server.runtime import StudyRuntime

    libc = ctypes.CDLL("libc.so.6")
    r_probe: list[Any] = []
    plain = StudyRuntime.resources

    def resources(self: StudyRuntime) -> dict[str, int]:
        return {**plain(self), **_probe_figures(self, libc, r_probe)}

    StudyRuntime.resources = resources  # type: ignore[method-assign]
    server_main.main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve-probed"]:
        raise SystemExit("usage: python benchmarks/reliability_harness.py serve-probed <python -m r_server options>")
    _serve_probed(sys.argv[2:])
