"""im2col / col2im as Numba kernels (same signatures as ``kernels.reference``).

Both are parallelised over the N*C image planes: each plane is owned by one
thread, so col2im's accumulation has no races and sums every pixel's taps in
the reference's order (tap (i, j) row-major), giving bit-identical results.

Each plane goes through a zero-padded copy of itself (Hp = H + 2*ph rows of
Wp = W + 2*pw), a small scratch array allocated per plane:

* im2col pads the plane into it, then every cols row segment (tap (c, i, j),
  output row oy) is one plain copy of OW elements from the padded plane, with
  no bounds tests and no zero fills;
* col2im adds every tap's row segments into the zeroed scratch (the
  reference's ``img[:, :, i::sh, j::sw] += cols[:, :, i, j]`` on a padded
  image, tap by tap) and copies the interior out.

Fixed-length copies through the padded plane beat clipping each row segment
at the border (benchmarks/notes/history.md, "im2col through a padded plane").

Indexing goes through flat 1-D views with computed offsets cast to unsigned
(``_u``): Numba adds a negative-index wrap-around test to every signed index it
cannot prove non-negative, which blocks vectorisation (3-4x slower). The
offsets are non-negative by construction.

``out=``: both wrappers can write into a caller's C-contiguous array of the
right shape and dtype instead of a new one; the conv schedule writes col2im
straight into dx's batch rows this way, and ConvTranspose2d's output.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _u

from .. import reference as _ref
from ._jit import compiled_for, dual

# Work (cols elements) above which the parallel variant is used, when parallel
# mode is on (see __init__); below it the thread launch eats the gain.
IM2COL_PAR_MIN = 65_536
COL2IM_PAR_MIN = 65_536


def _im2col_impl(x, kh, kw, sh, sw, ph, pw, cols, wide):
    n, c, h, w = x.shape
    hp = h + 2 * ph
    wp = w + 2 * pw
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    m = oh * ow
    kk = kh * kw
    rs = n * m if wide else m  # between a plane's row segments (c, i, j) -> (c, i, j + 1)
    ss = m if wide else c * kk * m  # between samples
    xf = x.reshape(x.size)
    cf = cols.reshape(cols.size)
    for p in prange(n * c):
        pad = np.zeros(hp * wp, dtype=x.dtype)  # the plane, zero-padded
        xbase = p * h * w
        for y in range(h):
            d = (y + ph) * wp + pw
            s = xbase + y * w
            for k in range(w):
                pad[_u(d + k)] = xf[_u(s + k)]
        cbase = (p % c) * kk * rs + (p // c) * ss  # plane (n, c)'s first row segment
        for i in range(kh):
            for j in range(kw):
                row = cbase + (i * kw + j) * rs
                for oy in range(oh):
                    s = (oy * sh + i) * wp + j
                    o = row + oy * ow
                    if sw == 1:
                        for ox in range(ow):
                            cf[_u(o + ox)] = pad[_u(s + ox)]
                    else:
                        for ox in range(ow):
                            cf[_u(o + ox)] = pad[_u(s + ox * sw)]
    return cols


def _col2im_impl(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, img, wide):
    hp = h + 2 * ph
    wp = w + 2 * pw
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    m = oh * ow
    kk = kh * kw
    rs = n * m if wide else m  # between a plane's row segments (c, i, j) -> (c, i, j + 1)
    ss = m if wide else c * kk * m  # between samples
    cf = cols.reshape(cols.size)
    imf = img.reshape(img.size)
    for p in prange(n * c):
        acc = np.zeros(hp * wp, dtype=img.dtype)  # the padded plane
        cbase = (p % c) * kk * rs + (p // c) * ss
        # taps in (i, j) order: each pixel sums its taps in the reference's order
        for i in range(kh):
            for j in range(kw):
                row = cbase + (i * kw + j) * rs
                for oy in range(oh):
                    d = (oy * sh + i) * wp + j
                    o = row + oy * ow
                    if sw == 1:
                        for ox in range(ow):
                            acc[_u(d + ox)] += cf[_u(o + ox)]
                    else:
                        for ox in range(ow):
                            acc[_u(d + ox * sw)] += cf[_u(o + ox)]
        ibase = p * h * w
        for y in range(h):
            s = (y + ph) * wp + pw
            d = ibase + y * w
            for k in range(w):
                imf[_u(d + k)] = acc[_u(s + k)]
    return img


_im2col_ser, _im2col_par = dual(_im2col_impl)
_col2im_ser, _col2im_par = dual(_col2im_impl)


def _destination(name, out, shape, dtype, *sources):
    """``out`` checked against the result's shape and dtype (and for sharing no
    memory with any of ``sources``: the kernels read the inputs while they write), or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name}: out must be a NumPy array, got {type(out).__name__}")
    _ref.check_out(name, out, shape, dtype)  # checked once; then only the overlaps, each source's
    for source in sources:  # own check_out (with its message) only where one overlaps
        if isinstance(source, np.ndarray) and np.may_share_memory(out, source):
            _ref.check_out(name, out, shape, dtype, source=source)
    return out


def im2col(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); row index is (c, i, j).

    ``out``: an optional C-contiguous (N, C*kh*kw, OH*OW) array of x's dtype
    to write into (returned); it must not overlap x. Dtypes other than
    float32/float64 (float16 ...) go to the reference.
    """
    if not compiled_for(x):
        return _ref.im2col(x, kh, kw, sh, sw, ph, pw, out=out)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = _ref.check_geometry("im2col", kh, kw, sh, sw, ph, pw, h, w)
    cols = _destination("im2col", out, (n, c * kh * kw, oh * ow), x.dtype, x)
    f = _im2col_par if cols.size >= IM2COL_PAR_MIN else _im2col_ser
    return f(x, kh, kw, sh, sw, ph, pw, cols, False)


def im2col_wide(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW): im2col's blocks side by side, column
    n*OH*OW + l holding sample n's column l (``reference.im2col_wide``), written in one pass.

    ``out``: as for ``im2col``, a C-contiguous (C*kh*kw, N*OH*OW) array.
    """
    if not compiled_for(x):
        return _ref.im2col_wide(x, kh, kw, sh, sw, ph, pw, out=out)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = _ref.check_geometry("im2col_wide", kh, kw, sh, sw, ph, pw, h, w)
    cols = _destination("im2col_wide", out, (c * kh * kw, n * oh * ow), x.dtype, x)
    f = _im2col_par if cols.size >= IM2COL_PAR_MIN else _im2col_ser
    return f(x, kh, kw, sh, sw, ph, pw, cols, True)


def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """Adjoint of im2col: cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W).

    ``out``: an optional C-contiguous (N, C, H, W) array of cols' dtype to
    write into (returned); it must not overlap cols. Dtypes other than
    float32/float64 (float16 ...) go to the reference.
    """
    if not compiled_for(cols):
        return _ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)
    cols = np.ascontiguousarray(cols)
    oh, ow = _ref.check_geometry("col2im", kh, kw, sh, sw, ph, pw, h, w)
    _ref.check_cols_size(cols, n, c, kh, kw, oh, ow)
    img = _destination("col2im", out, (n, c, h, w), cols.dtype, cols)
    f = _col2im_par if cols.size >= COL2IM_PAR_MIN else _col2im_ser
    return f(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, img, False)


def col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """Adjoint of im2col_wide: cols (C*kh*kw, N*OH*OW) -> x (N, C, H, W), each pixel's taps
    summed in col2im's order (the same values bit for bit). ``out`` as for ``col2im``."""
    if not compiled_for(cols):
        return _ref.col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)
    cols = np.ascontiguousarray(cols)
    oh, ow = _ref.check_geometry("col2im_wide", kh, kw, sh, sw, ph, pw, h, w)
    _ref.check_cols_size(cols, n, c, kh, kw, oh, ow)
    img = _destination("col2im_wide", out, (n, c, h, w), cols.dtype, cols)
    f = _col2im_par if cols.size >= COL2IM_PAR_MIN else _col2im_ser
    return f(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, img, True)
