"""Does a single-threaded BLAS product slow down when the other core runs one too? conv2's and
conv3's per-sample forward products (2 samples per share), each share's own time (in its thread),
with the other share idle or busy with the same work on its own arrays. Median of 300 (ms)."""
import time
import numpy as np
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels.cpu import threads

rng = np.random.default_rng(0)
for name, (o, k, l) in {"conv2": (64, 800, 256), "conv3": (128, 1600, 64)}.items():
    arrs = [(rng.standard_normal((o, k), dtype=np.float32), rng.standard_normal((2, k, l), dtype=np.float32),
             np.empty((2, o, l), np.float32)) for _ in range(2)]
    times = {}

    def work(t, busy):
        def fn(share):
            if share[0] == 1 and not busy:
                return 0.0
            w, c, out = arrs[share[0]]
            t0 = time.perf_counter()
            for s in range(2):
                np.matmul(w, c[s], out=out[s])
            return time.perf_counter() - t0
        return fn
    res = {"alone": [], "both busy": [], "serial, 1 thread": []}
    for _ in range(300):
        res["alone"].append(threads.run_split(work(0, False), [0, 1])[0])
        r = threads.run_split(work(0, True), [0, 1]); res["both busy"].append(max(r))
        w, c, out = arrs[0]; t0 = time.perf_counter()
        for s in range(2): np.matmul(w, c[s], out=out[s])
        res["serial, 1 thread"].append(time.perf_counter() - t0)
    gf = 2 * 2 * o * k * l / 1e9
    print(name, "  ".join(f"{k_}: {np.median(v)*1e3:.3f} ms ({gf/np.median(v):.0f} GFLOP/s)" for k_, v in res.items()))
