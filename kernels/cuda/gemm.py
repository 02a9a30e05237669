"""Matrix products for the ``cupy`` backend that can also be recorded into a CUDA graph.

CuPy refuses every cuBLAS call while a stream is capturing (its
``cublas.setStream`` raises ``NotImplementedError``), although cuBLAS itself
can be captured once a handle has a fixed workspace (``cublasSetWorkspace``;
cuBLAS guide, "CUDA Graphs support"). ``matmul(a, b, out=None)`` therefore
calls ``cublas{S,D}gemmStridedBatched`` through ctypes on a handle of our own
with a workspace that is allocated once (plain ``cudaMalloc``, outside any
memory pool) and never freed -- eagerly as well as while recording, so that a
replayed step and an eager step run the same cuBLAS call and give the same
bits. ``cublasSetStream`` resets a handle's workspace to cuBLAS's default, so
the workspace is set again after every stream change; the stream change, the
workspace and the product happen under one lock (one handle per device). The
one workspace assumes that products never run concurrently on two streams
(minicnn issues them all from one stream at a time).

Shapes: a (m, k) or (B, m, k), b (k, n) or (B, k, n), a 2-D operand or a
batch of 1 broadcast over the other's batch; out (m, n) or (B, m, n).
float32 and float64, equal dtypes. Anything else (other ranks or dtypes,
NumPy arrays) goes to ``cupy.matmul``, which inside a capture raises and so
makes the caller run eagerly; so does everything when libcublas cannot be
loaded.

Row-major to cuBLAS's column-major: C = A B is C^T = B^T A^T, and a
row-major (r, c) matrix with row stride ld is the column-major (c, r)
matrix with leading dimension ld. So B is passed first; an operand stored
column-major (a transposed view such as ``w.T``) is passed with op T and no
copy; any other layout is copied to a contiguous array first.
"""

from __future__ import annotations

import ctypes
import threading

_OP_N, _OP_T = 0, 1
_DEFAULT_MATH, _TF32_MATH = 0, 3  # cublasMath_t: CUBLAS_DEFAULT_MATH, CUBLAS_TF32_TENSOR_OP_MATH
WORKSPACE_BYTES = 32 << 20  # cuBLAS's own recommendation for Hopper is 32 MiB
_lock = threading.Lock()
_state: dict = {}  # device id -> (lib, handle, workspace)
_math: dict = {}  # device id -> the math mode last set on that device's handle


def _cupy():
    import cupy

    return cupy


def is_capturing() -> bool:
    """Whether the current CuPy stream is recording a CUDA graph."""
    cp = _cupy()
    s = cp.cuda.get_current_stream()
    if s.ptr in (0, 1, 2):  # the legacy / per-thread default streams are never captured here
        return False
    return bool(s.is_capturing())


def _cublas_path() -> str:
    """The libcublas that CuPy loaded (so both use one library)."""
    cp = _cupy()
    cp.cuda.device.get_cublas_handle()  # makes CuPy load libcublas
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if parts and "/libcublas.so" in parts[-1]:
                return parts[-1]
    raise RuntimeError("could not find the libcublas that CuPy loaded in /proc/self/maps")


def _declare(lib) -> None:
    vp, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
    lib.cublasSetStream_v2.argtypes = [vp, vp]
    lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
    for name in ("cublasSgemmStridedBatched", "cublasDgemmStridedBatched"):
        f = getattr(lib, name)
        f.argtypes = [vp, i, i, i, i, i, vp, vp, i, ll, vp, i, ll, vp, vp, i, ll, i]
    for name in ("cublasCreate_v2", "cublasSetStream_v2", "cublasSetWorkspace_v2",
                 "cublasSgemmStridedBatched", "cublasDgemmStridedBatched"):
        getattr(lib, name).restype = ctypes.c_int


def _set_math_mode(lib, handle, mode: int) -> None:
    """``cublasSetMathMode`` (declared on first use: the exact-FP32 default never calls it)."""
    f = lib.cublasSetMathMode
    f.argtypes, f.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
    _check(f(handle, mode), "cublasSetMathMode")


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"cuBLAS {what} failed with status {status}")


def prepare():
    """Create this device's handle and workspace (call outside a capture). Returns (lib, handle)."""
    cp = _cupy()
    dev = cp.cuda.Device().id
    st = _state.get(dev)  # set once per device; the lock is only for creating it
    if st is not None:
        return st[0], st[1]
    with _lock:
        st = _state.get(dev)
        if st is None:
            lib = ctypes.CDLL(_cublas_path())
            _declare(lib)
            handle = ctypes.c_void_p()
            _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
            ws = cp.cuda.memory.Memory(WORKSPACE_BYTES)  # cudaMalloc, never returned to a pool
            _check(lib.cublasSetWorkspace_v2(handle, ctypes.c_void_p(ws.ptr), WORKSPACE_BYTES), "cublasSetWorkspace")
            st = _state[dev] = (lib, handle, ws)
            _streams.pop(dev, None)  # a new handle: its stream and workspace are set on first use,
            _math.pop(dev, None)  # and it starts in the default math mode
    return st[0], st[1]


def _layout(x):
    """(op, ld, batch stride) of a 3-D operand (B, r, c) for the C^T = B^T A^T call, or None.

    op N: stored row-major (unit column stride); op T: stored column-major."""
    bsz, r, c = x.shape
    it = x.itemsize
    if any(s % it for s in x.strides):
        return None
    s0, s1, s2 = (s // it for s in x.strides)
    if s0 < 0 or s1 < 0 or s2 < 0:
        return None
    sb = s0 if bsz > 1 else 0
    if (s2 == 1 or c == 1) and (r == 1 or s1 >= c):
        return _OP_N, max(s1 if r > 1 else c, c, 1), sb
    if (s1 == 1 or r == 1) and (c == 1 or s2 >= r):
        return _OP_T, max(s2 if c > 1 else r, r, 1), sb
    return None


def plan(a3, b3, c3) -> tuple | None:
    """Arguments of the one ``gemmStridedBatched`` call that computes c3 = a3 @ b3, as
    ``(transa, transb, m, n, k, ld_first, stride_first, ld_second, stride_second, ldc, stride_c,
    batch)`` with b3 passed first (C^T = B^T A^T) -- or None when an operand's layout
    needs a copy first (``ops``: which ones, via ``layout``). a3 (Ba, m, k), b3 (Bb, k, n),
    c3 (B, m, n), each batch 1 (broadcast) or B; any array with shape/strides/itemsize."""
    la, lb, lc = _layout(a3), _layout(b3), _layout(c3)
    if la is None or lb is None or lc is None or lc[0] != _OP_N:
        return None
    bsz, m, n = c3.shape
    k = a3.shape[2]
    return (lb[0], la[0], n, m, k, lb[1], lb[2], la[1], la[2], lc[1], lc[2] if bsz > 1 else 0, bsz)


class _Shape:
    """Shape, strides and itemsize of an array that does not exist yet (what ``plan`` reads)."""

    __slots__ = ("shape", "strides", "itemsize")

    def __init__(self, shape, itemsize, strides=None):
        self.shape, self.itemsize = tuple(shape), itemsize
        if strides is None:  # C-contiguous
            strides, step = [], itemsize
            for d in reversed(self.shape):
                strides.append(step)
                step *= max(d, 1)
            strides = tuple(reversed(strides))
        self.strides = tuple(strides)


def _batched(x) -> _Shape:
    """x's 3-D form (a 2-D x as a batch of one), as ``x[None]`` would have it."""
    if len(x.shape) == 3:
        return _Shape(x.shape, x.itemsize, x.strides)
    return _Shape((1, *x.shape), x.itemsize, (0, *x.strides))


def _decide(a, b, out):
    """Everything about ``a @ b`` that depends only on shapes, strides and dtypes, worked out
    once per layout (``_plans``): ``(kind, shape, copy_a, copy_b, direct, args)`` where kind is
    "gemm", "empty" (a zero-size result) or "zeros" (k == 0); ``copy_*``: the operand is copied
    to a contiguous array first; ``direct``: the product is written straight into the result
    (else into a fresh (B, m, n) array, then copied); ``args``: ``plan``'s call arguments."""
    dt = a.dtype
    a3, b3 = _batched(a), _batched(b)
    if a3.shape[0] != b3.shape[0] and 1 not in (a3.shape[0], b3.shape[0]):
        raise ValueError(f"matmul: batch sizes {a3.shape[0]} and {b3.shape[0]} do not broadcast")
    bsz = b3.shape[0] if a3.shape[0] == 1 else a3.shape[0]  # NumPy broadcasting: (1, 0) -> 0
    m, k = a3.shape[1:]
    k2, n = b3.shape[1:]
    if k != k2:
        raise ValueError(f"matmul: inner sizes differ: a {tuple(a.shape)}, b {tuple(b.shape)}")
    shape = (m, n) if len(a.shape) == 2 and len(b.shape) == 2 else (bsz, m, n)
    if out is not None and (tuple(out.shape) != shape or out.dtype != dt):
        raise ValueError(f"matmul: out has shape {tuple(out.shape)} / {out.dtype}, expected {shape} / {dt}")
    if 0 in (bsz, m, n):
        return "empty", shape, False, False, True, None
    if k == 0:
        return "zeros", shape, False, False, True, None
    copy_a, copy_b = _layout(a3) is None, _layout(b3) is None
    if copy_a:
        a3 = _batched(_Shape(a.shape, a.itemsize))
    if copy_b:
        b3 = _batched(_Shape(b.shape, b.itemsize))
    c3 = _batched(out) if out is not None else _batched(_Shape(shape, a.itemsize))
    args = plan(a3, b3, c3)
    direct = args is not None
    if not direct:  # out is not row-major: compute into a fresh array, then copy
        args = plan(a3, b3, _Shape((bsz, m, n), a.itemsize))
    return "gemm", shape, copy_a, copy_b, direct, args


_plans: dict = {}  # layout key -> _decide's answer (a few dozen per model: one per product shape)
_PLANS_MAX = 4096  # forgotten all at once beyond this (a model that keeps changing shapes)
_streams: dict = {}  # device id -> the stream our handle was last set to (and the workspace with it)


def _gemm(a, b, out, st, tf32=False):
    """The product through cuBLAS; ``st``: this device's (lib, handle, workspace). ``tf32``:
    a float32 product may use TF32 tensor cores (CUBLAS_TF32_TENSOR_OP_MATH).

    Per call, only what can change between calls with one layout is done: the decisions of
    ``_decide`` are looked up by (shapes, strides, dtype), and the stream and workspace are
    set on the handle only when the stream differs from the last product's."""
    cp = _cupy()
    lib, handle, ws = st
    dt = a.dtype
    key = (a.shape, a.strides, b.shape, b.strides, dt.char,
           None if out is None else (out.shape, out.strides, out.dtype.char))
    decided = _plans.get(key)
    if decided is None:
        decided = _decide(a, b, out)
        if len(_plans) >= _PLANS_MAX:
            _plans.clear()
        _plans[key] = decided
    kind, shape, copy_a, copy_b, direct, args = decided
    if kind == "empty":
        return out if out is not None else cp.empty(shape, dtype=dt)
    if kind == "zeros":
        res = out if out is not None else cp.empty(shape, dtype=dt)
        res.fill(0)
        return res
    if copy_a:
        a = cp.ascontiguousarray(a)
    if copy_b:
        b = cp.ascontiguousarray(b)
    c = out if out is not None else cp.empty(shape, dtype=dt)
    c3 = c if direct else cp.empty(shape if len(shape) == 3 else (1, *shape), dtype=dt)
    ta, tb, mm, nn, kk, ld1, s1, ld2, s2, ldc, sc, batch = args
    fn, one, zero = _CALLS[dt.char](lib)
    mode = _TF32_MATH if (tf32 and dt.char == "f") else _DEFAULT_MATH
    stream = cp.cuda.get_current_stream().ptr
    dev = cp.cuda.runtime.getDevice()
    with _lock:
        if _math.get(dev, _DEFAULT_MATH) != mode:  # a new handle starts in the default mode
            _set_math_mode(lib, handle, mode)
            _math[dev] = mode
        if _streams.get(dev) != stream:  # cublasSetStream resets the workspace: set it again
            _check(lib.cublasSetStream_v2(handle, stream), "cublasSetStream")
            _check(lib.cublasSetWorkspace_v2(handle, ws.ptr, WORKSPACE_BYTES), "cublasSetWorkspace")
            _streams[dev] = stream
        _check(fn(handle, ta, tb, mm, nn, kk, one, b.data.ptr, ld1, s1, a.data.ptr, ld2, s2, zero,
                  c3.data.ptr, ldc, sc, batch), "gemmStridedBatched")
    if not direct:
        c[...] = c3 if len(shape) == 3 else c3[0]
    return c


def _constants(name: str, scal):
    """(gemm function, byref(1), byref(0)) of one dtype, made once per library."""
    made: dict = {}

    def get(lib):
        got = made.get(id(lib))
        if got is None:
            one, zero = scal(1.0), scal(0.0)
            got = made[id(lib)] = (getattr(lib, name), ctypes.byref(one), ctypes.byref(zero), one, zero)
        return got[:3]

    return get


_CALLS = {"f": _constants("cublasSgemmStridedBatched", ctypes.c_float),
          "d": _constants("cublasDgemmStridedBatched", ctypes.c_double)}


_unavailable: dict = {}  # device id -> why libcublas could not be used there (then: cupy.matmul)


def _device_state():
    """This device's (lib, handle, workspace), created on first use; None where libcublas
    cannot be used through ctypes (then CuPy's matmul does the eager work)."""
    dev = _cupy().cuda.runtime.getDevice()
    st = _state.get(dev)
    if st is not None or dev in _unavailable:
        return st
    try:
        prepare()
    except Exception as e:  # noqa: BLE001
        _unavailable[dev] = f"{type(e).__name__}: {e}"
        return None
    return _state[dev]


def matmul(a, b, out=None, tf32=False):
    """``a @ b`` (into ``out`` when given); see the module docstring. ``tf32``: a float32
    product may run on TF32 tensor cores (what ``minicnn.tf32`` allows); float64 never does."""
    if (a.ndim in (2, 3) and b.ndim in (2, 3) and a.dtype == b.dtype and a.dtype.char in "fd"
            and (out is None or out.dtype == a.dtype)):
        st = _device_state()
        if st is not None:
            return _gemm(a, b, out, st, tf32)
    return _cupy().matmul(a, b, out=out)  # no TF32 switch here: CuPy's own (FP32 unless CUPY_TF32=1)
