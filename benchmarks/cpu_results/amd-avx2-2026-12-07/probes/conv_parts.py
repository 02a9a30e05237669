"""A direct layer's three calls (forward, input gradient, weight gradient) at batch 64 on both
cores (two batch ranges, Numba's threads, as the schedule calls them), interleaved: 7 rounds,
each the fastest of 5 calls, the median over rounds; ms and GFLOP/s. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/conv_parts.py"""
import time, numpy as np
from minicnn.kernels.cpu import direct
def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(0)
n = 64
R = [(0, 32), (32, 64)]
for name, c, o, hw, k in [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
                          ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]:
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32); w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = np.zeros(o, np.float32); dy = rng.standard_normal((n, o, hw, hw)).astype(np.float32)
    y = np.empty_like(dy); dx = np.empty_like(x); dw = np.empty_like(w)
    p = (k // 2, k // 2)
    calls = {"forward": lambda: direct.conv2d_direct(x, w, b, (1, 1), p, out=y, ranges=R),
             "input grad": lambda: direct.conv2d_direct_input_grad(dy, w, hw, hw, (1, 1), p, out=dx, ranges=R),
             "weight grad": lambda: direct.conv2d_direct_weight_grad(x, dy, k, k, (1, 1), p, out=dw, ranges=R)}
    for f in calls.values(): f(); f()
    res = {k_: [] for k_ in calls}
    for r in range(7):
        for k_, f in calls.items():
            res[k_].append(best(f))
    fl = 2 * n * w.size * hw * hw / 1e9
    print(f"{name}:" + "".join(f" {k_} {np.median(v)*1e3:.2f} ms ({fl/np.median(v):.0f})" for k_, v in res.items()), flush=True)
