"""pydsbase.Session: order, no polling floor, timeouts, and errors that name the study."""

from __future__ import annotations

import threading

import pytest
from datashield import DSLoginBuilder
from datashield.interface import DSConnection, DSDriver, DSResult
from fakeclock import FakeClock

import pydsbase.session
from pydsbase.errors import SessionCallError
from pydsbase.session import Session

DELAYS: dict[str, float] = {}  # study -> seconds until its answer is in (a real timer)
POLLS: dict[str, int] = {}  # study -> its answer is in at this is_completed() call (no timer)
FAILS: dict[str, str] = {}
GATED: dict[str, threading.Event] = {}  # a study whose answer is in once its event is set
BLOCKED: dict[str, threading.Event] = {}  # a study whose submit hangs until its event is set


class _Result(DSResult):
    def __init__(self, name: str, value: object) -> None:
        self.name, self.value = name, value
        self.done = GATED.get(name) or threading.Event()
        self.polls = 0
        if name not in POLLS and name not in GATED:
            threading.Timer(DELAYS.get(name, 0.0), self.done.set).start()

    def is_completed(self) -> bool:
        self.polls += 1
        if self.polls == POLLS.get(self.name):
            self.done.set()
        return self.done.is_set()

    def fetch(self) -> object:
        if self.name in FAILS:
            raise RuntimeError(FAILS[self.name])
        return self.value


class _WaitableResult(_Result):
    """A result that can be waited on, as pydsbase's own drivers' are."""

    waited: list[float | None] = []

    def wait(self, timeout: float | None) -> bool:
        self.waited.append(timeout)
        return self.done.wait(timeout)


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
        kind = _WaitableResult if self.name.startswith("w") else _Result
        return kind(self.name, f"{self.name}:{expr}")

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
    POLLS.clear()
    FAILS.clear()
    GATED.clear()
    BLOCKED.clear()
    _WaitableResult.waited.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """pydsbase.session's clock and sleep, faked: pauses are recorded and move the clock, nothing waits."""
    fake = FakeClock()
    monkeypatch.setattr(pydsbase.session, "time", fake.as_time_module())
    return fake


def test_results_follow_connection_order_not_completion_order() -> None:
    DELAYS.update({"a": 0.15, "b": 0.0, "c": 0.05})
    session = _session(["a", "b", "c"])
    assert list(session.aggregate("x()")) == ["a", "b", "c"]
    assert session.aggregate("x()", conn_names=["c", "a"]) == {"c": "c:x()", "a": "a:x()"}


def test_no_polling_floor(clock: FakeClock) -> None:
    """Polled answers are looked at again after 1, 2, 4 ... ms (at most 20 ms), not the stock 100 ms.

    The pauses are counted, not timed: the session's sleep is a fake that records them.
    """
    POLLS.update({"a": 1, "b": 3, "c": 10})  # in at the 1st, 3rd and 10th look
    session = _session(["a", "b", "c"])
    assert session.aggregate("x()") == {"a": "a:x()", "b": "b:x()", "c": "c:x()"}
    backoff = [0.001, 0.002, 0.004, 0.008, 0.016, 0.02, 0.02, 0.02, 0.02]
    assert sorted(clock.sleeps) == sorted(backoff[:2] + backoff)  # b's two pauses and c's nine
    clock.sleeps.clear()
    POLLS.update({"a": 1, "b": 1, "c": 1})
    for _ in range(20):
        session.aggregate("x()")
    assert clock.sleeps == []  # answers already in: no pause at all


def test_answers_that_can_be_waited_on_are_not_polled(clock: FakeClock) -> None:
    session = _session(["w1", "w2"], timeout=30.0)
    assert session.aggregate("x()") == {"w1": "w1:x()", "w2": "w2:x()"}
    assert clock.sleeps == []
    assert _WaitableResult.waited == [30.0, 30.0]  # each waited on once, for the call's whole timeout


def test_failed_study_is_named_and_never_dropped() -> None:
    FAILS["b"] = "object 'y' not found"
    session = _session(["a", "b", "c"])
    with pytest.raises(SessionCallError, match="b: object 'y' not found") as info:
        session.aggregate("x()")
    assert list(info.value.errors) == ["b"]
    assert str(session.get_errors()["b"]) == "object 'y' not found"
    assert session.get_connection_names() == ["a", "b", "c"]


def test_timeout_names_the_late_study(clock: FakeClock) -> None:
    POLLS.update({"a": 1, "b": 1000})  # b answers only after ~20 s of polling: long past the timeout
    session = _session(["a", "b"], timeout=0.2)
    with pytest.raises(SessionCallError, match=r"b: no answer within 0.2 s") as late:
        session.aggregate("x()")
    assert list(late.value.errors) == ["b"]
    assert 0.2 < sum(clock.sleeps) < 0.2 + 0.02  # gave up at the first look past the deadline


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
