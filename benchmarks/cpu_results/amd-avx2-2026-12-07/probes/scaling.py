"""Does a kernel scale to both cores? Each of the direct kernels (forward, input gradient, weight
gradient) and OpenBLAS's 1024^3 product, on 32 samples on one thread and 64 on two (two batch
ranges on Numba's threads; BLAS: 1 and 2 threads, the same product), interleaved, 7 rounds of
the fastest of 3 calls; prints the median ratio t(64 on 2) / t(32 on 1) (1.0: perfect scaling,
2.0: none). Usage: PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/scaling.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from minicnn.kernels.cpu import direct
def best(f, reps=3):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(0)
c, o, hw, k = 32, 64, 16, 5; p = (2, 2)
def calls(n, R):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32); w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = np.zeros(o, np.float32); dy = rng.standard_normal((n, o, hw, hw)).astype(np.float32)
    y = np.empty_like(dy); dx = np.empty_like(x); dw = np.empty_like(w)
    return {"forward": lambda: direct.conv2d_direct(x, w, b, (1, 1), p, out=y, ranges=R),
            "input grad": lambda: direct.conv2d_direct_input_grad(dy, w, hw, hw, (1, 1), p, out=dx, ranges=R),
            "weight grad": lambda: direct.conv2d_direct_weight_grad(x, dy, k, k, (1, 1), p, out=dw, ranges=R)}
one, two = calls(32, None), calls(64, [(0, 32), (32, 64)])
a = np.random.rand(1024, 1024).astype(np.float32); bb = a.copy(); cc = a.copy()
def blas(t):
    def f():
        with threadpool_limits(t):
            np.matmul(a, bb, out=cc)
    return f
one["blas 1024^3"], two["blas 1024^3"] = blas(1), blas(2)
for f in list(one.values()) + list(two.values()): f()
res = {k_: [] for k_ in one}
for r in range(7):
    for k_ in one:
        t1 = best(one[k_]); t2 = best(two[k_])
        res[k_].append(t2 / (t1 * (1 if k_.startswith("blas") else 1)))
print("Net2 conv2 shapes; t(64 samples, 2 threads) / t(32 samples, 1 thread); BLAS: t(2 threads) / t(1 thread) * 2")
for k_, v in res.items():
    v = np.array(v) * (2 if k_.startswith("blas") else 1)
    print(f"{k_}: median {np.median(v):.2f} (rounds {' '.join(f'{x:.2f}' for x in v)})")
