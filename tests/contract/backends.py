"""Backends for the contract suite: one set of DataSHIELD operations, run against every backend.

Each backend is an engine of the launcher (``pydsbase.studies``), which turns ``{study name: folder}``
into login records for the ``datashield`` session API (``api``: for Opal's API or Armadillo's) and keeps
whatever it started alive until the context exits. The ``federation`` fixture is parametrized over
``BACKENDS``, so each contract test runs once per backend; adding one is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from datashield.interface import DSLoginInfo

from pydsbase.session import Session
from pydsbase.studies import Api, Engine


@dataclass(frozen=True)
class Backend:
    name: str
    engine: Engine
    marks: tuple[Any, ...] = ()
    api: Api = "opal"  # the API the login records speak (process and docker engines)


BACKENDS = (
    Backend("local", "local", marks=(pytest.mark.needs_r,)),
    Backend("http", "process", marks=(pytest.mark.needs_r,)),
    Backend("armadillo", "process", marks=(pytest.mark.needs_r,), api="armadillo"),
    Backend("docker", "docker", marks=(pytest.mark.needs_docker,)),
)


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
