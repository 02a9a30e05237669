"""Evaluation steps (forward only) of ResNet-20 with the batch norm -> ReLU runs fused
(``ops.batchnorm_relu_forward_eval``) or not (the entry hidden from ``minicnn.fusion``, the
merge and every other fusion unchanged), numba on 2 threads, one process: 7 rounds, each a
block of steps per way in alternating order; per way the median step (ms) of each round, and
the median over rounds of fused/unfused. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/bn_relu_ab.py net:batch ..."""
import sys, time
import numpy as np
import minicnn as mc
from benchmarks import common

for spec in sys.argv[1:] or ["resnet20:256", "resnet20:64", "resnet20:4"]:
    net, b = spec.split(":")
    b = int(b)
    r = common.make_runner("numba", net, b, "infer", threads=2)
    r.activate()
    ops = mc.backend.current().ops
    entry = ops.batchnorm_relu_forward_eval

    def way(fused):
        if fused:
            ops.batchnorm_relu_forward_eval = entry
        elif hasattr(ops, "batchnorm_relu_forward_eval"):
            del ops.batchnorm_relu_forward_eval

    steps = 40 if b <= 8 else (10 if b <= 64 else 4)
    for f in (True, False):
        way(f)
        for _ in range(3):
            r.step()
    res = {True: [], False: []}
    for rnd in range(7):
        for f in ((True, False) if rnd % 2 == 0 else (False, True)):
            way(f)
            ts = []
            for _ in range(steps):
                t = time.perf_counter(); r.step(); ts.append(time.perf_counter() - t)
            res[f].append(np.median(ts) * 1e3)
    way(True)
    ratio = np.median(np.array(res[True]) / np.array(res[False]))
    print(f"{net} b{b} infer: unfused {min(res[False]):.2f}-{max(res[False]):.2f} ms, fused "
          f"{min(res[True]):.2f}-{max(res[True]):.2f} ms, fused/unfused {ratio:.3f}", flush=True)
