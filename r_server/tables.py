"""A study's tables read in Python, as typed columns for R: CSV (exactly ``utils::read.csv``'s data frame)
and Parquet.

Nothing here touches R: :meth:`r_server.rbridge.RBridge.read_table` (the one loader, a path in, an R data
frame out) turns a :class:`Columns` into a data frame, copying each column straight into R's memory.

**CSV.** ``utils::read.csv(path)`` is the reference, bit for bit. It is slow because R makes a string of
every cell (``scan``) before ``type.convert`` parses it. Here pyarrow splits the file and a column that is
plainly numeric is parsed without R strings:

- integers (``-?[0-9]+`` in int32's range but ``NA_integer_``) are read by pyarrow, as ``strtol`` reads them;
- decimals (``-?digits.digits``, no exponent) get R's own double: R's parser (``R_strtod``) accumulates the
  digits in a ``long double`` (exact: an integer ``M`` below 2^64) and divides by ``10^k`` (``k`` digits after
  the point; the power built by R's loop, exact up to ``10^27``), then rounds the 64-bit quotient to a double.
  That double rounding is why read.csv is one ulp off the correctly rounded value in some cells. The same
  two roundings are done here with numpy's ``long double`` (the C type R uses). ``M`` comes from pyarrow's
  correctly rounded double ``x`` as ``rint(x * 10^k)``, exact while ``|M| < 2^50`` (error below 1/4), and
  from the digits themselves otherwise.
- ``NA`` and empty fields are missing values; a column of nothing else is logical, as in read.csv.

Any other column (strings, ``T``/``F``, exponents, white space, ``+``...) is handed to R as the strings
``scan`` would give, and ``utils::type.convert`` types it exactly as read.table does. Whatever this reader
is not sure to split exactly as ``scan`` does, it leaves to ``utils::read.csv`` (``read_csv`` returns
None): a byte-order mark, NUL bytes, a lone carriage return, a blank first line, quotes anywhere but around
a whole field (or around a field holding a quote, separator or line break), rows whose field count differs
from the header's, a file without data rows, text that is not UTF-8.
Column names are always R's: ``make.names(scan(header line), unique = TRUE)`` as read.table does.

**Parquet.** Type mapping: int8-int64 and uint8-uint64 -> integer when every value fits R's integer (not
``NA_integer_``), else double; float64 -> double bit for bit, float32/float16 -> double (exact widening);
boolean -> logical; string -> character (UTF-8); dictionary of strings -> factor (levels in dictionary order);
null -> NA of the column's type (a column of type null is logical NA). Any other type is refused, and so is a
file pyarrow cannot read, with a message that names neither the path nor pyarrow's internals. Column names
are kept as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Column", "Columns", "TableError", "read_csv", "read_parquet"]

NA_INTEGER = np.int32(-(2**31))
NA_REAL_BITS = np.uint64(0x7FF00000000007A2)  # R's NA_real_: a NaN with payload 1954
_INT_MAX = 2**31 - 1
_CHUNK = 16 << 20  # bytes per block (pre-checks and pyarrow's reader)
_EXACT_M = 2.0**50  # |M| below this: rint(x * 10^k) is M (see the module docstring)
_MAX_TEXT = 2**31 - 2  # one R string holds a text column


class TableError(Exception):
    """A table file that cannot be read (its message is safe to show to a client)."""


@dataclass
class Column:
    """One column for R.

    ``kind``: ``integer``, ``logical`` (``values`` int32, NA = ``NA_INTEGER``), ``double`` (float64, NA =
    R's NA_real_ bits), ``text`` (strings for ``utils::type.convert``), ``character`` (UTF-8 strings),
    ``factor`` (``values`` int32 codes from 1, ``text`` the levels). Strings travel as one buffer: the
    values joined by ``sep`` (a character none of them holds), then ``sep`` and ``.`` (see ``.ds_split`` in
    ``r_server/R/zz_bridge.R``); ``na`` holds the 1-based positions of NA strings.
    """

    kind: str
    values: np.ndarray[Any, Any] | None = None
    text: bytes | None = None
    sep: str = "\n"
    count: int = 0
    na: np.ndarray[Any, Any] | None = None


@dataclass
class Columns:
    """A table's columns; ``names`` None: R takes them from the CSV header (``header``)."""

    columns: list[Column]
    nrows: int
    names: list[str] | None = None
    header: Path | None = None


def _na_real(n: int) -> np.ndarray[Any, Any]:
    return np.full(n, NA_REAL_BITS, dtype=np.uint64).view(np.float64)


_SEPARATORS = ("\n", "\x1f", "\x1e", "\x1d", "\x1c", "\x01")


def _joined(strings: Any) -> tuple[bytes, str, np.ndarray[Any, Any]]:
    """A pyarrow string array as ``.ds_split``'s buffer (the values joined by a separator that none of them
    holds, then the separator and ``.``), the separator, and the 1-based positions of its nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(strings)
    na = np.flatnonzero(strings.is_null().to_numpy(zero_copy_only=False)) + 1
    filled = pc.fill_null(strings, "") if strings.null_count else strings
    values = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), filled.cast(pa.string()))
    for sep in _SEPARATORS:
        whole = pc.binary_join(values, sep)[0].as_py() if n else ""
        if whole.count(sep) == max(n - 1, 0):
            data = (whole + sep + ".").encode("utf-8")
            if len(data) > _MAX_TEXT:
                raise TableError("a text column is too large")
            return data, sep, na
    raise TableError("a text column holds every separator character")


# -- CSV ---------------------------------------------------------------------------------------------------


class _Outside(Exception):
    """The file is outside what this reader splits exactly as scan(): read.csv reads it."""


def _fac(n: int) -> np.longdouble:
    """``10^n`` as R_strtod builds it: binary powering in long double."""
    p10, fac = np.longdouble(10.0), np.longdouble(1.0)
    while n:
        if n & 1:
            fac = fac * p10
        n >>= 1
        p10 = p10 * p10
    return fac


_MAX_K = 300  # more digits after the point: read.csv's other branches (left to R)
_FAC = np.array([_fac(n) for n in range(_MAX_K + 1)], dtype=np.longdouble)
_P10 = np.array([10.0**n for n in range(23)])  # exact doubles


def _quotes_clean(block: bytes) -> bool:
    """Every quote opens a whole field (after a separator or a line start) or closes it (before one),
    and a quoted field holds no quote, separator or line break. ``block`` is whole lines."""
    a = np.frombuffer(block, np.uint8)
    q = np.flatnonzero(a == 34)
    if q.size % 2:
        return False
    opens, closes = q[0::2], q[1::2]
    before = np.where(opens > 0, a[np.maximum(opens - 1, 0)], 10)
    after = np.where(closes + 1 < a.size, a[np.minimum(closes + 1, a.size - 1)], 10)
    if not (np.isin(before, (44, 10)).all() and np.isin(after, (44, 10, 13)).all()):
        return False
    breaks = np.flatnonzero((a == 44) | (a == 10) | (a == 13))
    return bool((np.searchsorted(breaks, closes) == np.searchsorted(breaks, opens)).all())


def _precheck(path: Path) -> int:
    """Checks the bytes (see the module docstring); the header's field count."""
    ncol = 0
    with path.open("rb") as handle:
        carry = b""
        first = True
        while True:
            chunk = handle.read(_CHUNK)
            data = carry + chunk
            if not chunk:
                block, carry = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                block, carry = data[:cut], data[cut:]
            if first and block:
                first = False
                if block.startswith((b"\xef\xbb\xbf", b"\n", b"\r")):
                    raise _Outside
                header = block[:block.find(b"\n")] if b"\n" in block else block
                ncol = header.count(b",") + 1
            if b"\x00" in block or block.count(b"\r") != block.count(b"\r\n"):
                raise _Outside
            if b'"' in block and not _quotes_clean(block):
                raise _Outside
            if not chunk:
                break
    if first or ncol < 2:
        raise _Outside
    return ncol


def _chars(arr: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The offsets and the bytes of a pyarrow string array (views, no copy)."""
    bufs = arr.buffers()
    off = np.frombuffer(bufs[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], np.uint8)[off[0]:off[-1]] if bufs[2] is not None else np.empty(0, np.uint8)
    return off, data


def _typed(arr: Any) -> tuple[str, np.ndarray[Any, Any] | None, np.ndarray[Any, Any] | None]:
    """One block of one column: ``(kind, values, negative-zero positions)``; kind ``empty``, ``integer``,
    ``double`` or ``text``. NA and empty fields are pyarrow's nulls here."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(arr)
    if arr.null_count == n:
        return "empty", None, None
    off, chars = _chars(arr)
    if chars.min() < 45 or chars.max() > 57:  # only - . / 0-9
        return "text", None, None
    dots = pc.fill_null(pc.find_substring(arr, "."), -1).to_numpy()
    nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    if (dots < 0).all():
        try:
            wide = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy()
        except pa.ArrowInvalid:
            return "text", None, None
        if wide.size and -_INT_MAX <= wide.min() and wide.max() <= _INT_MAX:
            values = wide.astype(np.int32)
            if nulls is not None:
                values[nulls] = NA_INTEGER
            negzero = None
            if chars.min() == 45 and (values == 0).any():  # a "-0" becomes -0.0 if the column turns double
                zero = np.flatnonzero(values == 0)
                signed = pc.starts_with(pc.take(arr, pa.array(zero)), "-").to_numpy(zero_copy_only=False)
                negzero = zero[signed]
            return "integer", values, negzero
    try:
        x = pc.fill_null(pc.cast(arr, pa.float64()), 0.0).to_numpy()
    except pa.ArrowInvalid:
        return "text", None, None
    k = np.where(dots >= 0, np.diff(off) - dots - 1, 0)
    if k.max() > _MAX_K:
        return "text", None, None
    m = np.rint(x * _P10[np.minimum(k, 22)])
    hard = np.flatnonzero((np.abs(m) >= _EXACT_M) | (k > 22))
    if hard.size:  # the digits themselves (the decimal point dropped)
        digits = pc.replace_substring(pc.take(arr, pa.array(hard)), ".", "", max_replacements=1)
        try:
            exact = pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # 19 digits or more
            return "text", None, None
        mm = m.astype(np.longdouble)
        mm[hard] = np.copysign(np.abs(exact).astype(np.longdouble), x[hard])
        values = (mm / _FAC[k]).astype(np.float64)
    else:
        values = (m.astype(np.longdouble) / _FAC[k]).astype(np.float64)
    if nulls is not None:
        values[nulls] = _na_real(int(nulls.sum()))
    return "double", values, None


def _promote(kind: str, values: np.ndarray[Any, Any] | None, negzero: np.ndarray[Any, Any] | None,
             n: int, final: str) -> np.ndarray[Any, Any]:
    """A block's values as the column's final kind."""
    if kind == "empty":
        return np.full(n, NA_INTEGER, np.int32) if final in ("integer", "logical") else _na_real(n)
    assert values is not None
    if kind == final:
        return values
    out = values.astype(np.float64)  # integer -> double: exact, as R_strtod reads those digits
    out[values == NA_INTEGER] = _na_real(int((values == NA_INTEGER).sum()))
    if negzero is not None and negzero.size:
        out[negzero] = -0.0
    return out


_MERGE = {
    ("empty", "integer"): "integer", ("empty", "double"): "double",
    ("integer", "double"): "double", ("double", "integer"): "double",
}  # fmt: skip


def _reader(path: Path, ncol: int, text: list[int] | None) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"V{j}" for j in range(ncol)]
    wanted = names if text is None else [names[j] for j in text]
    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(skip_rows=1, column_names=names, block_size=_CHUNK),
        parse_options=pcsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                                        newlines_in_values=False, ignore_empty_lines=True),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in wanted}, include_columns=wanted,
            # scan's NA: the field NA (quoted or not); for numbers, an empty field too
            null_values=["NA", ""] if text is None else ["NA"], strings_can_be_null=True,
            quoted_strings_can_be_null=True, check_utf8=True),
    )


def read_csv(path: str | Path) -> Columns | None:
    """``utils::read.csv(path)``'s columns, or None where only read.csv itself can be sure (see above)."""
    import pyarrow as pa

    path = Path(path)
    try:
        ncol = _precheck(path)
        kinds: list[str] = ["empty"] * ncol
        blocks: list[list[tuple[str, Any, Any, int]]] = [[] for _ in range(ncol)]
        nrows = 0
        for batch in _reader(path, ncol, None):
            nrows += batch.num_rows
            for j in range(ncol):
                if kinds[j] == "text":
                    continue
                kind, values, negzero = _typed(batch.column(j))
                if kind == "text":
                    kinds[j], blocks[j] = "text", []
                    continue
                if kind != "empty" and kinds[j] != kind:
                    kinds[j] = _MERGE[kinds[j], kind] if (kinds[j], kind) in _MERGE else kind
                blocks[j].append((kind, values, negzero, batch.num_rows))
        if nrows == 0:
            raise _Outside
        text = [j for j in range(ncol) if kinds[j] == "text"]
        columns: list[Column] = []
        for j in range(ncol):
            final = "logical" if kinds[j] == "empty" else kinds[j]
            if final == "text":
                columns.append(Column("text"))
                continue
            parts = [_promote(kind, values, negzero, n, final) for kind, values, negzero, n in blocks[j]]
            blocks[j] = []
            columns.append(Column(final, np.concatenate(parts) if len(parts) != 1 else parts[0], count=nrows))
        if text:
            strings: dict[int, list[Any]] = {j: [] for j in text}
            for batch in _reader(path, ncol, text):
                for i, j in enumerate(text):
                    strings[j].append(batch.column(i))
            for j in text:
                joined, sep, na = _joined(pa.chunked_array(strings.pop(j), pa.string()).combine_chunks())
                columns[j] = Column("text", text=joined, sep=sep, count=nrows, na=na)
    except (_Outside, pa.ArrowInvalid, TableError):
        return None
    return Columns(columns, nrows, header=path)


# -- Parquet -----------------------------------------------------------------------------------------------


def _parquet_column(name: str, data: Any) -> Column:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    t = arr.type
    n = len(arr)
    nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    if pa.types.is_dictionary(t):
        if not (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            return _parquet_column(name, arr.dictionary_decode())
        levels = arr.dictionary
        if levels.null_count or len(pc.unique(levels)) != len(levels):
            raise TableError(f"column {name!r}: its dictionary has missing or repeated values")
        codes = pc.fill_null(arr.indices, 0).to_numpy().astype(np.int32) + 1
        if nulls is not None:
            codes[nulls] = NA_INTEGER
        text, sep, _ = _joined(levels.cast(pa.string()))
        return Column("factor", codes, text=text, sep=sep, count=len(levels))
    if pa.types.is_null(t):
        return Column("logical", np.full(n, NA_INTEGER, np.int32))
    if pa.types.is_boolean(t):
        values = pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(np.int32)
        if nulls is not None:
            values[nulls] = NA_INTEGER
        return Column("logical", values)
    if pa.types.is_integer(t):
        wide = pc.fill_null(arr, 0).to_numpy()
        fits = n == 0 or (int(wide.min()) >= -_INT_MAX and int(wide.max()) <= _INT_MAX)
        if fits:
            values = wide.astype(np.int32)
            if nulls is not None:
                values[nulls] = NA_INTEGER
            return Column("integer", values)
        doubles = wide.astype(np.float64)
        if nulls is not None:
            doubles[nulls] = _na_real(int(nulls.sum()))
        return Column("double", doubles)
    if pa.types.is_floating(t):
        doubles = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)  # exact widening
        if nulls is not None:
            doubles[nulls] = _na_real(int(nulls.sum()))
        return Column("double", doubles)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text, sep, na = _joined(arr.cast(pa.string()) if pa.types.is_large_string(t) else arr)
        return Column("character", text=text, sep=sep, count=n, na=na)
    raise TableError(f"column {name!r} has Parquet type {t}, which a study table cannot hold")


def read_parquet(path: str | Path) -> Columns:
    """A Parquet file's columns, one at a time (the mapping is in the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
        names = list(source.schema_arrow.names)
        if len(set(names)) != len(names):
            raise TableError("the Parquet file has repeated column names")
        nrows = source.metadata.num_rows
        columns = []
        for name in names:
            columns.append(_parquet_column(name, source.read(columns=[name], use_threads=True).column(0)))
    except TableError:
        raise
    except (pa.ArrowException, OSError, ValueError, IndexError, KeyError) as exc:
        raise TableError(f"not a readable Parquet file ({type(exc).__name__})") from None
    for column in columns:
        length = column.count if column.kind == "character" else (
            len(column.values) if column.values is not None else 0)
        if length != nrows:
            raise TableError("the Parquet file's columns differ in length")
    return Columns(columns, nrows, names=names)
