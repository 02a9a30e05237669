"""im2col / col2im as Numba kernels (same signatures as ``kernels.reference``).

Both are parallelised over the N*C image planes: each plane is owned by one
thread, so col2im's accumulation has no races and sums every pixel's taps in
the reference's order (tap (i, j) row-major), giving bit-identical results.
Out-of-image taps (zero padding) are handled by clipping the inner ``ox``
range instead of a per-element test, so the inner loop is a plain strided copy.

Indexing goes through flat 1-D views with computed offsets cast to unsigned
(``_u``): Numba adds a negative-index wrap-around test to every signed index it
cannot prove non-negative, which blocks vectorisation and cost 3-4x here
(im2col of the tutorial net's conv1, batch 4: ~270 -> ~80 us). The offsets are
non-negative by construction.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _u

from ._jit import dual

# Work (cols elements) above which the parallel variant is used, when parallel
# mode is on (see __init__). 2 idle cores: tutorial conv1 at batch 4 (235k
# elements) 88 -> 44 us, conv2 (60k) 53 -> 27 us; at 15k the launch eats the gain.
IM2COL_PAR_MIN = 65_536
COL2IM_PAR_MIN = 65_536


def _im2col_impl(x, kh, kw, sh, sw, ph, pw):
    if sh <= 0 or sw <= 0:
        raise ValueError("im2col: strides must be positive")
    n, c, h, w = x.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    m = oh * ow
    kk = kh * kw
    cols = np.empty((n, c * kk, m), dtype=x.dtype)
    xf = x.reshape(x.size)
    cf = cols.reshape(cols.size)
    for p in prange(n * c):
        xbase = p * h * w
        cbase = p * kk * m  # rows (c, i, j) of image n are consecutive
        for i in range(kh):
            for j in range(kw):
                row = cbase + (i * kw + j) * m
                # output columns whose tap lands inside the image: 0 <= ox*sw - pw + j < w
                lo = -((j - pw) // sw)
                if lo < 0:
                    lo = 0
                hi = (w - 1 + pw - j) // sw + 1
                if hi > ow:
                    hi = ow
                if hi < lo:
                    hi = lo
                for oy in range(oh):
                    y = oy * sh - ph + i
                    o = row + oy * ow
                    if y < 0 or y >= h:
                        for ox in range(ow):
                            cf[_u(o + ox)] = 0
                        continue
                    for ox in range(lo):
                        cf[_u(o + ox)] = 0
                    s = xbase + y * w + j - pw
                    for ox in range(lo, hi):
                        cf[_u(o + ox)] = xf[_u(s + ox * sw)]
                    for ox in range(hi, ow):
                        cf[_u(o + ox)] = 0
    return cols


def _col2im_impl(cols, n, c, h, w, kh, kw, sh, sw, ph, pw):
    if sh <= 0 or sw <= 0:
        raise ValueError("col2im: strides must be positive")
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    m = oh * ow
    kk = kh * kw
    if cols.size != n * c * kk * m:
        raise ValueError("col2im: cols has the wrong size for (n, c, h, w) and the window")
    img = np.empty((n, c, h, w), dtype=cols.dtype)
    cf = cols.reshape(cols.size)
    imf = img.reshape(img.size)
    for p in prange(n * c):
        ibase = p * h * w
        cbase = p * kk * m
        for k in range(h * w):
            imf[_u(ibase + k)] = 0
        # taps in (i, j) order: each pixel sums its taps in the reference's order
        for i in range(kh):
            for j in range(kw):
                row = cbase + (i * kw + j) * m
                lo = -((j - pw) // sw)
                if lo < 0:
                    lo = 0
                hi = (w - 1 + pw - j) // sw + 1
                if hi > ow:
                    hi = ow
                for oy in range(oh):
                    y = oy * sh - ph + i
                    if y < 0 or y >= h:
                        continue
                    o = row + oy * ow
                    d = ibase + y * w + j - pw
                    for ox in range(lo, hi):
                        imf[_u(d + ox * sw)] += cf[_u(o + ox)]
    return img


_im2col_ser, _im2col_par = dual(_im2col_impl)
_col2im_ser, _col2im_par = dual(_col2im_impl)


def im2col(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); row index is (c, i, j)."""
    x = np.ascontiguousarray(x)
    work = x.size * kh * kw
    f = _im2col_par if work >= IM2COL_PAR_MIN else _im2col_ser
    return f(x, kh, kw, sh, sw, ph, pw)


def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw):
    """Adjoint of im2col: cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W)."""
    cols = np.ascontiguousarray(cols)
    f = _col2im_par if cols.size >= COL2IM_PAR_MIN else _col2im_ser
    return f(cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
