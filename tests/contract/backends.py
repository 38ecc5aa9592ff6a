"""Backends for the contract suite: one set of DataSHIELD operations, run against every backend.

A backend turns ``{study name: folder}`` into login records for the ``datashield`` session API,
keeping whatever it started alive until the context exits. Register one with
``register_backend(name, factory, marks=...)``; the ``federation`` fixture is parametrized over every
registered backend, so each contract test runs once per backend. Adding containers is one line::

    register_backend("docker", lambda folders: _studies_up(folders, "docker"), marks=(pytest.mark.needs_docker,))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from datashield.api import DSLoginBuilder
from datashield.interface import DSLoginInfo

from pydsbase.session import Session

LoginFactory = Callable[[Mapping[str, Path]], contextlib.AbstractContextManager[list[DSLoginInfo]]]


@dataclass(frozen=True)
class Backend:
    name: str
    logins: LoginFactory
    marks: tuple[Any, ...] = ()


BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, logins: LoginFactory, marks: tuple[Any, ...] = ()) -> None:
    BACKENDS[name] = Backend(name, logins, marks)


@contextlib.contextmanager
def _local(folders: Mapping[str, Path]) -> Iterator[list[DSLoginInfo]]:
    builder = DSLoginBuilder()
    for name, folder in folders.items():
        builder.add(name, url=f"local://{folder}", user="analyst", password="analyst-password",
                    driver="pydsbase.LocalDriver")
    yield builder.build()


@contextlib.contextmanager
def _studies_up(folders: Mapping[str, Path], engine: Any) -> Iterator[list[DSLoginInfo]]:
    from pydsbase.studies import studies_up

    with studies_up(dict(folders), engine) as federation:
        yield list(federation.logins)


register_backend("local", _local, marks=(pytest.mark.needs_r,))
register_backend("http", lambda folders: _studies_up(folders, "process"), marks=(pytest.mark.needs_r,))
register_backend("docker", lambda folders: _studies_up(folders, "docker"), marks=(pytest.mark.needs_docker,))


# -- the federation every contract test gets ------------------------------------------------------

# Three studies of the CLUSTER_INT data, as in the golden cases (server names cluster.int1..3).
STUDIES = {f"cluster.int{i}": f"CLUSTER/CLUSTER_INT{i}.csv" for i in (1, 2, 3)}


@dataclass
class Federation:
    backend: str
    logins: list[DSLoginInfo]
    csv: dict[str, Path]  # study -> its only table's CSV

    def session(self) -> Session:
        return Session(self.logins, timeout=300)
