"""The fenced code blocks of a Markdown file, for the tests that run documentation as written."""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block with a language, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text(encoding="utf-8"))]
