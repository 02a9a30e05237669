"""Loading and launching the CUDA C kernels; helpers shared by the wrappers.

``kernel_source(name)`` is the text handed to NVRTC for ``<name>.cu``
(``common.cuh`` prepended, so NVRTC never opens a file); ``get_function``
compiles a source once per device with ``cupy.RawModule`` the first time one
of its kernels is needed, and ``_launch`` runs a kernel over ``n`` work items
with ``BLOCK`` threads per block and at most ``MAX_GRID`` blocks (the
kernels' grid-stride loops cover the rest). Nothing here imports CuPy at
import time.

Kernel names: ``<kernel>_<f32|f64>`` (``_suffix``), plus ``_<i32|i64>``
(``_ix``) for the kernels that decompose a flat index into (n, c, h, w): the
32-bit form whenever every array involved has at most ``_I32_MAX`` elements.

The host tests (tests/test_cuda_host.py) replace ``_cupy``, ``_on_device``,
``get_function``, ``BLOCK``, ``MAX_GRID`` and ``_I32_MAX`` in this module.
So the wrapper modules call ``launch._cupy()`` and ``launch._on_device()``
through the module, and everything else reads those names here.
"""

from __future__ import annotations

import threading
from importlib import resources

import numpy as np

from minicnn.kernels import reference as _ref

#: Source files (without ``.cu``), i.e. the RawModules.
SOURCES = ("conv", "pool", "activation", "optim", "loss", "conv_igemm")
#: NVRTC options of each source. ``--fmad=false`` (no multiply-add
#: contraction, so every operation rounds as in NumPy) only where bit-for-bit
#: equality with the reference is asked for: the optimiser updates
#: (tests/gpu/test_cupy_kernels.py). Elsewhere NVRTC may contract a*b + c into
#: one FMA, as PyTorch's kernels do: im2col/col2im and pool only move and sum data
#: (nothing to contract, so they stay exact); the direct convolutions (conv.cu),
#: the activations and the loss are compared with the reference within float rounding.
NVRTC_OPTIONS = {"conv": (), "pool": (), "activation": (), "optim": ("--fmad=false",), "loss": (),
                 "conv_igemm": ()}
#: Threads per block and the largest grid the wrappers launch; larger
#: inputs are covered by the kernels' grid-stride loops.
BLOCK = 256
MAX_GRID = 65535

_I32_MAX = 2**31 - 1
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

_modules: dict = {}  # (source name, device id) -> cupy.RawModule
_functions: dict = {}  # (kernel name, device id) -> cupy RawKernel-like function
_lock = threading.Lock()


# --------------------------------------------------------------------------
# sources, compilation, launching
# --------------------------------------------------------------------------


def _read(filename: str) -> str:
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


#: Headers of a source besides common.cuh, prepended in this order (each guarded like common.cuh).
HEADERS = {"conv_igemm": ("igemm_tile.cuh",)}


def kernel_source(name: str) -> str:
    """The exact text handed to NVRTC for ``<name>.cu``: common.cuh, its ``HEADERS``, the file.

    Each header defines its guard (``MINICNN_COMMON_CUH``, ...), so the .cu file's guarded
    ``#include`` lines are skipped and no header has to be found.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown CUDA source {name!r}; expected one of {SOURCES}")
    parts = ["common.cuh", *HEADERS.get(name, ()), f"{name}.cu"]
    return "\n".join(f'#line 1 "{part}"\n' + _read(part) for part in parts)


def _cupy():
    """The array module the wrappers allocate with (CuPy, imported lazily)."""
    import cupy

    return cupy


def _device_id() -> int:
    import cupy

    return cupy.cuda.runtime.getDevice()


def _compile(name: str):
    import cupy

    return cupy.RawModule(code=kernel_source(name), options=NVRTC_OPTIONS[name])


def get_function(module: str, kernel: str):
    """Kernel ``kernel`` of source ``module`` on the current device (compiled once)."""
    dev = _device_id()
    fn = _functions.get((kernel, dev))
    if fn is None:
        with _lock:
            fn = _functions.get((kernel, dev))
            if fn is None:
                mod = _modules.get((module, dev))
                if mod is None:
                    mod = _compile(module)
                    _modules[(module, dev)] = mod
                fn = mod.get_function(kernel)
                _functions[(kernel, dev)] = fn
    return fn


def _launch(module: str, kernel: str, n: int, args: tuple) -> None:
    """Launch ``kernel`` with enough threads for ``n`` work items (none if n == 0)."""
    if n <= 0:
        return
    grid = min((n + BLOCK - 1) // BLOCK, MAX_GRID)
    get_function(module, kernel)((grid,), (BLOCK,), args)


def _launch_blocks(module: str, kernel: str, blocks: int, threads: int, args: tuple) -> None:
    """Launch a block kernel (shared memory and barriers, e.g. ``conv_igemm.cu``'s) on exactly
    ``blocks`` blocks of ``threads`` threads: it has no grid-stride loop (none if blocks == 0)."""
    if blocks <= 0:
        return
    if blocks > 2**31 - 1:
        raise ValueError(f"{kernel}: {blocks} blocks, more than a 1-D grid holds (2**31 - 1)")
    get_function(module, kernel)((int(blocks),), (int(threads),), args)


# --------------------------------------------------------------------------
# arrays and arguments
# --------------------------------------------------------------------------


def _on_device(*arrays) -> bool:
    """True when every array is a CuPy array (the wrappers' fast path)."""
    return all(_ref.is_cupy(a) for a in arrays)


def _device_out(name, out, shape, dtype):
    """A caller's ``out=`` for a kernel's result: a C-contiguous CuPy array of ``shape`` and ``dtype``."""
    if not _on_device(out):
        raise ValueError(f"{name}: out must be a CuPy array for CuPy input, got {type(out).__name__}")
    return _ref.check_out(name, out, shape, dtype)


def array_address(a) -> int:
    """Device address of a CuPy array (host address of a NumPy one, for the host tests)."""
    ptr = getattr(a.data, "ptr", None)
    return int(ptr) if ptr is not None else int(a.ctypes.data)


def _suffix(dtype):
    """``"f32"`` / ``"f64"``, or None for a dtype without kernels."""
    return _SUFFIX.get(np.dtype(dtype))


def _ix(*sizes: int) -> str:
    """Index-width suffix: 32-bit decomposition when every array is < 2^31 elements."""
    return "i32" if max(sizes) <= _I32_MAX else "i64"


def _i64(v) -> np.int64:
    return np.int64(int(v))


def _i32(v) -> np.int32:
    return np.int32(int(v))


def _scalar(v, dtype):
    """A Python/NumPy scalar as the kernel's T (float32 or float64)."""
    return np.dtype(dtype).type(float(v))


def _geometry(kh, kw, sh, sw, ph, pw):
    """The window geometry as Python ints, or None when the kernels don't cover it."""
    try:
        vals = tuple(int(v) for v in (kh, kw, sh, sw, ph, pw))
        if any(v != o for v, o in zip(vals, (kh, kw, sh, sw, ph, pw))):
            return None
    except (TypeError, ValueError):
        return None
    kh, kw, sh, sw, ph, pw = vals
    if kh >= 1 and kw >= 1 and sh >= 1 and sw >= 1 and ph >= 0 and pw >= 0:
        return vals
    return None
