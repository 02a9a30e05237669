"""Freed memory stays in the process's heap once the numba backend is selected (glibc).

A training step allocates the same arrays every step: activations, column
matrices, gradients, switches. glibc's malloc serves a large request (above
``M_MMAP_THRESHOLD``, which it raises as it sees larger blocks freed, up to 32
MiB) with a fresh ``mmap``, and gives the free memory at the top of its heap
back to the kernel once more than ``M_TRIM_THRESHOLD`` lies there. Either way
the next step's array is memory the kernel must hand out again, one minor page
fault per 4 KiB page on first touch, inside the layer that writes it.

:func:`keep_freed_memory` sets ``M_MMAP_THRESHOLD`` to 1 GiB and
``M_TRIM_THRESHOLD`` to 2 GiB - 1 (``mallopt``): blocks under 1 GiB come from
the heap, and what a step frees stays there for the next step's arrays, so a
steady training loop page-faults in its first steps only. Setting only the
trim threshold would be worse than nothing (it also stops the dynamic mmap
threshold, so every large array would be a fresh mapping); both go together.
The numbers behind this are in benchmarks/README.md ("Page faults").

The price: the heap keeps its peak size until the process ends (the peak
itself is unchanged, and ``malloc_trim(0)`` still gives the memory back on
request). The setting is process-wide and stays after another backend is
selected (glibc has no way back to its dynamic threshold). Set the
environment variable ``MINICNN_KEEP_FREED_MEMORY=0`` to leave malloc alone;
it does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 2**31 - 1

_done = False


def _glibc():
    """The process's glibc, or None (another C library, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return None
    return libc


def enabled_by_env() -> bool:
    """False when ``MINICNN_KEEP_FREED_MEMORY`` is 0/false/no/off."""
    return os.environ.get("MINICNN_KEEP_FREED_MEMORY", "1").strip().lower() not in ("0", "false", "no", "off")


def keep_freed_memory() -> bool:
    """Set glibc's thresholds as the module doc says (once per process); whether they are set."""
    global _done
    if _done:
        return True
    if not enabled_by_env():
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _done = ok
    return ok
