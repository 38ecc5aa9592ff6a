"""The attack corpus sent the way an analyst would: through the datashield session API, local, HTTP
(Opal's API) and Armadillo's API.

Every attack is refused with a clear error (harmless probes may be answered), nothing is created,
no secret or row-level canary appears in any answer or error, and the study still answers after.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datashield import DSLoginBuilder
from datashield.interface import DSError, DSLoginInfo

from pydsbase.rvalue import RAtomic, to_node
from pydsbase.session import Session
from security.canary import Canary
from security.corpus import load_corpus

pytestmark = pytest.mark.needs_r


@contextlib.contextmanager
def _local(tables: Path) -> Iterator[list[DSLoginInfo]]:
    yield DSLoginBuilder().add("study", url=f"local://{tables}", user="attacker", password="x",
                               driver="pydsbase.LocalDriver").build()


@contextlib.contextmanager
def _http(tables: Path) -> Iterator[list[DSLoginInfo]]:
    from pydsbase.studies import studies_up

    with studies_up({"study": tables}, engine="process") as federation:
        yield list(federation.logins)


@contextlib.contextmanager
def _armadillo(tables: Path) -> Iterator[list[DSLoginInfo]]:
    from pydsbase.studies import studies_up

    with studies_up({"study": tables}, engine="process", api="armadillo") as federation:
        yield list(federation.logins)


def _send(session: Session, mode: str, text: str) -> Any:
    if mode == "agg":
        return session.aggregate(text)
    if mode == "asg":
        return session.assign_expr("attack_out", text)
    if mode == "sym":
        return session.assign_expr(text, "D$age")
    if mode == "tab":
        return session.assign_table("attack_out", table=text)
    if mode == "var":
        return session.assign_table("attack_out", table="T", variables=[text])
    if mode == "rm":
        return session.rm(text)
    raise ValueError(mode)


@pytest.mark.parametrize("backend", [_local, _http, _armadillo], ids=["local", "http", "armadillo"])
def test_corpus_through_the_session_api(backend: Any, tmp_path: Path) -> None:
    canary = Canary(tmp_path / "work")
    tables = canary.write_table()
    tables.chmod(0o755)
    attacks = load_corpus()
    assert len(attacks) >= 200
    seen: list[str] = []
    try:
        with backend(tables) as logins, Session(logins, timeout=120) as session:
            session.assign_table("D", table="T")
            before = session.ls()["study"]
            answered = []
            for attack in attacks:
                text = canary.substitute(attack.text)
                try:
                    answer = _send(session, attack.mode, text)
                except (DSError, ValueError) as exc:
                    message = str(exc)
                    seen.append(message)
                    assert message and "Traceback" not in message and len(message) < 2000, attack.id
                    continue
                answered.append(attack.id)
                assert attack.probe, f"{attack.id} was answered: {attack.text!r}"
                if isinstance(answer, dict):
                    seen.extend(json.dumps(to_node(v)) for v in answer.values() if v is not None)
                    assert not any(canary.row_value_in(to_node(v)) for v in answer.values()), attack.id
            assert not canary.file_created()
            assert not canary.leaked_in(seen)
            assert set(session.ls()["study"]) - {"attack_out"} == set(before)
            columns = session.aggregate('colnamesDS("D")')["study"]
            assert isinstance(columns, RAtomic) and columns.data == ["id", "grp", "trt", "male", "age", "BMI", "label"]
            assert len(answered) <= sum(a.probe for a in attacks)
    finally:
        canary.close()
