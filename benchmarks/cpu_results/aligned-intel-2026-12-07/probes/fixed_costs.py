"""Direct kernels alone (one range, the calling thread) at n = 0, 1, 2, 4 samples on Net2's conv3, conv2 and
conv3's input-gradient shape: the fixed cost of a call is the n = 0 time (ms). Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/fixed_costs.py"""
import sys, time, numpy as np

from minicnn.kernels.cpu import direct
def tm(f, reps=300):
    for _ in range(5): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e3
rng = np.random.default_rng(0)
for (c, o, hw) in [(64, 128, 8), (32, 64, 16), (128, 64, 8)]:
    w = rng.standard_normal((o, c, 5, 5)).astype(np.float32)
    dw = np.empty_like(w); b = np.zeros(o, np.float32)
    line = f"c{c} o{o} {hw}x{hw}:"
    for n in (0, 1, 2, 4):
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32); dy = rng.standard_normal((n, o, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32)
        line += f" n={n}: dw {tm(lambda: direct.conv2d_direct_weight_grad(x, dy, 5, 5, (1,1), (2,2), out=dw)):.3f} fwd {tm(lambda: direct.conv2d_direct(x, w, b, (1,1), (2,2), out=y)):.3f} |"
    print(line)
