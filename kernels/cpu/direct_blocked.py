"""Register-blocked direct convolution for float32 (the stride-1 path of ``direct.py``).

A tile of output values is held in vector registers (``simd.py``) while the loop runs over
every input channel and tap (c, i, j); each loaded value feeds several fused multiply-adds,
and the tile is written once. That is how BLAS kernels reach the multiply-add units' peak,
here without the column matrix that im2col + BLAS writes and reads. Every input plane is
zero-padded to Hp x Wp first, so tap (i, j) of output position (r, q) reads the padded plane
at (r + i)*Wp + q + j, with no bounds tests.

Two kinds of tile, each kernel compiled per tile shape and, for the forwards, per kernel size
(these numbers are constants of its compiled copy, ``_specialised``, so that LLVM unrolls the
loops over the tile and the taps):

* positions in the lanes: the output accumulated on the padded plane's row pitch (p = r*Wp +
  q; the Wp - OW entries after each row are junk and never copied out), so a tap of a tile of
  consecutive p is one vector load:
  - ``_forward_impl``: y[n, o] = sum over (c, i, j), in that order, of w[o, c, i, j] * x
    shifted, + b; a tile of OB output channels x QV vectors of positions. The weight is read
    in place through its strides (the input gradient's flipped transpose is no copy); a tile
    past the last output channel repeats it, and those planes are not copied out. On a small
    plane whose rows are a whole number of vectors the vectors are whole output rows instead
    (RV, ``_row_vectors``): the same addressing, no junk columns, so an 8x8 output takes 2
    tiles of 4 vectors where the flat span of (OH - 1)*Wp + OW positions took 3;
  - ``_weight_grad_impl`` (in ``direct_blocked_dw.py``, like the other weight gradient):
    dW[o, c, i, j] = sum over n (in order) of sum_p d[n, o, p] * xpad[n, c, p + i*Wp + j];
    OB output channels x one kernel row's taps of vector partial
    sums over the positions of a group of samples, added into per-weight lane sums that are
    reduced in lane order at the end;
* channels in the lanes (many channels, small planes: only real output positions, no junk):
  - ``_forward_channels_impl``: P positions x OV vectors of output channels, each tap's weights
    loaded as vectors of the transposed weight and each position's input value broadcast;
  - ``_weight_grad_channels_impl``: OV vectors of output channels x one kernel row or the whole
    kernel, summed over every position of a group of samples, no lane sums.

``forward`` and ``weight_grad`` choose the kind (``channels_in_lanes``, and the output channels
and plane for the weight gradient) and the tile, by the rules of ``direct_tiles.py`` (the
forward's) and ``direct_blocked_dw.py``, once per shape: the choice, the constants and the
batch ranges' bounds are kept as a plan (``plans.py``; a ``Launch`` runs it). The weight-gradient
kernels are in ``direct_blocked_dw.py``; this file holds the forward kernels and what both share.

Batch ranges. Every kernel takes ``bounds`` (range r is samples bounds[r] to bounds[r + 1])
and its outer loop is a ``prange`` over the ranges, each with its own buffers: the serial
build runs them one after another, the parallel build (``_specialised(..., parallel_build=True)``)
at once on Numba's threads, when ``threads.numba_team`` allows. A range's numbers do not
depend on the others (the weight gradient keeps one sum per range, added in range order by
the caller), so the two builds give the same bits.
"""

from __future__ import annotations

import sys
import types

import numpy as np
from numba import prange
from numba import uint64 as _u

from . import direct_tiles, simd, threads
from ._jit import parallel, serial
from .direct_tiles import _positions_consts, _row_vectors, channels_in_lanes, forward_channels_tile
from .plans import Plans, ranges_key
from .simd import LANES, bank, vfma, vstore, vzero


# The constants set in each compiled copy (``_specialised``): forward OB channels x QV
# vectors (Q = QV * LANES positions, NACC = OB * QV slots); channels-in-lanes forward P
# positions x OV vectors (NACC_F); both forwards' KH x KW taps and SH x SW stride; TS, TI and
# TJ, the positions-in-lanes forward's steps between taps in its weight (sign, row, column).
# (The weight gradient's: direct_blocked_dw.py.)
OB = QV = Q = NACC = OV = P = NACC_F = KH = KW = TS = TI = TJ = RV = 0
SH = SW = 1


_COMPILED = {}


def _specialised(impl, parallel_build=False, **consts):
    """``impl`` compiled with the given module constants (one cached kernel per set; LANES is
    one of them, so that a cached kernel of the other width is never loaded), its serial build
    or with ``parallel_build`` its parallel one (the ranges' ``prange`` on Numba's threads).
    Looked up by the constants in the caller's order (each call site passes them in one
    order; no sorting on the hot path: ~60 calls a ResNet-20 step)."""
    key = (impl, parallel_build, *consts.items())
    kernel = _COMPILED.get(key)
    if kernel is None:
        consts = dict(consts, LANES=LANES)
        suffix = "_" + "_".join(f"{k.lower()}{v}" for k, v in sorted(consts.items()))
        fn = types.FunctionType(impl.__code__, dict(impl.__globals__, **consts), impl.__name__ + suffix)
        fn.__qualname__, fn.__module__ = impl.__qualname__ + suffix, impl.__module__
        kernel = _COMPILED[key] = (parallel if parallel_build else serial)(fn, depends=(simd, _HERE))
    return kernel


def bounds_of(ranges, n: int) -> np.ndarray:
    """The kernels' ``bounds`` for batch ranges ``[(start, stop), ...]`` that cover samples 0 to n
    in order (None: one range of all n)."""
    if ranges is None:
        return np.array([0, n], np.int64)
    ranges = [(int(a), int(b)) for a, b in ranges]
    starts = [a for a, _ in ranges]
    if not ranges or starts[0] != 0 or ranges[-1][1] != n or any(b < a for a, b in ranges) \
            or any(b != a for (_, b), a in zip(ranges, starts[1:])):
        raise ValueError(f"batch ranges {ranges} do not cover samples 0 to {n} in order")
    return np.array(starts + [n], np.int64)


class Launch:
    """A kernel call's shape-derived part, kept in a plan (``plans.py``): ``impl`` specialised
    with ``consts``, and the ``bounds`` of its batch ranges (1-D; or, 2-D, a row per part of
    the work, as the channels weight gradient takes them). ``launch(*args)`` runs it on
    ``args`` + (bounds,): the parts at once on Numba's threads where ``threads.numba_team``
    allows, else one after another (the same numbers). The compiled copy is looked up in
    ``_COMPILED`` by the key ``_specialised`` files it under, made here once."""

    __slots__ = ("impl", "consts", "bounds", "parts", "keys")

    def __init__(self, impl, consts: dict, bounds: np.ndarray):
        self.impl, self.consts, self.bounds = impl, consts, bounds
        self.parts = bounds.shape[0] if bounds.ndim == 2 else bounds.size - 1
        items = tuple(consts.items())
        self.keys = ((impl, False, *items), (impl, True, *items))  # _specialised's, serial and parallel

    def __call__(self, *args):
        with threads.numba_team(self.parts) as together:
            kernel = _COMPILED.get(self.keys[together])
            if kernel is None:
                kernel = _specialised(self.impl, parallel_build=together, **self.consts)
            return kernel(*args, self.bounds)


def _pad_into(src, s0, h, w, ph, pw, wp, dst, d0):
    """dst[d0 + (y + ph)*wp + x + pw] = src[s0 + y*w + x] (the border of dst's plane stays zero)."""
    for y in range(h):
        d = d0 + (y + ph) * wp + pw
        s = s0 + y * w
        for x in range(w):
            dst[_u(d + x)] = src[_u(s + x)]


_pad_into = serial(_pad_into)


def _pad_phases_into(src, s0, h, w, ph, pw, sh, sw, wq, pl, dst, d0):
    """The zero-padded plane of ``_pad_into`` cut into its sh x sw phases (a strided layer's
    input, module doc): phase (a, b) is the plane dst[d0 + (a*sw + b)*pl:] of pitch wq, holding
    xpad[sh*u + a, sw*v + b] at u*wq + v (its border stays zero)."""
    for y in range(h):
        yy = y + ph
        row = d0 + (yy % sh) * sw * pl + (yy // sh) * wq
        s = s0 + y * w
        for b in range(sw):
            x0 = (b - pw) % sw  # the first column of phase b
            d = row + b * pl + (x0 + pw) // sw
            for x in range(x0, w, sw):
                dst[_u(d)] = src[_u(s + x)]
                d += 1


_pad_phases_into = serial(_pad_phases_into)


def _pad_sample(xf, s, c, h, wd, ph, pw, sh, sw, wq, pl, dst, d0):
    """Sample s of x (flat, (N, C, H, W)) into dst from d0: each channel's zero-padded plane
    (stride 1: one plane of pitch wq = W + 2*pw per channel, ``pl`` apart) or its sh x sw
    phases (``_pad_phases_into``: sh*sw planes per channel)."""
    for ch in range(c):
        if sh == 1 and sw == 1:
            _pad_into(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wq, dst, d0 + ch * pl)
        else:
            _pad_phases_into(xf, (s * c + ch) * h * wd, h, wd, ph, pw, sh, sw, wq, pl, dst, d0 + ch * sh * sw * pl)


_pad_sample = serial(_pad_sample)


def phase_geometry(h, wd, ph, pw, sh, sw):
    """(hq, wq): the rows and pitch of each phase plane of an h x wd plane padded by (ph, pw),
    cut into sh x sw phases (stride 1: the padded plane itself)."""
    return (h + 2 * ph + sh - 1) // sh, (wd + 2 * pw + sw - 1) // sw


phase_geometry = serial(phase_geometry)


def _aligned_empty(n):
    """n uninitialised float32 starting on a 64-byte boundary (a cache line): a vector load at a
    multiple of 16 elements from there never straddles two lines. NumPy and Numba align to 16 or
    32 bytes only, and the channels-in-lanes forward then ran 8-17 % slower
    (benchmarks/notes/cpu-direct.md, "Batch ranges on Numba's threads")."""
    buf = np.empty(n + 16, np.float32)
    k = (16 - (buf.ctypes.data // 4) % 16) % 16
    return buf[k:k + n]


_aligned_empty = serial(_aligned_empty)


def _aligned_zeros(n):
    """As ``_aligned_empty``, zeroed."""
    a = _aligned_empty(n)
    a[:] = 0
    return a


_aligned_zeros = serial(_aligned_zeros)


def _plane_length(hp, wp, kh, kw, nq):
    """Elements of one padded plane with room for the last tile's reads past its end."""
    return max(hp * wp, nq + (kh - 1) * wp + kw - 1)


_plane_length = serial(_plane_length)
_HERE = sys.modules[__name__]  # this module: its helpers are compiled into every kernel (``_specialised``)


def _forward_impl(x, wf, w0, so, sc, b, has_bias, ph, pw, y, grid, bounds):
    """y (N, O, OH, OW) = the convolution of x (N, C, H, W) with stride SH x SW and the KH x KW
    weight read from the flat array wf: w[o, c, i, j] = wf[w0 + o*so + c*sc + TS*(i*TI + j*TJ)]
    (a Conv2d weight: TS = 1, TI = KW, TJ = 1; its flipped transpose, the input gradient's
    weight: TS = -1, stride 1; one phase of it for a strided layer: TI, TJ step over the other
    phases' taps, ``direct_phases.input_grad_phases``); KH, KW, SH, SW, TS, TI, TJ and RV
    (whole output rows as the vectors) are constants of the compiled copy, like the tile.
    ``grid`` (oh, ow, r0, q0, rs, qs): the oh x ow outputs computed go to y[n, o, r0 + rs*r,
    q0 + qs*q] (a Conv2d: (OH, OW, 0, 0, 1, 1)); the padded plane has room for them (zero rows
    and columns past x's padding where they need more). The batch ranges of ``bounds`` at once
    in the parallel build (module doc)."""
    n, c, h, wd = x.shape
    o, yh, yw = y.shape[1], y.shape[2], y.shape[3]
    oh, ow, r0, c0, rs, cs = grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]
    nb = (o + OB - 1) // OB
    hq, wq = phase_geometry(h, wd, ph, pw, SH, SW)
    hq, wq = max(hq, oh + (KH - 1) // SH), max(wq, ow + (KW - 1) // SW)
    cpr = ow // LANES  # RV: vectors per output row
    nv = oh * cpr  # RV: vectors of real positions
    span = nv * LANES if RV else (oh - 1) * wq + ow
    nq = (span + Q - 1) // Q * Q
    pl = _plane_length(hq, wq, (KH - 1) // SH + 1, (KW - 1) // SW + 1, nq)
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    for rg in prange(bounds.size - 1):
        xpad = _aligned_zeros(c * SH * SW * pl)
        wide = _aligned_zeros(nb * OB * nq)  # one sample's output planes on the pitch wq (RV: ow)
        base = np.empty(OB, np.int64)  # where each channel of the tile starts in wf
        at = np.zeros(QV, np.int64)  # RV: where each vector of the tile starts in a plane
        acc = bank(NACC)
        for s in range(bounds[rg], bounds[rg + 1]):
            _pad_sample(xf, s, c, h, wd, ph, pw, SH, SW, wq, pl, xpad, 0)
            for blk in range(nb):
                for bb in range(OB):  # channels past the last repeat it (their planes are not copied out)
                    base[bb] = w0 + min(blk * OB + bb, o - 1) * so
                for q0 in range(0, nq, Q):
                    for a in range(NACC):
                        vzero(acc, a)
                    if RV:  # vector m: output row m // cpr, columns from (m % cpr) * LANES
                        for v in range(QV):
                            m = min(q0 // LANES + v, nv - 1)  # past the last: the last again
                            at[v] = (m // cpr) * wq + (m % cpr) * LANES
                    for ch in range(c):
                        for i in range(KH):  # constants: the taps unroll, their offsets are immediates
                            for j in range(KW):  # tap (i, j): phase (i % SH, j % SW), shifted (i // SH, j // SW)
                                xb = ((ch * SH + i % SH) * SW + j % SW) * pl + (i // SH) * wq + j // SW
                                t = ch * sc + TS * (i * TI + j * TJ)
                                for v in range(QV):
                                    xv = xb + (at[v] if RV else q0 + v * LANES)
                                    for bb in range(OB):
                                        vfma(acc, bb * QV + v, xpad, xv, wf[_u(base[bb] + t)])
                    for bb in range(OB):
                        for v in range(QV):
                            vstore(acc, bb * QV + v, wide, (blk * OB + bb) * nq + q0 + v * LANES)
            for k in range(o):
                add = b[k] if has_bias else np.float32(0)
                for r in range(oh):
                    d = ((s * o + k) * yh + r0 + r * rs) * yw + c0
                    a0 = k * nq + r * (ow if RV else wq)  # RV: the planes hold only real positions
                    for q in range(ow):
                        yf[_u(d + q * cs)] = wide[_u(a0 + q)] + add  # the bias last, as in the layer's math
    return y


def _forward_channels_impl(x, wt, b, has_bias, ph, pw, y, bounds):
    """y (N, O, OH, OW) as ``_forward_impl``, with output channels in the lanes: a tile of P
    output positions x OV vectors of channels (constants of the compiled copy, like the KH x KW
    taps), each tap's weights loaded as OV vectors of wt (C, KH, KW, OP) (the weight transposed,
    OP = O padded to a multiple of OV * LANES) and each position's input value broadcast. Only real output
    positions are computed (no junk columns), which pays on small planes."""
    n, c, h, wd = x.shape
    o, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    op = wt.shape[3]
    bc = OV * LANES
    nbo = op // bc
    hq, wq = phase_geometry(h, wd, ph, pw, SH, SW)
    pl, npos = hq * wq, oh * ow
    xf, wf, yf = x.reshape(x.size), wt.reshape(wt.size), y.reshape(y.size)
    for rg in prange(bounds.size - 1):
        xpad = _aligned_zeros(c * SH * SW * pl)
        pos = np.empty(P, np.int64)  # the tile's positions in the padded plane (or its phases)
        tile = _aligned_zeros(P * bc)  # the tile's outputs, (position, channel)
        acc = bank(NACC_F)
        for s in range(bounds[rg], bounds[rg + 1]):
            _pad_sample(xf, s, c, h, wd, ph, pw, SH, SW, wq, pl, xpad, 0)
            for p0 in range(0, npos, P):
                for t in range(P):  # past the last position: the last again (not copied out)
                    q = min(p0 + t, npos - 1)
                    pos[t] = (q // ow) * wq + q % ow
                for bo in range(nbo):
                    for a in range(NACC_F):
                        vzero(acc, a)
                    for ch in range(c):
                        for i in range(KH):
                            for j in range(KW):
                                xo = ((ch * SH + i % SH) * SW + j % SW) * pl + (i // SH) * wq + j // SW
                                wb = ((ch * KH + i) * KW + j) * op + bo * bc
                                for t in range(P):
                                    xs = xpad[_u(xo + pos[t])]
                                    for v in range(OV):
                                        vfma(acc, t * OV + v, wf, wb + v * LANES, xs)
                    for t in range(P):
                        for v in range(OV):
                            vstore(acc, t * OV + v, tile, (t * OV + v) * LANES)
                    for k in range(bo * bc, min(o, (bo + 1) * bc)):
                        add = b[k] if has_bias else np.float32(0)
                        for t in range(min(P, npos - p0)):
                            yf[_u((s * o + k) * npos + p0 + t)] = tile[_u(t * bc + k - bo * bc)] + add
    return y


_FORWARD_PLANS = Plans()


def forward(x, w, b, has_bias, ph, pw, y, flipped=False, channels=None, ranges=None, stride=(1, 1)):
    """y = conv(x, w) (+ b) for float32 C-contiguous x (N, C, H, W), w (O, C, kh, kw) and y, with
    ``stride`` (sh, sw). ``flipped``: convolve with w's flipped transpose (C, O, kh, kw) instead,
    the input gradient's weight, read from w in place (stride 1 only). ``channels``: the
    channels-in-lanes kernel (with a transposed copy of the weight, made once for all ranges) or
    not; None: as ``channels_in_lanes`` says. ``ranges``: batch ranges to run at once
    (``bounds_of``). The choices are made once per shape (``_forward_plan``)."""
    key = (x.shape, w.shape, y.shape, ph, pw, flipped, channels, ranges_key(ranges), tuple(stride),
           direct_tiles.ROW_VECTORS)
    launch, fixed = _FORWARD_PLANS.get(key, _forward_plan, x.shape, w.shape, y.shape, ph, pw, flipped, channels,
                                       ranges, stride)
    if launch.impl is _forward_channels_impl:  # the weight transposed, (C_in, kh, kw, C_out) padded to whole tiles
        c_in, c_out, bc = fixed
        kh, kw = w.shape[2:]
        wt = w[:, :, ::-1, ::-1].transpose(0, 2, 3, 1) if flipped else w.transpose(1, 2, 3, 0)
        wpad = _aligned_zeros(c_in * kh * kw * (-(-c_out // bc) * bc)).reshape(c_in, kh, kw, -1)
        wpad[..., :c_out] = wt
        return launch(x, wpad, b, has_bias, ph, pw, y)
    w0, so, sc, grid = fixed
    return launch(x, w.reshape(-1), w0, so, sc, b, has_bias, ph, pw, y, grid)


def _forward_plan(x_shape, w_shape, y_shape, ph, pw, flipped, channels, ranges, stride):
    """(Launch, fixed) of ``forward`` for these shapes: the kernel, its constants and bounds,
    and ``fixed``, the arguments that follow from the shapes (channels in the lanes: (C_in,
    C_out, channels per tile); positions: (w0, so, sc, grid), where the weight is read from)."""
    bounds = bounds_of(ranges, x_shape[0])
    o, c, kh, kw = w_shape
    sh, sw = (int(s) for s in stride)
    if flipped and (sh, sw) != (1, 1):
        raise ValueError(f"direct_blocked.forward: the flipped weight takes stride 1, got {(sh, sw)}")
    c_in, c_out = (o, c) if flipped else (c, o)
    if channels is None:
        channels = channels_in_lanes(c_in, c_out, kh, kw)
    tile = forward_channels_tile(c_out) if channels else None
    if tile is not None:
        ov, p = tile
        return (Launch(_forward_channels_impl, dict(OV=ov, P=p, NACC_F=ov * p, KH=kh, KW=kw, SH=sh, SW=sw), bounds),
                (c_in, c_out, ov * LANES))
    if flipped:  # w'[a, b, i, j] = w[b, a, kh-1-i, kw-1-j]: from the last tap, backwards
        w0, so, sc, ts = kh * kw - 1, kh * kw, c * kh * kw, -1
    else:
        w0, so, sc, ts = 0, c * kh * kw, kh * kw, 1
    oh, ow = y_shape[2], y_shape[3]
    grid = np.array([oh, ow, 0, 0, 1, 1], np.int64)
    rv = _row_vectors(oh, ow, phase_geometry(x_shape[2], x_shape[3], ph, pw, sh, sw)[1], kw, sw)
    return Launch(_forward_impl, _positions_consts(kh, kw, ts, kw, 1, sh, sw, rv), bounds), (w0, so, sc, grid)
