"""im2col / col2im on the GPU (kernels in ``conv.cu``).

Shapes: x (N, C, H, W) <-> cols (N, C*kh*kw, OH*OW), OH/OW as
``reference.conv_out_size``. float32 / float64 CuPy arrays with a valid
window geometry run the kernels; anything else runs the reference.
"""

from __future__ import annotations

from minicnn.kernels import reference as _ref

from . import launch
from .launch import _geometry, _i64, _ix, _launch, _suffix


def im2col(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); see the reference (``out=`` too)."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    if not (g and launch._on_device(x) and x.ndim == 4 and _suffix(x.dtype)):
        return _ref.im2col(x, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = launch._cupy()
    x = xp.ascontiguousarray(x)
    n, c, h, w = (int(s) for s in x.shape)
    oh, ow = _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        return _ref.im2col(x, kh, kw, sh, sw, ph, pw, out=out)
    shape = (n, c * kh * kw, oh * ow)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else launch._device_out("im2col", out, shape, x.dtype)
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
    ok = bool(g) and launch._on_device(cols) and _suffix(cols.dtype) is not None
    if ok:
        n, c, h, w = (int(v) for v in (n, c, h, w))
        oh, ow = _ref.conv_out_size(h, g[0], g[2], g[4]), _ref.conv_out_size(w, g[1], g[3], g[5])
        ok = min(n, c, h, w) >= 0 and oh >= 1 and ow >= 1 and cols.size == n * c * g[0] * g[1] * oh * ow
    if not ok:
        return _ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)
    kh, kw, sh, sw, ph, pw = g
    xp = launch._cupy()
    cols = xp.ascontiguousarray(cols)
    shape = (n, c, h, w)
    x = xp.empty(shape, dtype=cols.dtype) if out is None else launch._device_out("col2im", out, shape, cols.dtype)
    total = x.size
    kernel = f"col2im_{_suffix(cols.dtype)}_{_ix(total, cols.size)}"
    sizes = map(_i64, (h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    _launch("conv", kernel, total, (cols, x, _i64(total), *sizes))
    return x
