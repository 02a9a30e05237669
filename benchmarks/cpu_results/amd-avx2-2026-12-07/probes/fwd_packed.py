"""The positions-in-lanes forward reading a packed weight (OB output channels of a tile side by
side for each tap: (nb, C, KH, KW, OB), so one pointer and constant offsets reach every weight of
a tap) against the committed kernel (each channel's weights through its own pointer), interleaved
as fwd_ab.py, one thread, GFLOP/s. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/fwd_packed.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from numba import prange, uint64 as _u
from minicnn.kernels.cpu import direct_blocked as db
from minicnn.kernels.cpu.direct_blocked import _aligned_zeros, _pad_into, _plane_length
from minicnn.kernels.cpu.simd import LANES, bank, vfma, vstore, vzero
OB = QV = Q = NACC = KH = KW = 0

def _forward_packed_impl(x, wp_, b, has_bias, ph, pw, y, bounds):
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
        acc = bank(NACC)
        for s in range(bounds[rg], bounds[rg + 1]):
            for ch in range(c):
                _pad_into(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wp, xpad, ch * pl)
            for blk in range(nb):
                for q0 in range(0, nq, Q):
                    for a in range(NACC):
                        vzero(acc, a)
                    for ch in range(c):
                        wb = (blk * c + ch) * KH * KW * OB
                        for i in range(KH):
                            for j in range(KW):
                                xb = ch * pl + q0 + i * wp + j
                                t = wb + (i * KW + j) * OB
                                for v in range(QV):
                                    for bb in range(OB):
                                        vfma(acc, bb * QV + v, xpad, xb + v * LANES, wp_[_u(t + bb)])
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

def pack(w, ob):
    o, c, kh, kw = w.shape
    nb = -(-o // ob)
    p = np.zeros((nb * ob, c, kh, kw), np.float32); p[:o] = w
    return np.ascontiguousarray(p.reshape(nb, ob, c, kh, kw).transpose(0, 2, 3, 4, 1)).reshape(-1)

def packed(x, w, b, p, y, ob, qv, wpk=None):
    o, c, kh, kw = w.shape
    k = db._specialised(_forward_packed_impl, OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv, KH=kh, KW=kw)
    return k(x, pack(w, ob) if wpk is None else wpk, b, True, p, p, y, np.array([0, x.shape[0]], np.int64))

def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
if __name__ == "__main__":
    rng = np.random.default_rng(1)
    layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
              ("tut conv2", 6, 16, 14, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
    with threadpool_limits(1):
        for name, c, o, hw, k in layers:
            n = 16
            w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
            x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
            y = np.empty((n, o, hw, hw), np.float32); y2 = np.empty_like(y)
            fl = 2 * n * w.size * hw * hw / 1e9
            p = k // 2
            db.forward(x, w, b, True, p, p, y)
            var = {"today": lambda: db.forward(x, w, b, True, p, p, y2)}
            for ob, qv in ((3, 4), (2, 6), (4, 3), (2, 5)):
                var[f"packed{ob}x{qv}"] = (lambda ob=ob, qv=qv: packed(x, w, b, p, y2, ob, qv))
            for k_, f in var.items():
                f(); assert np.array_equal(y, y2), k_
            res = {k_: [] for k_ in var}
            for r in range(9):
                for k_, f in var.items():
                    res[k_].append(best(f))
            print(f"{name}:" + "".join(f" {k_} {fl/np.median(v):.0f}" for k_, v in res.items()), flush=True)
