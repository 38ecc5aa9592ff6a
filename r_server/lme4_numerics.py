"""Make lme4's doubles independent of the host CPU and of where the loader put lme4.so.

The same lme4 1.1-31 binary on the same data gives different doubles for two reasons outside R
code. Each study process removes both right after loading lme4 (:func:`pin_all`), so a study
answers with the same doubles on every run and every host; ``info`` reports what is in force.

1. **Eigen's cache sizes.** Eigen (inside lme4, through RcppEigen) splits the inner dimension of
   a matrix product into blocks sized from the L1/L2/L3 cache sizes it reads from CPUID. The block
   size fixes the order in which long sums (X'X over every row) are added, so a CPU with a 48 KiB
   L1 data cache gives other last bits than one with 32 KiB; in an ill-conditioned fit they steer
   the optimizer elsewhere (1e-9 relative in the golden case ``slo_age_slope_by_doctor``). We set
   Eigen's sizes to :data:`DEFAULT_CACHE_SIZES` (the reference machine had a 32 KiB L1; L2/L3
   do not reach any product lme4 computes for the golden cases: 256 KiB/8 MiB and 1 MiB/32 MiB
   give identical answers). ``PYDSBASE_EIGEN_CACHE_SIZES=l1,l2,l3`` overrides, ``host`` keeps
   what the CPU reports. Eigen keeps the sizes in a function-local static that g++ exports from
   lme4.so as a ``STB_GNU_UNIQUE`` object: we write it, with its initialization guard set.

2. **CHOLMOD's ordering strategy.** lme4 reaches Matrix's CHOLMOD (3.0.14 in Matrix 1.5-3)
   through RcppEigen's stubs, compiled against CHOLMOD 2.1.2 headers. After ``cholmod_start`` the
   stub stores its error handler at the 2.1.2 offset of ``error_handler``, which in the 3.0.14
   layout is ``nmethods`` (plus ``current``). ``nmethods`` thus holds the low 32 bits of the
   handler's address: negative (CHOLMOD's default strategy, AMD) or positive (try every method
   and keep the best) depending on where address-space randomization put lme4.so. The fill-
   reducing permutation, and with it the last bits of every ill-conditioned fit, changes from
   process to process: this is what makes 7 of the golden cases "not bit-reproducible" in R.
   We route lme4's ``cholmod_analyze`` through a wrapper that, only when it finds exactly that
   handler address in the cell, puts back what ``cholmod_start`` wrote there (``nmethods`` = 0,
   CHOLMOD's default strategy, and ``current`` = 0) before calling Matrix's function. That is the
   state of the R process that wrote the goldens: with it all 40 public cases are bit-identical,
   including the 7 the golden README calls not bit-reproducible (with 9, "try every method", 34).
   ``PYDSBASE_CHOLMOD_NMETHODS`` (0..9) overrides, ``host`` leaves R's behaviour as it is.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CACHE_ENV = "PYDSBASE_EIGEN_CACHE_SIZES"
NMETHODS_ENV = "PYDSBASE_CHOLMOD_NMETHODS"
DEFAULT_CACHE_SIZES = (32 * 1024, 1024 * 1024, 32 * 1024 * 1024)
DEFAULT_CHOLMOD_NMETHODS = 0  # what cholmod_start writes

_CACHE_SYMBOL = "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
_CACHE_GUARD_SYMBOL = "_ZGV" + _CACHE_SYMBOL[2:]
_ANALYZE_SLOT_SYMBOL = "_ZZ15cholmod_analyzeE3fun"  # RcppEigen stub's cached pointer to Matrix's function
_HANDLER_SYMBOL = "R_cholmod_error"  # what the stub stores, 8 bytes at offset 168 of cholmod_common
_NMETHODS_OFFSET = 168  # CHOLMOD 3.0.14 (Matrix 1.5-3): int nmethods at 168, int current at 172

_ANALYZE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class NumericsPinError(RuntimeError):
    """A pin could not be applied as configured."""


@dataclass(frozen=True)
class Pins:
    """What is in force in this process (None: the host's own behaviour)."""

    eigen_cache_sizes: tuple[int, int, int] | None
    cholmod_nmethods: int | None
    unavailable: Mapping[str, str] = field(default_factory=dict)  # pin -> why it could not be applied

    def describe(self) -> dict[str, str]:
        sizes, nmethods = self.eigen_cache_sizes, self.cholmod_nmethods
        described = {
            "eigen_cache_sizes": "host" if sizes is None else ",".join(map(str, sizes)),
            "cholmod_nmethods": "host" if nmethods is None else str(nmethods),
        }
        described.update({name: f"unavailable: {why}" for name, why in self.unavailable.items()})
        return described


# -- settings --------------------------------------------------------------------------------------


def configured_cache_sizes(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """``l1,l2,l3`` from the environment, :data:`DEFAULT_CACHE_SIZES`, or None for ``host``."""
    text = (os.environ if environ is None else environ).get(CACHE_ENV, "").strip()
    if not text:
        return DEFAULT_CACHE_SIZES
    if text == "host":
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise NumericsPinError(f"{CACHE_ENV} must be 'host' or three positive byte counts 'l1,l2,l3', not {text!r}")
    l1, l2, l3 = (int(p) for p in parts)
    return (l1, l2, l3)


def configured_nmethods(environ: Mapping[str, str] | None = None) -> int | None:
    """0..9 from the environment, :data:`DEFAULT_CHOLMOD_NMETHODS`, or None for ``host``."""
    text = (os.environ if environ is None else environ).get(NMETHODS_ENV, "").strip()
    if not text:
        return DEFAULT_CHOLMOD_NMETHODS
    if text == "host":
        return None
    if not (text.isdigit() and 0 <= int(text) <= 9):
        raise NumericsPinError(f"{NMETHODS_ENV} must be 'host' or a whole number 0..9, not {text!r}")
    return int(text)


# -- the pins --------------------------------------------------------------------------------------


def _loaded(library_path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(library_path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError as exc:
        raise NumericsPinError(f"{library_path} is not loaded in this process") from exc


def _symbol(lib: ctypes.CDLL, kind: Any, name: str, library_path: str) -> Any:
    """A data symbol of ``lib`` as a ctypes object of type ``kind``, or the function ``name`` (kind None)."""
    try:
        return getattr(lib, name) if kind is None else kind.in_dll(lib, name)
    except (ValueError, AttributeError) as exc:
        raise NumericsPinError(f"{library_path} has no symbol {name}: not the lme4 build this pin knows") from exc


def pin_cache_sizes(lme4_path: str, sizes: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """Set Eigen's cache sizes inside the loaded lme4.so; returns what is now in force.

    With ``sizes=None`` nothing is written and the host's values are returned once Eigen has
    read them (None before its first product).
    """
    lib = _loaded(lme4_path)
    cells = _symbol(lib, ctypes.c_int64 * 3, _CACHE_SYMBOL, lme4_path)
    guard = _symbol(lib, ctypes.c_uint8, _CACHE_GUARD_SYMBOL, lme4_path)
    if sizes is not None:
        cells[0], cells[1], cells[2] = sizes
        guard.value = 1  # initialized: Eigen will not query CPUID over it
    if not guard.value:
        return None
    return (int(cells[0]), int(cells[1]), int(cells[2]))


class _AnalyzeWrapper:
    """lme4's route to Matrix's cholmod_analyze, with the clobbered ``nmethods`` repaired."""

    def __init__(self, real: int, handler: int, nmethods: int) -> None:
        self._real = _ANALYZE(real)
        self._handler = handler
        self.nmethods = nmethods
        self.repaired = 0
        self.passed_through = 0
        self.pointer = _ANALYZE(self._call)

    def _call(self, matrix: int, common: int) -> int:
        cell = ctypes.c_uint64.from_address(common + _NMETHODS_OFFSET)
        if cell.value == self._handler:  # exactly the stub's write: repair it
            ctypes.c_int32.from_address(common + _NMETHODS_OFFSET).value = self.nmethods
            ctypes.c_int32.from_address(common + _NMETHODS_OFFSET + 4).value = 0
            self.repaired += 1
        else:
            self.passed_through += 1
        return int(self._real(matrix, common) or 0)


_wrappers: dict[str, _AnalyzeWrapper] = {}  # kept alive for as long as lme4 may call them


def pin_cholmod_nmethods(lme4_path: str, libr_path: str, nmethods: int | None) -> int | None:
    """Route lme4's cholmod_analyze through the repairing wrapper; returns the value in force."""
    if nmethods is None:
        return None
    existing = _wrappers.get(lme4_path)
    if existing is not None:
        existing.nmethods = nmethods
        return nmethods
    lib = _loaded(lme4_path)
    slot = _symbol(lib, ctypes.c_void_p, _ANALYZE_SLOT_SYMBOL, lme4_path)
    handler = ctypes.cast(_symbol(lib, None, _HANDLER_SYMBOL, lme4_path), ctypes.c_void_p).value
    libr = _loaded(libr_path)
    get_callable = libr.R_GetCCallable
    get_callable.restype = ctypes.c_void_p
    get_callable.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    real = get_callable(b"Matrix", b"cholmod_analyze")
    if not real or handler is None:
        raise NumericsPinError("Matrix's cholmod_analyze or lme4's CHOLMOD error handler not found")
    wrapper = _AnalyzeWrapper(real, handler, nmethods)
    _wrappers[lme4_path] = wrapper
    slot.value = ctypes.cast(wrapper.pointer, ctypes.c_void_p).value
    return nmethods


def analyze_counts(lme4_path: str) -> tuple[int, int]:
    """How many cholmod_analyze calls the wrapper repaired and passed through unchanged."""
    wrapper = _wrappers.get(lme4_path)
    return (0, 0) if wrapper is None else (wrapper.repaired, wrapper.passed_through)


def pin_all(lme4_path: str, libr_path: str, environ: Mapping[str, str] | None = None) -> Pins:
    """Apply both pins as configured; called once per process right after lme4 is loaded.

    A pin this lme4 build does not allow (another build, other symbols) is reported as unavailable
    when it was not asked for explicitly, and raises when its environment variable asked for it.
    """
    env = os.environ if environ is None else environ
    sizes, nmethods = configured_cache_sizes(env), configured_nmethods(env)
    unavailable: dict[str, str] = {}
    try:
        sizes = pin_cache_sizes(lme4_path, sizes)
    except NumericsPinError as exc:
        if CACHE_ENV in env:
            raise
        sizes, unavailable["eigen_cache_sizes"] = None, str(exc)
    try:
        nmethods = pin_cholmod_nmethods(lme4_path, libr_path, nmethods)
    except NumericsPinError as exc:
        if NMETHODS_ENV in env:
            raise
        nmethods, unavailable["cholmod_nmethods"] = None, str(exc)
    return Pins(eigen_cache_sizes=sizes, cholmod_nmethods=nmethods, unavailable=unavailable)
