"""Pin the CPU cache sizes that lme4's Eigen plans its matrix products with.

Eigen (bundled with lme4 through RcppEigen) splits the inner dimension of a matrix product into
blocks sized from the L1/L2/L3 cache sizes it reads from CPUID on first use. The block size decides
the order in which a long sum (for example X'X over every row of the data) is added up, so the same
lme4 binary on the same data gives doubles that differ in the last bits between a CPU with a 32 KiB
L1 data cache and one with 48 KiB. In an ill-conditioned fit those bits steer the optimizer to a
different end point (1e-9 relative in the golden case ``slo_age_slope_by_doctor``).

The reference outputs were produced on a machine with a 32 KiB L1 data cache. Every study process
therefore pins Eigen's sizes to :data:`DEFAULT_SIZES` right after loading lme4, so a study answers
with the same doubles on every host. ``PYDSBASE_EIGEN_CACHE_SIZES`` overrides them (three byte
counts, ``l1,l2,l3``; ``host`` keeps what the CPU reports).

Eigen keeps the sizes in one function-local static of an inline function. g++ exports such statics
as ``STB_GNU_UNIQUE`` objects, so the loaded ``lme4.so`` lets us find and set the value by name
(with its initialization guard, so that Eigen's own CPUID query never overwrites it).
"""

from __future__ import annotations

import ctypes
import os

ENV_VAR = "PYDSBASE_EIGEN_CACHE_SIZES"
# L1 data, L2 and L3 in bytes. Only L1 reaches the blocking of the products lme4 computes
# (measured: all 34 bit-reproducible golden cases are identical with L2/L3 of 256 KiB/8 MiB and 1 MiB/32 MiB).
DEFAULT_SIZES = (32 * 1024, 1024 * 1024, 32 * 1024 * 1024)

_SIZES_SYMBOL = "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
_GUARD_SYMBOL = "_ZGV" + _SIZES_SYMBOL[2:]


class EigenCacheError(RuntimeError):
    """The cache sizes could not be pinned as configured."""


def configured_sizes(environ: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """The sizes to pin: the environment's ``l1,l2,l3``, :data:`DEFAULT_SIZES`, or None for ``host``."""
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_SIZES
    if text == "host":
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise EigenCacheError(f"{ENV_VAR} must be 'host' or three positive byte counts 'l1,l2,l3', not {text!r}")
    l1, l2, l3 = (int(p) for p in parts)
    return (l1, l2, l3)


def _cells(library_path: str) -> tuple[ctypes.Array[ctypes.c_int64], ctypes.c_uint8]:
    try:
        lib = ctypes.CDLL(library_path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError as exc:
        raise EigenCacheError(f"{library_path} is not loaded in this process") from exc
    try:
        sizes = (ctypes.c_int64 * 3).in_dll(lib, _SIZES_SYMBOL)
        guard = ctypes.c_uint8.in_dll(lib, _GUARD_SYMBOL)
    except ValueError as exc:
        raise EigenCacheError(f"{library_path} has no Eigen cache-size symbol (built without Eigen 3.3?)") from exc
    return sizes, guard


def pin(library_path: str, sizes: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """Set Eigen's cache sizes inside the loaded ``library_path``; returns what is now in force.

    With ``sizes=None`` nothing is written and the host's values are returned once Eigen has
    read them (None before its first product).
    """
    cells, guard = _cells(library_path)
    if sizes is not None:
        cells[0], cells[1], cells[2] = sizes
        guard.value = 1  # initialized: Eigen's first use will not query CPUID over our values
    if not guard.value:
        return None
    return (int(cells[0]), int(cells[1]), int(cells[2]))
