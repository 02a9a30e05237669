"""Max pooling and max unpooling on the GPU (kernels in ``pool.cu``).

Shapes: x (N, C, H, W); pooled out and idx (N, C, OH, OW), idx int64 = the
argmax's h*W + w inside its plane. float32 / float64 CuPy arrays (integer
idx) run the kernels; anything else runs the reference. Every kernel is
deterministic (the backward passes and the unpooling are gathers).
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import fused as _fused
from minicnn.kernels import reference as _ref

from . import launch
from .launch import _geometry, _i64, _ix, _launch, _suffix


def maxpool2d_forward(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> (out, idx) (N, C, OH, OW); idx int64 = h*W + w."""
    g = _geometry(kh, kw, sh, sw, ph, pw)
    if not (g and launch._on_device(x) and x.ndim == 4 and _suffix(x.dtype)):
        return _ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    kh, kw, sh, sw, ph, pw = g
    xp = launch._cupy()
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
    ``maxpool2d_forward``) this is a gather over input pixels; without it (the
    reference signature ``dout, idx, h, w``), one thread per (n, c) plane,
    deterministic too but with less parallelism. Both sum in the reference's
    order (in double, as numpy's bincount), so the result equals the reference.
    """
    ok = (
        launch._on_device(dout, idx)
        and dout.ndim == 4
        and tuple(idx.shape) == tuple(dout.shape)
        and _suffix(dout.dtype) is not None
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxpool2d_backward(dout, idx, h, w)
    xp = launch._cupy()
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
    """Place x (N, C, H, W) at idx (N, C, H, W) inside zero planes -> out (N, C, OH, OW).

    Where several inputs name one position, an integer-atomic claim picks the
    last in plane order (the one NumPy's assignment keeps); then a gather writes
    every output element.
    """
    ok = (
        launch._on_device(x, idx)
        and x.ndim == 4
        and tuple(idx.shape) == tuple(x.shape)
        and _suffix(x.dtype)
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxunpool2d_forward(x, idx, oh, ow)
    xp = launch._cupy()
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
        launch._on_device(dout, idx)
        and dout.ndim == 4
        and idx.ndim == 4
        and tuple(idx.shape[:2]) == tuple(dout.shape[:2])
        and _suffix(dout.dtype)
        and idx.dtype.kind in "iu"
    )
    if not ok:
        return _ref.maxunpool2d_backward(dout, idx)
    xp = launch._cupy()
    n, c, oh, ow = (int(s) for s in dout.shape)
    h, w = int(idx.shape[2]), int(idx.shape[3])
    dout = xp.ascontiguousarray(dout)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    dx = xp.empty((n, c, h, w), dtype=dout.dtype)
    kernel = f"maxunpool2d_backward_{_suffix(dout.dtype)}_{_ix(dx.size, dout.size)}"
    _launch("pool", kernel, dx.size, (dout, idx, dx, _i64(dx.size), _i64(h * w), _i64(oh * ow)))
    return dx


def relu_maxpool2d_forward(x, kh, kw):
    """Fused ReLU -> max-pool (kernels/fused.py): x (N, C, H, W) -> (out, idx), (N, C, H // kh, W // kw)."""
    kh, kw = int(kh), int(kw)
    if not (launch._on_device(x) and x.ndim == 4 and _suffix(x.dtype) and kh >= 1 and kw >= 1
            and x.shape[2] >= kh and x.shape[3] >= kw):
        return _fused.relu_maxpool2d_forward(x, kh, kw)
    xp = launch._cupy()
    x = xp.ascontiguousarray(x)
    n, c, h, w = (int(s) for s in x.shape)
    oh, ow = h // kh, w // kw
    out = xp.empty((n, c, oh, ow), dtype=x.dtype)
    idx = xp.empty((n, c, oh, ow), dtype=np.int64)
    kernel = f"relu_maxpool2d_forward_{_suffix(x.dtype)}_{_ix(x.size, out.size)}"
    _launch("pool", kernel, out.size, (x, out, idx, _i64(out.size), *map(_i64, (h, w, kh, kw, oh, ow))))
    return out, idx


def relu_maxpool2d_backward(dout, out, idx, h, w, kh, kw):
    """Fused ReLU -> max-pool backward: dout (N, C, OH, OW) -> dx (N, C, h, w), a gather
    over input pixels (each lies in one window at most)."""
    h, w, kh, kw = int(h), int(w), int(kh), int(kw)
    ok = (launch._on_device(dout, out, idx) and dout.ndim == 4 and _suffix(dout.dtype)
          and out.dtype == dout.dtype and tuple(out.shape) == tuple(dout.shape) == tuple(idx.shape)
          and idx.dtype.kind in "iu" and kh >= 1 and kw >= 1)
    if not ok:
        return _fused.relu_maxpool2d_backward(dout, out, idx, h, w, kh, kw)
    xp = launch._cupy()
    n, c, oh, ow = (int(s) for s in dout.shape)
    dout, out = xp.ascontiguousarray(dout), xp.ascontiguousarray(out)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    dx = xp.empty((n, c, h, w), dtype=dout.dtype)
    kernel = f"relu_maxpool2d_backward_{_suffix(dout.dtype)}_{_ix(dx.size, dout.size)}"
    _launch("pool", kernel, dx.size, (dout, out, idx, dx, _i64(dx.size), *map(_i64, (h, w, kh, kw, oh, ow))))
    return dx
