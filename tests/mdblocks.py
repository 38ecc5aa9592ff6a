"""The fenced code blocks of a Markdown file, and running its Python blocks as written (the tests that
check that the documentation runs)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
F = TypeVar("F", bound=Callable[..., Any])


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block with a language, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text(encoding="utf-8"))]


def exec_python(code: str, path: Path, namespace: dict[str, Any], printed: io.StringIO) -> None:
    """Run one block verbatim in ``namespace`` (shared by a page's blocks), its output into ``printed``."""
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(path), "exec"), namespace)


def runs_docs(test: F) -> F:
    """The marks of a test that runs documentation against real local studies."""
    marks = (
        pytest.mark.needs_r,
        pytest.mark.slow,
        # the local driver leaves its worker pipes to the garbage collector (reported to its owner)
        pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    )
    for mark in marks:
        test = mark(test)
    return test
