"""A Numba parallel region (prange over two shares of the same loop, OpenMP layer) against the loop
alone (microseconds, median of 2000); run with GOMP_SPINCOUNT or OMP_WAIT_POLICY set to see
OpenMP's spinning workers at work. Usage: [ENV=...] python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/omp_region.py"""
import sys, time, numpy as np
from numba import njit, prange
import numba
numba.set_num_threads(2)
@njit(nogil=True)
def busy(n):
    s = 0.0
    for i in range(n):
        s += np.sqrt(i)
    return s
@njit(parallel=True, nogil=True)
def par(n, out):
    for k in prange(2):
        out[k] = busy(n)
out = np.zeros(2)
par(10, out)
def tm(f, reps=2000):
    for _ in range(10): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e6, np.percentile(ts, 90) * 1e6
for n in (1000, 30000, 100000):
    one = tm(lambda: busy(n))
    s = tm(lambda: par(n, out))
    g = tm(lambda: (par(n, out), time.sleep(0.0003)), 1000)
    g0 = tm(lambda: time.sleep(0.0003), 1000)
    print(f"work {one[0]:.1f} us: omp prange(2) {s[0]:.1f} us (p90 {s[1]:.1f}); after a 0.3 ms sleep {g[0]-g0[0]:.1f}")
