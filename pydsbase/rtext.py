"""R's text forms of values, reproduced without R: deparse, as.character and cat.

dsBaseClient builds its server calls with ``call(...)`` and DSI deparses them; the analyst sees
``cat`` output. Both format doubles with R's ``formatReal`` rule: the fewest significant digits
(at most 15 for deparse/as.character, 7 for cat/print) that show the value to that precision, in
fixed notation unless scientific notation is narrower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydsbase.rvalue import NA, RAtomic, RList, RValue, _NAType

__all__ = [
    "as_character_double",
    "cat_text",
    "deparse_call",
    "deparse_string",
    "deparse_value",
    "format_double",
    "unlist",
]


def format_double(x: float, digits: int = 15) -> str:
    """One double as R formats it alone with ``digits`` significant digits (scipen 0)."""
    if digits >= 5 and -1e5 < x < 1e5 and x.is_integer():  # a whole number of at most 5 digits, all significant:
        return str(int(x))  # fixed notation is never wider than the e-form
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mantissa, exp_text = f"{abs(x):.{digits - 1}e}".split("e")
    kpower = int(exp_text)
    sig = mantissa.replace(".", "").rstrip("0") or "0"
    nsig = len(sig)
    neg = 1 if x < 0 else 0
    if kpower >= 0:
        rgt = max(0, nsig - kpower - 1)
        width_fixed = neg + kpower + 1 + (rgt + 1 if rgt else 0)
    else:
        rgt = nsig - kpower - 1
        width_fixed = neg + 1 + 1 + rgt
    width_sci = neg + (nsig + 1 if nsig > 1 else 1) + (5 if abs(kpower) >= 100 else 4)
    if width_fixed <= width_sci:
        return f"{x:.{rgt}f}"
    return f"{x:.{nsig - 1}e}"


def as_character_double(x: float | _NAType) -> str:
    """``as.character`` of one double (R 4.2: 15 significant digits)."""
    return "NA" if isinstance(x, _NAType) else format_double(x, 15)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def deparse_string(text: str) -> str:
    """A character scalar as R deparses it, in double quotes."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def deparse_value(value: Any) -> str:
    """A Python argument as R deparses it inside ``call(...)``: NULL, logical, double or string.

    Python ints are R doubles (R's literal ``1`` is a double); lists become ``c(...)``.
    """
    if value is None:
        return "NULL"
    if value is NA:
        return "NA"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return format_double(float(value), 15)
    if isinstance(value, str):
        return deparse_string(value)
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return deparse_value(value[0])
        return "c(" + ", ".join(deparse_value(v) for v in value) + ")"
    raise TypeError(f"cannot send a {type(value).__name__} to a DataSHIELD server")


def deparse_call(function: str, *args: Any, raw: Sequence[int] = ()) -> str:
    """``deparse(call(function, ...))``; arguments whose index is in ``raw`` are already R text."""
    parts = [arg if i in raw else deparse_value(arg) for i, arg in enumerate(args)]
    return f"{function}({', '.join(parts)})"


# -- unlist and cat ---------------------------------------------------------------------------

_TYPE_RANK = {"logical": 0, "integer": 1, "double": 2, "character": 3}


def unlist(value: RValue | None) -> RAtomic | None:
    """R's ``unlist`` (values only; names are not needed by the callers): NULL for an empty result."""
    if value is None:
        return None
    if isinstance(value, RAtomic):
        return value
    leaves: list[RAtomic] = []
    _collect(value, leaves)
    if not leaves:
        return None
    rtype = max((leaf.type for leaf in leaves), key=lambda t: _TYPE_RANK.get(t, 3))
    data: list[Any] = []
    for leaf in leaves:
        data.extend(_coerce(leaf.type, rtype, v) for v in leaf.data)
    return RAtomic(rtype, data)


def _collect(value: RValue | None, out: list[RAtomic]) -> None:
    if value is None:
        return
    if isinstance(value, RAtomic):
        out.append(value)
    elif isinstance(value, RList):
        for item in value.data:
            _collect(item, out)
    else:
        out.append(RAtomic("character", ["\n".join(value.deparsed)]))


def _coerce(source: str, target: str, v: Any) -> Any:
    if v is NA or source == target:
        return v
    if target == "character":
        if source == "logical":
            return "TRUE" if v else "FALSE"
        if source == "double":
            return as_character_double(v)
        return str(v)
    if target == "double":
        return float(v)
    return int(v)


def _cat_item(rtype: str, v: Any) -> str:
    if v is NA:
        return "NA"
    if rtype == "double":
        return format_double(v, 7)
    if rtype == "logical":
        return "TRUE" if v else "FALSE"
    return str(v)


def cat_text(*items: RValue | str | float | int | None) -> str:
    """What ``cat(...)`` prints with sep = " ".

    As in R's do_cat, a separator goes before every argument but the first unless the argument is
    NULL (zero-length vectors still take one), and between the elements of a vector.
    """
    out: list[str] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        if index:
            out.append(" ")
        out.append(" ".join(_cat_elements(item)))
    return "".join(out)


def _cat_elements(item: RValue | str | float | int) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, bool):
        return ["TRUE" if item else "FALSE"]
    if isinstance(item, int):
        return [str(item)]
    if isinstance(item, float):
        return [format_double(item, 7)]
    flat = unlist(item)
    return [] if flat is None else [_cat_item(flat.type, v) for v in flat.data]
