"""Median training step (ms) of one net and batch on numba, 2 threads, in this process: run under
different GNU OpenMP wait policies (GOMP_SPINCOUNT, OMP_WAIT_POLICY set by the caller) to see how
much of a small batch's step is the workers' wake-up. Also prints Numba's threading layer.
Usage: [GOMP_SPINCOUNT=...] PYTHONPATH=. python .../probes/spin_step.py net batch [seconds]"""
import sys, time
import numpy as np
import numba
from benchmarks import common

net, b = sys.argv[1], int(sys.argv[2])
secs = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
r = common.make_runner("numba", net, b, "train", threads=2)
r.activate()
for _ in range(5):
    r.step()
ts, t0 = [], time.perf_counter()
while time.perf_counter() - t0 < secs:
    t = time.perf_counter(); r.step(); ts.append(time.perf_counter() - t)
print(f"{net} b{b}: median {np.median(ts) * 1e3:.2f} ms over {len(ts)} steps (layer {numba.threading_layer()})")
