"""CUDA kernels for the ``cupy`` backend (entries override the reference).

The kernels are CUDA C in this folder, one file per topic:

=============  ==============================================================
conv.cu        im2col, col2im (a gather: one thread per image pixel)
pool.cu        maxpool2d forward/backward (backward a gather), maxunpool2d
               forward (integer-atomic claim + gather) / backward
activation.cu  relu, leaky_relu, elu, gelu (exact and tanh): forward, backward
optim.cu       fused in-place sgd_update / adam_update, and their _multi
               versions (every tensor of a list in one launch)
gemm.py        matmul: cuBLAS gemmStridedBatched via ctypes (CuPy refuses cuBLAS
               during CUDA-graph stream capture; used eagerly too)
=============  ==============================================================

``dropout_forward``, ``batchnorm_forward`` and ``batchnorm_backward`` have no
CUDA C of their own: their entries are the reference functions, which run on
CuPy arrays as CuPy's element-wise and reduction kernels (what the GPU backend
did before they were table entries), so nothing changed on the GPU: the
layers that ran in a recorded step before (BatchNorm with
``track_running_stats=False``) still do, the same CuPy code.

Each file is compiled once per device with ``cupy.RawModule`` (NVRTC), the
first time one of its kernels is called; ``common.cuh`` is prepended to the
source so NVRTC never needs to open a file. Importing this module does not
import CuPy: every wrapper imports it on first use.

The wrappers keep the reference signatures (``minicnn.kernels.reference``)
and give the same numbers; they fall back to the reference function for
anything the kernels do not cover (NumPy inputs, dtypes other than float32 /
float64, non-contiguous in-place optimiser state, unusual geometry).

``maxpool2d_backward`` takes the window geometry as optional keywords
``kh, kw, sh, sw, ph, pw``: with them it runs a gather with one thread per
input pixel; without them (the reference signature ``dout, idx, h, w``) it
runs one thread per (n, c) plane, which is deterministic too but has less
parallelism.
"""

from __future__ import annotations

import threading
from importlib import resources

import numpy as np

from minicnn.kernels import reference as _ref

#: Source files (without ``.cu``), i.e. the RawModules.
SOURCES = ("conv", "pool", "activation", "optim")
#: NVRTC options. ``--fmad=false``: no multiply-add contraction, so every
#: operation rounds as in NumPy (the optimiser updates match bit for bit).
NVRTC_OPTIONS = ("--fmad=false",)
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
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


def kernel_source(name: str) -> str:
    """The exact text handed to NVRTC for ``<name>.cu``: common.cuh + the file.

    common.cuh defines ``MINICNN_COMMON_CUH``, so the .cu file's guarded
    ``#include "common.cuh"`` is skipped and no header has to be found.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown CUDA source {name!r}; expected one of {SOURCES}")
    return (
        '#line 1 "common.cuh"\n'
        + _read("common.cuh")
        + f'\n#line 1 "{name}.cu"\n'
        + _read(f"{name}.cu")
    )


def _cupy():
    """The array module the wrappers allocate with (CuPy, imported lazily)."""
    import cupy

    return cupy


def _device_id() -> int:
    import cupy

    return cupy.cuda.runtime.getDevice()


def _compile(name: str):
    import cupy

    return cupy.RawModule(code=kernel_source(name), options=NVRTC_OPTIONS)


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


def _on_device(*arrays) -> bool:
    """True when every array is a CuPy array (the wrappers' fast path)."""
    return all(_ref.is_cupy(a) for a in arrays)


def _device_out(name, out, shape, dtype):
    """A caller's ``out=`` for a kernel's result: a C-contiguous CuPy array of ``shape`` and ``dtype``."""
    if not _on_device(out):
        raise ValueError(f"{name}: out must be a CuPy array for CuPy input, got {type(out).__name__}")
    return _ref.check_out(name, out, shape, dtype)


def _suffix(dtype):
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


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------


def im2col(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); see the reference (``out=`` too)."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    if not (g and _on_device(x) and x.ndim == 4 and _suffix(x.dtype)):
        return _ref.im2col(x, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    n, c, h, w = (int(s) for s in x.shape)
    oh, ow = _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        return _ref.im2col(x, kh, kw, sh, sw, ph, pw, out=out)
    shape = (n, c * kh * kw, oh * ow)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else _device_out("im2col", out, shape, x.dtype)
    total = cols.size
    kernel = f"im2col_{_suffix(x.dtype)}_{_ix(x.size, total)}"
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("conv", kernel, total, (x, cols, _i64(total), *sizes))
    return cols


def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W), summing overlapping taps.

    A gather (one thread per image pixel, taps in the reference's order):
    deterministic and equal to the reference bit for bit.
    """
    g = _geometry(kh, kw, sh, sw, ph, pw)
    ok = bool(g) and _on_device(cols) and _suffix(cols.dtype) is not None
    if ok:
        n, c, h, w = (int(v) for v in (n, c, h, w))
        oh, ow = _ref.conv_out_size(h, g[0], g[2], g[4]), _ref.conv_out_size(w, g[1], g[3], g[5])
        ok = min(n, c, h, w) >= 0 and oh >= 1 and ow >= 1 and cols.size == n * c * g[0] * g[1] * oh * ow
    if not ok:
        return _ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = _cupy()
    cols = xp.ascontiguousarray(cols)
    shape = (n, c, h, w)
    x = xp.empty(shape, dtype=cols.dtype) if out is None else _device_out("col2im", out, shape, cols.dtype)
    total = x.size
    kernel = f"col2im_{_suffix(cols.dtype)}_{_ix(total, cols.size)}"
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("conv", kernel, total, (cols, x, _i64(total), *sizes))
    return x


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------


def maxpool2d_forward(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> (out, idx) (N, C, OH, OW); idx int64 = h*W + w."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    if not (g and _on_device(x) and x.ndim == 4 and _suffix(x.dtype)):
        return _ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    kh, kw, sh, sw, ph, pw = g
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    n, c, h, w = (int(s) for s in x.shape)
    oh, ow = _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        return _ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    out = xp.empty((n, c, oh, ow), dtype=x.dtype)
    idx = xp.empty((n, c, oh, ow), dtype=np.int64)
    total = out.size
    kernel = f"maxpool2d_forward_{_suffix(x.dtype)}_{_ix(x.size, total)}"
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("pool", kernel, total, (x, out, idx, _i64(total), *sizes))
    return out, idx


def maxpool2d_backward(dout, idx, h, w, kh=None, kw=None, sh=None, sw=None, ph=0, pw=0):
    """Route dout (N, C, OH, OW) to the argmax positions idx -> dx (N, C, H, W).

    With the window geometry (``kh, kw, sh, sw`` and the paddings, as given to
    ``maxpool2d_forward``) this is a gather over input pixels; without it, one
    thread per (n, c) plane. Both are deterministic and sum in the reference's
    order (in double, as numpy's bincount), so the result equals the reference.
    """
    ok = (
        _on_device(dout, idx)
        and dout.ndim == 4
        and tuple(idx.shape) == tuple(dout.shape)
        and _suffix(dout.dtype) is not None
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxpool2d_backward(dout, idx, h, w)
    xp = _cupy()
    h, w = int(h), int(w)
    n, c, oh, ow = (int(s) for s in dout.shape)
    dout = xp.ascontiguousarray(dout)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    dx = xp.empty((n, c, h, w), dtype=dout.dtype)
    sfx = _suffix(dout.dtype)
    g = None if kh is None or kw is None or sh is None or sw is None else _geometry(kh, kw, sh, sw, ph, pw)
    if g and _ref.conv_out_size(h, g[0], g[2], g[4]) == oh and _ref.conv_out_size(w, g[1], g[3], g[5]) == ow:
        total = dx.size
        kernel = f"maxpool2d_backward_{sfx}_{_ix(total, dout.size)}"
        sizes = map(_i64, (h, w, *g, oh, ow))
        _launch("pool", kernel, total, (dout, idx, dx, _i64(total), *sizes))
        return dx
    planes = n * c
    ws = dx if dx.dtype == np.float64 else xp.empty((n, c, h, w), dtype=np.float64)
    kernel = f"maxpool2d_backward_planes_{sfx}_{_ix(dx.size, dout.size)}"
    _launch("pool", kernel, planes, (dout, idx, ws, dx, _i64(planes), _i64(h * w), _i64(oh * ow)))
    return dx


def maxunpool2d_forward(x, idx, oh, ow):
    """Place x (N, C, H, W) at idx inside zero planes -> out (N, C, OH, OW)."""
    ok = (
        _on_device(x, idx)
        and x.ndim == 4
        and tuple(idx.shape) == tuple(x.shape)
        and _suffix(x.dtype)
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxunpool2d_forward(x, idx, oh, ow)
    xp = _cupy()
    oh, ow = int(oh), int(ow)
    n, c, h, w = (int(s) for s in x.shape)
    x = xp.ascontiguousarray(x)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    out = xp.empty((n, c, oh, ow), dtype=x.dtype)
    winner = xp.zeros(out.size, dtype=np.uint64)
    ix = _ix(x.size, out.size)
    _launch("pool", f"maxunpool2d_claim_{ix}", x.size, (idx, winner, _i64(x.size), _i64(h * w), _i64(oh * ow)))
    kernel = f"maxunpool2d_gather_{_suffix(x.dtype)}_{ix}"
    _launch("pool", kernel, out.size, (x, winner, out, _i64(out.size), _i64(h * w), _i64(oh * ow)))
    return out


def maxunpool2d_backward(dout, idx):
    """Gather dout (N, C, OH, OW) at idx (N, C, H, W) -> dx (N, C, H, W)."""
    ok = (
        _on_device(dout, idx)
        and dout.ndim == 4
        and idx.ndim == 4
        and tuple(idx.shape[:2]) == tuple(dout.shape[:2])
        and _suffix(dout.dtype)
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxunpool2d_backward(dout, idx)
    xp = _cupy()
    n, c, oh, ow = (int(s) for s in dout.shape)
    h, w = int(idx.shape[2]), int(idx.shape[3])
    dout = xp.ascontiguousarray(dout)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    dx = xp.empty((n, c, h, w), dtype=dout.dtype)
    kernel = f"maxunpool2d_backward_{_suffix(dout.dtype)}_{_ix(dx.size, dout.size)}"
    _launch("pool", kernel, dx.size, (dout, idx, dx, _i64(dx.size), _i64(h * w), _i64(oh * ow)))
    return dx


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------


def _elementwise_ok(*arrays) -> bool:
    first = arrays[0]
    return (
        _on_device(*arrays)
        and _suffix(first.dtype) is not None
        and all(tuple(a.shape) == tuple(first.shape) for a in arrays)
    )


def relu_forward(x):
    """(y, mask): y = max(x, 0), mask = x > 0 (bool)."""
    if not _elementwise_ok(x):
        return _ref.relu_forward(x)
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    mask = xp.empty(x.shape, dtype=np.bool_)
    _launch("activation", f"relu_forward_{_suffix(x.dtype)}", x.size, (x, y, mask, _i64(x.size)))
    return y, mask


def relu_backward(dy, mask):
    if not (_elementwise_ok(dy, mask)):
        return _ref.relu_backward(dy, mask)
    xp = _cupy()
    dy = xp.ascontiguousarray(dy)
    mask = xp.ascontiguousarray(mask, dtype=np.bool_)
    dx = xp.empty(dy.shape, dtype=dy.dtype)
    _launch("activation", f"relu_backward_{_suffix(dy.dtype)}", dy.size, (dy, mask, dx, _i64(dy.size)))
    return dx


def leaky_relu_forward(x, slope):
    if not _elementwise_ok(x):
        return _ref.leaky_relu_forward(x, slope)
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    mask = xp.empty(x.shape, dtype=np.bool_)
    args = (x, _scalar(slope, x.dtype), y, mask, _i64(x.size))
    _launch("activation", f"leaky_relu_forward_{_suffix(x.dtype)}", x.size, args)
    return y, mask


def leaky_relu_backward(dy, mask, slope):
    if not _elementwise_ok(dy, mask):
        return _ref.leaky_relu_backward(dy, mask, slope)
    xp = _cupy()
    dy = xp.ascontiguousarray(dy)
    mask = xp.ascontiguousarray(mask, dtype=np.bool_)
    dx = xp.empty(dy.shape, dtype=dy.dtype)
    args = (dy, mask, _scalar(slope, dy.dtype), dx, _i64(dy.size))
    _launch("activation", f"leaky_relu_backward_{_suffix(dy.dtype)}", dy.size, args)
    return dx


def elu_forward(x, alpha):
    if not _elementwise_ok(x):
        return _ref.elu_forward(x, alpha)
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    _launch("activation", f"elu_forward_{_suffix(x.dtype)}", x.size, (x, _scalar(alpha, x.dtype), y, _i64(x.size)))
    return y


def elu_backward(dy, y, alpha):
    if not (_elementwise_ok(dy, y) and y.dtype == dy.dtype):
        return _ref.elu_backward(dy, y, alpha)
    xp = _cupy()
    dy = xp.ascontiguousarray(dy)
    y = xp.ascontiguousarray(y)
    dx = xp.empty(dy.shape, dtype=dy.dtype)
    args = (dy, y, _scalar(alpha, dy.dtype), dx, _i64(dy.size))
    _launch("activation", f"elu_backward_{_suffix(dy.dtype)}", dy.size, args)
    return dx


def gelu_forward(x, approximate="none"):
    if not _elementwise_ok(x):
        return _ref.gelu_forward(x, approximate)
    xp = _cupy()
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    args = (x, y, _i64(x.size), _i32(approximate == "tanh"))
    _launch("activation", f"gelu_forward_{_suffix(x.dtype)}", x.size, args)
    return y


def gelu_backward(dy, x, approximate="none"):
    if not (_elementwise_ok(dy, x) and x.dtype == dy.dtype):
        return _ref.gelu_backward(dy, x, approximate)
    xp = _cupy()
    dy = xp.ascontiguousarray(dy)
    x = xp.ascontiguousarray(x)
    dx = xp.empty(dy.shape, dtype=dy.dtype)
    args = (dy, x, dx, _i64(dy.size), _i32(approximate == "tanh"))
    _launch("activation", f"gelu_backward_{_suffix(dy.dtype)}", dy.size, args)
    return dx


# --------------------------------------------------------------------------
# optimisers (in place)
# --------------------------------------------------------------------------


def _inplace_ok(param, grad, *state) -> bool:
    """In-place kernels need device arrays of one float dtype, C-contiguous state."""
    arrays = (param, grad, *state)
    return (
        _on_device(*arrays)
        and _suffix(param.dtype) is not None
        and all(a.dtype == param.dtype for a in arrays)
        and all(tuple(a.shape) == tuple(param.shape) for a in arrays)
        and all(a.flags.c_contiguous for a in (param, *state))
    )


def _sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first) -> tuple:
    """The hyper-parameter arguments of the sgd_update kernels (single and _multi)."""
    return (_scalar(lr, dt), _scalar(momentum, dt), _scalar(1 - dampening, dt), _scalar(weight_decay, dt),
            _i32(bool(weight_decay)), _i32(bool(momentum)), _i32(bool(nesterov)), _i32(bool(first)))


def _adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay) -> tuple:
    """The hyper-parameter arguments of the adam_update kernels (single and _multi); the bias
    corrections are computed in Python exactly as the reference does."""
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    return (_scalar(beta1, dt), _scalar(1 - beta1, dt), _scalar(beta2, dt), _scalar(1 - beta2, dt),
            _scalar(weight_decay, dt), _i32(bool(weight_decay)), _scalar(step_size, dt),
            _scalar(bias_correction2_sqrt, dt), _scalar(eps, dt))


def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on one tensor, in place (see the reference)."""
    state = (buf,) if momentum else ()
    if not _inplace_ok(param, grad, *state):
        return _ref.sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)
    xp = _cupy()
    grad = xp.ascontiguousarray(grad)
    dt = param.dtype
    args = (
        param,
        grad,
        buf if momentum else param,  # not touched when momentum == 0
        _i64(param.size),
        *_sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first),
    )
    _launch("optim", f"sgd_update_{_suffix(dt)}", param.size, args)


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on one tensor, in place (see the reference)."""
    if not _inplace_ok(param, grad, exp_avg, exp_avg_sq):
        return _ref.adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay)
    xp = _cupy()
    grad = xp.ascontiguousarray(grad)
    dt = param.dtype
    args = (
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        _i64(param.size),
        *_adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay),
    )
    _launch("optim", f"adam_update_{_suffix(dt)}", param.size, args)


def array_address(a) -> int:
    """Device address of a CuPy array (host address of a NumPy one, for the host tests)."""
    ptr = getattr(a.data, "ptr", None)
    return int(ptr) if ptr is not None else int(a.ctypes.data)


# (addresses..., sizes...) -> (address table, offsets) on the device: with
# CuPy's memory pool the gradients of consecutive steps usually reuse the same
# blocks, so the tables are usually copied to the device once, not every step.
# Keyed by address alone: with unified virtual addressing (every 64-bit CUDA
# platform) an address belongs to one device, so the cached tables are on it.
_TABLE_CACHE: dict = {}
_TABLE_CACHE_MAX = 16


def _multi_tables(columns, sizes):
    """Device tables for the _multi kernels: uint64 addresses (one row per
    column of tensors) and int64 offsets (len(sizes) + 1)."""
    key = (tuple(array_address(a) for col in columns for a in col), tuple(sizes))
    hit = _TABLE_CACHE.get(key)
    if hit is not None:
        return hit
    xp = _cupy()
    table = np.array([[array_address(a) for a in col] for col in columns], dtype=np.uint64)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if len(_TABLE_CACHE) >= _TABLE_CACHE_MAX:
        _TABLE_CACHE.clear()
    out = _TABLE_CACHE[key] = (xp.asarray(table), xp.asarray(offsets))
    return out


def _multi_prepare(name: str, columns):
    """Shared set-up of the _multi wrappers. ``columns`` = [params, grads, *state],
    lists with one array per tensor. Returns None when there is nothing to
    launch, False when some tensor needs the per-tensor path (see
    ``_inplace_ok``), else (dtype, address-table rows, offsets, tensors, total
    elements) for the non-empty tensors."""
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"{name}: lists of lengths {[len(c) for c in columns]}; expected one array per tensor "
                         "in each")
    if not columns[0]:
        return None
    dt = columns[0][0].dtype
    if not all(p.dtype == dt and _inplace_ok(p, *rest) for p, *rest in zip(*columns)):
        return False
    live = [k for k, p in enumerate(columns[0]) if p.size]
    if not live:
        return None
    xp = _cupy()
    cols = [[c[k] for k in live] for c in columns]
    cols[1] = [xp.ascontiguousarray(g) for g in cols[1]]
    sizes = [p.size for p in cols[0]]
    table, offsets = _multi_tables(cols, sizes)
    return dt, [table[r] for r in range(len(cols))], offsets, len(live), int(sum(sizes))


def sgd_update_multi(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on every tensor of a list, in place, in one launch (see the reference)."""
    params, grads = list(params), list(grads)
    bufs = list(bufs) if momentum else [None] * len(params)
    # without momentum the kernel never touches the buffer: pass the params in its place
    prep = _multi_prepare("sgd_update_multi", [params, grads, bufs if momentum else params])
    if prep is False:
        for p, g, b in zip(params, grads, bufs):  # per tensor (each falls back as it must)
            sgd_update(p, g, b, lr, momentum, dampening, nesterov, weight_decay, first)
        return
    if prep is None:
        return
    dt, rows, offsets, n, total = prep
    args = (
        *rows, offsets, _i32(n), _i64(total),
        *_sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first),
    )
    _launch("optim", f"sgd_update_multi_{_suffix(dt)}", total, args)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on every tensor of a list, in place, in one launch (see the reference)."""
    columns = [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)]
    prep = _multi_prepare("adam_update_multi", columns)
    if prep is False:
        for p, g, m, v in zip(*columns):
            adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
        return
    if prep is None:
        return
    dt, rows, offsets, n, total = prep
    args = (
        *rows, offsets, _i32(n), _i64(total),
        *_adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay),
    )
    _launch("optim", f"adam_update_multi_{_suffix(dt)}", total, args)


def matmul(a, b, out=None):
    """``a @ b`` on the device: cuBLAS through ctypes, which, unlike CuPy's matmul, can be
    recorded into a CUDA graph (see ``gemm``). NumPy input: the reference."""
    if not (_on_device(a) and _on_device(b)):
        return _ref.matmul(a, b, out=out)
    from . import gemm

    return gemm.matmul(a, b, out=out)


TABLE: dict = {
    "matmul": matmul,
    "im2col": im2col,
    "col2im": col2im,
    "maxpool2d_forward": maxpool2d_forward,
    "maxpool2d_backward": maxpool2d_backward,
    "maxunpool2d_forward": maxunpool2d_forward,
    "maxunpool2d_backward": maxunpool2d_backward,
    "relu_forward": relu_forward,
    "relu_backward": relu_backward,
    "leaky_relu_forward": leaky_relu_forward,
    "leaky_relu_backward": leaky_relu_backward,
    "elu_forward": elu_forward,
    "elu_backward": elu_backward,
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
    "sgd_update": sgd_update,
    "adam_update": adam_update,
    "sgd_update_multi": sgd_update_multi,
    "adam_update_multi": adam_update_multi,
    # CuPy array code (see the module docstring)
    "dropout_forward": _ref.dropout_forward,
    "batchnorm_forward": _ref.batchnorm_forward,
    "batchnorm_backward": _ref.batchnorm_backward,
}
