"""conv3's 4 per-sample forward products at batch 4 with BLAS's 2 threads, when BLAS stays at 2
threads between calls, and when it is raised to 2 for the call and lowered to 1 after (what
run_shares_blas_threads does), each call followed by G ms of single-threaded work (a gap like
the other layers of a step). Median of 300 (ms). python raise_lower.py [G]"""
import sys, time
import numpy as np
from threadpoolctl import ThreadpoolController
libs = ThreadpoolController().select(user_api="blas").lib_controllers
gap = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
rng = np.random.default_rng(0)
w = rng.standard_normal((128, 1600), dtype=np.float32); c = rng.standard_normal((4, 1600, 64), dtype=np.float32)
out = np.empty((4, 128, 64), np.float32)
def busy(ms):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < ms / 1e3: pass
def setn(n):
    for l in libs: l.set_num_threads(n)
def products():
    for s in range(4): np.matmul(w, c[s], out=out[s])
res = {"stays 2": [], "raised/lowered": [], "stays 1": []}
for _ in range(300):
    setn(2); products(); busy(gap)
    t0 = time.perf_counter(); products(); res["stays 2"].append(time.perf_counter() - t0); busy(gap)
    setn(1); products(); busy(gap)
    t0 = time.perf_counter(); setn(2); products(); setn(1); res["raised/lowered"].append(time.perf_counter() - t0); busy(gap)
    t0 = time.perf_counter(); products(); res["stays 1"].append(time.perf_counter() - t0); busy(gap)
print(f"gap {gap} ms: " + "; ".join(f"{k} {np.median(v)*1e3:.3f}" for k, v in res.items()))
