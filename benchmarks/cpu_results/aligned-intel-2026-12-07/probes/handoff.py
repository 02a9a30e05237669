"""run_split handing two shares of a fixed nogil Numba loop to its helper thread, against the loop
alone: the round trip's cost (microseconds, median of 2000). Usage: PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/handoff.py"""
import sys, time, numpy as np
from numba import njit
import numba
from minicnn.kernels.cpu import threads
numba.set_num_threads(2)
@njit(nogil=True)
def busy(n):
    s = 0.0
    for i in range(n):
        s += np.sqrt(i)
    return s
busy(10)
def tm(f, reps=2000):
    for _ in range(10): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e6, np.percentile(ts, 90) * 1e6
for n in (1000, 30000, 100000):
    one = tm(lambda: busy(n))
    split = tm(lambda: threads.run_split(lambda share: busy(n), [0, 1]))
    gap = tm(lambda: (threads.run_split(lambda share: busy(n), [0, 1]), time.sleep(0.0005)), 1000)
    print(f"work {one[0]:.1f} us: run_split of 2 shares {split[0]:.1f} us (p90 {split[1]:.1f}); after a 0.5 ms sleep {gap[0]-560:.1f}(approx)")
