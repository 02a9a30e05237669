"""im2col / col2im on the GPU (kernels in ``conv.cu``).

Shapes: x (N, C, H, W) <-> cols (N, C*kh*kw, OH*OW), OH/OW as
``reference.conv_out_size``; the ``_wide`` forms lay the batch's blocks side by
side, cols (C*kh*kw, N*OH*OW). float32 / float64 CuPy arrays with a valid
window geometry run the kernels; anything else runs the reference.
"""

from __future__ import annotations

from minicnn.kernels import reference as _ref

from . import launch
from .launch import _geometry, _i64, _ix, _launch, _suffix


def _im2col(name, x, kh, kw, sh, sw, ph, pw, out):
    """``name`` is "im2col" or "im2col_wide"; both kernels take the same sizes."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    if not (g and launch._on_device(x) and x.ndim == 4 and _suffix(x.dtype)):
        return getattr(_ref, name)(x, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = launch._cupy()
    x = xp.ascontiguousarray(x)
    n, c, h, w = (int(s) for s in x.shape)
    oh, ow = _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        return getattr(_ref, name)(x, kh, kw, sh, sw, ph, pw, out=out)
    shape = (c * kh * kw, n * oh * ow) if name == "im2col_wide" else (n, c * kh * kw, oh * ow)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else launch._device_out(name, out, shape, x.dtype)
    total = cols.size
    kernel = f"{name}_{_suffix(x.dtype)}_{_ix(x.size, total)}"
    batch = (_i64(n), _i64(c)) if name == "im2col_wide" else ()
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("conv", kernel, total, (x, cols, _i64(total), *batch, *sizes))
    return cols


def _col2im(name, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out):
    """``name`` is "col2im" or "col2im_wide"."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    ok = bool(g) and launch._on_device(cols) and _suffix(cols.dtype) is not None
    if ok:
        n, c, h, w = (int(v) for v in (n, c, h, w))
        oh, ow = _ref.conv_out_size(h, g[0], g[2], g[4]), _ref.conv_out_size(w, g[1], g[3], g[5])
        ok = min(n, c, h, w) >= 0 and oh >= 1 and ow >= 1 and cols.size == n * c * g[0] * g[1] * oh * ow
    if not ok:
        return getattr(_ref, name)(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = launch._cupy()
    cols = xp.ascontiguousarray(cols)
    shape = (n, c, h, w)
    x = xp.empty(shape, dtype=cols.dtype) if out is None else launch._device_out(name, out, shape, cols.dtype)
    total = x.size
    kernel = f"{name}_{_suffix(cols.dtype)}_{_ix(total, cols.size)}"
    batch = (_i64(n), _i64(c)) if name == "col2im_wide" else ()
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("conv", kernel, total, (cols, x, _i64(total), *batch, *sizes))
    return x


def im2col(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); see the reference (``out=`` too)."""
    return _im2col("im2col", x, kh, kw, sh, sw, ph, pw, out)


def im2col_wide(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW), the batch's blocks side by side."""
    return _im2col("im2col_wide", x, kh, kw, sh, sw, ph, pw, out)


def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W), summing overlapping taps.

    A gather (one thread per image pixel, taps in the reference's order):
    deterministic and equal to the reference bit for bit.
    """
    return _col2im("col2im", cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out)


def col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """cols (C*kh*kw, N*OH*OW) -> x (N, C, H, W); the gather of ``col2im``, bit for bit the reference."""
    return _col2im("col2im_wide", cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out)


def _direct_ok(a, w, stride, padding) -> bool:
    """The direct kernels take float32/float64 device arrays of one dtype, 4-D, a valid geometry."""
    return (launch._on_device(a, w) and a.ndim == 4 and w.ndim == 4 and _suffix(a.dtype) is not None
            and a.dtype == w.dtype and _geometry(w.shape[2], w.shape[3], *stride, *padding) is not None)


def _write(name, out, result, like):
    """The fallback's ``result``, or ``out`` (C-contiguous, ``result``'s shape, ``like``'s array
    library) with ``result`` cast into it: the schedule's ``out`` has the dtype of x and w, a bias
    of another dtype must not change it (as on the CPU)."""
    if out is None:
        return result
    _ref.check_out(name, out, result.shape, out.dtype, like=like)
    out[...] = result
    return out


def conv_forward(name, x, w, b, stride, padding, out, run):
    """The checks, the fallback and the output of a kernel computing Conv2d's y (N, O, OH, OW) from
    x (N, C, H, W), w (O, C, kh, kw) and b (O,) or None: ``run(x, w, bias, y, sizes, has_bias)``
    launches it, sizes = (n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow) (``conv2d_direct`` here,
    ``conv_igemm.conv2d_igemm``). What the kernels don't take runs im2col + matmul (reference)."""
    (sh, sw), (ph, pw) = stride, padding
    _ref.check_direct(name, x, 1, w, 1, b)
    n, c, h, wd = (int(s) for s in x.shape)
    o, _, kh, kw = (int(s) for s in w.shape)
    oh, ow = _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(wd, kw, sw, pw)
    if not (_direct_ok(x, w, stride, padding) and oh >= 1 and ow >= 1 and (b is None or b.dtype == x.dtype)):
        y = _ref.matmul(w.reshape(o, -1), _ref.im2col(x, kh, kw, sh, sw, ph, pw))
        return _write(name, out, (y if b is None else y + b.reshape(1, o, 1)).reshape(n, o, oh, ow), x)
    xp = launch._cupy()
    x, w = xp.ascontiguousarray(x), xp.ascontiguousarray(w)
    y = xp.empty((n, o, oh, ow), dtype=x.dtype) if out is None else \
        _ref.check_out(name, out, (n, o, oh, ow), x.dtype, like=x)
    bias = xp.ascontiguousarray(b) if b is not None else y  # not read when has_bias is 0
    run(x, w, bias, y, (n, c, h, wd, o, kh, kw, sh, sw, ph, pw, oh, ow), b is not None)
    return y


def conv_input_grad(name, dy, w, h, wd, stride, padding, out, run):
    """The same for a kernel computing Conv2d's dx (N, C, h, wd) from dy (N, O, OH, OW) and w:
    ``run(dy, w, dx, sizes)``, sizes as for ``conv_forward``. The fallback: col2im of W^T @ dy."""
    (sh, sw), (ph, pw) = stride, padding
    h, wd = int(h), int(wd)
    kh, kw = (int(s) for s in w.shape[2:]) if w.ndim == 4 else (1, 1)  # (a wrong rank is refused below)
    _ref.check_direct(name, dy, 1, w, 0, out_size=tuple(int(s) for s in dy.shape[2:]),
                      want=(_ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(wd, kw, sw, pw)))
    n, o, oh, ow = (int(s) for s in dy.shape)
    _, c, kh, kw = (int(s) for s in w.shape)
    if not _direct_ok(dy, w, stride, padding):
        dcols = _ref.matmul(w.reshape(o, -1).T, dy.reshape(n, o, oh * ow))
        return _write(name, out, _ref.col2im(dcols, n, c, h, wd, kh, kw, sh, sw, ph, pw), dy)
    xp = launch._cupy()
    dy, w = xp.ascontiguousarray(dy), xp.ascontiguousarray(w)
    dx = xp.empty((n, c, h, wd), dtype=dy.dtype) if out is None else \
        _ref.check_out(name, out, (n, c, h, wd), dy.dtype, like=dy)
    run(dy, w, dx, (n, c, h, wd, o, kh, kw, sh, sw, ph, pw, oh, ow))
    return dx


def conv2d_direct(x, w, b, stride, padding, out=None):
    """y (N, O, OH, OW) = Conv2d of x (N, C, H, W) with w (O, C, kh, kw) (+ b (O,)): one thread per
    output element, no column matrix. What the kernels don't take runs im2col + matmul (reference).
    ``out``: an optional C-contiguous device array of y's shape and dtype to write into."""

    def run(x, w, bias, y, sizes, has_bias):
        kernel = f"conv2d_direct_forward_{_suffix(x.dtype)}_{_ix(x.size, y.size, w.size)}"
        _launch("conv", kernel, y.size, (x, w, bias, y, _i64(y.size), *map(_i64, sizes[1:]), launch._i32(has_bias)))

    return conv_forward("conv2d_direct", x, w, b, stride, padding, out, run)


def conv2d_direct_input_grad(dy, w, h, wd, stride, padding, out=None):
    """dx (N, C, h, wd) of a Conv2d from dy (N, O, OH, OW) and w (O, C, kh, kw): one thread per
    input pixel, no column matrix (the reference: col2im of W^T @ dy). ``out`` as for ``conv2d_direct``."""

    def run(dy, w, dx, sizes):
        kernel = f"conv2d_direct_input_grad_{_suffix(dy.dtype)}_{_ix(dx.size, dy.size, w.size)}"
        _launch("conv", kernel, dx.size, (dy, w, dx, _i64(dx.size), *map(_i64, sizes[1:])))

    return conv_input_grad("conv2d_direct_input_grad", dy, w, h, wd, stride, padding, out, run)
