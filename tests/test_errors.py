"""The client's exception tree: one root under datashield.DSError, and a wire kind becomes its class at
the driver boundary (local: the worker's reply; HTTP: the transport and the server's answer)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from datashield.interface import DSError, DSLoginInfo

import pydsbase
from pydsbase import dsi, meta, studies
from pydsbase.drivers.http import HTTPConnection
from pydsbase.drivers.local import LocalConnection, LocalResult, _Pending, _unwrap
from pydsbase.errors import (
    DataSHIELDErrors,
    MetaAnalysisError,
    PydsbaseError,
    RError,
    SessionCallError,
    StudyAuthError,
    StudyCallError,
    StudyLaunchError,
    StudyRejectedError,
    StudyRFailedError,
    StudySessionError,
    StudyTimeoutError,
    StudyUnreachableError,
    UnknownStudyError,
    study_error,
)
from pydsbase.rvalue import r_double

TREE: dict[type[Exception], type[Exception]] = {
    PydsbaseError: DSError,
    RError: PydsbaseError,
    DataSHIELDErrors: RError,
    StudyCallError: PydsbaseError,
    StudyTimeoutError: StudyCallError,
    StudyUnreachableError: StudyCallError,
    StudyRejectedError: StudyCallError,
    StudyRFailedError: StudyCallError,
    StudySessionError: StudyCallError,
    StudyAuthError: StudyCallError,
    SessionCallError: PydsbaseError,
    UnknownStudyError: PydsbaseError,
    MetaAnalysisError: PydsbaseError,
    StudyLaunchError: PydsbaseError,
}

KINDS: dict[str, type[StudyCallError]] = {
    "timeout": StudyTimeoutError,
    "unavailable": StudyUnreachableError,
    "rejected": StudyRejectedError,
    "r_error": StudyRFailedError,
    "session": StudySessionError,
    "auth": StudyAuthError,
}


def test_every_class_has_its_parent_and_except_dserror_catches_it() -> None:
    for cls, parent in TREE.items():
        assert cls.__bases__[0] is parent, cls
        assert issubclass(cls, DSError)
    # what older code caught keeps being caught
    assert issubclass(UnknownStudyError, ValueError) and issubclass(StudyLaunchError, RuntimeError)
    # the old homes of the classes still give them
    assert dsi.DataSHIELDErrors is DataSHIELDErrors
    assert meta.MetaAnalysisError is MetaAnalysisError and studies.StudyLaunchError is StudyLaunchError


def test_the_tree_is_exported_from_pydsbase_and_typed() -> None:
    for cls in TREE:
        assert getattr(pydsbase, cls.__name__) is cls
    assert pydsbase.study_error is study_error
    assert sorted(pydsbase.__all__) == sorted(pydsbase._EXPORTS)
    for name in pydsbase.__all__:
        assert getattr(pydsbase, name) is not None


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_study_error_maps_each_wire_kind_to_its_class(kind: str) -> None:
    err = study_error("s2", "the message", kind)
    assert type(err) is KINDS[kind]
    assert (err.study, err.kind, str(err), err.message) == ("s2", kind, "the message", "the message")
    assert KINDS[kind]("s2", "m").kind == kind  # a subclass knows its own kind
    assert repr(err) == f"{KINDS[kind].__name__}(study='s2', kind='{kind}', message='the message')"


@pytest.mark.parametrize("kind", ["", "http", "internal", "too_large", "something new"])
def test_other_kinds_stay_a_plain_study_call_error_with_their_kind(kind: str) -> None:
    err = study_error("s1", "m", kind)
    assert type(err) is StudyCallError and err.kind == kind
    assert StudyCallError("s1", "m", kind="rejected").kind == "rejected"  # the old constructor keeps working


# -- the local driver's boundary --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_local_worker_replies_become_their_class(kind: str) -> None:
    pending = _Pending()
    pending.reply = {"id": 1, "ok": False, "error": {"kind": kind, "message": f"a {kind} failure"}}
    pending.done.set()
    with pytest.raises(KINDS[kind]) as caught:
        _unwrap("study1", pending, None)
    assert (caught.value.study, caught.value.kind, str(caught.value)) == ("study1", kind, f"a {kind} failure")


def test_local_result_not_answered_in_time_is_a_timeout() -> None:
    never = _Pending()  # no worker will ever answer it
    with pytest.raises(StudyTimeoutError, match="no answer within 0 s"):
        LocalResult("study1", never, decode=True).fetch(timeout=0)


@pytest.fixture()
def local_study(tmp_path: Path) -> Any:
    folder = tmp_path / "study"
    folder.mkdir()
    conn = LocalConnection(DSLoginInfo(name="study1", url=f"local://{folder}", user="u", password="p",
                                       driver="pydsbase.LocalDriver"))
    yield conn
    conn.disconnect()


def test_local_study_refusing_a_call_is_rejected(local_study: LocalConnection) -> None:
    with pytest.raises(StudyRejectedError) as caught:
        local_study.aggregate("system('ls')").fetch(60)
    assert caught.value.kind == "rejected" and caught.value.study == "study1" and "system" in str(caught.value)


def test_local_study_with_an_unknown_session_is_a_session_error(local_study: LocalConnection) -> None:
    local_study.start_session()
    with pytest.raises(StudySessionError) as caught:
        local_study._process.call("list_symbols", sid="no-such-session")
    assert caught.value.kind == "session"


def test_local_study_whose_process_is_gone_is_unreachable(local_study: LocalConnection) -> None:
    local_study.start_session()
    os.kill(local_study.pid, signal.SIGKILL)
    local_study._process.proc.wait(30)
    with pytest.raises(StudyUnreachableError) as caught:
        local_study.aggregate("colnamesDS(D)").fetch(60)
    assert caught.value.kind == "unavailable" and caught.value.study == "study1"


# -- the HTTP driver's boundary (at login: the transport's failures and the server's refusal) --------


def _connect(handler: Any) -> HTTPConnection:
    info = DSLoginInfo(name="study1", url="http://study.invalid:8080", user="u", password="p",
                       driver="pydsbase.HTTPDriver")
    return HTTPConnection(info, transport=httpx.MockTransport(handler))


def _raise(exc: Exception) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_http_study_that_cannot_be_reached_is_unreachable() -> None:
    with pytest.raises(StudyUnreachableError) as caught:
        _connect(_raise(httpx.ConnectError("connection refused")))
    assert caught.value.kind == "unavailable" and "cannot reach the study server" in str(caught.value)


def test_http_study_that_does_not_answer_in_time_is_a_timeout() -> None:
    with pytest.raises(StudyTimeoutError) as caught:
        _connect(_raise(httpx.ReadTimeout("timed out")))
    assert caught.value.kind == "timeout"


def test_http_study_refusing_the_credentials_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"code": 401, "status": "auth", "arguments": ["invalid credentials"], "message": "invalid credentials"}
        return httpx.Response(401, content=json.dumps(body), headers={"content-type": "application/json"})

    with pytest.raises(StudyAuthError) as caught:
        _connect(handler)
    assert (caught.value.study, caught.value.kind, str(caught.value)) == ("study1", "auth", "invalid credentials")


# -- client-side errors ---------------------------------------------------------------------------


def test_a_failing_call_through_dsi_is_caught_as_dserror() -> None:
    class Failing:
        def get_connection_names(self) -> list[str]:
            return ["s1", "s2"]

        def get_errors(self) -> dict[str, Exception]:
            return {"s2": study_error("s2", "object 'x' not found", "r_error")}

        def aggregate(self, expr: str, conn_names: list[str] | None = None) -> dict[str, Any]:
            raise SessionCallError("aggregate", self.get_errors(), {"s1": r_double([1.0])})

    with pytest.raises(DSError) as caught:
        dsi.aggregate(Failing(), "f()", ["s1", "s2"])
    assert isinstance(caught.value, DataSHIELDErrors)
    assert caught.value.datashield_errors == {"s2": ["object 'x' not found"]}
    answers, errors = dsi.aggregate_by_study(Failing(), "f()", ["s1", "s2"])
    assert answers == {"s1": r_double([1.0])} and isinstance(errors["s2"], StudyRFailedError)
    assert answers.inexact == ()  # R values, not JSON


def test_unknown_study_names_are_one_check() -> None:
    from pydsbase.session import selected_names

    assert selected_names(["a", "b", "c"], ["c", "a"]) == ["c", "a"]
    assert selected_names(["a", "b"], None) == ["a", "b"] and selected_names(["a", "b"], "b") == ["b"]
    with pytest.raises(UnknownStudyError, match=r"unknown study names \['x'\]; the session has \['a', 'b'\]"):
        selected_names(["a", "b"], ["a", "x"])
    with pytest.raises(UnknownStudyError):
        selected_names(["a", "b"], [])

    class Named:
        def get_connection_names(self) -> list[str]:
            return ["a", "b"]

    with pytest.raises(RError, match="^The 'datasources' were expected to be a list of DSConnection-class objects$"):
        dsi.datasource_names(Named(), ["x"])  # dsBaseClient's own message for the same check
