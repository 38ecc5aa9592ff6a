"""The launcher with engine="process": argument checks, credentials, config file, clean-up, CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from datashield.interface import DSConfig

from pydsbase.drivers.http import HTTPConnection
from pydsbase.errors import StudyCallError
from pydsbase.studies import StudiesUp, StudyLaunchError, copied_studies, studies_up, write_config


def _study_folders(tmp_path: Path, data_dir: Path, count: int) -> dict[str, Path]:
    folders = {}
    for i in range(1, count + 1):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        shutil.copyfile(data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv", folder / f"CLUSTER_INT{i}.csv")
        folders[f"study{i}"] = folder
    return folders


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


# -- no server needed ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "é", "x" * 49])
def test_bad_study_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="study name"):
        StudiesUp({name: tmp_path}, engine="process")


def test_missing_folder_and_unknown_engine_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder not found"):
        StudiesUp({"s1": tmp_path / "nope"}, engine="process")
    with pytest.raises(ValueError, match="engine"):
        StudiesUp({"s1": tmp_path}, engine="kubernetes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no studies"):
        StudiesUp({}, engine="process")
    with pytest.raises(ValueError, match="api"):
        StudiesUp({"s1": tmp_path}, engine="process", api="rock")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="serves no HTTP API"):  # local studies have no Armadillo API
        StudiesUp({"s1": tmp_path}, engine="local", api="armadillo")


def test_config_file_is_datashield_format_and_private(tmp_path: Path) -> None:
    from datashield.interface import DSLoginInfo

    logins = [DSLoginInfo(name="s1", url="http://127.0.0.1:1", token="t" * 30, driver="pydsbase.HTTPDriver"),
              DSLoginInfo(name="s2", url="http://127.0.0.1:2", user="u", password="p", driver="pydsbase.HTTPDriver")]
    target = tmp_path / "cfg" / "config.yaml"
    write_config(target, logins)
    assert DSConfig.load_from_file(str(target)).servers == logins
    assert target.stat().st_mode & 0o777 == 0o600


def test_copied_studies_hold_copies_of_only_their_tables_and_are_removed(tmp_path: Path, data_dir: Path) -> None:
    csv = [data_dir / "CLUSTER" / f"CLUSTER_INT{i}.csv" for i in (1, 2, 3)]
    with copied_studies({"a": {"T1": csv[0]}, "b": {"T2": csv[1], "T3": csv[2]}}) as folders:
        assert list(folders) == ["a", "b"]
        assert sorted(p.name for p in folders["a"].iterdir()) == ["T1.csv"]
        assert sorted(p.name for p in folders["b"].iterdir()) == ["T2.csv", "T3.csv"]
        copy = folders["b"] / "T3.csv"
        assert copy.read_bytes() == csv[2].read_bytes() and not copy.is_symlink()
        assert folders["b"].stat().st_mode & 0o777 == 0o755 and copy.stat().st_mode & 0o777 == 0o644
        root = folders["a"].parent
    assert not root.exists()
    with pytest.raises(FileNotFoundError, match="study data not found"):
        with copied_studies({"a": {"T": tmp_path / "absent.csv"}}):
            pass


def test_local_engine_gives_local_logins_and_starts_nothing(tmp_path: Path, data_dir: Path) -> None:
    folders = _study_folders(tmp_path, data_dir, 2)
    with studies_up(folders, engine="local") as fed:
        assert [(login.name, login.url, login.driver, login.token) for login in fed.logins] == [
            (name, f"local://{folder.resolve()}", "pydsbase.LocalDriver", None) for name, folder in folders.items()
        ]
        assert all(login.user and login.password for login in fed.logins)
        (workdir,) = Path(tempfile.gettempdir()).glob(f"pydsbase-studies-{fed.run_id}-*")
        assert list(workdir.iterdir()) == []  # no users files: nothing serves HTTP
    assert not workdir.exists()


# -- real study processes --------------------------------------------------------------------------


@pytest.mark.needs_r
def test_process_federation_logins_isolation_and_clean_up(tmp_path: Path, data_dir: Path) -> None:
    folders = _study_folders(tmp_path, data_dir, 2)
    config = tmp_path / "config.yaml"
    with studies_up(folders, engine="process", config_out=config) as fed:
        assert [login.name for login in fed.logins] == ["study1", "study2"]
        assert all(login.driver == "pydsbase.HTTPDriver" and login.url.startswith("http://127.0.0.1:")
                   for login in fed.logins)
        assert DSConfig.load_from_file(str(config)).servers == fed.logins
        s1, s2 = fed.studies["study1"], fed.studies["study2"]
        assert s1.token != s2.token and s1.password != s2.password
        for study in (s1, s2):
            assert httpx.get(f"{study.url}/health").json() == {"status": "ok", "study": study.name}
        # Each study's own credentials work there, both token and password ...
        connection = HTTPConnection(fed.logins[0])
        try:
            assert connection.list_tables() == ["study1.CLUSTER_INT1"]  # Opal names: the default project
        finally:
            connection.disconnect()
        by_password = s2.login().model_copy(update={"token": None, "user": s2.user, "password": s2.password})
        connection = HTTPConnection(by_password)
        try:
            assert connection.list_tables() == ["study2.CLUSTER_INT2"]
        finally:
            connection.disconnect()
        # ... and nowhere else.
        with pytest.raises(StudyCallError) as refused:
            HTTPConnection(fed.logins[0].model_copy(update={"url": s2.url}))
        assert refused.value.kind == "auth"
        urls = [s1.url, s2.url]
        (workdir,) = Path(tempfile.gettempdir()).glob(f"pydsbase-studies-{fed.run_id}-*")
        users = json.loads((workdir / "study1.users.json").read_text())
        assert s1.password not in json.dumps(users) and s1.token not in json.dumps(users)
    assert all(_refused(url) for url in urls)
    assert not workdir.exists()


@pytest.mark.needs_r
def test_exception_inside_stops_the_servers(tmp_path: Path, data_dir: Path) -> None:
    folders = _study_folders(tmp_path, data_dir, 1)
    urls: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), studies_up(folders, engine="process") as fed:
        urls.append(fed.studies["study1"].url)
        assert not _refused(urls[0])
        raise RuntimeError("boom")
    assert _refused(urls[0])


@pytest.mark.needs_r
def test_a_server_not_healthy_in_time_is_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(StudyLaunchError, match=r"study s1: not healthy after"):
        # no server answers within 10 ms (R alone takes seconds to start); load only makes it later
        with studies_up({"s1": tmp_path}, engine="process", health_timeout=0.01):
            pass
    assert not list(Path(tempfile.gettempdir()).glob("pydsbase-studies-*-s1*"))


@pytest.mark.needs_r
def test_cli_up_writes_config_and_stops_on_sigterm(tmp_path: Path, data_dir: Path) -> None:
    folders = _study_folders(tmp_path, data_dir, 1)
    config = tmp_path / "config.yaml"
    command = [sys.executable, "-m", "pydsbase", "studies", "up", "--engine", "process",
               "--study", f"study1={folders['study1']}", "--config-out", str(config)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # only stops a CLI that never writes it: it does so in seconds
        while not config.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert config.exists(), child.stderr.read() if child.poll() is not None and child.stderr else "timeout"
        (login,) = DSConfig.load_from_file(str(config)).servers
        assert login.name == "study1" and login.token
        assert httpx.get(f"{login.url}/health").json()["status"] == "ok"
    finally:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert json.loads(out.splitlines()[0])["name"] == "study1"
    assert _refused(login.url)
