"""Shared helpers for the Numba CPU kernels.

Every kernel body is written once, as a plain Python function whose outer
loop is a ``prange``, and compiled twice:

* a **serial** variant (``parallel=False``: ``prange`` is just ``range``), for
  small arrays, where waking the worker threads costs more than it saves;
* a **parallel** variant (``parallel=True``), for large arrays.

The thin Python wrapper picks one by comparing the amount of work with a
per-kernel threshold (measured on the tutorial-net shapes with ``bench.py``),
and only while parallel mode is on (see ``__init__``).

Numba's on-disk cache keys entries by the function's qualified name and its
bytecode, not by the compile flags, so the two variants are compiled from two
*copies* of the Python function with distinct qualified names; otherwise the
serial and parallel builds would overwrite each other's cache entries. The
names also carry a digest of the compile options (see ``_tag``).

``nogil=True``: a kernel releases the GIL, so the batch chunks that
``threads.run_split`` hands to several Python threads really run at once.

``error_model="numpy"``: a float division by zero gives inf/nan as in NumPy
(the reference) instead of raising, and the division needs no branch, so loops
such as Adam's vectorise. Kernels check their integer divisors themselves.

Dtypes. The kernels are compiled for float32 and float64 only (Numba has no
float16 arithmetic on the CPU). Every wrapper asks ``compiled_for`` first and
hands any other dtype -- float16, integers, non-native byte order -- to the
reference function, as the CUDA wrappers do, so every backend accepts the
same dtypes and gives the same results.
"""

from __future__ import annotations

import types
import zlib

import numpy as np
from numba import njit

__all__ = ["COMPILED_DTYPES", "compiled_for", "dual", "parallel", "serial"]

#: The dtypes the kernels are compiled for; others go to the reference.
COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


_COMPILED = frozenset(COMPILED_DTYPES)


def compiled_for(*arrays) -> bool:
    """Whether every array's dtype is one the kernels are compiled for
    (``COMPILED_DTYPES``); if not, the wrapper calls the reference instead.
    (A plain loop: it runs on every kernel call.)"""
    for a in arrays:
        dtype = getattr(a, "dtype", None)
        if dtype is None:
            dtype = np.asarray(a).dtype
        if dtype not in _COMPILED:
            return False
    return True


def _clone(fn, suffix: str):
    """A copy of ``fn`` (same code and globals) under the name ``fn.__name__ + suffix``."""
    f = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__
    )
    f.__qualname__ = fn.__qualname__ + suffix
    f.__module__ = fn.__module__
    f.__doc__ = fn.__doc__
    return f


def _tag(opts) -> str:
    """A short digest of the compile options, put in the cached name: Numba's
    cache is invalidated by edits to the function's own file only, so without
    it a change of options here would keep loading the old machine code."""
    # a set's repr depends on PYTHONHASHSEED (fastmath={"contract", "reassoc"}): sorted first
    items = sorted((k, sorted(v) if isinstance(v, (set, frozenset)) else v) for k, v in opts.items())
    return zlib.crc32(repr(items).encode()).to_bytes(4, "big").hex()


def dual(fn, fastmath=False):
    """Compile ``fn`` as (serial, parallel) cached Numba dispatchers."""
    opts = dict(cache=True, nogil=True, fastmath=fastmath, error_model="numpy")
    ser = njit(**opts)(_clone(fn, "_serial_" + _tag(opts)))
    popts = dict(opts, parallel=True)
    par = njit(**popts)(_clone(fn, "_parallel_" + _tag(popts)))
    return ser, par


def serial(fn, fastmath=False, depends=()):
    """Compile ``fn`` as one cached serial Numba dispatcher. ``depends``: modules whose kernels
    ``fn`` calls (compiled into its machine code): a digest of their source goes into the cached
    name, since Numba checks a cache entry against the function's own file only and would keep
    running the old callees after an edit to theirs."""
    opts = dict(cache=True, nogil=True, fastmath=fastmath, error_model="numpy")
    return njit(**opts)(_clone(fn, "_" + _tag(opts) + "".join("_" + _source_tag(m) for m in depends)))


def parallel(fn, fastmath=False, depends=()):
    """Compile ``fn`` as one cached ``parallel=True`` Numba dispatcher (its ``prange`` loops run
    on Numba's threads), ``depends`` as for ``serial``."""
    opts = dict(cache=True, nogil=True, fastmath=fastmath, error_model="numpy", parallel=True)
    return njit(**opts)(_clone(fn, "_" + _tag(opts) + "".join("_" + _source_tag(m) for m in depends)))


def _source_tag(module) -> str:
    """A short digest of a module's source file."""
    with open(module.__file__, "rb") as f:
        return zlib.crc32(f.read()).to_bytes(4, "big").hex()
