"""The positions-in-lanes forward with the kernel's taps as constants of the compiled copy (KH,
KW; the weight's tap strides kw, 1) against today's (taps at run time), on the nets' layers, one
thread, GFLOP/s, several tiles OB x QV. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/fwd_const.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from numba import prange, uint64 as _u
from minicnn.kernels.cpu import direct_blocked as db
from minicnn.kernels.cpu.direct_blocked import _aligned_zeros, _pad_into, _plane_length
from minicnn.kernels.cpu.simd import LANES, bank, vfma, vstore, vzero
OB = QV = Q = NACC = KH = KW = 0

def _forward_const_impl(x, wf, w0, so, sc, b, has_bias, ph, pw, y, bounds):
    n, c, h, wd = x.shape
    o, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    nb = (o + OB - 1) // OB
    hp, wp = h + 2 * ph, wd + 2 * pw
    span = (oh - 1) * wp + ow
    nq = (span + Q - 1) // Q * Q
    pl = _plane_length(hp, wp, KH, KW, nq)
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    for rg in prange(bounds.size - 1):
        xpad = _aligned_zeros(c * pl)
        wide = _aligned_zeros(nb * OB * nq)
        base = np.empty(OB, np.int64)
        acc = bank(NACC)
        for s in range(bounds[rg], bounds[rg + 1]):
            for ch in range(c):
                _pad_into(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wp, xpad, ch * pl)
            for blk in range(nb):
                for bb in range(OB):
                    base[bb] = w0 + min(blk * OB + bb, o - 1) * so
                for q0 in range(0, nq, Q):
                    for a in range(NACC):
                        vzero(acc, a)
                    for ch in range(c):
                        for i in range(KH):
                            for j in range(KW):
                                xb = ch * pl + q0 + i * wp + j
                                t = ch * sc + i * KW + j
                                for v in range(QV):
                                    for bb in range(OB):
                                        vfma(acc, bb * QV + v, xpad, xb + v * LANES, wf[_u(base[bb] + t)])
                    for bb in range(OB):
                        for v in range(QV):
                            vstore(acc, bb * QV + v, wide, (blk * OB + bb) * nq + q0 + v * LANES)
            for k in range(o):
                add = b[k] if has_bias else np.float32(0)
                for r in range(oh):
                    d = ((s * o + k) * oh + r) * ow
                    a0 = k * nq + r * wp
                    for q in range(ow):
                        yf[_u(d + q)] = wide[_u(a0 + q)] + add
    return y

def tm(f, reps=25):
    """The fastest of reps calls, ms (this VM's speed wanders; the minimum is the steadiest)."""
    for _ in range(2): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.min(ts) * 1e3
rng = np.random.default_rng(0)
B = np.array
def pos(x, w, b, p, y, ob, qv):
    o, c, kh, kw = w.shape
    st = B([0, c * kh * kw, kh * kw, kw, 1], np.int64)
    return db.run(db._forward_impl, dict(OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv), (x, w.reshape(-1), st, kh, kw, b, True, p, p, y), B([0, x.shape[0]], np.int64))
def const(x, w, b, p, y, ob, qv):
    o, c, kh, kw = w.shape
    k = db._specialised(_forward_const_impl, OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv, KH=kh, KW=kw)
    return k(x, w.reshape(-1), 0, c * kh * kw, kh * kw, b, True, p, p, y, B([0, x.shape[0]], np.int64))
layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
          ("tut conv1", 3, 6, 32, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
tiles = ((4, 2), (2, 4), (3, 4), (2, 6), (4, 3), (2, 5), (3, 3), (1, 12))
if __name__ == '__main__':
  with threadpool_limits(1):
    for name, c, o, hw, k in layers:
        n = 16
        w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32); y2 = np.empty_like(y)
        fl = 2 * n * w.size * hw * hw / 1e9
        pos(x, w, b, k // 2, y, 4, 2)
        l1, l2 = f"{name}: runtime taps", f"{name}: constant taps"
        for ob, qv in tiles:
            tt = tm(lambda: pos(x, w, b, k // 2, y2, ob, qv)); l1 += f" {ob}x{qv} {fl/tt*1e3:.0f}"
            tt = tm(lambda: const(x, w, b, k // 2, y2, ob, qv)); assert np.array_equal(y, y2); l2 += f" {ob}x{qv} {fl/tt*1e3:.0f}"
        print(l1); print(l2, flush=True)
