"""A variant of the channels-in-lanes weight gradient with the plane width OWC a constant of the
compiled copy (so LLVM can settle the row loop in its first optimisation), against today's kernel:
serial build in the process, and the parallel build on one range. Run twice with the same fresh
NUMBA_CACHE_DIR (compile, then load from the cache). Usage:
D=$(mktemp -d); for i in 1 2; do NUMBA_CACHE_DIR=$D PYTHONPATH=. python .../dw_chan_ow.py; done"""
import time, numpy as np
from numba import prange, uint64 as _u
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm
from minicnn.kernels.cpu.direct_blocked import LANES, _aligned_empty, _aligned_zeros, _pad_into
from minicnn.kernels.cpu.direct_blocked_dw import GROUP
from minicnn.kernels.cpu.simd import bank, vadd_to, vfma, vstore, vzero
OV = TR = KW = NACC_C = OWC = 0


def _dw_chan_ow_impl(x, d, ph, pw, kh, kw, dws, bounds):
    """dws[r] as ``_weight_grad_impl``, with output channels in the lanes: a tile of OV vectors
    of channels x TR kernel rows x KW taps (constants of the compiled copy, TR 1 or kh), each
    slot summing d[n, o, p] * xpad[n, c, p + tap] over every position p of a group of samples
    with the plane value broadcast; no lane sums at the end, no junk positions."""
    n, c, h, wd = x.shape
    o, oh, ow = d.shape[1], d.shape[2], d.shape[3]
    hp, wp = h + 2 * ph, wd + 2 * pw
    bc = OV * LANES  # channels per tile
    nbo = (o + bc - 1) // bc
    op = nbo * bc  # channels, padded with zero ones
    npos, pl = oh * ow, hp * wp
    taps = c * kh * kw
    xf, df = x.reshape(x.size), d.reshape(d.size)
    for rg in prange(bounds.size - 1):
        n0, n1 = bounds[rg], bounds[rg + 1]
        out = dws[rg]
        dwt = _aligned_zeros(taps * op) if n1 == n0 else _aligned_empty(taps * op)  # dW^T (C, kh, kw, op)
        g = max(1, min(n1 - n0, GROUP // (c * pl + npos * op)))  # samples per group
        planes = _aligned_zeros(g * c * pl)
        dt = _aligned_zeros(g * npos * op)  # d^T of each sample: (position, channel)
        acc = bank(NACC_C)
        for s0 in range(n0, n1, g):
            m = min(g, n1 - s0)
            for s in range(m):
                for k in range(o):
                    e = ((s0 + s) * o + k) * npos
                    for q in range(npos):
                        dt[_u((s * npos + q) * op + k)] = df[_u(e + q)]
                for ch in range(c):
                    _pad_into(xf, ((s0 + s) * c + ch) * h * wd, h, wd, ph, pw, wp, planes, (s * c + ch) * pl)
            for ch in range(c):
                for bo in range(nbo):
                    for i0 in range(0, kh, TR):
                        for a in range(NACC_C):
                            vzero(acc, a)
                        for s in range(m):
                            xb = (s * c + ch) * pl + i0 * wp
                            tb = s * npos * op + bo * bc
                            for r in range(oh):
                                for col in range(OWC):  # the plane's width: a constant of this copy
                                    xq = xb + r * wp + col
                                    tq = tb + (r * ow + col) * op
                                    for ti in range(TR):
                                        for j in range(KW):
                                            xs = planes[_u(xq + ti * wp + j)]
                                            for v in range(OV):
                                                vfma(acc, (ti * KW + j) * OV + v, dt, tq + v * LANES, xs)
                        for ti in range(TR):
                            for j in range(KW):
                                t0 = ((ch * kh + i0 + ti) * kw + j) * op + bo * bc
                                for v in range(OV):
                                    if s0 == n0:  # the first group's sums: every slot of dwt is written
                                        vstore(acc, (ti * KW + j) * OV + v, dwt, t0 + v * LANES)
                                    else:
                                        vadd_to(acc, (ti * KW + j) * OV + v, dwt, t0 + v * LANES)
        for u0 in range(0, taps, 16):  # out = dwt's transpose, 16 taps at a time (cache lines, not strides)
            for k in range(o):
                for t in range(u0, min(taps, u0 + 16)):
                    out[_u(k * taps + t)] = dwt[_u(t * op + k)]
    return dws



def tm(f, args):
    ts = []
    for _ in range(5):
        s = time.perf_counter(); f(*args); ts.append(time.perf_counter() - s)
    return min(ts)
rng = np.random.default_rng(0)
B = np.array([0, 16], np.int64)
for name, c, o, hw, k in [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("resnet s3", 64, 64, 8, 3)]:
    p = k // 2
    x = rng.standard_normal((16, c, hw, hw)).astype(np.float32); d = rng.standard_normal((16, o, hw, hw)).astype(np.float32)
    ov, tr = dwm.channel_tile(o, k, k); consts = dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k)
    outs = [np.empty((1, o * c * k * k), np.float32) for _ in range(4)]
    ks = [db._specialised(dwm._weight_grad_channels_impl, **consts), db._specialised(dwm._weight_grad_channels_impl, parallel_build=True, **consts),
          db._specialised(_dw_chan_ow_impl, OWC=hw, **consts), db._specialised(_dw_chan_ow_impl, parallel_build=True, OWC=hw, **consts)]
    args = [(x, d, p, p, k, k, outs[i], B) for i in range(4)]
    for kk, a in zip(ks, args): kk(*a)
    same = all(np.array_equal(outs[0], oo) for oo in outs[1:])
    res = [[], [], [], []]
    for _ in range(7):
        for i in range(4): res[i].append(tm(ks[i], args[i]))
    fl = 2 * 16 * o * c * k * k * hw * hw / 1e9
    g = [fl / np.median(r) for r in res]
    print(f"{name}: today serial {g[0]:.0f} parallel {g[1]:.0f} | OW constant serial {g[2]:.0f} parallel {g[3]:.0f} GFLOP/s (1 range, 1 thread); same bits {same}", flush=True)
