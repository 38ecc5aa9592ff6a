"""Starting embedded R must not change what child processes inherit (R exports LD_LIBRARY_PATH)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.needs_r


def test_children_of_a_study_process_keep_the_callers_loader_path() -> None:
    script = (
        "import os, subprocess, sys\n"
        "from r_server.rbridge import default_bridge\n"
        "default_bridge().versions()\n"
        "child = subprocess.run(['printenv', 'LD_LIBRARY_PATH'], capture_output=True, text=True).stdout\n"
        "ssl = subprocess.run([sys.executable, '-c', 'import ssl'], capture_output=True, text=True)\n"
        "explicit = subprocess.run([sys.executable, '-c', 'import ssl'], env=dict(os.environ)).returncode\n"
        "print(repr(child)); print(ssl.returncode); print(explicit)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    child_path, ssl_code, explicit_env_code = out.stdout.splitlines()[-3:]
    assert child_path == "''"
    assert ssl_code == "0"  # a child inheriting the environment
    assert explicit_env_code == "0"  # a child given os.environ explicitly
