"""The channels-in-lanes forward with the kernel's taps as constants of the compiled copy (KH,
KW) against today's, one thread, GFLOP/s, tiles OV x P. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/chan_const.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from numba import prange, uint64 as _u
from minicnn.kernels.cpu import direct_blocked as db
from minicnn.kernels.cpu.direct_blocked import _aligned_zeros, _pad_into
from minicnn.kernels.cpu.simd import LANES, bank, vfma, vstore, vzero
OV = P = NACC_F = KH = KW = 0

def _forward_channels_const_impl(x, wt, b, has_bias, ph, pw, y, bounds):
    n, c, h, wd = x.shape
    o, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    op = wt.shape[3]
    bc = OV * LANES
    nbo = op // bc
    hp, wp = h + 2 * ph, wd + 2 * pw
    pl, npos = hp * wp, oh * ow
    xf, wf, yf = x.reshape(x.size), wt.reshape(wt.size), y.reshape(y.size)
    for rg in prange(bounds.size - 1):
        xpad = _aligned_zeros(c * pl)
        pos = np.empty(P, np.int64)
        tile = _aligned_zeros(P * bc)
        acc = bank(NACC_F)
        for s in range(bounds[rg], bounds[rg + 1]):
            for ch in range(c):
                _pad_into(xf, (s * c + ch) * h * wd, h, wd, ph, pw, wp, xpad, ch * pl)
            for p0 in range(0, npos, P):
                for t in range(P):
                    q = min(p0 + t, npos - 1)
                    pos[t] = (q // ow) * wp + q % ow
                for bo in range(nbo):
                    for a in range(NACC_F):
                        vzero(acc, a)
                    for ch in range(c):
                        for i in range(KH):
                            for j in range(KW):
                                xo = ch * pl + i * wp + j
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

def tm(f, reps=25):
    """The fastest of reps calls, ms (this VM's speed wanders; the minimum is the steadiest)."""
    for _ in range(2): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.min(ts) * 1e3
rng = np.random.default_rng(0)
B = np.array
def wpad_of(w, ov):
    o, c, kh, kw = w.shape
    bc = ov * LANES
    wpad = np.zeros((c, kh, kw, -(-o // bc) * bc), np.float32); wpad[..., :o] = w.transpose(1, 2, 3, 0)
    return wpad
def chan(x, w, b, p, y, ov, pp):
    o, c, kh, kw = w.shape
    return db.run(db._forward_channels_impl, dict(OV=ov, P=pp, NACC_F=ov * pp), (x, wpad_of(w, ov), b, True, p, p, kh, kw, y), B([0, x.shape[0]], np.int64))
def const(x, w, b, p, y, ov, pp):
    o, c, kh, kw = w.shape
    k = db._specialised(_forward_channels_const_impl, OV=ov, P=pp, NACC_F=ov * pp, KH=kh, KW=kw)
    return k(x, wpad_of(w, ov), b, True, p, p, y, B([0, x.shape[0]], np.int64))
layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
tiles = ((4, 3), (2, 6), (2, 5), (3, 4), (2, 4), (1, 12), (1, 8), (3, 3))
if __name__ == '__main__':
  with threadpool_limits(1):
    for name, c, o, hw, k in layers:
        n = 16
        w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32); y2 = np.empty_like(y)
        fl = 2 * n * w.size * hw * hw / 1e9
        chan(x, w, b, k // 2, y, 2, 6)
        l1, l2 = f"{name}: runtime taps", f"{name}: constant taps"
        for ov, pp in tiles:
            if ov * LANES > 2 * o: continue
            tt = tm(lambda: chan(x, w, b, k // 2, y2, ov, pp)); l1 += f" {ov}x{pp} {fl/tt*1e3:.0f}"
            tt = tm(lambda: const(x, w, b, k // 2, y2, ov, pp)); assert np.array_equal(y, y2); l2 += f" {ov}x{pp} {fl/tt*1e3:.0f}"
        print(l1); print(l2, flush=True)
