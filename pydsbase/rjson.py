"""Rock's JSON answers into the R-value model: the JSON front end of :mod:`pydsbase.rserialize`.

A stock ``datashield.DSSession`` built with ``datashield_opal.OpalDriver`` asks Opal (and our study
servers) for ``application/json`` and hands back the parsed JSON. It comes in two forms, both jsonlite's:

- ``serializeJSON``, for values ``toJSON`` cannot write (lmerSLMADS2's summary holds a call and S4
  matrices): ``{"type", "attributes", "value"}`` nodes that keep every type and attribute;
- ``toJSON(auto_unbox = TRUE)`` for the rest: no types (integer or double, a vector or a list), no
  names of atomic vectors, no dim or class, and ``NA``/``NaN``/``Inf`` all ``null``. The call's known
  result shape (:data:`RESULT_SHAPES`, by server function) puts the types back.

Both become the objects :func:`pydsbase.rserialize.read` gives (``Vector``, ``S4Object``, ``Deparsed``)
and then the model through :func:`pydsbase.rserialize.model`, the one step from R's objects to the
model, so a JSON answer has the structure R's serialization of the same value has. Its numbers do
not: JSON carries them as decimal text (:data:`JSON_LOSS`), so :func:`pydsbase.dsi.aggregate_by_study`
names the studies that answered in JSON and results built from them say they are not exact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydsbase import rserialize, rvalue
from pydsbase.deparse import Symbol
from pydsbase.errors import RockJSONError, UnserializeError

__all__ = ["JSON_LOSS", "RESULT_SHAPES", "Atomic", "ListOf", "function_of", "inexact_message", "restore"]

#: What a JSON answer loses, in words (the warning of a result built from one).
JSON_LOSS: Final = (
    "numbers came as JSON text, rounded to 15 significant digits (jsonlite's digits = NA, as our study "
    "servers write them; a server using serializeJSON's default keeps only 8 decimal places), and "
    "toJSON writes NA, NaN and Inf alike as null"
)

_SXP: Final = {"logical": 10, "integer": 13, "double": 14, "character": 16, "list": 19}
_NODE_KEYS: Final = frozenset({"type", "attributes", "value"})


# -- result shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Atomic:
    """An atomic vector of R type ``type`` (a JSON scalar is a vector of length one)."""

    type: str


@dataclass(frozen=True)
class ListOf:
    """A list: the element named ``name`` has shape ``fields[name]``, any other ``other``.

    A JSON object is a named list (toJSON names an unnamed element by its position: ``"3"`` at the
    third place is the name ``""``), an array an unnamed list, a scalar an atomic vector of ``other``.
    """

    fields: Mapping[str, Shape] = field(default_factory=dict)
    other: Shape | None = None  # None: guessed from the JSON (AUTO)


Shape = Atomic | ListOf | None  # None: guessed from the JSON

LOGICAL: Final = Atomic("logical")
INTEGER: Final = Atomic("integer")
DOUBLE: Final = Atomic("double")
CHARACTER: Final = Atomic("character")

#: The R value each aggregate function of ``r_server/functions.py`` answers, when it comes as toJSON.
RESULT_SHAPES: Final[Mapping[str, Shape]] = {
    "exists": LOGICAL,
    "isNaDS": LOGICAL,
    "checkNegValueDS": LOGICAL,
    "colnamesDS": CHARACTER,
    "classDS": CHARACTER,
    "messageDS": CHARACTER,
    "testObjExistsDS": ListOf({"test.obj.exists": LOGICAL, "test.obj.class": CHARACTER}),
    "listDisclosureSettingsDS": ListOf(),
    "dataFrameSubsetDS1": ListOf(other=CHARACTER),
    # the summary itself comes as serializeJSON (it holds a call); toJSON carries the refusals:
    # the disclosure list (unnamed lists of messages, disclosure.risk) and a failed fit's list
    "lmerSLMADS2": ListOf(
        {"errorMessage": CHARACTER, "disclosure.risk": DOUBLE, "Ntotal": INTEGER, "Nvalid": INTEGER,
         "Nmissing": INTEGER},
        other=ListOf(other=CHARACTER),
    ),
}

_HEAD = re.compile(r"\s*([A-Za-z.][A-Za-z0-9._]*)\s*\(")


def function_of(expr: str) -> str | None:
    """The server function an aggregate call text calls (``lmerSLMADS2(...)`` -> ``lmerSLMADS2``)."""
    found = _HEAD.match(expr)
    return found.group(1) if found else None


def inexact_message(studies: list[str] | tuple[str, ...]) -> str:
    """The warning of a result built from JSON answers: which studies, and what was lost."""
    return (f"{', '.join(studies)} answered in Rock's JSON, not R's serialization: {JSON_LOSS}. "
            "This result is not R's bit for bit; pydsbase.OpalDriver asks for R's serialization.")


# -- the converter -----------------------------------------------------------------------------------


def restore(value: Any, expr: str) -> rvalue.RValue | None:
    """The model of the JSON answer ``value`` to the aggregate call ``expr`` (None for R's NULL).

    serializeJSON nodes are read as they are; toJSON values take the shape of ``expr``'s function
    (:data:`RESULT_SHAPES`; a function without one is guessed: numbers double, arrays vectors when
    their elements agree). Raises :class:`~pydsbase.errors.RockJSONError` naming where the answer
    does not fit.
    """
    if _is_node(value):
        read = _node(value, 0, "")
    else:
        function = function_of(expr)
        read = _shaped(value, RESULT_SHAPES.get(function) if function else None, 0, "")
    try:
        return rserialize.model(read)
    except UnserializeError as exc:
        raise RockJSONError(exc.message, "") from None


def _is_node(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("type"), str) and set(value) <= _NODE_KEYS
            and isinstance(value.get("attributes", {}), dict))  # fmt: skip


def _deeper(depth: int, path: str) -> int:
    if depth >= rserialize.MAX_DEPTH:
        raise RockJSONError(f"nesting deeper than {rserialize.MAX_DEPTH}", path)
    return depth + 1


# -- serializeJSON nodes -------------------------------------------------------------------------------

_SPECIAL_DOUBLES: Final = {"NA": rvalue.NA, "NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf}


def _element(rtype: str, item: Any, path: str) -> Any:
    if rtype == "double":
        if isinstance(item, int | float) and not isinstance(item, bool):
            return float(item)
        if item is None or item in _SPECIAL_DOUBLES:
            return rvalue.NA if item is None else _SPECIAL_DOUBLES[item]
    elif rtype == "integer":
        if isinstance(item, int) and not isinstance(item, bool) and -(2**31) < item < 2**31:
            return item
        if isinstance(item, float) and item.is_integer() and -(2**31) < item < 2**31:
            return int(item)
        if item is None or item == "NA":
            return rvalue.NA
    elif rtype == "logical":
        if isinstance(item, bool):
            return item
        if item is None or item == "NA":
            return rvalue.NA
    elif rtype == "character":
        if isinstance(item, str):
            return item
        if item is None:
            return rvalue.NA
    raise RockJSONError(f"{item!r} is not an element of a {rtype} vector", path)


def _node(node: Any, depth: int, path: str) -> Any:
    depth = _deeper(depth, path)
    if not _is_node(node):
        raise RockJSONError("not a serializeJSON node", path)
    rtype = node["type"]
    attributes = [(name, _node(item, depth, f"{path}@{name}"))
                  for name, item in node.get("attributes", {}).items()
                  if not (name == ".Environment" and _is_node(item) and item["type"] == "environment")]
    if rtype == "language" and ".Environment" in node.get("attributes", {}):
        attributes.append((".Environment", rserialize.Environment("global")))  # the scrub's only environment
    values = node.get("value")
    if rtype == "NULL":
        return None
    if rtype in ("logical", "integer", "double", "character"):
        items = values if isinstance(values, list) else [values]
        return rserialize.Vector(_SXP[rtype], [_element(rtype, v, f"{path}[{i + 1}]") for i, v in enumerate(items)],
                                 attributes or None)
    if rtype == "list":
        if not isinstance(values, list):
            raise RockJSONError("a list node without a value array", path)
        return rserialize.Vector(_SXP["list"], [_node(v, depth, f"{path}[[{i + 1}]]") for i, v in enumerate(values)],
                                 attributes or None)
    if rtype == "S4":
        if not (isinstance(values, dict) and isinstance(values.get("class"), str)
                and isinstance(values.get("package"), str)):  # fmt: skip
            raise RockJSONError("an S4 node without its class and package", path)
        package = rserialize.Vector(_SXP["character"], [values["package"]])
        cls = rserialize.Vector(_SXP["character"], [values["class"]], [("package", package)])
        return rserialize.S4Object([*attributes, ("class", cls)])
    if rtype == "language":
        lines = values if isinstance(values, list) else None
        if not lines or not all(isinstance(line, str) for line in lines):
            raise RockJSONError("a language node without its deparsed text", path)
        return rserialize.Deparsed([_one_line(lines)], attributes or None)
    if rtype == "symbol":
        if not (isinstance(values, list) and len(values) == 1 and isinstance(values[0], str)):
            raise RockJSONError("a symbol node without its name", path)
        return Symbol(values[0])
    raise RockJSONError(f"a value of type '{rtype}' is not a value of the model", path)


def _one_line(lines: list[str]) -> str:
    """serializeJSON writes ``deparse(x)`` (lines of about 60 characters, each continuation indented);
    the model holds ``deparse(x, width.cutoff = 500)``: the lines joined, without the indent."""
    return lines[0] + "".join(line.lstrip(" ") for line in lines[1:])


# -- toJSON values, by shape ------------------------------------------------------------------------------


def _shaped(value: Any, shape: Shape, depth: int, path: str) -> Any:
    depth = _deeper(depth, path)
    if isinstance(shape, Atomic):
        if isinstance(value, dict):
            if value:
                raise RockJSONError(f"an object where a {shape.type} vector was expected", path)
            return None  # toJSON(NULL) is {}
        items = value if isinstance(value, list) else [value]
        return rserialize.Vector(_SXP[shape.type], [_element(shape.type, v, f"{path}[{i + 1}]")
                                                    for i, v in enumerate(items)])
    if isinstance(shape, ListOf):
        if isinstance(value, dict):
            names = [("" if key == str(i + 1) else key) for i, key in enumerate(value)]
            items = [None if v is None else _shaped(v, shape.fields.get(name, shape.other), depth, f"{path}${key}")
                     for name, (key, v) in zip(names, value.items(), strict=True)]
            names_vector = rserialize.Vector(_SXP["character"], names)
            return rserialize.Vector(_SXP["list"], items, [("names", names_vector)] if items else None)
        if isinstance(value, list):
            return rserialize.Vector(_SXP["list"], [None if v is None else _shaped(v, shape.other, depth,
                                                                                   f"{path}[[{i + 1}]]")
                                                    for i, v in enumerate(value)])
        if value is None:
            return None
        return _shaped(value, shape.other, depth, path)
    return _guessed(value, depth, path)


def _guessed(value: Any, depth: int, path: str) -> Any:
    """A toJSON value without a known shape: numbers are doubles, arrays whose elements agree vectors."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _shaped(value, ListOf(), depth - 1, path)
    items = value if isinstance(value, list) else [value]
    for rtype, kinds in (("logical", (bool,)), ("character", (str,)), ("double", (int, float))):
        if items and all(v is None or (isinstance(v, kinds) and (rtype == "logical" or not isinstance(v, bool)))
                         for v in items) and any(v is not None for v in items):
            return _shaped(value, Atomic(rtype), depth - 1, path)
    if isinstance(value, list):
        return _shaped(value, ListOf(), depth - 1, path)
    raise RockJSONError(f"{value!r} is not a JSON value of R", path)
