"""Per-study progress bars (tqdm) for long calls.

tqdm is imported only when a bar is asked for; the bar goes to stderr, so the R-compatible
``notify_of_progress`` text that ds_lmer_slma prints on stdout is unchanged.

- ``study_progress(names, enabled=True)``: a context manager; ``.done(name)`` ticks one study.
- ``session_progress(session, names, enabled)``: a context manager that ticks a bar from the
  session's ``on_study_done`` hook while calls run (the session's fan-out is the only one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["StudyProgress", "session_progress", "study_progress"]


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


@contextmanager
def session_progress(session: Any, names: Sequence[str], enabled: bool = True, desc: str = "lmer") -> Iterator[None]:
    """Tick a per-study bar as each study's answer to the session's calls is in.

    The ticks come from the session's own hook (``Session.on_study_done``); a session without that
    hook shows no bar.
    """
    if not enabled or not hasattr(session, "on_study_done"):
        yield
        return
    with study_progress(names, desc=desc) as bar:
        session.on_study_done = bar.done
        try:
            yield
        finally:
            session.on_study_done = None
