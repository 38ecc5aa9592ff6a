"""A fake clock for tests that must not decide on a stopwatch.

``FakeClock`` stands in for ``time.monotonic`` (call it) and, through ``as_time_module()``, for a
module's ``time``: ``sleep`` records each requested pause and moves the clock on by it instead of
waiting, so a test counts the pauses and checks deadlines without real time passing. Thread-safe.
"""

from __future__ import annotations

import threading
import types


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def as_time_module(self) -> types.SimpleNamespace:
        """What ``monkeypatch.setattr(module, "time", ...)`` installs: the clock, and sleeps that only count."""
        return types.SimpleNamespace(monotonic=self, perf_counter=self, time=self, sleep=self.sleep)
