"""A study's tables read in Python, as typed columns for R: CSV (exactly ``utils::read.csv``'s data frame)
and Parquet.

Nothing here touches R: :meth:`r_server.rbridge.RBridge.read_table` (the one loader, a path in, an R data
frame out) turns a :class:`Columns` into a data frame. A CSV's numeric columns are written block by block
straight into R vectors (``read_csv``'s ``alloc``), so a study holds each value once while loading.

**CSV.** ``utils::read.csv(path)`` is the reference, bit for bit. It is slow because R makes a string of
every cell (``scan``) before ``type.convert`` parses it. Here pyarrow splits the file and a column that is
plainly numeric is parsed without R strings:

- integers (``-?[0-9]+`` in int32's range but ``NA_integer_``) are read by pyarrow, as ``strtol`` reads them;
- decimals (``-?digits.digits``, no exponent) get R's own double: R's parser (``R_strtod``) accumulates the
  digits in a ``long double`` (exact: an integer ``M`` below 2^64) and divides by ``10^k`` (``k`` digits after
  the point; the power built by R's loop, exact up to ``10^27``), then rounds the 64-bit quotient to a double.
  That double rounding is why read.csv is one ulp off the correctly rounded value in some cells. The same
  two roundings are done here with numpy's ``long double`` (the C type R uses). ``M`` comes from pyarrow's
  correctly rounded double ``x`` as ``rint(x * 10^k)``, exact while ``|M| < 2^50`` (error below 3/8), and
  from the digits themselves otherwise (19 digits or more, or more than 300 after the point: left to R).
- ``NA`` and empty fields are missing values; a column of nothing else is logical, as in read.csv.

Any other column (strings, ``T``/``F``, exponents, white space, ``+``...) is handed to R as the strings
``scan`` would give, and ``utils::type.convert`` types it exactly as read.table does. Whatever this reader
is not sure to split exactly as ``scan`` does, it leaves to ``utils::read.csv`` (``read_csv`` returns
None): a byte-order mark, NUL bytes, a lone carriage return, a blank first line, quotes anywhere but around
a whole field (or around a field holding a quote, separator or line break), rows whose field count differs
from the header's, a file without data rows or with a single column, text that is not UTF-8.
Column names are always R's: ``make.names(scan(header line), unique = TRUE)`` as read.table does.

**Parquet.** Type mapping: int8-int64 and uint8-uint64 -> integer when every value fits R's integer (not
``NA_integer_``), else double; float64 -> double bit for bit, float32/float16 -> double (exact widening);
boolean -> logical; string -> character (UTF-8); dictionary of strings -> factor (levels in dictionary order);
null -> NA of the column's type (a column of type null is logical NA). Any other type is refused, and so is a
file pyarrow cannot read, with a message that names neither the path nor pyarrow's internals. Column names
are kept as written.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FAST_CSV_BYTES", "Alloc", "Column", "Columns", "TableError", "numpy_vector", "read_csv", "read_parquet"]

NA_INTEGER = np.int32(-(2**31))
NA_REAL_BITS = np.uint64(0x7FF00000000007A2)  # R's NA_real_: a NaN with payload 1954
_INT_MAX = 2**31 - 1
_CHUNK = 1 << 20  # bytes per block of the pre-checks (their temporaries are a few times that)
_BLOCK = 2 << 20  # bytes per block handed to pyarrow (parsed in 4 parts on its threads)
_EXACT_M = 2.0**50  # |M| below this: rint(x * 10^k) is M (see the module docstring)
_MAX_TEXT = 2**31 - 2  # one R string holds a text column
# A smaller CSV is left to read.csv (``RBridge.read_table``): below ~20 MB read.csv's own peak is lower than
# the fast reader's with its library (pyarrow: +31 MiB imported, +29 MiB at its first use). Measured in a
# fresh study, first table: 9.8 MB (100,000 rows) read.csv +38 MiB in 0.61-0.68 s CPU, fast +61 MiB in
# 0.37-0.48 s; 19.9 MB read.csv +67-68 MiB in 1.9 s, fast +69-70 MiB in 0.6-0.7 s.
FAST_CSV_BYTES = 16 << 20


Alloc = Callable[[str, int], tuple[np.ndarray[Any, Any], Any]]


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
    handle: Any = None  # the R vector ``values`` lives in (see ``read_csv``'s ``alloc``)


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


def _numpy(arr: Any) -> np.ndarray[Any, Any]:
    """A pyarrow array without nulls (numbers or booleans) as a numpy array, read from its buffers.

    Not ``Array.to_numpy``: pyarrow's converter behind it tries to import pandas on every call (366
    modules, +35 MiB resident in a study process that never uses pandas)."""
    import pyarrow as pa

    if arr.null_count:
        raise ValueError("_numpy: an array with nulls")
    data = arr.buffers()[1]
    if pa.types.is_boolean(arr.type):
        bits = np.unpackbits(np.frombuffer(data, np.uint8), count=arr.offset + len(arr), bitorder="little")
        return bits[arr.offset:].astype(bool)
    dtype = np.dtype(arr.type.to_pandas_dtype())
    return np.frombuffer(data, dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _joined(strings: Any) -> tuple[bytes, str, np.ndarray[Any, Any]]:
    """A pyarrow string array as ``.ds_split``'s buffer (the values joined by a separator that none of them
    holds, then the separator and ``.``), the separator, and the 1-based positions of its nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(strings)
    na = np.flatnonzero(_numpy(strings.is_null())) + 1
    filled = pc.fill_null(strings, "") if strings.null_count else strings
    values = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), filled.cast(pa.string()))
    for sep in _SEPARATORS:
        # an Arrow scalar, not a str: pyarrow converts a str argument with its pandas-importing converter
        whole = pc.binary_join(values, pa.scalar(sep, pa.string()))[0].as_py() if n else ""
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


def _line_blocks(path: Path, size: int) -> Iterator[bytes]:
    """The file in blocks of whole lines (about ``size`` bytes; the last one may lack its line break)."""
    with path.open("rb") as handle:
        carry = b""
        while True:
            chunk = handle.read(size)
            if not chunk:
                if carry:
                    yield carry
                return
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            carry = data[cut:]


def _precheck(path: Path) -> tuple[int, int]:
    """Checks the bytes (see the module docstring); the header's field count, and the number of lines
    after it (at least the number of rows)."""
    ncol = lines = 0
    for block in _line_blocks(path, _CHUNK):
        if not lines:
            if block.startswith((b"\xef\xbb\xbf", b"\n", b"\r")) or b"\n" not in block:
                raise _Outside
            ncol = block[:block.find(b"\n")].count(b",") + 1
        if b"\x00" in block or block.count(b"\r") != block.count(b"\r\n"):
            raise _Outside
        if b'"' in block and not _quotes_clean(block):
            raise _Outside
        lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if ncol < 2:
        raise _Outside
    return ncol, lines - 1


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
    dots = _numpy(pc.fill_null(pc.find_substring(arr, "."), -1))
    nulls = _numpy(arr.is_null()) if arr.null_count else None
    if (dots < 0).all():
        try:
            wide = _numpy(pc.fill_null(pc.cast(arr, pa.int64()), 0))
        except pa.ArrowInvalid:
            return "text", None, None
        if wide.size and -_INT_MAX <= wide.min() and wide.max() <= _INT_MAX:
            values = wide.astype(np.int32)
            if nulls is not None:
                values[nulls] = NA_INTEGER
            negzero = None
            if chars.min() == 45 and (values == 0).any():  # a "-0" becomes -0.0 if the column turns double
                zero = np.flatnonzero(values == 0)
                signed = _numpy(pc.starts_with(pc.take(arr, pa.array(zero)), "-"))
                negzero = zero[signed]
            return "integer", values, negzero
    try:
        x = _numpy(pc.fill_null(pc.cast(arr, pa.float64()), 0.0))
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
            exact = _numpy(pc.cast(digits, pa.int64()))
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


def _na_fill(out: np.ndarray[Any, Any]) -> None:
    """NA of the array's type in every element."""
    if out.dtype == np.float64:
        out.view(np.uint64)[:] = NA_REAL_BITS
    else:
        out[:] = NA_INTEGER


def _as_double(values: np.ndarray[Any, Any], negzero: list[np.ndarray[Any, Any]], out: np.ndarray[Any, Any]) -> None:
    """Integers (read from their digits) as R_strtod reads those digits: the same numbers, and -0.0 where
    the text was a negative zero."""
    out[:] = values
    _na_fill_where(out, values == NA_INTEGER)
    for positions in negzero:
        out[positions] = -0.0


def _na_fill_where(out: np.ndarray[Any, Any], where: np.ndarray[Any, Any]) -> None:
    if where.any():
        out.view(np.uint64)[where] = NA_REAL_BITS


def numpy_vector(kind: str, n: int) -> tuple[np.ndarray[Any, Any], Any]:
    """The default ``alloc`` of :func:`read_csv`: a numpy array for a column of ``kind``, no handle."""
    return np.empty(n, np.float64 if kind == "double" else np.int32), None


class _PandasOutOfReach(importlib.abc.MetaPathFinder):
    """Refuses to import pandas (in place during :func:`_arrow_setup`'s probe only)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ImportError("pandas is not used by a study's table readers")
        return None


@functools.cache
def _arrow_setup() -> None:
    """Process-wide, once, before the readers' first use of pyarrow.

    pyarrow's memory goes back to the system as soon as it is freed (jemalloc with no decay delay), so
    that a study's peak while loading stays near its table's size; mimalloc, pyarrow's default, keeps
    freed blocks (1.75x ``object.size`` instead of 1.3x on a million rows).

    pyarrow asks whether pandas is installed the first time it converts a Python value or a numpy
    array (``fill_null(x, 0)``, ``pa.array(positions)``), and imports it to find out: 366 modules, +35
    MiB resident in a study process that never uses pandas. Where pandas is not loaded yet, the question
    is asked once here with pandas out of reach; pyarrow keeps the answer (no pandas interop in this
    process) and pandas itself stays importable. The readers take numbers out through :func:`_numpy`."""
    import pyarrow as pa

    if "pandas" not in sys.modules:
        probe = _PandasOutOfReach()
        sys.meta_path.insert(0, probe)
        try:
            pa.scalar(0, pa.int8())
        finally:
            sys.meta_path.remove(probe)
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # a pyarrow built without jemalloc
        return
    pa.set_memory_pool(pool)


def _reader(path: Path, ncol: int, text: list[int] | None) -> Iterator[Any]:
    """The rows after the header in record batches of strings: every column (``text`` None; ``NA`` and
    empty fields null) or the columns ``text`` (``NA`` null). Blocks of whole lines are handed to pyarrow
    one at a time (its own streaming reader reads far ahead: memory); the pre-checks made sure that no
    field holds a line break."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"V{j}" for j in range(ncol)]
    wanted = names if text is None else [names[j] for j in text]
    read = pcsv.ReadOptions(column_names=names, block_size=_BLOCK // 4, use_threads=True)
    parse = pcsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                              newlines_in_values=False, ignore_empty_lines=True)
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in wanted}, include_columns=wanted,
        # scan's NA: the field NA (quoted or not); for numbers, an empty field too
        null_values=["NA", ""] if text is None else ["NA"], strings_can_be_null=True,
        quoted_strings_can_be_null=True, check_utf8=True)
    first = True
    for block in _line_blocks(path, _BLOCK):
        if first:
            block, first = block[block.find(b"\n") + 1:], False
        if not block.strip(b"\r\n"):
            continue
        yield from pcsv.read_csv(pa.py_buffer(block), read_options=read, parse_options=parse,
                                 convert_options=convert).to_batches()


def read_csv(path: str | Path, alloc: Alloc = numpy_vector) -> Columns | None:
    """``utils::read.csv(path)``'s columns, or None where only read.csv itself can be sure (see above).

    Each numeric column is written block by block into one vector from ``alloc(kind, capacity)`` (a
    writable array of a line-count's length and the object that owns it: an R vector, so nothing is held
    twice); ``Column.values`` is its first ``nrows`` elements and ``Column.handle`` the owner."""
    import pyarrow as pa

    path = Path(path)
    _arrow_setup()
    try:
        ncol, capacity = _precheck(path)
        kinds: list[str] = ["empty"] * ncol
        vectors: list[tuple[np.ndarray[Any, Any], Any] | None] = [None] * ncol
        negzeros: list[list[np.ndarray[Any, Any]]] = [[] for _ in range(ncol)]
        nrows = 0
        for batch in _reader(path, ncol, None):
            start, nrows = nrows, nrows + batch.num_rows
            if nrows > capacity:
                raise _Outside
            for j in range(ncol):
                if kinds[j] == "text":
                    continue
                kind, values, negzero = _typed(batch.column(j))
                vector = vectors[j]
                if kind == "text":
                    kinds[j], vectors[j], negzeros[j] = "text", None, []
                    continue
                if kind == "empty":
                    if vector is not None:
                        _na_fill(vector[0][start:nrows])
                    continue
                final = "double" if "double" in (kind, kinds[j]) else "integer"
                if vector is None:
                    vector = alloc(final, capacity)
                    _na_fill(vector[0][:start])
                elif final != kinds[j]:  # integer -> double: the rows so far become doubles
                    wider = alloc(final, capacity)
                    _as_double(vector[0][:start], negzeros[j], wider[0][:start])
                    vector = wider
                vectors[j], kinds[j] = vector, final
                assert values is not None
                if kind == final:
                    vector[0][start:nrows] = values
                else:
                    _as_double(values, [] if negzero is None else [negzero], vector[0][start:nrows])
                if negzero is not None and negzero.size and final == "integer":
                    negzeros[j].append(negzero + start)
        if nrows == 0:
            raise _Outside
        text = [j for j in range(ncol) if kinds[j] == "text"]
        columns: list[Column] = []
        for j in range(ncol):
            vector = vectors[j]
            if kinds[j] == "empty":  # NA or empty fields only: logical, as type.convert makes it
                vector = alloc("logical", nrows)
                _na_fill(vector[0])
            if vector is None:
                columns.append(Column("text"))
            else:
                columns.append(Column("logical" if kinds[j] == "empty" else kinds[j], vector[0][:nrows],
                                      count=nrows, handle=vector[1]))
        vectors.clear()
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
    finally:
        pa.default_memory_pool().release_unused()
    return Columns(columns, nrows, header=path)


# -- Parquet -----------------------------------------------------------------------------------------------


def _parquet_numbers(kind: str, data: Any, alloc: Alloc) -> Column:
    """A column of numbers (``kind`` integer, double or logical) written chunk by chunk into one vector from
    ``alloc``: NA where null, integers and floats converted by numpy (exact for every int32 and float)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(data)
    out, handle = alloc(kind, n)
    start = 0
    for chunk in data.chunks:
        target = out[start:start + len(chunk)]
        start += len(chunk)
        if pa.types.is_null(chunk.type):
            _na_fill(target)
            continue
        filled = pc.fill_null(chunk, False if kind == "logical" else 0) if chunk.null_count else chunk
        np.copyto(target, _numpy(filled), casting="unsafe")
        if chunk.null_count:
            nulls = _numpy(chunk.is_null())
            if kind == "double":
                _na_fill_where(target, nulls)
            else:
                target[nulls] = NA_INTEGER
    return Column(kind, out, count=n, handle=handle)


def _parquet_column(name: str, data: Any, alloc: Alloc) -> Column:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = data.type
    if pa.types.is_null(t) or pa.types.is_boolean(t):
        return _parquet_numbers("logical", data, alloc)
    if pa.types.is_integer(t):
        bounds = pc.min_max(data)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        fits = low is None or (low >= -_INT_MAX and high <= _INT_MAX)
        return _parquet_numbers("integer" if fits else "double", data, alloc)
    if pa.types.is_floating(t):
        return _parquet_numbers("double", data, alloc)
    arr = data.combine_chunks()
    if pa.types.is_dictionary(t):
        if not (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            return _parquet_column(name, pa.chunked_array([arr.dictionary_decode()]), alloc)
        levels = arr.dictionary
        if levels.null_count or len(pc.unique(levels)) != len(levels):
            raise TableError(f"column {name!r}: its dictionary has missing or repeated values")
        codes = _numpy(pc.fill_null(arr.indices, 0)).astype(np.int32) + 1
        if arr.null_count:
            codes[_numpy(arr.is_null())] = NA_INTEGER
        text, sep, _ = _joined(levels.cast(pa.string()))
        return Column("factor", codes, text=text, sep=sep, count=len(levels))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text, sep, na = _joined(arr.cast(pa.string()) if pa.types.is_large_string(t) else arr)
        return Column("character", text=text, sep=sep, count=len(arr), na=na)
    raise TableError(f"column {name!r} has Parquet type {t}, which a study table cannot hold")


def read_parquet(path: str | Path, alloc: Alloc = numpy_vector) -> Columns:
    """A Parquet file's columns, one at a time (the mapping is in the module docstring); numbers are
    written into vectors from ``alloc`` (as :func:`read_csv`'s)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _arrow_setup()
    try:
        source = pq.ParquetFile(path, pre_buffer=False, buffer_size=_BLOCK)  # pages read as decoded: memory
        names = list(source.schema_arrow.names)
        if len(set(names)) != len(names):
            raise TableError("the Parquet file has repeated column names")
        nrows = source.metadata.num_rows
        columns = []
        for name in names:
            columns.append(_parquet_column(name, source.read(columns=[name], use_threads=True).column(0), alloc))
    except TableError:
        raise
    except (pa.ArrowException, OSError, ValueError, IndexError, KeyError) as exc:
        raise TableError(f"not a readable Parquet file ({type(exc).__name__})") from None
    for column in columns:
        length = column.count if column.kind == "character" else len(column.values) if column.values is not None else -1
        if length != nrows:
            raise TableError("the Parquet file's columns differ in length")
    return Columns(columns, nrows, names=names)
