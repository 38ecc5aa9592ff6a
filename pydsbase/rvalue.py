"""The lossless R-value model.

Every value that crosses from a study to the client is an R value, and this module models it
explicitly: type, class, names, dim, dimnames, every other attribute, S4 metadata, NULL slots in
lists, unnamed list slots, integer versus double and language objects by their deparsed text.

The wire form ("node") is the JSON encoding of ``shared/golden/dsbaseclient/README.md``; the model
round-trips through it bit for bit (doubles are written with ``repr``, the shortest text that
reads back to the same double). pandas objects are views of the model, never the canonical value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "NA",
    "RAtomic",
    "RLanguage",
    "RList",
    "RValue",
    "dumps",
    "from_node",
    "loads",
    "r_character",
    "r_double",
    "r_integer",
    "r_list",
    "r_logical",
    "to_node",
]


class _NAType:
    """R's NA, for every atomic type (NA_real_, NA_integer_, NA, NA_character_)."""

    _instance: _NAType | None = None

    def __new__(cls) -> _NAType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __bool__(self) -> bool:
        raise TypeError("NA has no truth value")

    def __reduce__(self) -> str:
        return "NA"


NA: Final = _NAType()

ATOMIC_TYPES: Final = ("double", "integer", "logical", "character", "complex")
_IMPLICIT_CLASS = {"double": "numeric", "integer": "integer", "logical": "logical", "character": "character"}


@dataclass(eq=False)
class RAtomic:
    """An atomic vector, matrix or array (``typeof`` double, integer, logical or character).

    ``data`` is column-major. Elements: float (NaN, inf allowed) for double, int for integer,
    bool for logical, str for character; ``NA`` everywhere R has NA.
    """

    type: str
    data: list[Any]
    r_class: list[str] | None = None
    names: list[str | None] | None = None
    dim: list[int] | None = None
    dimnames: list[list[str | None] | None] | None = None
    dimnames_names: list[str] | None = None
    attributes: dict[str, RValue] = field(default_factory=dict)
    s4: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in ATOMIC_TYPES:
            raise ValueError(f"not an atomic R type: {self.type!r}")
        if self.r_class is None:
            self.r_class = _implicit_class(self.type, self.dim)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RAtomic) and to_node(self) == to_node(other) and _bits(self) == _bits(other)

    def value(self) -> Any:
        """The single element of a length-1 vector."""
        if len(self.data) != 1:
            raise ValueError(f"expected length 1, got {len(self.data)}")
        return self.data[0]

    def to_pandas(self) -> Any:
        """A pandas view: DataFrame for a matrix, Series for a named vector, else a Series."""
        import pandas as pd

        values = [_py_na(v) for v in self.data]
        if self.dim is not None and len(self.dim) == 2:
            nrow, ncol = self.dim
            rows = self.dimnames[0] if self.dimnames and self.dimnames[0] is not None else None
            cols = self.dimnames[1] if self.dimnames and self.dimnames[1] is not None else None
            columns = {
                (cols[j] if cols else j): values[j * nrow : (j + 1) * nrow] for j in range(ncol)
            }
            return pd.DataFrame(columns, index=rows)
        return pd.Series(values, index=self.names)


@dataclass(eq=False)
class RList:
    """A generic vector (``typeof`` list), possibly with an S3 class. NULL elements are ``None``."""

    data: list[RValue | None]
    names: list[str] | None = None
    r_class: list[str] = field(default_factory=lambda: ["list"])
    attributes: dict[str, RValue] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RList) and dumps(self) == dumps(other)

    def __getitem__(self, key: str | int) -> RValue | None:
        if isinstance(key, int):
            return self.data[key]
        if self.names is None or key not in self.names:
            raise KeyError(key)
        return self.data[self.names.index(key)]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return list(self.names or [])

    def items(self) -> list[tuple[str, RValue | None]]:
        return list(zip(self.names or [""] * len(self.data), self.data, strict=True))

    def to_pandas(self) -> dict[str, Any]:
        """A dict view whose values are pandas views of the elements."""
        out: dict[str, Any] = {}
        for i, (name, value) in enumerate(self.items()):
            key = name or str(i + 1)
            out[key] = value.to_pandas() if isinstance(value, RAtomic | RList) else value
        return out


@dataclass(eq=False)
class RLanguage:
    """A language object (a call or a formula), carried by its deparsed text."""

    deparsed: list[str]
    r_class: list[str] = field(default_factory=lambda: ["call"])
    type: str = "language"
    has_environment: bool | None = None
    attributes: dict[str, RValue] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RLanguage) and to_node(self) == to_node(other)

    def to_pandas(self) -> str:
        return "\n".join(self.deparsed)


RValue = RAtomic | RList | RLanguage

_new: Final = object.__new__


def atomic_unchecked(
    type: str, data: list[Any], r_class: list[str], names: list[str | None] | None = None,
    dim: list[int] | None = None, dimnames: list[list[str | None] | None] | None = None,
    dimnames_names: list[str] | None = None, attributes: dict[str, RValue] | None = None,
) -> RAtomic:
    """``RAtomic(...)`` for a caller whose ``type`` is valid and ``r_class`` given (the decoder's, some hundred
    times per study summary): the same fields in the same order, without ``__init__``'s call and checks,
    which cost as much as the rest of making a value."""
    x = _new(RAtomic)
    x.type = type
    x.data = data
    x.r_class = r_class
    x.names = names
    x.dim = dim
    x.dimnames = dimnames
    x.dimnames_names = dimnames_names
    x.attributes = {} if attributes is None else attributes
    x.s4 = None
    return x


def list_unchecked(
    data: list[RValue | None], names: list[str] | None, r_class: list[str], attributes: dict[str, RValue] | None = None
) -> RList:
    """``RList(...)`` without ``__init__``'s call (as :func:`atomic_unchecked`)."""
    x = _new(RList)
    x.data = data
    x.names = names
    x.r_class = r_class
    x.attributes = {} if attributes is None else attributes
    return x


def _implicit_class(rtype: str, dim: Sequence[int] | None) -> list[str]:
    if dim is not None:
        return ["matrix", "array"] if len(dim) == 2 else ["array"]
    if rtype == "double":
        return ["numeric"]
    return [_IMPLICIT_CLASS.get(rtype, rtype)]


def _py_na(value: Any) -> Any:
    return None if value is NA else value


def _bits(vec: RAtomic) -> list[Any]:
    if vec.type != "double":
        return vec.data
    return [v if v is NA else float(v).hex() if not math.isnan(v) else "NaN" for v in vec.data]


# -- constructors ---------------------------------------------------------------------------------


def r_double(values: Sequence[Any], names: Sequence[str] | None = None) -> RAtomic:
    return RAtomic("double", [v if v is NA else float(v) for v in values], names=_opt(names))


def r_integer(values: Sequence[Any], names: Sequence[str] | None = None) -> RAtomic:
    return RAtomic("integer", [v if v is NA else int(v) for v in values], names=_opt(names))


def r_logical(values: Sequence[Any], names: Sequence[str] | None = None) -> RAtomic:
    return RAtomic("logical", [v if v is NA else bool(v) for v in values], names=_opt(names))


def r_character(values: Sequence[Any], names: Sequence[str] | None = None) -> RAtomic:
    return RAtomic("character", [v if v is NA else str(v) for v in values], names=_opt(names))


def r_list(items: Mapping[str, RValue | None] | Sequence[RValue | None], r_class: str = "list") -> RList:
    if isinstance(items, Mapping):
        return RList(list(items.values()), names=list(items.keys()), r_class=[r_class])
    return RList(list(items), r_class=[r_class])


def _opt(names: Sequence[str] | None) -> list[str | None] | None:
    return None if names is None else list(names)


# -- node codec -----------------------------------------------------------------------------------

_SPECIAL_DOUBLES = {"NA": NA, "NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf}


def _decode_element(rtype: str, item: Any) -> Any:
    if rtype == "double":
        if isinstance(item, str):
            if item not in _SPECIAL_DOUBLES:
                raise ValueError(f"bad double element {item!r}")
            return _SPECIAL_DOUBLES[item]
        return float(item)
    if rtype == "character":
        return NA if item is None else item
    if item == "NA":
        return NA
    if rtype == "integer":
        return int(item)
    if rtype == "logical":
        return bool(item)
    return item


def _encode_element(rtype: str, item: Any) -> Any:
    if item is NA:
        return None if rtype == "character" else "NA"
    if rtype == "double":
        if math.isnan(item):
            return "NaN"
        if math.isinf(item):
            return "Inf" if item > 0 else "-Inf"
        return float(item)
    return item


def from_node(node: Any) -> RValue | None:
    """Decode one JSON node (see the golden README) into the model. ``null`` is R's NULL."""
    if node is None:
        return None
    if not isinstance(node, dict) or "type" not in node:
        raise ValueError("not an R value node")
    rtype = node["type"]
    attributes = {k: _required(from_node(v)) for k, v in (node.get("attributes") or {}).items()}
    if rtype == "language" or rtype == "symbol":
        return RLanguage(
            list(node["deparsed"]),
            r_class=list(node.get("class", ["call"])),
            type=rtype,
            has_environment=node.get("has_environment"),
            attributes=attributes,
        )
    if rtype == "list":
        raw = node["data"]
        if isinstance(raw, dict):
            names: list[str] | None = list(raw.keys())
            items = [from_node(v) for v in raw.values()]
        else:
            names = list(node["names"]) if "names" in node else None
            items = [from_node(v) for v in raw]
        return RList(items, names=names, r_class=list(node["class"]), attributes=attributes)
    s4 = {k: node[k] for k in node if k.startswith("s4_") or k == "converted_with"} or None
    return RAtomic(
        rtype,
        [_decode_element(rtype, x) for x in node["data"]],
        r_class=list(node["class"]),
        names=list(node["names"]) if "names" in node else None,
        dim=list(node["dim"]) if "dim" in node else None,
        dimnames=[None if d is None else list(d) for d in node["dimnames"]] if "dimnames" in node else None,
        dimnames_names=list(node["dimnames_names"]) if "dimnames_names" in node else None,
        attributes=attributes,
        s4=s4,
    )


def _required(value: RValue | None) -> RValue:
    if value is None:
        raise ValueError("an attribute cannot be NULL")
    return value


def to_node(value: RValue | None) -> Any:
    """Encode a model value as a JSON-ready node, keys in the golden files' order."""
    if value is None:
        return None
    node: dict[str, Any] = {}
    if isinstance(value, RLanguage):
        node = {"type": value.type, "class": list(value.r_class), "deparsed": list(value.deparsed)}
        if value.has_environment is not None:
            node["has_environment"] = value.has_environment
    elif isinstance(value, RList):
        node = {"type": "list", "class": list(value.r_class), "length": len(value.data)}
        names = value.names
        if names is not None and _unique_names(names):
            node["data"] = {n: to_node(v) for n, v in zip(names, value.data, strict=True)}
        else:
            node["data"] = [to_node(v) for v in value.data]
            if names is not None:
                node["names"] = list(names)
    else:
        if value.s4:
            node.update(value.s4)
        node.update(
            {
                "type": value.type,
                "class": list(value.r_class or []),
                "length": len(value.data),
                "data": [_encode_element(value.type, x) for x in value.data],
            }
        )
        if value.names is not None:
            node["names"] = list(value.names)
        if value.dim is not None:
            node["dim"] = list(value.dim)
        if value.dimnames is not None:
            node["dimnames"] = [None if d is None else list(d) for d in value.dimnames]
        if value.dimnames_names is not None:
            node["dimnames_names"] = list(value.dimnames_names)
    if value.attributes:
        node["attributes"] = {k: to_node(v) for k, v in value.attributes.items()}
    return node


def _unique_names(names: Sequence[str | None]) -> bool:
    return all(n for n in names) and len(set(names)) == len(names)


def dumps(value: RValue | None) -> str:
    """Serialize to JSON text. Floats use repr, which reads back to the identical double."""
    return json.dumps(to_node(value), allow_nan=False, ensure_ascii=False)


def loads(text: str | bytes) -> RValue | None:
    return from_node(json.loads(text))
