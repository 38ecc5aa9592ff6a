"""Server-level plug-ins: another DataSHIELD study server scored on everything it answers, refusals included.

A server under test is given every study's tables of a suite, stood up once, and each case's call is
sent to it over its wire API by pydsbase's own client drivers (``pydsbase.OpalDriver`` for ``api="opal"``,
``pydsbase.ArmadilloDriver`` for ``api="armadillo"``), exactly as the reference sent it: one
``lmerSLMADS2`` call per selected study (:func:`pydsbase.lmer.lmer_call_text`, through
:func:`pydsbase.dsi.aggregate_by_study`). The answers go through the same steps as the reference's own
(:func:`pydsbase.conformance.reference.reference_numbers`), so a refusal for disclosure, an R error and a
fit are told apart by the one rule that made the reference.

Two kinds (docs/CONFORMANCE.md):

- ``--impl-server MODULE[:OBJECT]``: the object has ``serve(studies, api)``, a context manager that
  yields one login per study. ``studies``: server name -> a folder holding that study's tables, one
  ``TABLE.csv`` per case (the table names of ``case.json``); ``api``: ``"opal"`` or ``"armadillo"``.
- ``--impl-server-cmd 'CMD'``: ``CMD STUDIES.json`` is started; ``STUDIES.json`` is
  ``{"api": API, "studies": {NAME: FOLDER}}``; it prints one login per line (a JSON object; other lines
  are ignored) and serves until it gets SIGTERM. ``pydsbase studies up --studies-json`` is such a command.

A login is a mapping with ``name`` (the server name), ``url``, ``user`` and ``password`` or ``token``,
optionally ``driver`` (a driver class path; default: the API's pydsbase driver) and ``tables``
(the kit's table name -> the name the server knows it by, e.g. Armadillo's ``PROJECT/FOLDER/TABLE``;
default: the same name).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datashield.interface import DSLoginInfo

from pydsbase.conformance.plugins import load_target
from pydsbase.studies import APIS, DRIVER_OF_API, Api, copied_studies, studies_up

__all__ = [
    "LOOSE_DISCLOSURE",
    "PYDSBASE",
    "LEAKY",
    "CommandServer",
    "PydsbaseServer",
    "PythonServer",
    "RunningServer",
    "ServerLogin",
    "load_server",
]

LOOSE_DISCLOSURE: dict[str, Any] = {"nfilter.tab": 0, "nfilter.glm": 1000}
"""Disclosure settings under which dsBase's glm pre-check refuses nothing (for a deliberately leaky server)."""

Serve = Callable[[dict[str, Path], str], contextlib.AbstractContextManager[Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True)
class ServerLogin:
    """One study of the server under test: its login record and its table names."""

    login: DSLoginInfo
    tables: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> str:
        return self.tables.get(name, name)


def _login(record: Mapping[str, Any], api: Api) -> ServerLogin:
    if not isinstance(record, Mapping) or not record.get("name") or not record.get("url"):
        raise ValueError(f"a server login needs at least name and url: {record!r}")
    fields = {k: v for k, v in record.items() if k != "tables"}
    fields.setdefault("driver", DRIVER_OF_API[api])
    tables = record.get("tables") or {}
    if not isinstance(tables, Mapping):
        raise ValueError(f"a login's tables map the kit's table names to the server's: {tables!r}")
    return ServerLogin(DSLoginInfo(**fields), {str(k): str(v) for k, v in tables.items()})


@dataclass(frozen=True)
class RunningServer:
    """The server under test, up: its logins by server name."""

    name: str
    api: Api
    logins: Mapping[str, ServerLogin]

    def study_answers(self, raw: Mapping[str, Any], selected: Sequence[str]) -> dict[str, Any]:
        """Each selected study's answer to the case's call (an R value) or the exception it raised."""
        from pydsbase.conformance.reference import _runner_case, _study_answers

        missing = [s for s in selected if s not in self.logins]
        if missing:
            return {s: RuntimeError(f"the server gave no login for study {s}") for s in selected}
        mapped = {**raw, "studies": [{**s, "table": self.logins[s["server"]].table(s["table"])}
                                     for s in raw["studies"]]}
        return _study_answers(_runner_case(mapped), [self.logins[s].login for s in selected])


class _Server:
    name: str
    api: Api

    def serve(self, studies: dict[str, Path]) -> contextlib.AbstractContextManager[Sequence[Mapping[str, Any]]]:
        raise NotImplementedError

    @contextlib.contextmanager
    def running(self, case_dirs: Sequence[Path]) -> Iterator[RunningServer]:
        """The server up with every study table of the cases (one folder per server name)."""
        from pydsbase.conformance.reference import load_case

        tables: dict[str, dict[str, Path]] = {}
        for case_dir in case_dirs:
            for study in load_case(case_dir)["studies"]:
                tables.setdefault(study["server"], {})[study["table"]] = case_dir / study["csv"]
        with copied_studies(tables, prefix="pydsbase-server-under-test-") as folders, \
                self.serve(dict(folders)) as records:
            logins = {login.login.name: login for login in (_login(r, self.api) for r in records)}
            yield RunningServer(self.name, self.api, logins)


class PythonServer(_Server):
    """``MODULE[:OBJECT]`` with ``serve(studies, api)``."""

    def __init__(self, target: str, api: str = "opal") -> None:
        if api not in APIS:
            raise ValueError(f"api is one of {', '.join(APIS)}, not {api!r}")
        obj = load_target(target)
        if not callable(getattr(obj, "serve", None)):
            raise TypeError(f"{target}: has no serve(studies, api)")
        self.name = target
        self.api = api
        self._serve: Serve = obj.serve

    def serve(self, studies: dict[str, Path]) -> contextlib.AbstractContextManager[Sequence[Mapping[str, Any]]]:
        return self._serve(studies, self.api)


class CommandServer(_Server):
    """``CMD STUDIES.json``: prints one JSON login per line, serves until SIGTERM."""

    def __init__(self, command: str, api: str = "opal", timeout: float = 300.0) -> None:
        if api not in APIS:
            raise ValueError(f"api is one of {', '.join(APIS)}, not {api!r}")
        self.name = command
        self.api = api
        self._argv = shlex.split(command)
        self._timeout = timeout

    @contextlib.contextmanager
    def serve(self, studies: dict[str, Path]) -> Iterator[Sequence[Mapping[str, Any]]]:
        with tempfile.TemporaryDirectory(prefix="pydsbase-server-cmd-") as folder:
            described = Path(folder) / "studies.json"
            described.write_text(json.dumps({"api": self.api, "studies": {k: str(v) for k, v in studies.items()}}),
                                 encoding="utf-8")
            log = (Path(folder) / "stderr.log").open("wb")
            child = subprocess.Popen([*self._argv, str(described)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=log, start_new_session=True)
            try:
                yield self._read_logins(child, set(studies), Path(folder) / "stderr.log")
            finally:
                _stop(child)
                log.close()

    def _read_logins(self, child: subprocess.Popen[bytes], wanted: set[str], log: Path) -> list[dict[str, Any]]:
        assert child.stdout is not None
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + self._timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while not wanted <= set(found):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no login for {sorted(wanted - set(found))} "
                                       f"after {self._timeout:.0f} s")
                if not selector.select(min(left, 1.0)):
                    continue
                chunk = os.read(child.stdout.fileno(), 65536)
                if not chunk:
                    tail = log.read_text(errors="replace")[-600:]
                    raise RuntimeError(f"{self.name}: exited ({child.wait()}) before giving every login: {tail}")
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a comment or progress line
                    if isinstance(record, dict) and record.get("name") in wanted:
                        found[str(record["name"])] = record
        return [found[name] for name in sorted(wanted)]


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command (and the process group it leads), then SIGKILL after 30 s."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    if child.stdout is not None:
        child.stdout.close()


class PydsbaseServer:
    """pydsbase's own study server (``python -m r_server`` processes, ``pydsbase.studies``) as a
    server-level plug-in; ``disclosure`` sets every study's disclosure settings (None: dsBase's)."""

    def __init__(self, disclosure: Mapping[str, Any] | None = None, engine: str = "process") -> None:
        self.disclosure = disclosure
        self.engine = engine

    @contextlib.contextmanager
    def serve(self, studies: dict[str, Path], api: str) -> Iterator[list[dict[str, Any]]]:
        with studies_up(studies, self.engine, api=api, disclosure=self.disclosure) as federation:  # type: ignore[arg-type]
            yield [login.model_dump(exclude_none=True) for login in federation.logins]


PYDSBASE = PydsbaseServer()
"""``--impl-server pydsbase.conformance.servers:PYDSBASE``: pydsbase's r_server with dsBase's disclosure settings."""

LEAKY = PydsbaseServer(LOOSE_DISCLOSURE)
"""``--impl-server pydsbase.conformance.servers:LEAKY``: the same server with :data:`LOOSE_DISCLOSURE`, which
answers where dsBase refuses: a negative control that must score ``structure`` on every refused study."""


def load_server(impl_server: str | None = None, impl_server_cmd: str | None = None,
                api: str = "opal") -> PythonServer | CommandServer:
    if (impl_server is None) == (impl_server_cmd is None):
        raise ValueError("give exactly one of --impl-server MODULE[:OBJECT] and --impl-server-cmd 'CMD'")
    return PythonServer(impl_server, api) if impl_server is not None else CommandServer(str(impl_server_cmd), api)
