"""R's three output channels for the client calls: ``cat`` (stdout), ``message`` and ``warning``.

``cat`` text goes to ``sys.stdout`` exactly as R prints it. Messages and warnings go to
``sys.stderr`` as R would show them, unless a :func:`capture_conditions` block is active: then they
are recorded (the conformance runner compares them with the golden ``messages``/``warnings``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Conditions", "capture_conditions", "cat", "message", "warning"]


@dataclass
class Conditions:
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_ACTIVE: ContextVar[Conditions | None] = ContextVar("pydsbase_conditions", default=None)


def cat(text: str) -> None:
    sys.stdout.write(text)


def message(text: str) -> None:
    """``message(text)``: R appends a newline."""
    active = _ACTIVE.get()
    if active is not None:
        active.messages.append(text + "\n")
    else:
        sys.stderr.write(text + "\n")


def warning(text: str) -> None:
    active = _ACTIVE.get()
    if active is not None:
        active.warnings.append(text)
    else:
        sys.stderr.write(f"Warning message:\n{text}\n")


@contextmanager
def capture_conditions() -> Iterator[Conditions]:
    conditions = Conditions()
    token = _ACTIVE.set(conditions)
    try:
        yield conditions
    finally:
        _ACTIVE.reset(token)
