"""The weight gradient's scratch buffer (``direct_blocked_dw._scratch``, tried on top of commit
9bc4806 and not kept) against a fresh array per call, each in
its own fresh process (a page fault depends on glibc's heap history, which one process
shares between the two arms of an in-process A/B). Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/dw_scratch_process.py NET BATCH scratch|fresh
prints minor page faults per step and the median step over 7 blocks of >= 0.3 s."""
import resource
import sys
import time

import numpy as np

from benchmarks import common
from minicnn.kernels.cpu import direct_blocked_dw

net, batch, arm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if arm == "fresh":
    direct_blocked_dw._scratch = lambda rows, size: np.empty((rows, size), np.float32)
runner = common.make_runner("numba", net, batch, "train")
runner.run(10)
k = 1
while True:
    t = time.perf_counter()
    runner.run(k)
    if time.perf_counter() - t >= 0.3:
        break
    k *= 2
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = []
for _ in range(7):
    t = time.perf_counter()
    runner.run(k)
    times.append((time.perf_counter() - t) / k)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / (7 * k)
print(f"{net} b{batch} {arm}: {faults:.0f} minor faults per step, median step {1e3 * np.median(times):.2f} ms")
