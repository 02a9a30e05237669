"""Weight gradient, positions against channels in the lanes, on the first layers' shapes, one thread,
32 samples, GFLOP/s. Usage: PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/dw_kinds.py"""
import sys, time, numpy as np
from minicnn.kernels.cpu import direct_blocked_dw as dwm, direct_blocked as db
def tm(f, reps=20):
    for _ in range(3): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e3
rng = np.random.default_rng(0)
B = np.array([0, 32], np.int64)
for (c, o, hw, k) in [(3, 32, 32, 5), (32, 64, 16, 5), (16, 16, 32, 3), (16, 32, 16, 3), (32, 32, 16, 3)]:
    x = rng.standard_normal((32, c, hw, hw)).astype(np.float32); d = rng.standard_normal((32, o, hw, hw)).astype(np.float32)
    dw = np.empty((o, c, k, k), np.float32); rest = np.empty((0, dw.size), np.float32)
    fl = 2 * 32 * dw.size * hw * hw / 1e9
    p = k // 2
    ob = dwm.weight_grad_tile(k)
    tpos = tm(lambda: db.run(dwm._weight_grad_impl, dict(OB=ob, KW=k, NACC_DW=ob * dwm.KW_MAX), (x, d, p, p, k, k, dw.reshape(1, -1)), B))
    ov, tr = dwm.channel_tile(o, k, k)
    tch = tm(lambda: db.run(dwm._weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k), (x, d, p, p, k, k, dw.reshape(1, -1)), B))
    print(f"c{c} o{o} {hw}x{hw} k{k}: positions {fl/tpos*1e3:.0f} GF/s, channels {fl/tch*1e3:.0f} GF/s (tile OV={ov} TR={tr})")
