"""``Session``: the ``datashield.DSSession`` API, without its surprises.

Differences from the stock session (both work with every pydsbase call):

- results come back in the order of the session's connections (or of ``conn_names``), not in
  completion order;
- no 100 ms polling floor: results that can be waited on (pydsbase's own) are waited on directly,
  others are polled with a short back-off starting at 1 ms;
- a call reaches all studies at once: blocking submits (HTTP requests) run on a small thread pool,
  so the studies' round trips overlap;
- every call has a timeout (``Session(timeout=...)`` or per call); a late study is an error naming it;
- a study whose session fails is never dropped silently: the call raises ``SessionCallError`` naming
  every failed study with its message, and ``get_errors()`` holds the per-study errors (each a
  ``pydsbase.errors.StudyCallError`` subclass when the study or its driver made it);
- ``on_study_done(study, failed)``, when set, is called once per study as its answer is in (progress
  bars); ``selected_names`` is the one check of the study names a call goes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from datashield.api import DSSession
from datashield.interface import DSConnection, DSLoginInfo, DSResult

from pydsbase.errors import SessionCallError, StudyCallError, UnknownStudyError, study_error

__all__ = ["Session", "selected_names"]

_MAX_POLL_SLEEP = 0.02


class Session(DSSession):
    def __init__(
        self,
        logins: list[DSLoginInfo],
        start_timeout: float = 300.0,
        start_delay: float = 0.1,
        timeout: float | None = 3600.0,
    ) -> None:
        super().__init__(logins, start_timeout=start_timeout, start_delay=start_delay)
        self.timeout = timeout
        self.errors: dict[str, Exception] = {}
        self._pool: ThreadPoolExecutor | None = None
        # Called as on_study_done(study, failed) when each study's answer to a call is in (progress bars).
        self.on_study_done: Callable[[str, bool], None] | None = None

    # -- sessions -----------------------------------------------------------------------------

    def open(self, restore: str | None = None, failSafe: bool = False) -> None:  # noqa: N803 (datashield's name)
        super().open(restore=restore, failSafe=failSafe)
        if self.errors and not failSafe:
            raise SessionCallError("open", self.errors)

    def sessions(self) -> dict[str, Any]:
        """Start every study's R session; raise naming each study that could not start."""
        self.errors = {}
        rval: dict[str, Any] = {}
        if not self.conns:
            return rval
        for conn in self.conns:
            try:
                if not conn.has_session():
                    conn.start_session(asynchronous=True)
            except Exception as exc:
                self.errors[conn.get_name()] = exc
        deadline = time.monotonic() + self.start_timeout
        pending = [c for c in self.conns if c.get_name() not in self.errors]
        delay = 0.001
        while pending:
            still = []
            for conn in pending:
                try:
                    if not conn.is_session_started():
                        still.append(conn)
                except Exception as exc:
                    self.errors[conn.get_name()] = exc
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    for conn in pending:
                        self.errors[conn.get_name()] = study_error(
                            conn.get_name(), f"R session not started within {self.start_timeout:g} s", "timeout"
                        )
                    break
                time.sleep(delay)
                delay = min(delay * 2, _MAX_POLL_SLEEP)
        if self.errors:
            raise SessionCallError("starting R sessions", self.errors)
        return {conn.get_name(): conn.get_session() for conn in self.conns}

    # -- calls --------------------------------------------------------------------------------

    def _selected(self, conn_names: list[str] | None) -> list[DSConnection]:
        if not self.conns:
            raise SessionCallError("call", {"session": RuntimeError("the session is not open")})
        by_name = {c.get_name(): c for c in self.conns}
        return [by_name[n] for n in selected_names(list(by_name), conn_names)]

    def _fan_out(
        self,
        operation: str,
        submit: Callable[[DSConnection, bool], DSResult],
        conn_names: list[str] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        self.sessions()
        conns = self._selected(conn_names)
        limit = self.timeout if timeout is None else timeout
        deadline = None if limit is None else time.monotonic() + limit

        def one(conn: DSConnection) -> Any:
            # On its own thread a study may answer synchronously: one round trip instead of two.
            return _wait_fetch(conn.get_name(), submit(conn, True), deadline, limit)

        # Studies whose submit blocks (an HTTP request) are called on threads, so their round trips
        # overlap; a submit that only writes to a pipe (local studies) is cheaper than a thread.
        threaded = [c for c in conns if not getattr(c, "submits_without_waiting", False)]
        futures: dict[Future[Any], str] = {}
        if len(threaded) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pydsbase-session")
            futures = {self._pool.submit(one, c): c.get_name() for c in threaded}
        threaded_names = set(futures.values())
        results: dict[str, Any] = {}

        def done(name: str) -> None:
            if self.on_study_done is not None:
                self.on_study_done(name, name in self.errors)

        submitted: dict[str, DSResult] = {}
        for conn in conns:
            if conn.get_name() in threaded_names:
                continue
            try:
                submitted[conn.get_name()] = submit(conn, False)
            except Exception as exc:
                self.errors[conn.get_name()] = exc
                done(conn.get_name())
        if futures:  # collected as they finish, so the progress hook ticks in completion order
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic()) + _LATE_GRACE
            try:
                for future in as_completed(futures, timeout=remaining):
                    _collect(futures[future], future, results, self.errors)
                    done(futures[future])
            except FutureTimeout:
                # A study whose request hangs (a stopped server) times out on time; its thread stays
                # blocked until its transport timeout, only the caller moves on.
                for future, name in futures.items():
                    if name in results or name in self.errors:
                        continue
                    if future.done():
                        _collect(name, future, results, self.errors)
                    else:
                        self.errors[name] = _late(name, limit)
                    done(name)
        for name, result in submitted.items():
            try:
                results[name] = _wait_fetch(name, result, deadline, limit)
            except Exception as exc:
                self.errors[name] = exc
            done(name)
        order = [c.get_name() for c in conns]
        self.errors = {n: self.errors[n] for n in order if n in self.errors} | self.errors
        results = {n: results[n] for n in order if n in results}
        if self.errors:
            raise SessionCallError(operation, self.errors, results)
        return results

    def aggregate(
        self,
        expr: str,
        asynchronous: bool = True,
        conn_names: list[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return self._fan_out("aggregate", lambda c, sync: c.aggregate(expr, asynchronous and not sync),
                             conn_names, timeout)

    def assign_expr(
        self,
        symbol: str,
        expr: str,
        asynchronous: bool = True,
        conn_names: list[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._fan_out("assign", lambda c, sync: c.assign_expr(symbol, expr, asynchronous and not sync),
                      conn_names, timeout)

    def assign_table(
        self,
        symbol: str,
        table: str | None = None,
        tables: dict[str, str] | None = None,
        variables: list[str] | None = None,
        missings: bool = False,
        identifiers: str | None = None,
        id_name: str | None = None,
        asynchronous: bool = True,
        conn_names: list[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        def submit(conn: DSConnection, sync: bool) -> DSResult:
            name = (tables or {}).get(conn.get_name(), table)
            if not name:
                raise ValueError(f"no table given for {conn.get_name()}")
            return conn.assign_table(symbol, name, variables, missings, identifiers, id_name,
                                     asynchronous and not sync)

        self._fan_out("assign_table", submit, conn_names, timeout)

    def ls(self, conn_names: list[str] | None = None) -> dict[str, Any]:
        self.sessions()
        return self._sync("ls", lambda c: c.list_symbols(), conn_names)

    def rm(self, symbol: str, conn_names: list[str] | None = None) -> None:
        self.sessions()
        self._sync("rm", lambda c: c.rm_symbol(symbol), conn_names)

    def _sync(
        self, operation: str, call: Callable[[DSConnection], Any], conn_names: list[str] | None
    ) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for conn in self._selected(conn_names):
            try:
                results[conn.get_name()] = call(conn)
            except Exception as exc:
                self.errors[conn.get_name()] = exc
        if self.errors:
            raise SessionCallError(operation, self.errors)
        return results

    def __enter__(self) -> Session:
        if not self.conns:
            self.open()
        return self

    def close(self, save: str | None = None, conn_names: list[str] | None = None) -> None:
        try:
            super().close(save=save, conn_names=conn_names)
        finally:
            if self._pool is not None and not self.conns:
                self._pool.shutdown(wait=False)
                self._pool = None

    def __exit__(self, *exc: object) -> None:
        self.close()


_LATE_GRACE = 1.0  # a study's thread may report its own timeout this long after the deadline


def _collect(name: str, future: Future[Any], results: dict[str, Any], errors: dict[str, Exception]) -> None:
    try:
        results[name] = future.result()
    except Exception as exc:
        errors[name] = exc


def _late(name: str, limit: float | None) -> StudyCallError:
    return study_error(name, f"no answer within {limit:g} s", kind="timeout")


def selected_names(known: Sequence[str], wanted: Sequence[str] | str | None) -> list[str]:
    """The study names a call goes to, in the order given (all of ``known`` when ``wanted`` is None).

    The one check of study names: an unknown name, or an empty selection, raises
    :class:`~pydsbase.errors.UnknownStudyError` (a ``ValueError``) naming the names the session has.
    """
    if wanted is None:
        return list(known)
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UnknownStudyError(f"unknown study names {unknown}; the session has {list(known)}")
    return names


def _wait_fetch(name: str, result: DSResult, deadline: float | None, limit: float | None) -> Any:
    """Wait for one result without a polling floor, then fetch it."""
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    waiter = getattr(result, "wait", None)
    if callable(waiter):
        if not waiter(remaining):
            raise _late(name, limit)
        return result.fetch()
    delay = 0.001
    while not result.is_completed():
        if deadline is not None and time.monotonic() > deadline:
            raise _late(name, limit)
        time.sleep(delay)
        delay = min(delay * 2, _MAX_POLL_SLEEP)
    return result.fetch()
