"""One conv layer's forward products at batch 4, five ways (median of 300, ms, interleaved):
per-sample products serially on 1 thread; dealt 2+2 to run_split's two threads (BLAS 1 thread
each); per-sample products with OpenBLAS's own 2 threads; one wide product (O, K) @ (K, 4L) on
1 and on 2 BLAS threads."""
import time
import numpy as np
from threadpoolctl import ThreadpoolController
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels.cpu import threads
threads.release_blas()
ctl = ThreadpoolController()
rng = np.random.default_rng(0)
for name, (o, k, l) in {"conv2": (64, 800, 256), "conv3": (128, 1600, 64), "conv1": (32, 75, 1024)}.items():
    w = rng.standard_normal((o, k), dtype=np.float32)
    c = rng.standard_normal((4, k, l), dtype=np.float32); cw = np.ascontiguousarray(c.transpose(1, 0, 2).reshape(k, 4 * l))
    out = np.empty((4, o, l), np.float32); outw = np.empty((o, 4 * l), np.float32)
    def per(items):
        for s in items: np.matmul(w, c[s], out=out[s])
    modes = {
        "serial 1 thr": (1, lambda: per(range(4))),
        "split 2x1 thr": (1, lambda: threads.run_split(per, range(4))),
        "per-sample BLAS 2 thr": (2, lambda: per(range(4))),
        "wide 1 thr": (1, lambda: np.matmul(w, cw, out=outw)),
        "wide BLAS 2 thr": (2, lambda: np.matmul(w, cw, out=outw)),
    }
    res = {m: [] for m in modes}
    for _ in range(300):
        for m, (t, f) in modes.items():
            with ctl.limit(limits=t, user_api="blas"):
                t0 = time.perf_counter(); f(); res[m].append(time.perf_counter() - t0)
    gf = 2 * 4 * o * k * l / 1e9
    print(name, " | ".join(f"{m} {np.median(v)*1e3:.3f} ms ({gf/np.median(v):.0f})" for m, v in res.items()))
