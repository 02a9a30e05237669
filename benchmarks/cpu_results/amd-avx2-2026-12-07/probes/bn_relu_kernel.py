"""The numba kernels alone on ResNet-20's shapes, 2 threads: batch norm (evaluation) then ReLU
(two calls, as the layers run them) against the fused batch norm + ReLU, interleaved; 5
rounds, each the median of 20 calls per way, ms. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/bn_relu_kernel.py"""
import time
import numpy as np
import minicnn as mc
from minicnn.kernels.cpu import batchnorm, fused, threads
from minicnn.kernels import cpu

mc.set_backend("numba")
import numba
numba.set_num_threads(2)
rng = np.random.default_rng(0)
for shape in [(256, 16, 32, 32), (256, 32, 16, 16), (256, 64, 8, 8), (64, 16, 32, 32), (64, 64, 8, 8), (4, 16, 32, 32)]:
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    g, b, m, v = (rng.standard_normal(c).astype(np.float32) for _ in range(4))
    v = np.abs(v) + 0.5
    two = lambda: cpu.TABLE["relu_forward"](batchnorm.batchnorm_forward_eval(x, g, b, m, v, 1e-5)[0])
    one = lambda: fused.batchnorm_relu_forward_eval(x, g, b, m, v, 1e-5)
    for f in (two, one):
        f(); f()
    res = {"bn+relu": [], "fused": []}
    for r in range(5):
        ts = {k: [] for k in res}
        for _ in range(20):
            for k, f in (("bn+relu", two), ("fused", one)):
                t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
        for k in res:
            res[k].append(np.median(ts[k]) * 1e3)
    print("x".join(map(str, shape)) + ": " + "  ".join(f"{k} {min(v_):.3f}-{max(v_):.3f}" for k, v_ in res.items()), flush=True)
