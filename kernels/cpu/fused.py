"""Fused operations as Numba kernels (definitions and signatures: ``kernels.fused``).

``add_relu``: one pass over a and b, each element's sum ReLU'd as ``relu_forward`` does
(``activations.py``), the sum never written.

``batchnorm_relu_eval``: one pass over x, one thread per channel, each value normalised by
the evaluation batch norm's operations (``batchnorm.py``'s ``_bn_eval_impl``, in x's dtype, in
the reference's order) and ReLU'd as ``add_relu``, the normalised value never written.

``relu_maxpool2d``: one thread per (n, c) plane, as the pooling kernels.

* forward: each window of x is read once; the ReLU is applied to each value as it is
  read (``zero if v <= zero else v``: +0.0 for -0.0, NaN passes, as ``np.maximum(v, 0)``) and
  the window's first maximum kept, branch-free (compare + select), the way
  ``pooling.py`` scans inner windows; a plane holding a NaN is redone with the exact,
  branchy rule (a NaN is the maximum, the first NaN wins).
* backward: a zeroed plane, then ``dx[idx] = dout`` where out > 0. Each pixel lies in
  one window at most, so this is the reference's sum; ``0.0 + dout`` makes a -0.0
  land as +0.0, as it does there (the float64 sum starts from +0.0).

No ``fastmath``: it would assume there are no NaNs.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _u

from .. import fused as _fused
from . import threads
from .batchnorm import eval_arguments
from ._jit import compiled_for, dual, serial

# input elements above which the parallel variant runs when parallel mode is on (see
# __init__; the pooling kernels' limit), and on Numba's threads otherwise (threads.element_wise)
RELU_MAXPOOL_PAR_MIN = 16_384
RELU_MAXPOOL_TEAM_MIN = 1 << 16  # (16,384: the tutorial net's batch-4 step 1.038x as long, element_wise_ab.txt)


def _relu(v, zero):
    # np.maximum(v, 0): +0.0 for -0.0, NaN passes. ``zero`` is 0 of v's own type: with an
    # int literal the two branches unify to another type and LLVM emits a branch, which
    # random signs mispredict (benchmarks/notes/cpu-kernels.md, "Fused ReLU -> MaxPool2d").
    return zero if v <= zero else v


_relu = serial(_relu)


def _window_exact(xf, s, w, kh, kw, zero):
    """(max, offset i * w + j from s) of relu over one window: row-major, first maximum,
    a NaN beats everything (the first NaN)."""
    best = -np.inf
    r = 0
    for i in range(kh):
        for j in range(kw):
            v = _relu(xf[_u(s + i * w + j)], zero)
            if v > best or (v != v and best == best):
                best = v
                r = i * w + j
    return best, r


_window_exact = serial(_window_exact)


def _plane_2x2(xf, of, jf, xb, ob, w, oh, ow, zero):
    """2x2 windows of one plane, unrolled, branch-free; returns True if it holds a NaN."""
    nan = False
    for oy in range(oh):
        for ox in range(ow):
            s = xb + 2 * (oy * w + ox)
            v0 = _relu(xf[_u(s)], zero)
            v1 = _relu(xf[_u(s + 1)], zero)
            v2 = _relu(xf[_u(s + w)], zero)
            v3 = _relu(xf[_u(s + w + 1)], zero)
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


def _plane_generic(xf, of, jf, xb, ob, w, oh, ow, kh, kw, zero):
    """(kh, kw) windows of one plane, branch-free; returns True if it holds a NaN."""
    nan = False
    for oy in range(oh):
        for ox in range(ow):
            s = xb + oy * kh * w + ox * kw
            best = _relu(xf[_u(s)], zero)
            r = 0
            for i in range(kh):
                for j in range(kw):
                    v = _relu(xf[_u(s + i * w + j)], zero)
                    t = v > best
                    best = v if t else best
                    r = i * w + j if t else r
                    nan |= v != v
            k = _u(ob + oy * ow + ox)
            of[k] = best
            jf[k] = s - xb + r
    return nan


_plane_2x2 = serial(_plane_2x2)
_plane_generic = serial(_plane_generic)


def _relu_maxpool_fwd_impl(x, kh, kw, zero, out, idx):
    n, c, h, w = x.shape
    oh = h // kh
    ow = w // kw
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    jf = idx.reshape(idx.size)
    for p in prange(n * c):
        xb = p * h * w
        ob = p * oh * ow
        if kh == 2 and kw == 2:
            nan = _plane_2x2(xf, of, jf, xb, ob, w, oh, ow, zero)
        else:
            nan = _plane_generic(xf, of, jf, xb, ob, w, oh, ow, kh, kw, zero)
        if nan:  # rare: the exact rule for this plane
            for oy in range(oh):
                for ox in range(ow):
                    s = xb + oy * kh * w + ox * kw
                    best, r = _window_exact(xf, s, w, kh, kw, zero)
                    k = _u(ob + oy * ow + ox)
                    of[k] = best
                    jf[k] = s - xb + r
    return out, idx


def _relu_maxpool_bwd_impl(dout, out, idx, dx):
    n, c, oh, ow = dout.shape
    h = dx.shape[2]
    w = dx.shape[3]
    m = oh * ow
    plane = h * w
    df = dout.reshape(dout.size)
    of = out.reshape(out.size)
    jf = idx.reshape(idx.size)
    gf = dx.reshape(dx.size)
    bad = 0
    for p in prange(n * c):
        gb = p * plane
        ob = p * m
        for k in range(plane):
            gf[_u(gb + k)] = 0
        for k in range(m):
            q = jf[_u(ob + k)]
            if q < 0 or q >= plane:
                bad += 1
            elif of[_u(ob + k)] > 0:
                gf[_u(gb + q)] = 0.0 + df[_u(ob + k)]
    return dx, bad


_fwd_ser, _fwd_par = dual(_relu_maxpool_fwd_impl)
_bwd_ser, _bwd_par = dual(_relu_maxpool_bwd_impl)


def relu_maxpool2d_forward(x, kh, kw):
    """x (N, C, H, W) -> (out, idx), (N, C, H // kh, W // kw): max-pool of relu(x), stride = kernel."""
    if not compiled_for(x):
        return _fused.relu_maxpool2d_forward(x, kh, kw)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    if kh < 1 or kw < 1 or h < kh or w < kw:
        raise ValueError(f"relu_maxpool2d_forward: window ({kh}, {kw}) does not fit input {x.shape}")
    shape = (n, c, h // kh, w // kw)
    return threads.element_wise(_fwd_ser, _fwd_par, x.size, RELU_MAXPOOL_PAR_MIN, RELU_MAXPOOL_TEAM_MIN,
                                x, kh, kw, x.dtype.type(0), np.empty(shape, x.dtype), np.empty(shape, np.int64))


def relu_maxpool2d_backward(dout, out, idx, h, w, kh, kw):
    """dout (N, C, OH, OW) -> dx (N, C, h, w): dout at each switch where out > 0, else 0
    (a scatter over the switches: the window ``kh, kw`` is not needed here)."""
    if not compiled_for(dout, out):
        return _fused.relu_maxpool2d_backward(dout, out, idx, h, w, kh, kw)
    dout = np.ascontiguousarray(dout)
    out = np.ascontiguousarray(out)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    dx = np.empty(dout.shape[:2] + (h, w), dout.dtype)
    dx, bad = threads.element_wise(_bwd_ser, _bwd_par, dx.size, RELU_MAXPOOL_PAR_MIN, RELU_MAXPOOL_TEAM_MIN,
                                   dout, out, idx, dx)
    if bad:
        raise IndexError(f"relu_maxpool2d_backward: {bad} index value(s) outside the plane of {h * w} elements")
    return dx


def _add_relu_impl(a, b, zero, y, mask):
    af, bf = a.reshape(a.size), b.reshape(b.size)
    yf, mf = y.reshape(y.size), mask.reshape(mask.size)
    for i in prange(a.size):
        v = af[i] + bf[i]
        mf[i] = v > zero
        yf[i] = _relu(v, zero)
    return y, mask


_add_relu_ser, _add_relu_par = dual(_add_relu_impl)
# as the ReLU's own kernel (activations.py): a cheap pass, Numba's threads from 2^16 elements
ADD_RELU_PAR_MIN, ADD_RELU_TEAM_MIN = 1 << 20, 1 << 16


def add_relu_forward(a, b):
    """(y, mask) of ``kernels.fused.add_relu_forward``: y = max(a + b, 0) in one pass. Arrays of
    two shapes or dtypes, or dtypes other than float32/float64, go to the definition."""
    if a.shape != b.shape or a.dtype != b.dtype or not compiled_for(a, b):
        return _fused.add_relu_forward(a, b)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return threads.element_wise(_add_relu_ser, _add_relu_par, a.size, ADD_RELU_PAR_MIN, ADD_RELU_TEAM_MIN,
                                a, b, a.dtype.type(0), np.empty_like(a), np.empty(a.shape, np.bool_))


def _bn_relu_eval_impl(x, gamma, beta, affine, mean, inv_std, m, zero, y, mask):
    """y = relu(z), mask = z > 0, z = (x - mean) * inv_std * gamma + beta (affine) or its xhat,
    per channel, as ``_bn_eval_impl`` forms it; z not written."""
    n = x.shape[0]
    c = x.shape[1]
    xf, yf, mf = x.reshape(x.size), y.reshape(y.size), mask.reshape(mask.size)
    for ch in prange(c):
        mu, s, g, b = mean[ch], inv_std[ch], gamma[ch], beta[ch]
        for i in range(n):
            base = (i * c + ch) * m
            for k in range(m):
                j = _u(base + k)
                h = (xf[j] - mu) * s
                v = h * g + b if affine else h
                mf[j] = v > zero
                yf[j] = _relu(v, zero)
    return y, mask


_bn_relu_ser, _bn_relu_par = dual(_bn_relu_eval_impl)
# as batch norm's own kernels (batchnorm.py); names of their own: __init__'s set_parallel finds
# the thresholds by name in each module
BN_RELU_PAR_MIN = BN_RELU_TEAM_MIN = 1 << 16


def batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps):
    """(y, inv_std, mask) of ``kernels.fused.batchnorm_relu_forward_eval`` in one pass over x
    (N, C, *), the same bits. Mixed dtypes and dtypes other than float32/float64 go to the
    definition."""
    args = eval_arguments("batchnorm_relu_forward_eval", x, gamma, beta, mean, var, eps)
    if args is None:
        return _fused.batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps)
    x, inv_std = args[0], args[5]
    y, mask = threads.element_wise(_bn_relu_ser, _bn_relu_par, x.size, BN_RELU_PAR_MIN, BN_RELU_TEAM_MIN, *args,
                                   x.dtype.type(0), np.empty_like(x), np.empty(x.shape, np.bool_))
    return y, inv_std, mask
