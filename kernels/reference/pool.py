"""Max-pool with its switches (argmax indices) and max-unpool, forward and backward."""

from __future__ import annotations

from .arrays import _plane, _windows, _xp, conv_out_size


def maxpool2d_forward(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> (out, idx), both (N, C, OH, OW); idx int64 = h*W + w."""
    xp = _xp(x)
    n, c, h, w = x.shape
    if sh < 1 or sw < 1:
        raise ValueError(f"maxpool2d_forward: strides must be positive, got ({sh}, {sw})")
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    if ph or pw:
        xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)
    else:
        xpad = xp.ascontiguousarray(x)
    win = _windows(xpad, kh, kw, sh, sw, oh, ow).reshape(n, c, oh, ow, kh * kw)
    a = win.argmax(axis=-1)  # first maximum (NaN counts as maximum, as in PyTorch)
    out = xp.take_along_axis(win, a[..., None], axis=-1)[..., 0]
    rows = xp.arange(oh).reshape(oh, 1) * sh - ph + a // kw
    cols = xp.arange(ow).reshape(1, ow) * sw - pw + a % kw
    idx = (rows * w + cols).astype(xp.int64)
    return xp.ascontiguousarray(out), idx


def maxpool2d_backward(dout, idx, h, w, kh=None, kw=None, sh=None, sw=None, ph=0, pw=0):
    """Route dout (N, C, OH, OW) to the argmax positions idx -> dx (N, C, H, W).

    The window geometry (as given to the forward) is optional; the CUDA kernel
    uses it to run as a gather over input pixels, this scatter ignores it.
    """
    xp = _xp(dout)
    n, c = dout.shape[:2]
    plane = h * w
    flat = (idx.reshape(n * c, _plane(idx)) + (xp.arange(n * c) * plane)[:, None]).ravel()
    dx = xp.bincount(flat, weights=dout.ravel(), minlength=n * c * plane)
    return dx.astype(dout.dtype, copy=False).reshape(n, c, h, w)


def maxunpool2d_forward(x, idx, oh, ow):
    """Place x (N, C, H, W) at idx inside zero planes -> out (N, C, OH, OW)."""
    xp = _xp(x)
    n, c = x.shape[:2]
    out = xp.zeros((n * c, oh * ow), dtype=x.dtype)
    rows = xp.arange(n * c)[:, None]
    out[rows, idx.reshape(n * c, _plane(idx))] = x.reshape(n * c, _plane(x))
    return out.reshape(n, c, oh, ow)


def maxunpool2d_backward(dout, idx):
    """Gather dout (N, C, OH, OW) at idx (N, C, H, W) -> dx (N, C, H, W)."""
    xp = _xp(dout)
    n, c = dout.shape[:2]
    g = xp.take_along_axis(dout.reshape(n * c, _plane(dout)), idx.reshape(n * c, _plane(idx)), axis=1)
    return g.reshape(idx.shape)
