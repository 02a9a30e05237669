"""conv3's forward products at batch 4 (W (128, 1600) @ cols_n (1600, 64)), 4 samples: one
thread doing all four, run_split dealing them to 2 threads, and run_split with the im2col too;
min and median of 200 (ms). BLAS held at one thread, as the numba backend does."""
import time
import numpy as np
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
from minicnn.kernels.cpu import threads

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 64, 8, 8), dtype=np.float32)
w2 = rng.standard_normal((128, 1600), dtype=np.float32)
cols = cpu.im2col(x, 5, 5, 1, 1, 2, 2)
out = np.empty((4, 128, 64), np.float32)

def mm(share):
    for i, j in share:
        np.matmul(w2, cols[i:j], out=out[i:j])

def mm_im2col(share):
    for i, j in share:
        c = cpu.im2col(x[i:j], 5, 5, 1, 1, 2, 2)
        np.matmul(w2, c, out=out[i:j])

items = [(0, 1), (1, 2), (2, 3), (3, 4)]
cases = {"serial mm": lambda: mm(items), "split mm": lambda: threads.run_split(mm, items),
         "split noop": lambda: threads.run_split(lambda s: None, items),
         "serial im2col+mm": lambda: mm_im2col(items), "split im2col+mm": lambda: threads.run_split(mm_im2col, items)}
res = {k: [] for k in cases}
for k, f in cases.items():
    f()
for _ in range(200):
    for k, f in cases.items():
        t0 = time.perf_counter(); f(); res[k].append(time.perf_counter() - t0)
for k, v in res.items():
    print(f"{k:18s} min {min(v)*1e3:.3f} median {np.median(v)*1e3:.3f}")
