"""One real study server for a test: ``python -m r_server`` on a free loopback port, with its log and audit.

Used by the tests that drive the server over HTTP with R (our client, the PyPI Opal clients, the replayed
DSOpal exchange), so each of them starts, waits for and stops a server the same way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StudyProcess:
    """``python -m r_server ARGS --port P --audit-log ROOT/audit.jsonl``; its output in ROOT/server.log."""

    def __init__(self, root: Path, args: Sequence[str], *, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.audit = root / "audit.jsonl"
        self.log = (root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "r_server", *args, "--port", str(self.port), "--audit-log", str(self.audit)],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ) if env is None else env,
        )

    def wait_healthy(self, timeout: float = 180) -> None:
        # the bound only stops a server that never comes up: R starts in seconds even on a loaded machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited"
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the study server at {self.url} is not healthy in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]
