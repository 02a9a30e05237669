"""Max-pool / max-unpool as Numba kernels (same signatures as ``kernels.reference``).

Semantics follow the reference exactly:

* forward: the window is scanned in row-major order, padding positions read
  as ``-inf``; the first maximum wins, and a NaN counts as the maximum (the
  first NaN wins), which is ``np.argmax``'s rule. ``idx`` (int64) is the flat
  offset ``h*W + w`` inside the (H, W) plane, computed from the window
  position even when it falls in the padding (an all-padding window, possible
  only with padding > kernel/2, yields the first padding position, as in the
  reference).
* backward: ``dx`` plane ``+=`` dout at idx, summed in row-major order of
  ``dout`` in a float64 scratch plane and rounded once, as ``np.bincount`` does
  in the reference, so float32 results are bit-identical even where
  overlapping windows (stride < kernel) share a maximum.
* unpool forward: zero planes, ``out[idx] = x`` (the last write wins for a
  repeated index, like NumPy's fancy assignment); unpool backward gathers.

Speed: a window inside the image is scanned branch-free (compare + select;
with random data a branch per element mispredicts half the time), with a
dedicated unrolled path for 2x2 windows without padding, and NaNs are only
flagged there; a plane that holds a NaN is redone with the exact, branchy scan
(rare). Windows touching the padding always take the exact scan. This is
~7x faster than a plain ``if v > best or isnan(v) ...`` loop on the tutorial
net's 2x2 pools.

Every loop is over the N*C planes (one thread per plane: no races). No
``fastmath`` here: it would let LLVM assume there are no NaNs/infs and break
the comparisons. Indices outside the plane raise ``IndexError`` (the kernels
count them and the wrapper raises) instead of writing out of bounds; negative
indices wrap once in unpool, as NumPy indexing does.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, prange
from numba import uint64 as _u

from .. import reference as _ref
from ._jit import compiled_for, dual, serial

# sizes above which the parallel variant is used when parallel mode is on
# (see __init__); below them the thread launch costs more than it saves
MAXPOOL_FWD_PAR_MIN = 16_384  # input elements (2x2 pool of 6400: 7 us serial)
MAXPOOL_BWD_PAR_MIN = 8_192  # dout elements (4704: 8 us serial, 9.5 parallel)
UNPOOL_PAR_MIN = 32_768  # larger of input/output elements


def _window_max_exact(xf, xb, h, w, y0, x0, kh, kw):
    """(max, flat idx) of one window, exactly the reference's rule: scan in
    row-major order, padding reads -inf, the first maximum wins and a NaN beats
    everything (the first NaN). Branchy: used for windows that touch the
    padding and for planes holding a NaN."""
    best = -np.inf
    bi = 0
    for i in range(kh):
        y = y0 + i
        if y < 0 or y >= h:
            continue
        s = xb + y * w
        for j in range(kw):
            xx = x0 + j
            if xx >= 0 and xx < w:
                v = xf[_u(s + xx)]
                if v > best or (v != v and best == best):
                    best = v
                    bi = i * kw + j
    bi_i = bi // kw
    return best, (y0 + bi_i) * w + (x0 + bi - bi_i * kw)


_window_max_exact = serial(_window_max_exact)


def _plane_2x2_nopad(xf, of, jf, xb, ob, w, oh, ow, sh, sw):
    """2x2 windows, no padding, one plane: a branch-free scan (compare + select;
    random data would mispredict every other branch) for the first strict
    maximum. NaNs are only flagged (returns True if the plane holds one)."""
    nan = False
    for oy in range(oh):
        for ox in range(ow):
            s = xb + oy * sh * w + ox * sw
            v0 = xf[_u(s)]
            v1 = xf[_u(s + 1)]
            v2 = xf[_u(s + w)]
            v3 = xf[_u(s + w + 1)]
            best = v0
            r = 0
            t = v1 > best
            best = v1 if t else best
            r = 1 if t else r
            t = v2 > best
            best = v2 if t else best
            r = w if t else r
            t = v3 > best
            best = v3 if t else best
            r = w + 1 if t else r
            nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
            k = _u(ob + oy * ow + ox)
            of[k] = best
            jf[k] = s - xb + r
    return nan


def _plane_generic(xf, of, jf, xb, ob, h, w, oh, ow, kh, kw, sh, sw, ph, pw):
    """Any window, one plane; branch-free scan for inner windows, the exact
    scan for windows touching the padding. Returns True if a NaN was seen in
    an inner window (which then needs the exact rule)."""
    nan = False
    for oy in range(oh):
        y0 = oy * sh - ph
        for ox in range(ow):
            x0 = ox * sw - pw
            k = _u(ob + oy * ow + ox)
            if y0 >= 0 and x0 >= 0 and y0 + kh <= h and x0 + kw <= w:
                s = xb + y0 * w + x0
                best = xf[_u(s)]
                r = 0
                for i in range(kh):
                    for j in range(kw):
                        v = xf[_u(s + i * w + j)]
                        t = v > best
                        best = v if t else best
                        r = i * w + j if t else r
                        nan |= v != v
                of[k] = best
                jf[k] = y0 * w + x0 + r
            else:
                bv, bj = _window_max_exact(xf, xb, h, w, y0, x0, kh, kw)
                of[k] = bv
                jf[k] = bj
    return nan


_plane_2x2_nopad = serial(_plane_2x2_nopad)
_plane_generic = serial(_plane_generic)


def _maxpool_fwd_impl(x, kh, kw, sh, sw, ph, pw, out, idx):
    n, c, h, w = x.shape
    oh = out.shape[2]
    ow = out.shape[3]
    m = oh * ow
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    jf = idx.reshape(idx.size)
    fast = kh == 2 and kw == 2 and ph == 0 and pw == 0
    for p in prange(n * c):
        xb = p * h * w
        ob = p * m
        if fast:
            nan = _plane_2x2_nopad(xf, of, jf, xb, ob, w, oh, ow, sh, sw)
        else:
            nan = _plane_generic(xf, of, jf, xb, ob, h, w, oh, ow, kh, kw, sh, sw, ph, pw)
        if nan:
            # rare: redo this plane with the exact NaN rule (first NaN wins)
            for oy in range(oh):
                for ox in range(ow):
                    bv, bj = _window_max_exact(xf, xb, h, w, oy * sh - ph, ox * sw - pw, kh, kw)
                    k = _u(ob + oy * ow + ox)
                    of[k] = bv
                    jf[k] = bj
    return out, idx


def _maxpool_bwd_impl(dout, idx, h, w, nchunks, dx):
    n, c, oh, ow = dout.shape
    planes = n * c
    plane = h * w
    m = oh * ow
    d2 = dout.reshape((planes, m))
    i2 = idx.reshape((planes, m))
    g2 = dx.reshape((planes, plane))
    bad = 0
    # one float64 scratch plane per chunk of planes (one chunk per thread):
    # sums are formed in float64 in dout's row-major order and rounded once,
    # exactly as np.bincount in the reference does
    for t in prange(nchunks):
        p0 = t * planes // nchunks
        p1 = (t + 1) * planes // nchunks
        acc = np.empty(plane, dtype=np.float64)
        for p in range(p0, p1):
            for k in range(plane):
                acc[k] = 0.0
            for k in range(m):
                q = i2[p, k]
                if q >= 0 and q < plane:
                    acc[q] += d2[p, k]
                else:
                    bad += 1
            for k in range(plane):
                g2[p, k] = acc[k]
    return dx, bad


def _unpool_fwd_impl(x, idx, oh, ow, out):
    n, c, h, w = x.shape
    m = h * w
    plane = oh * ow
    x2 = x.reshape((n * c, m))
    i2 = idx.reshape((n * c, m))
    o2 = out.reshape((n * c, plane))
    bad = 0
    for p in prange(n * c):
        for k in range(plane):
            o2[p, k] = 0
        for k in range(m):
            t = i2[p, k]
            if t < 0:
                t += plane
            if t >= 0 and t < plane:
                o2[p, t] = x2[p, k]
            else:
                bad += 1
    return out, bad


def _unpool_bwd_impl(dout, idx, dx):
    n, c, oh, ow = dout.shape
    h = idx.shape[2]
    w = idx.shape[3]
    m = h * w
    plane = oh * ow
    d2 = dout.reshape((n * c, plane))
    i2 = idx.reshape((n * c, m))
    g2 = dx.reshape((n * c, m))
    bad = 0
    for p in prange(n * c):
        for k in range(m):
            t = i2[p, k]
            if t < 0:
                t += plane
            if t >= 0 and t < plane:
                g2[p, k] = d2[p, t]
            else:
                g2[p, k] = 0
                bad += 1
    return dx, bad


_mp_fwd_ser, _mp_fwd_par = dual(_maxpool_fwd_impl)
_mp_bwd_ser, _mp_bwd_par = dual(_maxpool_bwd_impl)
_up_fwd_ser, _up_fwd_par = dual(_unpool_fwd_impl)
_up_bwd_ser, _up_bwd_par = dual(_unpool_bwd_impl)


def _index_error(where, bad, plane):
    return IndexError(f"{where}: {bad} index value(s) outside the plane of {plane} elements")


def maxpool2d_forward(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> (out, idx), both (N, C, OH, OW); idx int64 = h*W + w."""
    if not compiled_for(x):  # float16 ...: the reference (see _jit)
        return _ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    x = np.ascontiguousarray(x)
    if sh <= 0 or sw <= 0:
        raise ValueError(f"maxpool2d_forward: strides must be positive, got ({sh}, {sw})")
    n, c, h, w = x.shape
    shape = (n, c, _ref.conv_out_size(h, kh, sh, ph), _ref.conv_out_size(w, kw, sw, pw))
    f = _mp_fwd_par if x.size >= MAXPOOL_FWD_PAR_MIN else _mp_fwd_ser
    return f(x, kh, kw, sh, sw, ph, pw, np.empty(shape, x.dtype), np.empty(shape, np.int64))


def maxpool2d_backward(dout, idx, h, w, kh=None, kw=None, sh=None, sw=None, ph=0, pw=0):
    """Route dout (N, C, OH, OW) to the argmax positions idx -> dx (N, C, H, W).

    The optional window geometry is not needed for this per-plane scatter.
    """
    if not compiled_for(dout):
        return _ref.maxpool2d_backward(dout, idx, h, w, kh, kw, sh, sw, ph, pw)
    dout = np.ascontiguousarray(dout)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    dx = np.empty(dout.shape[:2] + (h, w), dout.dtype)
    if dout.size >= MAXPOOL_BWD_PAR_MIN:
        dx, bad = _mp_bwd_par(dout, idx, h, w, get_num_threads(), dx)
    else:
        dx, bad = _mp_bwd_ser(dout, idx, h, w, 1, dx)
    if bad:
        raise _index_error("maxpool2d_backward", bad, h * w)
    return dx


def maxunpool2d_forward(x, idx, oh, ow):
    """Place x (N, C, H, W) at idx inside zero planes -> out (N, C, OH, OW)."""
    if not compiled_for(x):
        return _ref.maxunpool2d_forward(x, idx, oh, ow)
    x = np.ascontiguousarray(x)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    big = max(x.size, x.shape[0] * x.shape[1] * oh * ow)
    f = _up_fwd_par if big >= UNPOOL_PAR_MIN else _up_fwd_ser
    out, bad = f(x, idx, oh, ow, np.empty(x.shape[:2] + (oh, ow), x.dtype))
    if bad:
        raise _index_error("maxunpool2d_forward", bad, oh * ow)
    return out


def maxunpool2d_backward(dout, idx):
    """Gather dout (N, C, OH, OW) at idx (N, C, H, W) -> dx (N, C, H, W)."""
    if not compiled_for(dout):
        return _ref.maxunpool2d_backward(dout, idx)
    dout = np.ascontiguousarray(dout)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    f = _up_bwd_par if max(dout.size, idx.size) >= UNPOOL_PAR_MIN else _up_bwd_ser
    dx, bad = f(dout, idx, np.empty(idx.shape, dout.dtype))
    if bad:
        raise _index_error("maxunpool2d_backward", bad, dout.shape[2] * dout.shape[3])
    return dx
