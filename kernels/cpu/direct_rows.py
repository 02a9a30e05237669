"""The passes the direct-convolution kernels (``direct.py``) are made of: one kernel row (c, i)
over the flat output span of a zero-padded plane, for one output channel or two at once.

``row_taps`` adds a row's taps into an accumulator plane (the forward; the input gradient is
the forward of dy with the flipped weight); ``row_dots`` forms a row's dot products with a
gradient plane (the weight gradient). Indices are cast to unsigned (``_u``) so that Numba adds
no wrap-around test and the loops vectorise (see ``conv.py``).
"""

from __future__ import annotations

from numba import uint64 as _u

from ._jit import serial

_FMA = {"contract"}  # fused multiply-adds; the sums keep their order
_SUMS = {"contract", "reassoc"}  # the row sums reordered, so they vectorise (partial sums in the SIMD lanes)


def pad_plane(src, base, h, w, ph, pw, wp, plane):
    """plane[(y + ph)*wp + x + pw] = src[base + y*w + x]: one image plane into the middle of
    the zero-padded plane (its border is zero and stays so)."""
    for y in range(h):
        d = (y + ph) * wp + pw
        s = base + y * w
        for x in range(w):
            plane[_u(d + x)] = src[_u(s + x)]


# row_taps and row_dots spell out one loop per group size on purpose: LLVM vectorises a
# loop over p whose taps are written out, not one with an inner loop over a runtime count.


def row_taps(acc, a0, plane, s0, wf, w0, kw, span):
    """acc[a0 + p] += sum_j wf[w0 + j] * plane[s0 + p + j] for p < span, j < kw (j ascending),
    the taps in groups of 5, 3, 2 and 1 (one pass over acc per group)."""
    j = 0
    while j < kw:
        g = _group(kw - j)
        q0 = s0 + j
        t0 = wf[_u(w0 + j)]
        t1 = wf[_u(w0 + j + 1)] if g > 1 else t0
        t2 = wf[_u(w0 + j + 2)] if g > 2 else t0
        t3 = wf[_u(w0 + j + 3)] if g > 3 else t0
        t4 = wf[_u(w0 + j + 4)] if g > 3 else t0
        if g == 5:
            for p in range(span):
                q = _u(q0 + p)
                v = acc[_u(a0 + p)]
                v += t0 * plane[q]
                v += t1 * plane[q + _u(1)]
                v += t2 * plane[q + _u(2)]
                v += t3 * plane[q + _u(3)]
                v += t4 * plane[q + _u(4)]
                acc[_u(a0 + p)] = v
        elif g == 3:
            for p in range(span):
                q = _u(q0 + p)
                v = acc[_u(a0 + p)]
                v += t0 * plane[q]
                v += t1 * plane[q + _u(1)]
                v += t2 * plane[q + _u(2)]
                acc[_u(a0 + p)] = v
        elif g == 2:
            for p in range(span):
                q = _u(q0 + p)
                v = acc[_u(a0 + p)]
                v += t0 * plane[q]
                v += t1 * plane[q + _u(1)]
                acc[_u(a0 + p)] = v
        else:
            for p in range(span):
                acc[_u(a0 + p)] += t0 * plane[_u(q0 + p)]
        j += g


def row_dots(out, o0, d, d0, plane, s0, kw, span, zero):
    """out[o0 + j] += sum_p d[d0 + p] * plane[s0 + p + j] for j < kw (the row sums reordered),
    the taps in groups of 5, 3, 2 and 1 (one pass over d per group)."""
    j = 0
    while j < kw:
        g = _group(kw - j)
        q0 = s0 + j
        a0 = a1 = a2 = a3 = a4 = zero
        if g == 5:
            for p in range(span):
                e = d[_u(d0 + p)]
                q = _u(q0 + p)
                a0 += e * plane[q]
                a1 += e * plane[q + _u(1)]
                a2 += e * plane[q + _u(2)]
                a3 += e * plane[q + _u(3)]
                a4 += e * plane[q + _u(4)]
        elif g == 3:
            for p in range(span):
                e = d[_u(d0 + p)]
                q = _u(q0 + p)
                a0 += e * plane[q]
                a1 += e * plane[q + _u(1)]
                a2 += e * plane[q + _u(2)]
        elif g == 2:
            for p in range(span):
                e = d[_u(d0 + p)]
                q = _u(q0 + p)
                a0 += e * plane[q]
                a1 += e * plane[q + _u(1)]
        else:
            for p in range(span):
                a0 += d[_u(d0 + p)] * plane[_u(q0 + p)]
        sums = (a0, a1, a2, a3, a4)
        for t in range(g):
            out[_u(o0 + j + t)] += sums[t]
        j += g


def row5_taps_pair(acc, a0, a1, plane, s0, wf, w0, w1, span):
    """row_taps of a 5-wide kernel row for two output channels at once (accumulators at a0 and
    a1, weights at w0 and w1): each plane value is loaded once for both."""
    t0, t1, t2, t3, t4 = wf[_u(w0)], wf[_u(w0 + 1)], wf[_u(w0 + 2)], wf[_u(w0 + 3)], wf[_u(w0 + 4)]
    u0, u1, u2, u3, u4 = wf[_u(w1)], wf[_u(w1 + 1)], wf[_u(w1 + 2)], wf[_u(w1 + 3)], wf[_u(w1 + 4)]
    for p in range(span):
        q = _u(s0 + p)
        x0, x1, x2, x3, x4 = plane[q], plane[q + _u(1)], plane[q + _u(2)], plane[q + _u(3)], plane[q + _u(4)]
        v = acc[_u(a0 + p)]
        v += t0 * x0
        v += t1 * x1
        v += t2 * x2
        v += t3 * x3
        v += t4 * x4
        acc[_u(a0 + p)] = v
        v = acc[_u(a1 + p)]
        v += u0 * x0
        v += u1 * x1
        v += u2 * x2
        v += u3 * x3
        v += u4 * x4
        acc[_u(a1 + p)] = v


def row5_dots_pair(out, o0, o1, d, d0, d1, plane, s0, span, zero):
    """row_dots of a 5-wide kernel row for two output channels at once (gradients at d0 and
    d1, sums into out at o0 and o1): each plane value is loaded once for both."""
    a0 = a1 = a2 = a3 = a4 = zero
    b0 = b1 = b2 = b3 = b4 = zero
    for p in range(span):
        e, f = d[_u(d0 + p)], d[_u(d1 + p)]
        q = _u(s0 + p)
        x0, x1, x2, x3, x4 = plane[q], plane[q + _u(1)], plane[q + _u(2)], plane[q + _u(3)], plane[q + _u(4)]
        a0 += e * x0
        a1 += e * x1
        a2 += e * x2
        a3 += e * x3
        a4 += e * x4
        b0 += f * x0
        b1 += f * x1
        b2 += f * x2
        b3 += f * x3
        b4 += f * x4
    for t, v in enumerate((a0, a1, a2, a3, a4)):
        out[_u(o0 + t)] += v
    for t, v in enumerate((b0, b1, b2, b3, b4)):
        out[_u(o1 + t)] += v


def row3_taps_pair(acc, a0, a1, plane, s0, wf, w0, w1, span):
    """row5_taps_pair for a 3-wide kernel row."""
    t0, t1, t2 = wf[_u(w0)], wf[_u(w0 + 1)], wf[_u(w0 + 2)]
    u0, u1, u2 = wf[_u(w1)], wf[_u(w1 + 1)], wf[_u(w1 + 2)]
    for p in range(span):
        q = _u(s0 + p)
        x0, x1, x2 = plane[q], plane[q + _u(1)], plane[q + _u(2)]
        v = acc[_u(a0 + p)]
        v += t0 * x0
        v += t1 * x1
        v += t2 * x2
        acc[_u(a0 + p)] = v
        v = acc[_u(a1 + p)]
        v += u0 * x0
        v += u1 * x1
        v += u2 * x2
        acc[_u(a1 + p)] = v


def row3_dots_pair(out, o0, o1, d, d0, d1, plane, s0, span, zero):
    """row5_dots_pair for a 3-wide kernel row."""
    a0 = a1 = a2 = zero
    b0 = b1 = b2 = zero
    for p in range(span):
        e, f = d[_u(d0 + p)], d[_u(d1 + p)]
        q = _u(s0 + p)
        x0, x1, x2 = plane[q], plane[q + _u(1)], plane[q + _u(2)]
        a0 += e * x0
        a1 += e * x1
        a2 += e * x2
        b0 += f * x0
        b1 += f * x1
        b2 += f * x2
    for t, v in enumerate((a0, a1, a2)):
        out[_u(o0 + t)] += v
    for t, v in enumerate((b0, b1, b2)):
        out[_u(o1 + t)] += v


def _group(left):
    """How many of the ``left`` remaining taps of a kernel row the next pass takes: 5, 3, 2 or 1."""
    return 5 if left >= 5 else 3 if left >= 3 else left


pad_plane = serial(pad_plane)
_group = serial(_group)
row_taps = serial(row_taps, fastmath=_FMA)
row_dots = serial(row_dots, fastmath=_SUMS)
row5_taps_pair = serial(row5_taps_pair, fastmath=_FMA)
row5_dots_pair = serial(row5_dots_pair, fastmath=_SUMS)
row3_taps_pair = serial(row3_taps_pair, fastmath=_FMA)
row3_dots_pair = serial(row3_dots_pair, fastmath=_SUMS)
