"""Training steps in a fresh process with glibc's heap held (mallopt: M_MMAP_THRESHOLD 32 MiB,
M_TRIM_THRESHOLD 1 GiB, set before minicnn allocates anything) or as glibc leaves it (its
dynamic thresholds: whether a fresh array page-faults depends on the heap's history). With
a kernels/cpu/heap.py (tried on top of 5ae0702, not kept: heap_held_processes.txt) "held" was
the library's default and "plain" set MINICNN_CPU_HOLD_HEAP=0 (PROBE_MMAP_THRESHOLD: its
threshold); without it "held" calls mallopt here. Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/heap_process.py NET BATCH held|plain [WARMUP]
prints minor page faults per step and the median step over 7 blocks of >= 0.3 s, after
WARMUP (default 20) untimed steps."""
import ctypes
import os
import resource
import sys
import time

import numpy as np

net, batch, arm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 20
try:
    from minicnn.kernels.cpu import heap
except ImportError:  # before kernels/cpu/heap.py
    heap = None
if heap is not None:
    heap.MMAP_THRESHOLD = int(os.environ.get("PROBE_MMAP_THRESHOLD", heap.MMAP_THRESHOLD))  # e.g. 4 MiB: 4194304
    if arm == "plain":
        os.environ["MINICNN_CPU_HOLD_HEAP"] = "0"
elif arm == "held":
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-3, 32 << 20) == 1 and libc.mallopt(-1, 1 << 30) == 1  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD

from benchmarks import common  # noqa: E402

runner = common.make_runner("numba", net, batch, "train")
runner.run(warmup)
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
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
assert heap is None or heap._done == (arm == "held")
print(f"{net} b{batch} {arm}: {faults:.0f} minor faults per step, median step {1e3 * np.median(times):.2f} ms, "
      f"peak RSS {peak:.0f} MiB")
