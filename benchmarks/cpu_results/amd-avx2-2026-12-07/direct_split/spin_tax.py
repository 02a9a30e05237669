"""Serial work timed before Numba's OpenMP workers exist, and after a parallel region (with
GOMP_SPINCOUNT=INFINITE they then spin for ever on the other vCPU): does a spinning worker slow
the caller? Run from the repository root, with and without that variable."""
import time, sys
import numpy as np, numba
from numba import njit, prange
numba.set_num_threads(2)

@njit(parallel=True, cache=False)
def par(a):
    s = 0.0
    for i in prange(a.size):
        s += a[i]
    return s

@njit(cache=False)
def serial_work(a, reps):
    s = 0.0
    for r in range(reps):
        for i in range(a.size):
            s += a[i] * 1.0000001
    return s

a = np.random.default_rng(0).standard_normal(4096)
serial_work(a, 1)  # compile
b = np.random.default_rng(1).standard_normal((64, 64))
def numpy_work():
    for _ in range(20):
        b @ b
def blk(f, n=200):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e6
before = (blk(lambda: serial_work(a, 10)), blk(numpy_work))
par(a)  # the workers start (and, with INFINITE, spin from now on)
time.sleep(0.01)
after = (blk(lambda: serial_work(a, 10)), blk(numpy_work))
print("numba serial loop before/after a parallel region: %.1f / %.1f us; numpy 64x64 matmuls: %.1f / %.1f us"
      % (before[0], after[0], before[1], after[1]))
import os
t0, c0 = time.perf_counter(), os.times()
time.sleep(0.5)
t1, c1 = time.perf_counter(), os.times()
print("CPU seconds over 0.5 s of sleep after the region: %.2f (about 0.5 if a worker spins)" % ((c1.user + c1.system) - (c0.user + c0.system)))
