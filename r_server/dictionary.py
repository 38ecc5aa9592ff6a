"""A table's data dictionary, Opal-style: each variable's ``name``, ``valueType`` and ``categories``.

A CSV table ``T.csv`` may have ``T.dictionary.json`` beside it::

    {"variables": [
        {"name": "age", "valueType": "decimal"},
        {"name": "n_visits", "valueType": "integer"},
        {"name": "sex", "valueType": "integer", "categories": ["0", "1"]},
        {"name": "note", "valueType": "text"}
    ]}

Opal keeps this for every table, and an assign gives each variable its declared type: ``integer`` an R
integer, ``decimal`` a double, ``text`` character (an all-NA column stays character), ``boolean`` logical,
and a variable with ``categories`` a factor whose levels are the category names in that order. A table
without a dictionary keeps ``utils::read.csv``'s guesses (the goldens depend on them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from r_server.errors import CallRejected

__all__ = ["R_CLASSES", "Variable", "dictionary_path", "read_dictionary"]

R_CLASSES = {"integer": "integer", "decimal": "numeric", "text": "character", "boolean": "logical"}
"""Opal's value types we serve -> the class ``read.csv`` reads the column as."""

_NAME = re.compile(r"^[A-Za-z.][A-Za-z0-9._]{0,127}$")
MAX_VARIABLES = 4096
MAX_CATEGORIES = 1024


@dataclass(frozen=True)
class Variable:
    name: str
    value_type: str
    categories: tuple[str, ...] = ()

    def dto(self, index: int, link: str) -> dict[str, object]:
        """Opal's VariableDto (the datasource variables route)."""
        out: dict[str, object] = {"name": self.name, "entityType": "Participant", "valueType": self.value_type,
                                  "index": index, "isRepeatable": False, "link": f"{link}/{self.name}"}
        if self.categories:
            out["categories"] = [{"name": c, "isMissing": False} for c in self.categories]
        return out


def dictionary_path(csv: Path) -> Path:
    return csv.with_name(csv.stem + ".dictionary.json")


def read_dictionary(path: Path) -> tuple[Variable, ...]:
    """The variables of a dictionary file (checked: names, value types, categories); CallRejected if invalid."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["variables"]
        if not isinstance(entries, list) or len(entries) > MAX_VARIABLES:
            raise ValueError("'variables' must be a list")
        out: list[Variable] = []
        for entry in entries:
            name, value_type = entry["name"], entry.get("valueType", "text")
            categories = entry.get("categories") or []
            if not (isinstance(name, str) and _NAME.match(name)):
                raise ValueError(f"bad variable name {str(name)[:40]!r}")
            if value_type not in R_CLASSES:
                raise ValueError(f"{name}: value type {value_type!r} is not one of {sorted(R_CLASSES)}")
            if (not isinstance(categories, list) or len(categories) > MAX_CATEGORIES
                    or not all(isinstance(c, str) and len(c) <= 256 for c in categories)
                    or len(set(categories)) != len(categories)):
                raise ValueError(f"{name}: categories must be distinct strings")
            out.append(Variable(name, value_type, tuple(categories)))
        if len({v.name for v in out}) != len(out):
            raise ValueError("a variable is declared twice")
        return tuple(out)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CallRejected(f"the data dictionary {path.name} is invalid: {exc}") from None
