"""Kept scratch memory for the CPU kernels' temporaries: no fresh pages in the steady state.

A kernel's large temporaries (the weight gradient's per-range sums and padded planes, for
example) used to be fresh arrays on every call. glibc serves an array of this size from the
top of its heap and gives the top back to the system (``trim``) when a free leaves more than
its trim threshold there, so a call whose temporaries peak above that threshold page-faults on
every one of their pages, every call: Net2's conv3 weight gradient at batch 4 (two ranges,
800 KiB each) took 784 faults and 2.4-2.7 ms a call, 0.91 ms with the heap held and 0.96 ms
with kept blocks (benchmarks/notes/cpu-faults.md). ``kept`` hands out the same block again
instead: a per-thread buffer for each name, grown when a call needs more, never shrunk.

What a kept block holds is left over from the last call: a kernel that needs zeros zeroes it
(as it zeroed its fresh arrays). A block is the caller's only until its next ``kept`` call with
the same name in the same thread, so it must not leave the call that asked for it (results are
fresh arrays, as everywhere). Blocks above ``KEPT_MAX`` bytes are not kept (fresh each time), so
a one-off huge layer does not pin its memory.
"""

from __future__ import annotations

import math
import threading

import numpy as np

ALIGN = 64  # bytes: each block starts on a cache line (the blocked kernels' vector loads)
KEPT_MAX = 32 * 1024 * 1024  # bytes: larger blocks are fresh on every call

_local = threading.local()


def _aligned(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + ALIGN, np.uint8)
    k = (-raw.ctypes.data) % ALIGN
    return raw[k:k + nbytes]


def kept(name: str, shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous ``shape`` array of ``dtype`` starting on a 64-byte
    boundary: this thread's block ``name``, kept for its next call (module doc)."""
    dtype = np.dtype(dtype)
    shape = tuple(map(int, shape))
    nbytes = math.prod(shape) * dtype.itemsize  # (with np.prod a call took 7.2 us, now 1.9)
    if nbytes > KEPT_MAX:
        return _aligned(nbytes).view(dtype).reshape(shape)
    blocks = _local.__dict__.setdefault("blocks", {})
    block = blocks.get(name)
    if block is None or block.size < nbytes:
        block = blocks[name] = _aligned(max(nbytes, 1))
    return block[:nbytes].view(dtype).reshape(shape)


def clear() -> None:
    """Drop this thread's blocks (their memory goes back to the allocator)."""
    _local.__dict__.pop("blocks", None)
