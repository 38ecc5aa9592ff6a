"""The few R operations dsBaseClient applies to study answers, with R's semantics and messages.

``$`` with partial matching, ``if()`` conditions, matrix building with recycling, column subsetting
with ``drop`` (a one-column or one-row result becomes a named vector), ``as.matrix`` of a vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydsbase.errors import RError
from pydsbase.rvalue import NA, RAtomic, RList, RValue

__all__ = [
    "as_matrix",
    "column",
    "condition",
    "dollar",
    "matrix_dimnames",
    "new_matrix",
    "nrow",
    "rownames",
    "select_columns",
]


def dollar(value: RValue | None, name: str) -> RValue | None:
    """``value$name``: exact match first, then a unique partial match; NULL otherwise."""
    if value is None:
        return None
    if isinstance(value, RAtomic):
        raise RError("$ operator is invalid for atomic vectors")
    if not isinstance(value, RList) or value.names is None:
        return None
    names = value.names
    if name in names:
        return value.data[names.index(name)]
    partial = [i for i, n in enumerate(names) if n and n.startswith(name)]
    return value.data[partial[0]] if len(partial) == 1 else None


def condition(value: RValue | None) -> bool:
    """The truth of ``if (value)`` in R 4.2, with R's errors."""
    if value is None or (isinstance(value, RAtomic) and len(value.data) == 0):
        raise RError("argument is of length zero")
    if not isinstance(value, RAtomic):
        raise RError("argument is not interpretable as logical")
    if len(value.data) > 1:
        raise RError("the condition has length > 1")
    item = value.data[0]
    if item is NA:
        raise RError("missing value where TRUE/FALSE needed")
    if value.type == "character":
        if item in ("TRUE", "true", "T", "True"):
            return True
        if item in ("FALSE", "false", "F", "False"):
            return False
        raise RError("argument is not interpretable as logical")
    return bool(item)


def equals_scalar(value: RValue | None, target: Any) -> RAtomic | None:
    """``value == target`` for a scalar target (NULL stays logical(0))."""
    if value is None:
        return RAtomic("logical", [])
    if not isinstance(value, RAtomic):
        raise RError("comparison (==) is possible only for atomic and list types")
    out: list[Any] = []
    for item in value.data:
        if item is NA:
            out.append(NA)
        elif value.type == "character":
            out.append(item == (target if isinstance(target, str) else _num_text(target)))
        else:
            out.append(float(item) == float(target))
    return RAtomic("logical", out)


def _num_text(x: Any) -> str:
    from pydsbase.rtext import as_character_double

    return as_character_double(float(x))


def nrow(value: RValue | None) -> int:
    if isinstance(value, RAtomic) and value.dim is not None and len(value.dim) == 2:
        return value.dim[0]
    raise RError("incorrect number of dimensions")


def column(value: RValue | None, j: int) -> list[Any]:
    """``value[, j + 1]`` of a matrix, as a list of elements."""
    if not isinstance(value, RAtomic) or value.dim is None or len(value.dim) != 2:
        raise RError("incorrect number of dimensions")
    rows, cols = value.dim
    if j >= cols:
        raise RError("subscript out of bounds")
    return value.data[j * rows : (j + 1) * rows]


def rownames(value: RValue | None) -> list[str | None] | None:
    """``dimnames(value)[[1]]`` (NULL when there are none or value is not an array)."""
    if isinstance(value, RAtomic) and value.dimnames:
        return value.dimnames[0]
    return None


def new_matrix(nrows: int, ncols: int, columns: dict[int, list[Any]]) -> RAtomic:
    """``m <- matrix(NA, nrows, ncols); m[, k] <- v`` for each column given, with R's recycling."""
    rtype = "double" if columns else "logical"
    data: list[Any] = [NA] * (nrows * ncols)
    for k, values in columns.items():
        if not values:
            raise RError("replacement has length zero")
        if nrows % len(values) != 0:
            raise RError("number of items to replace is not a multiple of replacement length")
        for i in range(nrows):
            data[k * nrows + i] = values[i % len(values)]
    return RAtomic(rtype, data, dim=[nrows, ncols])


def matrix_dimnames(matrix: RAtomic, rows: list[str | None] | None, cols: list[str | None] | None) -> None:
    """``dimnames(matrix) <- list(rows, cols)``, with R's extent check."""
    assert matrix.dim is not None
    if rows is not None and len(rows) != matrix.dim[0]:
        raise RError("length of 'dimnames' [1] not equal to array extent")
    if cols is not None and len(cols) != matrix.dim[1]:
        raise RError("length of 'dimnames' [2] not equal to array extent")
    matrix.dimnames = None if rows is None and cols is None else [rows, cols]


def select_columns(matrix: RAtomic, cols: Sequence[int]) -> RAtomic:
    """``matrix[, cols]`` with drop = TRUE (0-based column indexes)."""
    assert matrix.dim is not None
    rows = matrix.dim[0]
    data: list[Any] = []
    for j in cols:
        data.extend(matrix.data[j * rows : (j + 1) * rows])
    rnames = matrix.dimnames[0] if matrix.dimnames else None
    cnames_all = matrix.dimnames[1] if matrix.dimnames else None
    cnames = [cnames_all[j] for j in cols] if cnames_all is not None else None
    k = len(cols)
    if rows != 1 and k != 1:
        out = RAtomic(matrix.type, data, dim=[rows, k])
        out.dimnames = None if rnames is None and cnames is None else [rnames, cnames]
        return out
    if rows == 1 and k == 1:
        present = [n for n in (rnames, cnames) if n is not None]
        names = present[0] if len(present) == 1 else None
    else:
        names = rnames if k == 1 else cnames
    return RAtomic(matrix.type, data, names=names)


def as_matrix(value: RAtomic) -> RAtomic:
    """``as.matrix``: a matrix is returned as is, a vector becomes one column."""
    if value.dim is not None and len(value.dim) == 2:
        return value
    out = RAtomic(value.type, list(value.data), dim=[len(value.data), 1])
    if value.names is not None:
        out.dimnames = [list(value.names), None]
    return out


def row(matrix: RAtomic, i: int) -> list[Any]:
    """``matrix[i + 1, ]`` as a list of elements; R's error past the last row."""
    assert matrix.dim is not None
    rows, cols = matrix.dim
    if i >= rows:
        raise RError("subscript out of bounds")
    return [matrix.data[j * rows + i] for j in range(cols)]
