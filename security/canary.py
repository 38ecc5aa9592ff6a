"""Canaries: a planted secret, a file an attack would create, and a row-level value that must not leak.

``Canary(work)`` plants, under a fresh folder:

* a secret file ``secret.txt`` and an environment variable ``PYDSBASE_CANARY_SECRET`` holding the
  same random token (an attack that reads either and returns it leaks the token);
* a path ``created-by-attack`` that must never exist (an attack that runs a command or opens a
  file for writing would create it);
* a study table ``tables/T.csv`` (synthetic, seeded) whose row ``CANARY_ROW`` carries the value
  ``CANARY_VALUE`` in ``BMI`` and the level ``CANARY_LEVEL`` in ``label``: row-level data that no
  response may contain.

Attack texts use placeholders, filled by ``substitute``: ``{CREATE}`` (the path to create),
``{SECRET_FILE}``, ``{SECRET_ENV}`` (the variable's name).
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["CANARY_LEVEL", "CANARY_ROW", "CANARY_VALUE", "Canary", "numbers_in"]

SECRET_ENV = "PYDSBASE_CANARY_SECRET"
CANARY_VALUE = 91.2345678901
"""A BMI no other row has (the others are below 45)."""
CANARY_LEVEL = "zq_canary_level"
"""A label level only the canary row has."""
CANARY_ROW = 17
TABLE_ROWS = 120


def numbers_in(node: Any) -> Iterable[float]:
    """Every number inside a JSON node (or any nest of dicts/lists)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, bool):
            continue
        if isinstance(cur, int | float):
            yield float(cur)
        elif isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list | tuple):
            stack.extend(cur)


class Canary:
    def __init__(self, work: Path, *, seed: int = 7) -> None:
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.token = "CANARY-" + secrets.token_hex(12)
        self.secret_file = self.work / "secret.txt"
        self.secret_file.write_text(self.token + "\n")
        self.create_path = self.work / "created-by-attack"
        os.environ[SECRET_ENV] = self.token
        self.seed = seed

    def substitute(self, text: str) -> str:
        return (
            text.replace("{CREATE}", str(self.create_path))
            .replace("{SECRET_FILE}", str(self.secret_file))
            .replace("{SECRET_ENV}", SECRET_ENV)
        )

    def write_table(self) -> Path:
        """The tables folder with ``T.csv``: id, grp (6 groups), trt, male, age, BMI, label."""
        rng = random.Random(self.seed)
        tables = self.work / "tables"
        tables.mkdir(exist_ok=True)
        lines = ["id,grp,trt,male,age,BMI,label"]
        for i in range(1, TABLE_ROWS + 1):
            grp = 1 + (i % 6)
            trt = i % 2
            male = rng.randrange(2)
            age = round(rng.uniform(20, 80), 1)
            bmi = round(22 + 0.05 * age + 1.5 * trt + rng.gauss(0, 2.5), 2)
            label = CANARY_LEVEL if i == CANARY_ROW else f"L{1 + i % 4}"
            if i == CANARY_ROW:
                bmi = CANARY_VALUE
            lines.append(f"{i},{grp},{trt},{male},{age},{bmi!r},{label}")
        (tables / "T.csv").write_text("\n".join(lines) + "\n")
        return tables

    def file_created(self) -> bool:
        return self.create_path.exists()

    def leaked_in(self, texts: Iterable[str]) -> bool:
        """Whether the secret token appears in any of ``texts``."""
        return any(self.token in t for t in texts)

    @staticmethod
    def row_value_in(node: Any) -> bool:
        """Whether a response carries the canary row's value or level (exactly, or as printed)."""
        if any(math.isclose(v, CANARY_VALUE, rel_tol=0, abs_tol=5e-7) for v in numbers_in(node)):
            return True
        text = json.dumps(node)
        return CANARY_LEVEL in text or "91.23456" in text

    def close(self) -> None:
        os.environ.pop(SECRET_ENV, None)
