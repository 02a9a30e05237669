"""Direct convolution as Numba kernels: no column matrix (the CPU's ``conv2d_direct*`` entries).

For a first layer (3 input channels, a 5x5 or 3x3 kernel, few output channels) the
im2col matrix is 25x the image and the products are too thin for BLAS to run well
(M = 6 output channels), so writing and reading the matrix is most of the layer's
time. These kernels read the image planes directly. The CPU schedule uses them for the
layers its rule picks (few output channels on a large plane: ``direct_rule`` in
``__init__.py``) and deals the batch to its threads as for the products
(``kernels/conv_schedule_direct.py``).

Stride 1 (the fast path). Each (n, c) plane is copied into a zero-padded plane of
Hp x Wp; an output plane is accumulated on the padded plane's row pitch, so that
output element (r, q) sits at p = r*Wp + q and tap (i, j) reads the padded plane at
p + i*Wp + j. Every kernel row (c, i) is then one pass over the whole flat span of
(OH - 1)*Wp + OW elements, with no bounds tests: plain, vectorised loops. The
Wp - OW entries at the end of each row are junk and are never copied out.

* ``conv2d_direct``: y (N, O, OH, OW) = the sum over (c, i, j), in that order, of
  w[o, c, i, j] * xpad[n, c, r + i, q + j] (with fused multiply-adds), then + b;
* ``conv2d_direct_input_grad``: the same kernel on dy, zero-padded by (kh-1-ph,
  kw-1-pw), with the weight flipped and its two channel axes swapped
  (dx = the full correlation of dy with the flipped kernel);
* ``conv2d_direct_weight_grad``: dW[o, c, i, j] = sum over n of
  sum_p d[n, o, p] * xpad[n, c, p + i*Wp + j], with d laid out on the same pitch
  and zeros in the junk entries; each row sum is vectorised (``fastmath``
  ``reassoc``: partial sums in the SIMD lanes, a fixed order for a given machine),
  and the samples are added in order.

The passes are in ``direct_rows.py``. The taps of a kernel row go through them in
groups of 5, 3, 2 and 1 (a 5-wide row in one pass, a 7-wide one in 5 + 2), so one pass
loads its accumulator once for up to five taps. A 3- or 5-wide row is done for two output
channels per pass, which loads each plane value once for both: on this project's 2-vCPU
VMs the two threads share the loads' throughput, so fewer loads per multiply-add is what
lets the second thread gain.

float32 runs the register-blocked kernels of ``direct_blocked.py`` instead of these passes
(a tile of output channels x positions held in vector registers over every channel and tap),
the weight gradient (``direct_blocked_dw.py``) for kernels up to ``direct_blocked_dw.KW_MAX``
wide; float64 keeps the passes.

Batch ranges (``ranges=[(start, stop), ...]``, the conv schedule's shares of the batch): the
register-blocked kernels run them at once on Numba's threads (``direct_blocked.py``); the passes
and the fallbacks hand them to ``threads.run_split``'s shares. Each range is computed as if
alone, and the weight gradient is the ranges' sums added in range order, so the numbers are
those of one call per range; except where the register-blocked weight gradient cuts the call by
input channel instead (dW larger than x and dy together, ``direct_blocked_dw.channel_parts``):
then its numbers are those of one call without ranges.

Other strides, dtypes other than float32/float64 or arrays of two dtypes, and a
padding of more than kh - 1 in the input gradient run the im2col composition instead (the same
numbers as the layer functions to float rounding). The results equal the
im2col + BLAS path to float rounding, not bit for bit (other sum order).
"""

from __future__ import annotations

import numpy as np
from numba import uint64 as _u

from .. import reference as _ref
from ..conv_ranges import sum_in_order
from . import direct_blocked, direct_blocked_dw, direct_phases, direct_rows, threads
from ._jit import compiled_for, serial
from .conv import _destination, col2im
from .direct_rows import (pad_plane, row3_dots_pair, row3_taps_pair, row5_dots_pair, row5_taps_pair, row_dots,
                          row_taps)


def _forward_impl(x, w, b, has_bias, ph, pw, zero, y):
    """y (N, O, OH, OW) = the stride-1 convolution of x (N, C, H, W) with w (O, C, kh, kw)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    hp, wp = h + 2 * ph, wd + 2 * pw
    oh, ow = hp - kh + 1, wp - kw + 1
    span = (oh - 1) * wp + ow
    xf, wf, yf = x.reshape(x.size), w.reshape(w.size), y.reshape(y.size)
    plane = np.zeros(hp * wp, dtype=x.dtype)
    acc = np.empty(o * span, dtype=x.dtype)  # the O output planes of one sample, on the pitch wp
    for s in range(n):
        for p in range(o * span):
            acc[_u(p)] = zero
        for ch in range(c):
            pad_plane(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wp, plane)
            k = 0
            while k < o:
                pair = (kw == 5 or kw == 3) and k + 1 < o  # two output channels per pass (module doc)
                for i in range(kh):
                    w0 = ((k * c + ch) * kh + i) * kw
                    if pair and kw == 5:
                        row5_taps_pair(acc, k * span, (k + 1) * span, plane, i * wp, wf, w0, w0 + c * kh * kw, span)
                    elif pair:
                        row3_taps_pair(acc, k * span, (k + 1) * span, plane, i * wp, wf, w0, w0 + c * kh * kw, span)
                    else:
                        row_taps(acc, k * span, plane, i * wp, wf, w0, kw, span)
                k += 2 if pair else 1
        for k in range(o):
            v = b[k] if has_bias else zero
            for r in range(oh):
                d = ((s * o + k) * oh + r) * ow
                a = k * span + r * wp
                for q in range(ow):
                    yf[_u(d + q)] = acc[_u(a + q)] + v  # the bias last, as in the layer's math
    return y


def _weight_grad_impl(x, d, ph, pw, zero, dw):
    """dw (O, C, kh, kw) = the stride-1 weight gradient from x (N, C, H, W), d (N, O, OH, OW)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = dw.shape
    oh, ow = d.shape[2], d.shape[3]
    hp, wp = h + 2 * ph, wd + 2 * pw
    span = (oh - 1) * wp + ow
    xf, df, out = x.reshape(x.size), d.reshape(d.size), dw.reshape(dw.size)
    for k in range(out.size):
        out[k] = zero
    plane = np.zeros(hp * wp, dtype=x.dtype)
    dp = np.zeros(o * span, dtype=d.dtype)  # one sample's d planes on the pitch wp, zero junk entries
    for s in range(n):
        for k in range(o):
            for r in range(oh):
                a = k * span + r * wp
                e = ((s * o + k) * oh + r) * ow
                for q in range(ow):
                    dp[_u(a + q)] = df[_u(e + q)]
        for ch in range(c):
            pad_plane(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wp, plane)
            k = 0
            while k < o:
                pair = (kw == 5 or kw == 3) and k + 1 < o  # two output channels per pass (module doc)
                for i in range(kh):
                    o0 = ((k * c + ch) * kh + i) * kw
                    if pair and kw == 5:
                        row5_dots_pair(out, o0, o0 + c * kh * kw, dp, k * span, (k + 1) * span, plane, i * wp,
                                        span, zero)
                    elif pair:
                        row3_dots_pair(out, o0, o0 + c * kh * kw, dp, k * span, (k + 1) * span, plane, i * wp,
                                        span, zero)
                    else:
                        row_dots(out, o0, dp, k * span, plane, i * wp, kw, span, zero)
                k += 2 if pair else 1
    return dw


_forward = serial(_forward_impl, depends=(direct_rows,))  # its passes are compiled into it
_weight_grad = serial(_weight_grad_impl, depends=(direct_rows,))


def _fast(stride, *arrays, any_stride=False) -> bool:
    """Whether the kernels take this call: float32/float64 arrays of one dtype, stride 1; with
    ``any_stride`` float32 at any stride too (the register-blocked forward and weight gradient,
    which cut a strided layer's input into phases)."""
    if not (compiled_for(*arrays) and len({a.dtype for a in arrays}) == 1):
        return False
    return tuple(stride) == (1, 1) or (any_stride and _blocked(arrays[0]))


def _blocked(a) -> bool:
    """float32 (the call's arrays share a dtype, ``_fast``): the register-blocked kernels of
    ``direct_blocked.py``; else the passes."""
    return a.dtype == np.float32


def _each_range(fn, ranges) -> list:
    """[fn(i, j) for each batch range (i, j)] in range order, the ranges dealt to
    ``threads.run_split``'s shares (the passes and the fallbacks)."""
    shares = threads.run_split(lambda share: [(k, fn(i, j)) for k, (i, j) in share], list(enumerate(ranges)))
    return [res for _, res in sorted((pair for share in shares for pair in share), key=lambda pair: pair[0])]


def conv2d_direct(x, w, b, stride, padding, out=None, ranges=None):
    """y (N, O, OH, OW) = Conv2d of x (N, C, H, W) with w (O, C, kh, kw) (+ b (O,)), no column
    matrix. ``out``: an optional C-contiguous array of y's shape and dtype to write into;
    ``ranges``: batch ranges run at once (module doc)."""
    (sh, sw), (ph, pw) = stride, padding
    _ref.check_direct("conv2d_direct", x, 1, w, 1, b)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = _ref.check_geometry("conv2d_direct", kh, kw, sh, sw, ph, pw, h, wd)
    dtype = np.result_type(x, w)
    y = _destination("conv2d_direct", out, (n, o, oh, ow), dtype, x, w, *(() if b is None else (b,)))
    fast = _fast(stride, x, w, *(() if b is None else (b,)), any_stride=True)
    if ranges is not None and not (fast and _blocked(x)):
        direct_blocked.bounds_of(ranges, n)  # (checks them)
        _each_range(lambda i, j: conv2d_direct(x[i:j], w, b, stride, padding, out=y[i:j]), ranges)
        return y
    if not fast:
        cols = _ref.im2col(x, kh, kw, sh, sw, ph, pw)
        res = _ref.matmul(w.reshape(o, -1), cols).reshape(n, o, oh, ow)
        y[...] = res if b is None else res + b.reshape(1, o, 1, 1)
        return y
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    bias = np.ascontiguousarray(b) if b is not None else w.reshape(-1)[:o]  # not read without a bias
    if _blocked(x):
        return direct_blocked.forward(x, w, bias, b is not None, ph, pw, y, ranges=ranges, stride=(sh, sw))
    return _forward(x, w, bias, b is not None, ph, pw, x.dtype.type(0), y)


def conv2d_direct_input_grad(dy, w, h, wd, stride, padding, out=None, ranges=None):
    """dx (N, C, h, wd) of a Conv2d from dy (N, O, OH, OW) and w (O, C, kh, kw), no column matrix:
    the stride-1 forward kernel on dy zero-padded by (kh-1-ph, kw-1-pw), with the weight flipped
    and its channel axes swapped. ``out`` and ``ranges`` as for ``conv2d_direct``."""
    (sh, sw), (ph, pw) = stride, padding
    h, wd = int(h), int(wd)
    kh, kw = (int(s) for s in w.shape[2:]) if w.ndim == 4 else (1, 1)  # (a wrong rank is refused below)
    want = _ref.check_geometry("conv2d_direct_input_grad", kh, kw, sh, sw, ph, pw, h, wd)
    _ref.check_direct("conv2d_direct_input_grad", dy, 1, w, 0, out_size=tuple(dy.shape[2:]), want=want)
    n, o = dy.shape[:2]
    c = w.shape[1]
    dx = _destination("conv2d_direct_input_grad", out, (n, c, h, wd), np.result_type(dy, w), dy, w)
    fast = _fast(stride, dy, w, any_stride=True) and ph <= kh - 1 and pw <= kw - 1
    if fast and (sh, sw) != (1, 1):  # float32: phase by phase (None: a phase would need a negative padding)
        strided = direct_phases.input_grad_phases(np.ascontiguousarray(dy), np.ascontiguousarray(w), ph, pw, dx,
                                                   (sh, sw), ranges=ranges)
        if strided is not None:
            return strided
        fast = False
    if ranges is not None and not (fast and _blocked(dy)):
        direct_blocked.bounds_of(ranges, n)
        _each_range(lambda i, j: conv2d_direct_input_grad(dy[i:j], w, h, wd, stride, padding, out=dx[i:j]), ranges)
        return dx
    if not fast:  # the im2col composition, its col2im compiled (float32/float64)
        dcols = _ref.matmul(w.reshape(o, -1).T, dy.reshape(n, o, dy.shape[2] * dy.shape[3]))  # (no -1: n may be 0)
        return col2im(dcols, n, c, h, wd, kh, kw, sh, sw, ph, pw, out=dx)
    dy = np.ascontiguousarray(dy)
    if _blocked(dy):  # the flipped transpose read from w in place
        w = np.ascontiguousarray(w)
        return direct_blocked.forward(dy, w, w.reshape(-1)[:c], False, kh - 1 - ph, kw - 1 - pw, dx, flipped=True,
                                      ranges=ranges)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, kh, kw)
    return _forward(dy, flipped, flipped.reshape(-1)[:c], False, kh - 1 - ph, kw - 1 - pw, dy.dtype.type(0), dx)


def conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding, out=None, ranges=None):
    """dW (O, C, kh, kw) of a Conv2d from its input x (N, C, H, W) and dy (N, O, OH, OW), no
    column matrix (the kernels add the samples' contributions in order; with ``ranges``, each
    range's sum, the sums added in range order, or one sum where the call is cut by input
    channel: module doc). ``out`` and ``ranges`` as for ``conv2d_direct``."""
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = int(kh), int(kw)
    if x.ndim != 4:
        raise ValueError(f"conv2d_direct_weight_grad: input of shape {tuple(x.shape)}, expected (N, C, H, W)")
    n, c, h, wd = x.shape
    want = _ref.check_geometry("conv2d_direct_weight_grad", kh, kw, sh, sw, ph, pw, h, wd)
    if dy.ndim != 4 or dy.shape[0] != n or tuple(dy.shape[2:]) != want:
        raise ValueError(f"conv2d_direct_weight_grad: gradient of shape {tuple(dy.shape)} does not fit input "
                         f"{tuple(x.shape)}; expected ({n}, O, {want[0]}, {want[1]})")
    o = dy.shape[1]
    dw = _destination("conv2d_direct_weight_grad", out, (o, c, kh, kw), np.result_type(x, dy), x, dy)
    fast = _fast(stride, x, dy, any_stride=kw <= direct_blocked_dw.KW_MAX)
    if ranges is not None and not (fast and _blocked(x) and kw <= direct_blocked_dw.KW_MAX):
        direct_blocked.bounds_of(ranges, n)
        dw[...] = sum_in_order(_each_range(lambda i, j: conv2d_direct_weight_grad(x[i:j], dy[i:j], kh, kw, stride,
                                                                                    padding), ranges))
        return dw
    if not fast:
        cols = _ref.im2col(x, kh, kw, sh, sw, ph, pw)
        d = dy.reshape(n, o, dy.shape[2] * dy.shape[3])  # (no -1: n may be 0)
        dw[...] = _ref.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(dw.shape)
        return dw
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    if _blocked(x) and kw <= direct_blocked_dw.KW_MAX:
        return direct_blocked_dw.weight_grad(x, dy, ph, pw, kh, kw, dw, ranges=ranges, stride=(sh, sw))
    return _weight_grad(x, dy, ph, pw, x.dtype.type(0), dw)
