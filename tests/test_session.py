"""pydsbase.Session: order, no polling floor, timeouts, and errors that name the study."""

from __future__ import annotations

import threading
import time

import pytest
from datashield import DSLoginBuilder
from datashield.interface import DSConnection, DSDriver, DSResult

from pydsbase.errors import SessionCallError
from pydsbase.session import Session

DELAYS: dict[str, float] = {}
FAILS: dict[str, str] = {}
GATED: dict[str, threading.Event] = {}  # a study whose answer is in once its event is set
BLOCKED: dict[str, threading.Event] = {}  # a study whose submit hangs until its event is set


class _Result(DSResult):
    def __init__(self, name: str, value: object) -> None:
        self.name, self.value = name, value
        self.done = GATED.get(name) or threading.Event()
        if name not in GATED:
            threading.Timer(DELAYS.get(name, 0.0), self.done.set).start()

    def is_completed(self) -> bool:
        return self.done.is_set()

    def fetch(self) -> object:
        if self.name in FAILS:
            raise RuntimeError(FAILS[self.name])
        return self.value


class _Conn(DSConnection):
    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False

    def get_name(self) -> str:
        return self.name

    def has_session(self) -> bool:
        return self.started

    def start_session(self, asynchronous: bool = True) -> None:
        self.started = True

    def is_session_started(self) -> bool:
        return self.started

    def get_session(self) -> str:
        return "session"

    def aggregate(self, expr: str, asynchronous: bool = True) -> DSResult:
        if self.name in BLOCKED:
            BLOCKED[self.name].wait(30)
        return _Result(self.name, f"{self.name}:{expr}")

    def disconnect(self) -> None:
        pass


class FakeDriver(DSDriver):
    @classmethod
    def new_connection(cls, args, restore=None):  # type: ignore[no-untyped-def]
        return _Conn(args.name)


def _session(names: list[str], **kw: float) -> Session:
    builder = DSLoginBuilder()
    for name in names:
        builder.add(name, url="fake://", user="u", password="p", driver=f"{__name__}.FakeDriver")
    session = Session(builder.build(), **kw)
    session.open()
    return session


@pytest.fixture(autouse=True)
def _reset() -> None:
    DELAYS.clear()
    FAILS.clear()
    GATED.clear()
    BLOCKED.clear()


def test_results_follow_connection_order_not_completion_order() -> None:
    DELAYS.update({"a": 0.15, "b": 0.0, "c": 0.05})
    session = _session(["a", "b", "c"])
    assert list(session.aggregate("x()")) == ["a", "b", "c"]
    assert session.aggregate("x()", conn_names=["c", "a"]) == {"c": "c:x()", "a": "a:x()"}


def test_no_polling_floor() -> None:
    session = _session(["a", "b", "c"])
    start = time.perf_counter()
    for _ in range(20):
        session.aggregate("x()")
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.05, per_call  # the stock DSSession needs >= 0.1 s per call


def test_failed_study_is_named_and_never_dropped() -> None:
    FAILS["b"] = "object 'y' not found"
    session = _session(["a", "b", "c"])
    with pytest.raises(SessionCallError, match="b: object 'y' not found") as info:
        session.aggregate("x()")
    assert list(info.value.errors) == ["b"]
    assert str(session.get_errors()["b"]) == "object 'y' not found"
    assert session.get_connection_names() == ["a", "b", "c"]


def test_timeout_names_the_late_study() -> None:
    DELAYS["b"] = 1.0
    session = _session(["a", "b"], timeout=0.2)
    with pytest.raises(SessionCallError, match=r"b: no answer within 0.2 s"):
        session.aggregate("x()")


def test_progress_hook_ticks_as_each_study_finishes() -> None:
    """Study a answers only after b's tick: a hook called in connection order would wait for a forever."""
    GATED["a"] = threading.Event()
    session = _session(["a", "b"], timeout=20)
    ticks: list[tuple[str, bool]] = []

    def hook(name: str, failed: bool) -> None:
        ticks.append((name, failed))
        if name == "b":
            GATED["a"].set()

    session.on_study_done = hook
    assert session.aggregate("x()") == {"a": "a:x()", "b": "b:x()"}
    assert ticks == [("b", False), ("a", False)]


def test_a_hung_submit_times_out_and_the_others_answers_are_kept() -> None:
    from pydsbase.errors import StudyTimeoutError

    BLOCKED["b"] = threading.Event()
    session = _session(["a", "b"], timeout=0.2)
    ticks: list[tuple[str, bool]] = []
    session.on_study_done = lambda name, failed: ticks.append((name, failed))
    try:
        with pytest.raises(SessionCallError) as info:
            session.aggregate("x()")
    finally:
        BLOCKED["b"].set()
    assert isinstance(info.value.errors["b"], StudyTimeoutError)
    assert str(info.value.errors["b"]) == "no answer within 0.2 s" and info.value.results == {"a": "a:x()"}
    assert ticks == [("a", False), ("b", True)]
