"""Per-study progress bars (tqdm) for long calls, and a per-study fan-out that keeps every answer.

tqdm is imported only when a bar is asked for; the bar goes to stderr, so the R-compatible
``notify_of_progress`` text that ds_lmer_slma prints on stdout is unchanged.

- ``study_progress(names, enabled=True)``: a context manager; ``.done(name)`` ticks one study.
- ``aggregate_per_study(session, expr, ...)``: one aggregate call to every study that returns
  ``(answers, errors)`` by study name, ticking a bar as each study answers, and never raising for a
  failed study (the rich result layer names it with its reason instead).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydsbase.errors import StudyCallError

if TYPE_CHECKING:
    from datashield.interface import DSResult

    from pydsbase.session import Session

__all__ = ["StudyProgress", "aggregate_per_study", "study_progress"]

_MAX_POLL_SLEEP = 0.02


class StudyProgress:
    """A bar with one step per study; a no-op when disabled."""

    def __init__(self, names: Sequence[str], enabled: bool = True, desc: str = "studies") -> None:
        self.names = list(names)
        self.finished: list[str] = []
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(self.names), desc=desc, unit="study", leave=False)

    def done(self, name: str, failed: bool = False) -> None:
        self.finished.append(name)
        if self._bar is not None:
            self._bar.set_postfix_str(f"{name} {'failed' if failed else 'done'}", refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def study_progress(names: Sequence[str], enabled: bool = True, desc: str = "studies") -> Iterator[StudyProgress]:
    bar = StudyProgress(names, enabled=enabled, desc=desc)
    try:
        yield bar
    finally:
        bar.close()


def aggregate_per_study(
    session: Session,
    expr: str,
    conn_names: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "lmer",
    timeout: float | None = None,
) -> tuple[dict[str, Any], dict[str, Exception]]:
    """Aggregate ``expr`` in every selected study; answers and errors by study, in connection order.

    The studies run in parallel; the bar ticks in the order they finish.
    """
    session.sessions()
    conns = [c for c in session.conns or [] if conn_names is None or c.get_name() in conn_names]
    if conn_names is not None:
        unknown = [n for n in conn_names if n not in {c.get_name() for c in conns}]
        if unknown:
            raise ValueError(f"unknown connection names: {', '.join(unknown)}")
    names = [c.get_name() for c in conns]
    answers: dict[str, Any] = {}
    errors: dict[str, Exception] = {}
    pending: dict[str, DSResult] = {}
    for conn in conns:
        try:
            pending[conn.get_name()] = conn.aggregate(expr, True)
        except Exception as exc:
            errors[conn.get_name()] = exc
    limit = session.timeout if timeout is None else timeout
    deadline = None if limit is None else time.monotonic() + limit
    with study_progress(names, enabled=progress, desc=desc) as bar:
        for name in errors:
            bar.done(name, failed=True)
        delay = 0.001
        while pending:
            for name, result in list(pending.items()):
                if not result.is_completed():
                    continue
                del pending[name]
                try:
                    answers[name] = result.fetch()
                except Exception as exc:
                    errors[name] = exc
                bar.done(name, failed=name in errors)
            if not pending:
                break
            if deadline is not None and time.monotonic() > deadline:
                for name in pending:
                    errors[name] = StudyCallError(name, f"no answer within {limit:g} s", kind="timeout")
                    bar.done(name, failed=True)
                break
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL_SLEEP)
    ordered_answers = {n: answers[n] for n in names if n in answers}
    ordered_errors = {n: errors[n] for n in names if n in errors}
    return ordered_answers, ordered_errors
