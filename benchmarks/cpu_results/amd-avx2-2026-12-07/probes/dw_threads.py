"""The channels weight gradient (Net2 conv2, OV 2, TR 1) on 32 samples: "one" its serial build on
one range; on 64 samples in two ranges: "two_par" the parallel build, "two_ser" the serial build,
"two_pythreads" the serial build on each range in two Python threads. Run it with a fresh
NUMBA_CACHE_DIR twice (compiles, then loads from the cache). Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_threads.py"""
import time, numpy as np, threading
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm, threads
rng = np.random.default_rng(0)
c, o, hw, k = 32, 64, 16, 5; p = 2
ov, tr = dwm.channel_tile(o, k, k)
consts = dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k)
ser = db._specialised(dwm._weight_grad_channels_impl, **consts)
par = db._specialised(dwm._weight_grad_channels_impl, parallel_build=True, **consts)
x = rng.standard_normal((64, c, hw, hw)).astype(np.float32); d = rng.standard_normal((64, o, hw, hw)).astype(np.float32)
dws = np.empty((2, o * c * k * k), np.float32)
x1, d1 = x[:32].copy(), d[:32].copy(); x2, d2 = x[32:].copy(), d[32:].copy()
o1 = np.empty((1, dws.shape[1]), np.float32); o2 = o1.copy()
B2 = np.array([0, 32, 64], np.int64); B1 = np.array([0, 32], np.int64)
def one(): ser(x1, d1, p, p, k, k, k, k, o1, B1) if False else ser(x1, d1, p, p, k, k, o1, B1)
def two_par(): par(x, d, p, p, k, k, dws, B2)
def two_ser(): ser(x, d, p, p, k, k, dws, B2)
def two_pythreads():
    t = threading.Thread(target=lambda: ser(x2, d2, p, p, k, k, o2, B1)); t.start(); ser(x1, d1, p, p, k, k, o1, B1); t.join()
for f in (one, two_par, two_ser, two_pythreads): f()
def tm(f):
    ts = []
    for _ in range(5):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts) * 1e3
for r in range(3):
    print(" ".join(f"{f.__name__} {tm(f):.1f}" for f in (one, two_par, two_ser, two_pythreads)))
