"""The backend registry: which array module and which kernels the layers use.

A *backend* is two things:

* ``xp``  -- the array module (``numpy`` or ``cupy``); layer code writes
  ``xp.zeros(...)``, ``xp.matmul(...)`` and never imports numpy/cupy itself;
* ``ops`` -- the kernel table, a namespace of functions with fixed signatures
  (``im2col``, ``col2im``, ``maxpool2d_forward`` ...; see
  ``minicnn.kernels.reference`` for the list and the shapes).

The ``numpy`` backend uses the readable reference kernels. ``numba`` starts
from the same table and overrides entries with jitted CPU kernels; ``cupy``
overrides them with CUDA kernels. Adding a kernel is adding one table entry.

Selection: ``minicnn.set_backend(name)``, or the environment variable
``MINICNN_BACKEND`` read at first use; the default is ``numpy``.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace
from typing import Callable

import numpy as np

from minicnn.kernels.reference import array_module, is_cupy  # noqa: F401 (array_module: public here)

AVAILABLE = ("numpy", "numba", "cupy")


class BackendError(RuntimeError):
    """Raised for an unknown backend name or one that cannot run here."""


class Backend:
    """An array module plus a kernel table. ``ops.NAME(...)`` calls a kernel."""

    def __init__(self, name: str, xp, table: dict, on_select=None, on_deselect=None):
        self.name = name
        self.xp = xp
        self.table = dict(table)
        self.ops = SimpleNamespace(**self.table)
        # called when this backend becomes / stops being the current one
        self.on_select = on_select
        self.on_deselect = on_deselect

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asarray(self, x, dtype=None):
        """Move/convert ``x`` to this backend's array type (no copy if already there)."""
        if self.xp is np:
            if is_cupy(x):
                x = x.get()
            return np.asarray(x, dtype=dtype)
        return self.xp.asarray(x, dtype=dtype)

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, kernels={sorted(self.table)})"


def _make_numpy() -> Backend:
    from minicnn.kernels import reference

    return Backend("numpy", np, reference.TABLE)


def _make_numba() -> Backend:
    try:
        import numba  # noqa: F401
    except ImportError as e:  # pragma: no cover - numba is a base dependency
        raise BackendError(
            "backend 'numba' needs the numba package (pip install numba); "
            f"available here: {available_backends()}"
        ) from e
    from minicnn.kernels import reference
    from minicnn.kernels import cpu

    from minicnn.kernels.cpu import threads

    table = dict(reference.TABLE)
    table.update(cpu.TABLE)
    # BLAS runs single-threaded while numba is selected: minicnn splits the
    # batch over the cores itself (kernels/cpu/threads.py says why; the split's
    # "blas" way, off by default, gives a small batch's products BLAS's threads)
    return Backend("numba", np, table, on_select=threads.hold_blas, on_deselect=threads.release_blas)


def _make_cupy() -> Backend:
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' needs CuPy (pip install 'minicnn[gpu]' or a "
            f"cupy-cudaXXx wheel matching your CUDA); available here: {available_backends()}"
        ) from e
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise BackendError(
            f"backend 'cupy': CuPy is installed but no CUDA device can be used ({e}); "
            f"available here: {available_backends()}"
        ) from e
    if n < 1:
        raise BackendError(
            f"backend 'cupy': no CUDA device found; available here: {available_backends()}"
        )
    from minicnn.kernels import reference
    from minicnn.kernels import cuda

    table = dict(reference.TABLE)
    table.update(cuda.TABLE)
    return Backend("cupy", cupy, table)


_FACTORIES: dict[str, Callable[[], Backend]] = {
    "numpy": _make_numpy,
    "numba": _make_numba,
    "cupy": _make_cupy,
}
_cache: dict[str, Backend] = {}
_current: Backend | None = None


def available_backends() -> list[str]:
    """Names of the backends that can actually run on this machine."""
    out = ["numpy"]
    try:
        import numba  # noqa: F401

        out.append("numba")
    except ImportError:
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            out.append("cupy")
    except Exception:
        pass
    return out


def _build(name: str) -> Backend:
    if not isinstance(name, str) or name.lower() not in _FACTORIES:
        raise BackendError(
            f"unknown backend {name!r}; expected one of {list(AVAILABLE)} "
            f"(available here: {available_backends()})"
        )
    name = name.lower()
    if name not in _cache:
        _cache[name] = _FACTORIES[name]()
    return _cache[name]


_select_lock = threading.Lock()


def _select(new: Backend) -> Backend:
    global _current
    with _select_lock:  # two threads' first current() must not both run on_select
        if new is not _current:
            if _current is not None and _current.on_deselect is not None:
                _current.on_deselect()
            if new.on_select is not None:
                new.on_select()
            _current = new
    return new


def set_backend(name: str) -> Backend:
    """Select the backend for every layer created or run from now on.

    Selecting ``numba`` holds NumPy's BLAS at one thread until another backend
    is selected (minicnn then splits each layer's batch over the cores itself;
    a small batch's convolutions run on BLAS's threads instead,
    ``kernels/cpu/split_chooser.py``).
    """
    return _select(_build(name))


def current() -> Backend:
    """The active Backend object (reads ``MINICNN_BACKEND`` on first use)."""
    if _current is None:
        env = os.environ.get("MINICNN_BACKEND", "").strip()
        try:
            return _select(_build(env or "numpy"))
        except BackendError as e:
            raise BackendError(f"MINICNN_BACKEND={env!r}: {e}") from e
    return _current


def backend_name() -> str:
    """The active backend's name (``"numpy"``, ``"numba"`` or ``"cupy"``); the
    Backend object itself is ``current()``, or ``get(name)`` for another."""
    return current().name


def get(name: str | None = None) -> Backend:
    """The Backend called ``name`` (the active one when ``name`` is None)."""
    return current() if name is None else _build(name)


def asarray(x, dtype=None):
    """Convert ``x`` to an array of the active backend (host -> device for cupy)."""
    return current().asarray(x, dtype=dtype)


def to_numpy(x) -> np.ndarray:
    """Return ``x`` as a NumPy array (device -> host for cupy arrays)."""
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


def check_same_module(where: str, *arrays) -> None:
    """Raise a clear error when NumPy and CuPy arrays are mixed in one call."""
    kinds = {array_module(a).__name__ for a in arrays if a is not None}
    if len(kinds) > 1:
        raise TypeError(
            f"{where}: arrays from different backends were mixed ({sorted(kinds)}); "
            "move inputs with minicnn.asarray(...) or the model with model.to_backend(...)"
        )


# --- TF32 -----------------------------------------------------------------------

class TF32Flags:
    """PyTorch's two TF32 switches, for the ``cupy`` backend's float32 matrix products.

    ``matmul`` -- like ``torch.backends.cuda.matmul.allow_tf32``: Linear layers and
    other matrix products may run on TF32 tensor cores (10-bit mantissa inputs,
    FP32 accumulation). PyTorch's default: False.
    ``conv``   -- like ``torch.backends.cudnn.allow_tf32``: the convolutions'
    products (im2col GEMMs) may. PyTorch's default, and minicnn's: True.

    Exact FP32 everywhere is one call away: ``minicnn.backend.tf32.conv = False``
    (the GPU tests that compare float32 bit for bit set it).

    float64 products and the CPU backends are never affected. Set the attributes
    (``minicnn.tf32.conv = True``) or use :func:`set_float32_matmul_precision`.
    """

    def __init__(self):
        self.matmul = False
        self.conv = True

    def __repr__(self) -> str:
        return f"TF32Flags(matmul={self.matmul}, conv={self.conv})"


tf32 = TF32Flags()

_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: "highest" keeps float32 matrix products in
    full FP32; "high" and "medium" allow TF32 (``tf32.matmul = True``; minicnn has no
    bfloat16 path, so "medium" means TF32 too). Convolutions follow ``tf32.conv``."""
    if precision not in _PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: expected one of {_PRECISIONS}, got {precision!r}")
    tf32.matmul = precision != "highest"


def get_float32_matmul_precision() -> str:
    """"highest" (full FP32) or "high" (TF32 allowed), as PyTorch reports it."""
    return "high" if tf32.matmul else "highest"
