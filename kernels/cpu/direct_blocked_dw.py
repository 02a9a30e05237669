"""Register-blocked weight gradient of a stride-1 float32 Conv2d (the ``direct.py`` path), the
companion of the forward kernels in ``direct_blocked.py`` (whose module doc explains the tiles,
``_specialised`` and the batch ranges).

dW[o, c, i, j] = sum over n (in order) of sum_p d[n, o, p] * xpad[n, c, p + i*Wp + j]:

* ``_weight_grad_impl``, positions in the lanes: OB output channels x one kernel row's taps of
  vector partial sums over the positions of a group of samples, added into per-weight lane
  sums that are reduced in lane order at the end;
* ``_weight_grad_channels_impl``, channels in the lanes: OV vectors of output channels x one
  kernel row or the whole kernel, summed over every position of a group of samples, no lane
  sums.

Each batch range (``bounds``) gets its own sums, written to its own row of ``dws`` (R, O*C*kh*kw);
``weight_grad`` adds the rows in range order, as the conv schedule added its shares' gradients.
Except where dW is larger than x and d together (``channel_parts``): the channels kernel is then
cut by input channel, each part over the whole batch straight into dW, and its numbers are
those of one call without ranges. A range's (or part's) buffers (its lane sums or dW^T, its
group's padded planes and d planes) are carved from its row of ``scratch`` (R, length), and
``dws`` and ``scratch`` are kept blocks (``workspace.py``): fresh ones page-faulted on every
call (Net2's conv3 at batch 4: 784 faults, 2.4-2.7 ms a call against 0.96 ms kept;
benchmarks/notes/cpu-faults.md). The kernels zero what they read before writing it.

Why the channels kernel is compiled per plane width (OW): Numba compiles a ``parallel=True``
kernel's ``prange`` body as a library of its own, then links it into the kernel's module and
optimises it a second time, and its on-disk cache keeps that second copy, which every later
process runs. With the row's length known only at run time, the second pass unrolled the row
loop again and spilled: loaded from the cache, the parallel build ran at 39-59 GFLOP/s where
the serial one ran at 62-82 (one range, Zen 3). With OW a constant the first pass settles
the loop: 75-81 for the cached parallel build, 67-86 for the serial one, the same bits
(benchmarks/notes/cpu-direct.md, "Eight lanes").
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _u

from . import workspace
from ._jit import serial
from .direct_blocked import LANES, Launch, _pad_sample, _plane_length, bounds_of, phase_geometry
from .direct_tiles import SLOTS
from .plans import Plans, ranges_key
from .simd import bank, vadd_to, vfma, vfma2, vstore, vzero

KW_MAX = 7  # the widest kernel the weight gradient's tile (OB x kw vectors) takes
GROUP = 1 << 18  # float32 elements of the weight gradient's per-group planes (1 MiB)

# The tile constants, set in each compiled copy: OB channels x KW taps (NACC_DW = OB * KW_MAX
# slots); channels in the lanes, OV vectors x TR rows x KW taps (NACC_C), and the plane's width
# OW; both kinds' stride SH x SW (the input cut into phases, as in ``direct_blocked.py``).
OB = KW = NACC_DW = OV = TR = NACC_C = OW = 0
SH = SW = 1


def weight_grad_tile(kw: int) -> int:
    """OB of the positions-in-lanes tile for kernel width kw: OB * kw slots, at most SLOTS (so
    that the tile, the loaded vectors and the loop's pointers fit the registers), at most 8."""
    return max(1, min(8, SLOTS // kw))


def _group(m, per):
    """Samples per group of a range of m samples, ``per`` elements of buffers each: as many as
    fit GROUP (at least 1)."""
    return max(1, min(m, GROUP // per))


def _widest(bounds):
    """The most samples in one range of ``bounds``."""
    m = 0
    for r in range(bounds.size - 1):
        m = max(m, bounds[r + 1] - bounds[r])
    return m


def _widest_part(parts):
    """The most samples in one part of ``parts`` (rows n0, n1, ...)."""
    m = 0
    for r in range(parts.shape[0]):
        m = max(m, parts[r, 1] - parts[r, 0])
    return m


def _line(n):
    """n rounded up to whole 64-byte lines of float32 (each buffer of a scratch row starts on one)."""
    return (n + 15) // 16 * 16


def _zeroed(row, start, n):
    """row[start:start + n], zeroed."""
    a = row[start:start + n]
    a[:] = 0
    return a


def _positions_geometry(c, h, wd, o, oh, ow, ph, pw, kh, sh, sw, ob, kwc, lanes):
    """(nb, wq, nq, pl, cp) of the positions-in-lanes weight gradient: tiles of ob output
    channels, the phase planes' pitch, the padded span of positions, one (phase) plane's length
    and one sample's planes."""
    nb = (o + ob - 1) // ob
    hq, wq = phase_geometry(h, wd, ph, pw, sh, sw)
    span = (oh - 1) * wq + ow
    nq = (span + lanes - 1) // lanes * lanes
    pl = _plane_length(hq, wq, (kh - 1) // sh + 1, (kwc - 1) // sw + 1, nq)
    return nb, wq, nq, pl, c * sh * sw * pl


def _channels_geometry(c, h, wd, o, oh, ow, ph, pw, sh, sw, bc):
    """(wq, nbo, op, npos, pl, cp) of the channels-in-lanes weight gradient with bc channels per
    tile: the phase planes' pitch, the tiles, the channels padded with zero ones, the output
    positions, one (phase) plane's length and one sample's planes."""
    hq, wq = phase_geometry(h, wd, ph, pw, sh, sw)
    nbo = (o + bc - 1) // bc
    pl = hq * wq
    return wq, nbo, nbo * bc, oh * ow, pl, c * sh * sw * pl


def _positions_lengths(o, c, kh, nb, nq, cp, ob, kw_max, lanes, g):
    """The lengths, in whole lines, of a range's buffers in the positions-in-lanes weight
    gradient's scratch row: the lane sums, g samples' planes and their d planes."""
    return _line(o * c * kh * kw_max * lanes), _line(g * cp), _line(g * nb * ob * nq)


def _channels_lengths(taps, op, cp, npos, g):
    """The same for the channels-in-lanes weight gradient: dW^T, g samples' planes and their
    d^T."""
    return _line(taps * op), _line(g * cp), _line(g * npos * op)


_group, _widest, _widest_part, _line, _zeroed = (
    serial(f) for f in (_group, _widest, _widest_part, _line, _zeroed))
_positions_geometry, _channels_geometry, _positions_lengths, _channels_lengths = (
    serial(f) for f in (_positions_geometry, _channels_geometry, _positions_lengths, _channels_lengths))


def _weight_grad_impl(x, d, ph, pw, kh, kw, dws, scratch, bounds):
    """dws[r] (O*C*kh*kw) = the weight gradient (stride SH x SW) of batch range r from x (N, C, H,
    W), d (N, O, OH, OW); kw == KW, a constant of this compiled copy, like OB (``weight_grad``).
    scratch[r]: range r's buffers (``_positions_lengths``), kept from call to call."""
    n, c, h, wd = x.shape
    o, oh, ow = d.shape[1], d.shape[2], d.shape[3]
    nb, wq, nq, pl, cp = _positions_geometry(c, h, wd, o, oh, ow, ph, pw, kh, SH, SW, OB, KW, LANES)
    xf, df = x.reshape(x.size), d.reshape(d.size)
    per = cp + nb * OB * nq  # one sample's padded planes (or their phases) and d planes
    lp, lx, _ = _positions_lengths(o, c, kh, nb, nq, cp, OB, KW_MAX, LANES, _group(_widest(bounds), per))
    for rg in prange(bounds.size - 1):
        n0, n1 = bounds[rg], bounds[rg + 1]
        out = dws[rg]
        g = _group(n1 - n0, per)  # samples per group: each tile's sums run over all of a group
        part = _zeroed(scratch[rg], 0, o * c * kh * KW_MAX * LANES)  # each weight's sum, still in SIMD lanes
        planes = _zeroed(scratch[rg], lp, g * cp)
        dp = _zeroed(scratch[rg], lp + lx, g * nb * OB * nq)  # d planes on the pitch wq, zero junk entries
        acc = bank(NACC_DW)
        for s0 in range(n0, n1, g):
            m = min(g, n1 - s0)
            for s in range(m):
                for k in range(o):
                    for r in range(oh):
                        a = (s * nb * OB + k) * nq + r * wq
                        e = (((s0 + s) * o + k) * oh + r) * ow
                        for q in range(ow):
                            dp[_u(a + q)] = df[_u(e + q)]
                _pad_sample(xf, s0 + s, c, h, wd, ph, pw, SH, SW, wq, pl, planes, s * cp)
            for ch in range(c):
                for blk in range(nb):
                    for i in range(kh):
                        for a in range(NACC_DW):
                            vzero(acc, a)
                        for s in range(m):  # row i of the kernel: phase row i % SH, shifted i // SH
                            xb = s * cp + (ch * SH + i % SH) * SW * pl + (i // SH) * wq
                            db = (s * nb + blk) * OB * nq
                            for q0 in range(0, nq, LANES):
                                for bb in range(OB):
                                    for j in range(KW):  # a constant: after unrolling, each slot is a register
                                        vfma2(acc, bb * KW_MAX + j, planes, xb + (j % SW) * pl + j // SW + q0, dp,
                                              db + bb * nq + q0)
                        for bb in range(min(OB, o - blk * OB)):
                            p0 = ((((blk * OB + bb) * c + ch) * kh + i) * KW_MAX) * LANES
                            for j in range(KW):
                                vadd_to(acc, bb * KW_MAX + j, part, p0 + j * LANES)
        for k in range(o * c * kh):  # the lanes summed once, in lane order
            for j in range(kw):
                p0 = (k * KW_MAX + j) * LANES
                t = part[_u(p0)]
                for lane in range(1, LANES):
                    t += part[_u(p0 + lane)]
                out[_u(k * kw + j)] = t
    return dws


def _weight_grad_channels_impl(x, d, ph, pw, kh, kw, dws, scratch, parts):
    """The weight gradient with output channels in the lanes: a tile of OV vectors of channels x
    TR kernel rows x KW taps (constants of the compiled copy, TR 1 or kh), each slot summing
    d[n, o, p] * xpad[n, c, p + tap] over every position p of a group of samples with the plane
    value broadcast; no lane sums at the end, no junk positions. Part r, row r of ``parts``
    (n0, n1, c0, c1, row), sums samples n0:n1 for input channels c0:c1 into dws[row]: a batch
    range's own row (``bounds`` of ``_weight_grad_impl``), or one row that every part fills
    with its channels (``channel_parts``)."""
    n, c, h, wd = x.shape
    o, oh, ow = d.shape[1], d.shape[2], d.shape[3]
    bc = OV * LANES  # channels per tile
    wq, nbo, op, npos, pl, cp = _channels_geometry(c, h, wd, o, oh, ow, ph, pw, SH, SW, bc)
    taps = c * kh * kw
    xf, df = x.reshape(x.size), d.reshape(d.size)
    lt, lx, _ = _channels_lengths(taps, op, cp, npos, _group(_widest_part(parts), cp + npos * op))
    for rg in prange(parts.shape[0]):
        n0, n1, c0, c1 = parts[rg, 0], parts[rg, 1], parts[rg, 2], parts[rg, 3]
        out = dws[parts[rg, 4]]
        ptaps = (c1 - c0) * kh * kw  # this part's taps: its channels' (C, kh, kw) block of dW's rows
        dwt = scratch[rg, :ptaps * op]  # its dW^T (c1 - c0, kh, kw, op)
        if n1 == n0:
            dwt[:] = 0
        g = _group(n1 - n0, cp + npos * op)  # samples per group
        planes = _zeroed(scratch[rg], lt, g * cp)
        dt = _zeroed(scratch[rg], lt + lx, g * npos * op)  # d^T of each sample: (position, channel)
        acc = bank(NACC_C)
        for s0 in range(n0, n1, g):
            m = min(g, n1 - s0)
            for s in range(m):
                for k in range(o):
                    e = ((s0 + s) * o + k) * npos
                    for q in range(npos):
                        dt[_u((s * npos + q) * op + k)] = df[_u(e + q)]
                _pad_sample(xf, s0 + s, c, h, wd, ph, pw, SH, SW, wq, pl, planes, s * cp)
            for ch in range(c0, c1):
                for bo in range(nbo):
                    for i0 in range(0, kh, TR):
                        for a in range(NACC_C):
                            vzero(acc, a)
                        for s in range(m):
                            xb = s * cp + ch * SH * SW * pl
                            tb = s * npos * op + bo * bc
                            for r in range(oh):
                                for col in range(OW):  # a constant of this copy (module doc)
                                    xq = xb + r * wq + col
                                    tq = tb + (r * ow + col) * op
                                    for ti in range(TR):
                                        for j in range(KW):  # tap (i, j): its phase, shifted (i // SH, j // SW)
                                            i = i0 + ti
                                            xs = planes[_u(xq + ((i % SH) * SW + j % SW) * pl + (i // SH) * wq
                                                           + j // SW)]
                                            for v in range(OV):
                                                vfma(acc, (ti * KW + j) * OV + v, dt, tq + v * LANES, xs)
                        for ti in range(TR):
                            for j in range(KW):
                                t0 = (((ch - c0) * kh + i0 + ti) * kw + j) * op + bo * bc
                                for v in range(OV):
                                    if s0 == n0:  # the first group's sums: every slot of dwt is written
                                        vstore(acc, (ti * KW + j) * OV + v, dwt, t0 + v * LANES)
                                    else:
                                        vadd_to(acc, (ti * KW + j) * OV + v, dwt, t0 + v * LANES)
        t1 = c0 * kh * kw  # the part's first tap in a row of dW (O, C*kh*kw)
        for u0 in range(0, ptaps, 16):  # out = dwt's transpose, 16 taps at a time (cache lines, not strides)
            for k in range(o):
                for t in range(u0, min(ptaps, u0 + 16)):
                    out[_u(k * taps + t1 + t)] = dwt[_u(t * op + k)]
    return dws


# the whole-kernel channels tile only on planes at most this wide (or a strided layer's), with 8
# lanes; wider stride-1 planes take one kernel row of two vectors (``channel_tile``). 0: the
# whole kernel wherever it fits, as before.
WHOLE_KERNEL_OW = 8


def channel_tile(o: int, kh: int, kw: int, ow: int = 0, sw: int = 1) -> tuple:
    """(OV, TR) of the channels-in-lanes weight gradient of an ``ow``-wide output with column
    stride ``sw``: the whole kernel (TR = kh) when enough of it fits SLOTS slots with at least
    8 of them busy, else one kernel row.

    Except, with 8 lanes, a stride-1 kh x kw kernel (kh > 1) on a plane wider than
    ``WHOLE_KERNEL_OW``: one row of (at most) two vectors. ResNet-20's stride-1 16x16 3x3
    layers took 1.35-1.38x as long with the whole-kernel tile (1 vector x 9 taps) as with
    this one at batch 128 (32 and 64 channels, 2 ranges), 1.25x at batch 4 (32 channels),
    while on 8x8 planes and the stride-2 layers (16x16 outputs too) the whole kernel stayed
    1.12-1.26x ahead; three or four vectors of a row were slower than two
    (benchmarks/notes/cpu-direct.md, "The channels weight gradient's tile on wider planes").
    Untimed with 16 lanes, which keep the rule above."""
    ov_all = -(-o // LANES)
    ov = min(ov_all, SLOTS // (kh * kw))
    if ov >= 1 and ov * kh * kw >= 8:
        if LANES == 8 and WHOLE_KERNEL_OW and kh > 1 and sw == 1 and ow > WHOLE_KERNEL_OW:
            return min(ov_all, 2), 1
        return ov, kh
    return max(1, min(ov_all, SLOTS // kw)), 1


_PLANS = Plans()


def weight_grad(x, d, ph, pw, kh, kw, dw, ranges=None, stride=(1, 1)):
    """dW of a Conv2d (kw <= KW_MAX, stride (sh, sw)) for float32 C-contiguous x, d and dw:
    channels in the lanes for 64 output channels and more, or LANES and more on a plane of at
    most 256 pixels; positions in the lanes otherwise (the faster of the two on the nets'
    layers, benchmarks/notes/cpu-direct.md, "Register-blocked direct convolution"). ``ranges``:
    batch ranges run at once (``direct_blocked.bounds_of``), each with its own sum, the sums
    added in range order; or, where ``channel_parts`` cuts the channels kernel by input channel
    instead, as many parts over the whole batch, straight into dw. The kernel, tile, parts and
    scratch length are worked out once per shape (``_weight_grad_plan``)."""
    key = (x.shape, d.shape, ph, pw, kh, kw, ranges_key(ranges), tuple(stride), WHOLE_KERNEL_OW, CHANNEL_PARTS)
    launch, rows, row = _PLANS.get(key, _weight_grad_plan, x.shape, d.shape, ph, pw, kh, kw, ranges, stride)
    dws = dw.reshape(1, -1) if rows == 1 else workspace.kept("dw_ranges", (rows, dw.size))
    launch(x, d, ph, pw, kh, kw, dws, workspace.kept("dw_scratch", (launch.parts, row)))
    if rows > 1:
        flat = dw.reshape(-1)
        flat[...] = dws[0]
        for r in range(1, rows):  # in range order (as the shares' sums were added)
            flat += dws[r]
    return dw


# Cut a channels-kernel weight gradient by input channel rather than by batch range when dW has
# more elements than x and d together (``channel_parts``); False: always by batch range.
CHANNEL_PARTS = True
CHANNELS_PER_PART = 8  # ... and only when each part gets at least this many input channels


def channel_parts(n: int, c: int, dw_size: int, x_size: int, d_size: int, ranges: int):
    """The (n0, n1, c0, c1, row) rows of a weight gradient cut into ``ranges`` blocks of input
    channels, each over the whole batch, all into row 0 (one dW, no sums to add); None where
    the batch ranges are the cheaper cut. Cut by batch range, each range writes a dW of its own
    and the ranges' dWs are added: (ranges - 1) extra dWs written and read. Cut by channel,
    each part pads and transposes the whole batch's x and d: (ranges - 1) extra of those. So
    the channel cut where dW is the larger: Net2's conv3 (64 -> 128, 5x5, 8x8) at batch 4 (dW
    204,800 elements, x and d 49,152), ResNet-20's 64-channel 3x3 8x8 layers at batch 4
    (36,864 against 32,768); never at batch 64 on these nets. The call alone: 0.76-0.79 ->
    0.66-0.69 ms and 0.22 -> 0.20 ms; the layers the rule keeps on ranges were slower cut by
    channel, up to 1.3x (benchmarks/notes/cpu-resnet.md, "the weight gradient cut by input
    channel"). Its numbers are those of one call over the whole batch (``ranges=None``)."""
    if not CHANNEL_PARTS or ranges < 2 or c < CHANNELS_PER_PART * ranges or dw_size <= x_size + d_size:
        return None
    blocks = [c * r // ranges for r in range(ranges + 1)]
    return np.array([(0, n, blocks[r], blocks[r + 1], 0) for r in range(ranges)], np.int64)


def _weight_grad_plan(x_shape, d_shape, ph, pw, kh, kw, ranges, stride):
    """(Launch, rows, row) of ``weight_grad`` for these shapes: the kernel with its tile, stride
    and parts, how many rows of dW sums it writes, and the length of each part's row of
    scratch."""
    bounds = bounds_of(ranges, x_shape[0])
    nr = bounds.size - 1
    n, c, h, wd = x_shape
    o, oh, ow = d_shape[1], d_shape[2], d_shape[3]
    sh, sw = (int(s) for s in stride)
    if o >= 64 or (o >= LANES and oh * ow <= 256):
        ov, tr = channel_tile(o, kh, kw, ow, sw)
        _, _, op, npos, _, cp = _channels_geometry(c, h, wd, o, oh, ow, ph, pw, sh, sw, ov * LANES)
        parts = channel_parts(n, c, o * c * kh * kw, n * c * h * wd, n * o * oh * ow, nr)
        rows = 1 if parts is not None else nr
        if parts is None:  # one part per batch range, into its own row
            parts = np.array([(bounds[r], bounds[r + 1], 0, c, r) for r in range(nr)], np.int64).reshape(-1, 5)
        widest = int(_widest_part(parts)) if nr else 0
        row = sum(_channels_lengths(c * kh * kw, op, cp, npos, _group(widest, cp + npos * op)))
        return Launch(_weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=int(kw), NACC_C=ov * tr * kw, OW=int(ow),
                                                       SH=sh, SW=sw), parts), rows, row
    widest = int(_widest(bounds)) if nr else 0
    ob = weight_grad_tile(kw)
    nb, _, nq, _, cp = _positions_geometry(c, h, wd, o, oh, ow, ph, pw, kh, sh, sw, ob, kw, LANES)
    row = sum(_positions_lengths(o, c, kh, nb, nq, cp, ob, KW_MAX, LANES, _group(widest, cp + nb * ob * nq)))
    return Launch(_weight_grad_impl, dict(OB=ob, KW=int(kw), NACC_DW=ob * KW_MAX, SH=sh, SW=sw), bounds), nr, row
