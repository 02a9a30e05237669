"""The channels-in-lanes forward kernel alone, one thread, its transposed weight starting on a
64-byte boundary (off0B) or 16 bytes past one (off16B, as NumPy allocates). Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/align.py"""
import sys, time, numpy as np, numba

from minicnn.kernels.cpu import direct_blocked as db
from minicnn.kernels.cpu.simd import LANES
numba.set_num_threads(1)
def aligned(shape, off=0):
    n = int(np.prod(shape))
    buf = np.zeros(n + 32, np.float32)
    k = (-(buf.ctypes.data // 4)) % 16
    return buf[k + off:k + off + n].reshape(shape)
def tm(f, reps=30):
    f(); f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e3
rng = np.random.default_rng(0)
for (c, o, hw) in [(32, 64, 16), (64, 128, 8), (64, 32, 16), (128, 64, 8)]:
    w = rng.standard_normal((o, c, 5, 5)).astype(np.float32); b = rng.standard_normal(o).astype(np.float32)
    ov, p = db.forward_channels_tile(o)
    kern = db._specialised(db._forward_channels_impl, OV=ov, P=p, NACC_F=ov * p)
    bc = ov * LANES
    op = -(-o // bc) * bc
    for n in (2, 32):
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32)
        fl = 2 * n * w.size * hw * hw / 1e9
        res = []
        for off in (0, 4):
            wpad = aligned((c, 5, 5, op), off)
            wpad[..., :o] = w.transpose(1, 2, 3, 0)
            tt = tm(lambda: kern(x, wpad, b, True, 2, 2, 5, 5, y))
            res.append(f"off{off*4}B {fl/tt*1e3:.0f}")
        print(f"c{c} o{o} {hw}x{hw} n={n}: " + " | ".join(res), flush=True)
