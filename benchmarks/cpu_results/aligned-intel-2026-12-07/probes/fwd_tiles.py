"""The positions-in-lanes forward with other tiles (OB channels x QV vectors of positions), one
thread, 32 samples, GFLOP/s. Usage: PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/fwd_tiles.py"""
import sys, time, numpy as np, numba
from minicnn.kernels.cpu import direct_blocked as db
LANES = db.LANES
def tm(f, reps=30):
    for _ in range(3): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e3
rng = np.random.default_rng(0)
def fwd(x, w, b, p, y, ob, qv):
    o, c, kh, kw = w.shape
    strides = np.array([0, c * kh * kw, kh * kw, kw, 1], np.int64)
    return db.run(db._forward_impl, dict(OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv), (x, w.reshape(-1), strides, kh, kw, b, True, p, p, y), np.array([0, x.shape[0]], np.int64))
for (c, o, hw, k) in [(3, 32, 32, 5), (3, 6, 32, 5), (6, 16, 14, 5), (3, 16, 32, 3), (16, 16, 32, 3)]:
    w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
    x = rng.standard_normal((32, c, hw, hw)).astype(np.float32)
    y = np.empty((32, o, hw, hw), np.float32); y2 = np.empty_like(y)
    fl = 2 * 32 * w.size * hw * hw / 1e9
    line = f"c{c} o{o} {hw}x{hw} k{k}:"
    fwd(x, w, b, k // 2, y, 8, 2)
    for ob, qv in ((8, 2), (6, 4), (8, 3), (4, 6), (4, 4), (2, 8)):
        t = tm(lambda: fwd(x, w, b, k // 2, y2, ob, qv))
        assert np.array_equal(y, y2)
        line += f" {ob}x{qv} {fl/t*1e3:.0f} |"
    print(line, flush=True)
