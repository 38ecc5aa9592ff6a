"""Stand up a federation of study servers with one call: one ``r_server`` per study, then tear it down.

::

    from pydsbase.studies import studies_up

    with studies_up({"study1": "/srv/s1", "study2": "/srv/s2"}, engine="docker") as fed:
        with pydsbase.Session(fed.logins) as session:
            ...

``engine="local"`` starts nothing here: its login records (``local://FOLDER``, ``pydsbase.LocalDriver``)
make the session start one ``r_server.worker`` process per study on login, spoken to over a pipe.
``engine="docker"`` runs each study in its own container of the study image (see the Dockerfile): ports
published on 127.0.0.1 only, memory/CPU/pids/open-file limits, a read-only root file system, no
capabilities, labels ``pydsbase=1`` and ``pydsbase.study=<name>``, only that study's folder mounted
(read-only, at /data), and a bridge network of its own with inter-container traffic and outbound
masquerading off, so a study container reaches neither another study nor the outside world while the
host reaches its published port. ``engine="process"`` runs ``python -m r_server`` processes on
127.0.0.1 instead (no engine needed).

``api`` chooses the API the login records speak to a study server (process and docker engines; the
server answers both on one port): ``"opal"`` (default, driver ``pydsbase.OpalDriver``, alias
``HTTPDriver``) or ``"armadillo"`` (``pydsbase.ArmadilloDriver``), so one federation can be stood
up for either and two can be mixed in one session.

Every study gets its own user, password and access token (the users file holds only their scrypt
hash and sha256 digest); the login records use the token. Everything started is stopped and removed
on exit, also when the body raises. ``python -m pydsbase studies up --study NAME=FOLDER ...`` does the
same from a shell and keeps the studies up until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx
import yaml
from datashield.interface import DSConfig, DSLoginInfo

from pydsbase.errors import StudyLaunchError

__all__ = [
    "APIS",
    "DEFAULT_IMAGE",
    "LABEL",
    "StudiesUp",
    "Study",
    "StudyLaunchError",
    "build_image",
    "copied_studies",
    "register_cli",
    "remove_leftovers",
    "studies_up",
]

Engine = Literal["local", "process", "docker"]
ENGINES: tuple[Engine, ...] = ("local", "process", "docker")
Api = Literal["opal", "armadillo"]
APIS: tuple[Api, ...] = ("opal", "armadillo")

DEFAULT_IMAGE = "pydsbase-study:latest"
LABEL = "pydsbase"  # every container and network we create carries LABEL=1
STUDY_LABEL = "pydsbase.study"
RUN_LABEL = "pydsbase.run"
CONTAINER_PORT = 8080
CONTAINER_USERS = "/run/pydsbase/users.json"
CONTAINER_DISCLOSURE = "/run/pydsbase/disclosure.json"
NOFILE_LIMIT = 20000
DRIVER = "pydsbase.HTTPDriver"
LOCAL_DRIVER = "pydsbase.LocalDriver"
ARMADILLO_DRIVER = "pydsbase.ArmadilloDriver"
DRIVER_OF_API: dict[Api, str] = {"opal": DRIVER, "armadillo": ARMADILLO_DRIVER}
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Study:
    """One running study server and the credentials made for it."""

    name: str
    folder: Path
    url: str
    user: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    driver: str = DRIVER

    def login(self) -> DSLoginInfo:
        """The study's login record: a token login over HTTP, user and password for the local backend."""
        if self.driver == LOCAL_DRIVER:
            return DSLoginInfo(name=self.name, url=self.url, user=self.user, password=self.password,
                               driver=self.driver)
        return DSLoginInfo(name=self.name, url=self.url, token=self.token, driver=self.driver)


@dataclass(frozen=True)
class _Credentials:
    user: str
    password: str
    token: str

    @classmethod
    def new(cls, study: str) -> _Credentials:
        return cls(user=f"analyst-{study}"[:64], password=secrets.token_urlsafe(18), token=secrets.token_urlsafe(32))

    def users_document(self) -> dict[str, Any]:
        from r_server.auth import hash_password, token_digest

        entry = {"name": self.user, "password_hash": hash_password(self.password),
                 "token_sha256": [token_digest(self.token)]}
        return {"users": [entry]}


def _check_studies(studies: Mapping[str, str | os.PathLike[str]]) -> dict[str, Path]:
    if not studies:
        raise ValueError("no studies given")
    checked: dict[str, Path] = {}
    for name, folder in studies.items():
        if not name or len(name) > 48 or not name.isascii() or not name[0].isalnum() \
                or not all(c.isalnum() or c in "_.-" for c in name):
            raise ValueError(f"a study name is 1-48 ASCII letters, digits, '_', '.' or '-', starting with a letter"
                             f" or digit: {name!r}")
        path = Path(folder).resolve()
        if not path.is_dir():
            raise ValueError(f"study {name}: folder not found: {folder}")
        checked[name] = path
    return checked


def _wait_healthy(url: str, study: str, alive: Callable[[], str | None], timeout: float) -> None:
    """Poll ``GET /health`` until it answers 200 for ``study``; ``alive()`` is None while the server runs."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            dead = alive()
            if dead is not None:
                raise StudyLaunchError(dead)
            try:
                response = client.get(f"{url}/health")
                if response.status_code == 200:
                    answered = response.json().get("study")
                    if answered != study:  # another server holds the port
                        raise StudyLaunchError(f"{url} answers for study {answered!r}")
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if 400 <= response.status_code < 500:  # a refusal, not a server still starting
                    raise StudyLaunchError(f"the health check was refused: {last}")
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.25)
    raise StudyLaunchError(f"not healthy after {timeout:.0f} s ({last})")


# -- engines ----------------------------------------------------------------------------------------


class _LocalEngine:
    """Each study is a ``local://FOLDER`` login; the session starts its worker process on login."""

    driver = LOCAL_DRIVER
    serves_http = False

    def start(self, name: str, folder: Path, users_file: Path, disclosure_file: Path | None = None) -> str:
        return f"local://{folder}"

    def why_dead(self, name: str) -> str | None:
        return None

    def stop_all(self) -> list[str]:
        return []


class _ProcessEngine:
    """Each study is a ``python -m r_server`` child process listening on a free 127.0.0.1 port."""

    driver = DRIVER
    serves_http = True

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._children: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}

    def start(self, name: str, folder: Path, users_file: Path, disclosure_file: Path | None = None) -> str:
        port = _free_port()
        log = (self._workdir / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "r_server", "--name", name, "--tables", str(folder),
                   "--users", str(users_file), "--host", "127.0.0.1", "--port", str(port),
                   "--audit-log", str(self._workdir / f"{name}.audit.jsonl")]
        if disclosure_file is not None:
            command += ["--disclosure", str(disclosure_file)]
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self._children[name] = (child, log)
        return f"http://127.0.0.1:{port}"

    def why_dead(self, name: str) -> str | None:
        child, _ = self._children[name]
        if child.poll() is None:
            return None
        return f"the server process exited with {child.returncode}: {self.logs(name)[-600:]}"

    def logs(self, name: str) -> str:
        return (self._workdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> list[str]:
        problems: list[str] = []
        for _, (child, _log) in self._children.items():
            if child.poll() is None:
                child.terminate()
        for name, (child, log) in self._children.items():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
                problems.append(f"{name}: killed after not stopping in 10 s")
            log.close()
        self._children.clear()
        return problems


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _check_readable_by_others(name: str, folder: Path) -> None:
    """Root's containers run as the image's unprivileged user: it must be able to read the folder."""
    unreadable = [p for p in (folder, *folder.iterdir())
                  if (p.stat().st_mode & (0o005 if p.is_dir() else 0o004)) != (0o005 if p.is_dir() else 0o004)]
    if unreadable:
        raise StudyLaunchError(f"study {name}: the container's unprivileged user cannot read {unreadable[0]}"
                               " (make the folder o+rx and its tables o+r)")


class _DockerEngine:
    """Each study is a container on a bridge network of its own (see the module docstring)."""

    driver = DRIVER
    serves_http = True

    def __init__(self, run_id: str, image: str, memory: str, cpus: float, pids: int) -> None:
        import docker

        self._client = docker.from_env()
        self._run_id = run_id
        self._image = image
        self._memory = memory
        self._cpus = cpus
        self._pids = pids
        self._containers: dict[str, Any] = {}
        self._networks: dict[str, Any] = {}

    def labels(self, name: str) -> dict[str, str]:
        return {LABEL: "1", STUDY_LABEL: name, RUN_LABEL: self._run_id}

    def start(self, name: str, folder: Path, users_file: Path, disclosure_file: Path | None = None) -> str:
        from docker.types import Mount, Ulimit

        if os.getuid() == 0:
            _check_readable_by_others(name, folder)
        network = self._client.networks.create(
            f"pydsbase-{self._run_id}-{name}",
            driver="bridge",
            labels=self.labels(name),
            options={
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "false",
            },
        )
        self._networks[name] = network
        # A non-root launcher's containers run as that user (they can read what it can); root's run as
        # the image's unprivileged user, so the folder must then be readable by others.
        user = None if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        mounts = [
            Mount("/data", str(folder), type="bind", read_only=True),
            Mount(CONTAINER_USERS, str(users_file), type="bind", read_only=True),
        ]
        command = ["--name", name]
        if disclosure_file is not None:
            mounts.append(Mount(CONTAINER_DISCLOSURE, str(disclosure_file), type="bind", read_only=True))
            command += ["--disclosure", CONTAINER_DISCLOSURE]
        container = self._client.containers.run(
            self._image,
            command=command,
            name=f"pydsbase-{self._run_id}-{name}",
            detach=True,
            labels=self.labels(name),
            user=user,
            network=network.name,
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)},
            mounts=mounts,
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"},
            mem_limit=self._memory,
            memswap_limit=self._memory,
            nano_cpus=int(self._cpus * 1e9),
            pids_limit=self._pids,
            ulimits=[Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT)],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        self._containers[name] = container
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"][f"{CONTAINER_PORT}/tcp"][0]
        return f"http://127.0.0.1:{binding['HostPort']}"

    def container(self, name: str) -> Any:
        return self._containers[name]

    def why_dead(self, name: str) -> str | None:
        container = self._containers[name]
        container.reload()
        if container.status in ("created", "running"):
            return None
        return f"the container is {container.status}: {self.logs(name)[-600:]}"

    def logs(self, name: str) -> str:
        return bytes(self._containers[name].logs()).decode(errors="replace")

    def stop_all(self) -> list[str]:
        import docker.errors

        problems: list[str] = []
        for name, container in self._containers.items():
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"{name}: container not removed: {exc}")
        for name, network in self._networks.items():
            try:
                network.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"{name}: network not removed: {exc}")
        self._containers.clear()
        self._networks.clear()
        self._client.close()
        return problems


# -- the federation ---------------------------------------------------------------------------------


class StudiesUp:
    """A context manager that starts one server per study (engine ``local``: none, the session does) and
    stops and removes them all on exit.

    ``disclosure``: the studies' disclosure settings (``python -m r_server --disclosure``'s JSON object, dsBase's
    option names, e.g. ``{"nfilter.tab": 5}``; engines ``process`` and ``docker``); None keeps dsBase's defaults.

    Inside the ``with`` block: ``studies`` (name -> ``Study``), ``logins`` (``DSLoginInfo`` list for
    ``pydsbase.Session`` / ``datashield.DSSession``: driver ``pydsbase.HTTPDriver``, or
    ``pydsbase.LocalDriver`` for engine ``local``) and, with
    ``config_out``, a YAML file in the ``datashield`` package's config format (``DSConfig``).

    ``build``: None (default) builds the image from the source checkout when there is one, so the
    containers run the code at hand (a layer-cache hit when it is unchanged), else only when the image
    is missing; True always builds; False never does.
    """

    def __init__(
        self,
        studies: Mapping[str, str | os.PathLike[str]],
        engine: Engine = "docker",
        *,
        image: str = DEFAULT_IMAGE,
        build: bool | None = None,
        config_out: str | os.PathLike[str] | None = None,
        memory: str = "1g",
        cpus: float = 1.0,
        pids: int = 256,
        health_timeout: float = 180.0,
        api: Api = "opal",
        disclosure: Mapping[str, Any] | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine is one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
        if api not in APIS or (engine == "local" and api != "opal"):
            raise ValueError(f"api is one of {', '.join(map(repr, APIS))} (engine 'local' serves no HTTP API), "
                             f"not {api!r}")
        if disclosure is not None and engine == "local":
            raise ValueError("disclosure settings are given to study servers (engines 'process' and 'docker')")
        self.api: Api = api
        self.disclosure = None if disclosure is None else dict(disclosure)
        self.folders = _check_studies(studies)
        self.engine: Engine = engine
        self.image = image
        self.build = build
        self.config_out = Path(config_out) if config_out is not None else None
        self.memory, self.cpus, self.pids = memory, cpus, pids
        self.health_timeout = health_timeout
        self.run_id = secrets.token_hex(4)
        self.studies: dict[str, Study] = {}
        self._workdir: Path | None = None
        self._engine: _LocalEngine | _ProcessEngine | _DockerEngine | None = None

    @property
    def logins(self) -> list[DSLoginInfo]:
        return [study.login() for study in self.studies.values()]

    def logins_for(self, api: Api) -> list[DSLoginInfo]:
        """The login records of these servers for ``api``: each server answers both APIs on its port."""
        if api not in APIS or not self.engine_handle().serves_http:
            raise ValueError(f"{self.engine!r} studies have no {api!r} API")
        return [dataclasses.replace(study, driver=DRIVER_OF_API[api]).login() for study in self.studies.values()]

    def engine_handle(self) -> _LocalEngine | _ProcessEngine | _DockerEngine:
        """The running engine (for tests and diagnostics: containers, logs)."""
        if self._engine is None:
            raise RuntimeError("the studies are not up")
        return self._engine

    def __enter__(self) -> StudiesUp:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        problems = self._stop()
        if problems and exc is None:
            raise StudyLaunchError("clean-up incomplete: " + "; ".join(problems))

    def _start(self) -> None:
        # World-readable (0755): a container's unprivileged user reads its bind-mounted users file.
        self._workdir = Path(tempfile.mkdtemp(prefix=f"pydsbase-studies-{self.run_id}-"))
        self._workdir.chmod(0o755)
        if self.engine == "docker":
            if self.build or (self.build is None and (_in_checkout() or not _image_exists(self.image))):
                build_image(self.image)
            self._engine = _DockerEngine(self.run_id, self.image, self.memory, self.cpus, self.pids)
        elif self.engine == "process":
            self._engine = _ProcessEngine(self._workdir)
        else:
            self._engine = _LocalEngine()
        pending: dict[str, tuple[str, _Credentials]] = {}
        for name, folder in self.folders.items():
            credentials = _Credentials.new(name)
            users_file = self._workdir / f"{name}.users.json"
            if self._engine.serves_http:
                users_file.write_text(json.dumps(credentials.users_document()), encoding="utf-8")
                users_file.chmod(0o644)  # hashes and digests only, never the password or token
            disclosure_file = None
            if self.disclosure is not None:
                disclosure_file = self._workdir / f"{name}.disclosure.json"
                disclosure_file.write_text(json.dumps(self.disclosure), encoding="utf-8")
                disclosure_file.chmod(0o644)
            try:
                url = self._engine.start(name, folder, users_file, disclosure_file)
            except Exception as exc:
                raise StudyLaunchError(f"study {name}: cannot start: {exc}") from exc
            pending[name] = (url, credentials)
        engine = self._engine
        for name, (url, credentials) in pending.items():
            if engine.serves_http:
                try:
                    _wait_healthy(url, name, functools.partial(engine.why_dead, name), self.health_timeout)
                except StudyLaunchError as exc:
                    raise StudyLaunchError(f"study {name}: {exc}") from None
            driver = DRIVER_OF_API[self.api] if engine.serves_http else engine.driver
            self.studies[name] = Study(name, self.folders[name], url, credentials.user,
                                       credentials.password, credentials.token, driver)
        if self.config_out is not None:
            write_config(self.config_out, self.logins)

    def _stop(self) -> list[str]:
        problems = self._engine.stop_all() if self._engine is not None else []
        self._engine = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return problems


@contextlib.contextmanager
def copied_studies(tables: Mapping[str, Mapping[str, str | os.PathLike[str]]],
                   prefix: str = "pydsbase-folders-") -> Iterator[dict[str, Path]]:
    """A temporary folder per study holding copies of only its tables; removed on exit.

    ``tables`` maps a study name to its tables (table name -> CSV or Parquet file); the folder of the
    ``i``-th study is ``study<i>`` and holds ``TABLE.csv`` (``TABLE.parquet``) per table. Copies, not links (a study
    refuses links that leave its folder), readable by a container's unprivileged user. Yields
    study name -> folder, in the order given.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        root.chmod(0o755)
        folders: dict[str, Path] = {}
        for i, (name, study_tables) in enumerate(tables.items(), start=1):
            folder = root / f"study{i}"
            folder.mkdir()
            folder.chmod(0o755)
            for table, csv in study_tables.items():
                source = Path(csv).resolve()
                if not source.is_file():
                    raise FileNotFoundError(f"study data not found: {source}")
                target = folder / (table + (".parquet" if source.suffix == ".parquet" else ".csv"))
                shutil.copyfile(source, target)
                target.chmod(0o644)
            folders[name] = folder
        yield folders
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def studies_up(studies: Mapping[str, str | os.PathLike[str]], engine: Engine = "docker",
               **options: Any) -> Iterator[StudiesUp]:
    """``with studies_up({...}, engine=...) as fed:`` -- see ``StudiesUp`` for the options."""
    with StudiesUp(studies, engine, **options) as federation:
        yield federation


def write_config(path: Path, logins: Sequence[DSLoginInfo]) -> None:
    """Write ``logins`` as a ``datashield`` config file (``DSConfig``), readable by its owner only."""
    document = DSConfig(servers=list(logins)).model_dump(exclude_none=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        yaml.safe_dump(document, out, sort_keys=False)


# -- the image --------------------------------------------------------------------------------------


def _in_checkout() -> bool:
    """Whether pydsbase runs from a source checkout (with the Dockerfile the image is built from)."""
    return (REPO / "Dockerfile").is_file() and (REPO / "r_server").is_dir()


def _image_exists(tag: str) -> bool:
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()


def build_image(tag: str = DEFAULT_IMAGE, context: Path = REPO, base_image: str | None = None,
                timeout: float = 1800) -> str:
    """Build the study image from the repository's Dockerfile (layer cache on); returns the image id."""
    import docker
    import docker.errors

    if not (context / "Dockerfile").is_file():
        raise StudyLaunchError(f"no Dockerfile in {context}: build the study image from a source checkout")
    client = docker.from_env(timeout=int(timeout))
    try:
        image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False,
                                       buildargs={"BASE_IMAGE": base_image} if base_image else None)
        return str(image.id)
    except docker.errors.BuildError as exc:
        tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)[-2000:]
        raise StudyLaunchError(f"building {tag} failed: {exc.msg}\n{tail}") from exc
    finally:
        client.close()


def remove_leftovers() -> list[str]:
    """Remove every container and network labelled ``pydsbase=1`` (e.g. after a killed launcher)."""
    import docker

    client = docker.from_env()
    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")
        for network in client.networks.list(filters={"label": f"{LABEL}=1"}):
            network.remove()
            removed.append(f"network {network.name}")
    finally:
        client.close()
    return removed


# -- command line -----------------------------------------------------------------------------------


def _study_arg(text: str) -> tuple[str, str]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, folder


def register_cli(subparsers: Any) -> None:
    """Add ``studies up|down|build`` to a ``pydsbase`` command line (an argparse subparsers object)."""
    studies = subparsers.add_parser("studies", help="stand study servers up (docker, processes or local logins)")
    verbs = studies.add_subparsers(dest="studies_command", required=True)
    up = verbs.add_parser("up", help="start one server per study; stop them all on Ctrl-C")
    up.add_argument("--study", action="append", type=_study_arg, default=[], metavar="NAME=FOLDER")
    up.add_argument("--studies-json", type=Path, metavar="FILE",
                    help='the studies as JSON, {"studies": {NAME: FOLDER}, "api": "opal"|"armadillo"} (the '
                         "conformance kit's --impl-server-cmd description); instead of --study and --api")
    up.add_argument("--engine", choices=ENGINES, default="docker")
    up.add_argument("--api", choices=APIS, default="opal",
                    help="the API of the login records: Opal's (OpalDriver) or Armadillo's (ArmadilloDriver)")
    up.add_argument("--disclosure", type=Path, metavar="FILE",
                    help="disclosure settings of every study (r_server's --disclosure JSON; engines process, docker)")
    up.add_argument("--config-out", type=Path, help="write the logins as a datashield config YAML file")
    up.add_argument("--image", default=DEFAULT_IMAGE)
    up.add_argument("--build", choices=["auto", "always", "never"], default="auto",
                    help="build the image first: auto = from a source checkout (a layer-cache hit when the"
                         " code is unchanged) or when the image is missing")
    up.add_argument("--memory", default="1g")
    up.add_argument("--cpus", type=float, default=1.0)
    up.set_defaults(handler=_cli_up)
    down = verbs.add_parser("down", help="remove every leftover pydsbase container and network")
    down.set_defaults(handler=_cli_down)
    build = verbs.add_parser("build", help="build the study image")
    build.add_argument("--image", default=DEFAULT_IMAGE)
    build.add_argument("--base-image", default=None)
    build.set_defaults(handler=_cli_build)


def _cli_up(opts: argparse.Namespace) -> int:
    studies: list[tuple[str, str]] = list(opts.study)
    api = opts.api
    disclosure = None
    try:
        if opts.studies_json is not None:
            described = json.loads(opts.studies_json.read_text(encoding="utf-8"))
            studies += [(str(name), str(folder)) for name, folder in dict(described["studies"]).items()]
            api = described.get("api", api)
        if opts.disclosure is not None:
            disclosure = json.loads(opts.disclosure.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"pydsbase studies up: {exc}", file=sys.stderr)
        return 2
    names = [name for name, _ in studies]
    if not names:
        print("pydsbase studies up: give --study NAME=FOLDER (repeat) or --studies-json FILE", file=sys.stderr)
        return 2
    if len(set(names)) != len(names):
        print("pydsbase studies up: duplicate study names", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with studies_up(dict(studies), opts.engine, image=opts.image,
                        build={"auto": None, "always": True, "never": False}[opts.build],
                        config_out=opts.config_out, memory=opts.memory, cpus=opts.cpus,
                        api=api, disclosure=disclosure) as federation:
            for login in federation.logins:
                print(json.dumps(login.model_dump(exclude_none=True)), flush=True)
            if opts.config_out is not None:
                print(f"# datashield config written to {opts.config_out}", flush=True)
            print("# studies are up; Ctrl-C (or SIGTERM) stops and removes them", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    except (StudyLaunchError, ValueError) as exc:
        print(f"pydsbase studies up: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while starting: everything started is already removed
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _cli_down(opts: argparse.Namespace) -> int:
    for line in remove_leftovers():
        print(f"removed {line}")
    return 0


def _cli_build(opts: argparse.Namespace) -> int:
    try:
        print(build_image(opts.image, base_image=opts.base_image))
    except StudyLaunchError as exc:
        print(f"pydsbase studies build: {exc}", file=sys.stderr)
        return 1
    return 0

