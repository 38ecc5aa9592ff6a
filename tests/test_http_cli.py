"""``python -m r_server``: flags and environment, disclosure settings file, helper commands (no R)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r_server.__main__ import load_disclosure, parse_args
from r_server.auth import token_digest, verify_password
from r_server.settings import DisclosureSettings


def test_flags_fall_back_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDSBASE_STUDY", "envstudy")
    monkeypatch.setenv("PYDSBASE_TABLES", str(tmp_path))
    monkeypatch.setenv("PYDSBASE_USERS", str(tmp_path / "users.json"))
    monkeypatch.setenv("PYDSBASE_PORT", "9123")
    monkeypatch.setenv("PYDSBASE_IDLE_TIMEOUT", "60")
    opts = parse_args([])
    assert (opts.name, opts.tables, opts.port, opts.host, opts.idle_timeout) == (
        "envstudy", tmp_path, 9123, "127.0.0.1", 60.0)
    opts = parse_args(["--name", "flag", "--port", "8080", "--host", "0.0.0.0"])
    assert (opts.name, opts.port, opts.host) == ("flag", 8080, "0.0.0.0")


def test_required_settings_are_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PYDSBASE_STUDY", "PYDSBASE_TABLES", "PYDSBASE_USERS"):
        monkeypatch.delenv(var, raising=False)
    for argv in (["--tables", str(tmp_path), "--users", "u.json"],
                 ["--name", "s", "--users", "u.json"],
                 ["--name", "s", "--tables", str(tmp_path / "missing"), "--users", "u.json"],
                 ["--name", "s", "--tables", str(tmp_path), "--users", "u.json", "--port", "0"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_disclosure_file_takes_dsbase_names(tmp_path: Path) -> None:
    assert load_disclosure(None) == DisclosureSettings()
    path = tmp_path / "disclosure.json"
    path.write_text(json.dumps({"nfilter.tab": 5, "nfilter.glm": 0.25, "datashield.privacyControlLevel": "banana"}))
    settings = load_disclosure(path)
    assert (settings.nfilter_tab, settings.nfilter_glm, settings.nfilter_subset) == (5, 0.25, 3)
    for bad in ({"nfilter.tab": -1}, {"nfilter.bogus": 1}, ["nfilter.tab"]):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            load_disclosure(path)


def test_helper_commands() -> None:
    hashed = subprocess.run([sys.executable, "-m", "r_server", "hash-password"], input="a long password\n",
                            capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert verify_password("a long password", hashed)
    token = json.loads(subprocess.run([sys.executable, "-m", "r_server", "new-token"], capture_output=True,
                                      text=True, timeout=60, check=True).stdout)
    assert token["token_sha256"] == token_digest(token["token"]) and len(token["token"]) >= 40


def test_the_server_refuses_a_bad_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": [{"name": "a", "password": "plain-text-pw"}]}))
    done = subprocess.run([sys.executable, "-m", "r_server", "--name", "s", "--tables", str(tmp_path),
                           "--users", str(users)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "plaintext passwords are refused" in done.stderr
