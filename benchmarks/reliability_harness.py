"""Real study servers for the reliability tests and scripts (``tests/test_reliability*.py``,
``benchmarks/reliability_*.py``): ``python -m r_server`` processes on 127.0.0.1 that can be killed,
stopped, restarted on the same port and measured.

Each study serves one CLUSTER_INT table (study i gets CLUSTER_INT{i}.csv, as table ``CLUSTER``); the
users file holds ``analysts`` users (``analyst1``...) who log in with access tokens (no scrypt cost per
login), the same token on every study. ``Federation.counts(i)`` reads study i's ``/v1/info`` ``load``
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

    def __init__(self, name: str, tables: Path, users: Path, workdir: Path, *extra: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._command = [sys.executable, "-m", "r_server", "--name", name, "--tables", str(tables),
                         "--users", str(users), "--host", "127.0.0.1", "--port", str(self.port),
                         "--audit-log", str(workdir / f"{name}.audit.jsonl"), *extra]
        self._log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            self.proc = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until ``/v1/health`` answers ok for this study."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-800:]}")
            try:
                reply = httpx.get(self.url + "/v1/health", timeout=2)
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

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")


class Federation:
    """``studies`` study servers (1..3, CLUSTER_INT1..3) for ``analysts`` users; a context manager.

    ``csvs``: another table for some studies (0-based index -> CSV), e.g. a large synthetic one.
    """

    def __init__(self, studies: int = 3, analysts: int = 1, extra: tuple[str, ...] = (),
                 csvs: dict[int, Path] | None = None) -> None:
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
                self.servers.append(StudyProcess(f"study{i + 1}", tables, users, self.root, *extra))
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
        """Study ``study``'s (0-based) ``/v1/info`` load counts, through a login of its own."""
        server = self.servers[study]
        with httpx.Client(base_url=server.url + "/v1", timeout=60) as client:
            token = client.post("/login", json={"token": token_for("probe", self.run)}).json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            try:
                reply = client.get("/info")
                reply.raise_for_status()
                return dict(reply.json()["load"])
            finally:
                client.post("/logout")

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
