"""Whole numba training steps, the CPU schedule's split rule (kernels/cpu/split_chooser.py: the
"blas" way for <= 4 samples per worker) against the "threads" way for every call (before), swapped
in one process, blocks alternating. [BATCHES="4 8 64"] python rule_ab.py [rounds] [nets...]"""
import sys, os
import numpy as np
from benchmarks import common, timing, machine

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
BATCHES = [int(b) for b in os.environ.get("BATCHES", "4 8 64").split()]
nets = sys.argv[2:] or ["net2", "tutorial", "deconv", "resnet20"]
machine.set_threads(None, torch_too=False)
from minicnn.kernels import cpu
from minicnn.kernels.cpu.split_chooser import SplitChooser
S = cpu.CONV_SCHEDULE
ways = {"threads": SplitChooser(force="threads"), "rule": SplitChooser()}
print(f"load {os.getloadavg()}", flush=True)
for net in nets:
    for batch in BATCHES:
        runner = common.make_runner("numba", net, batch, "train")
        for w in ways.values():
            S.split = w; runner.run(3)
        k, _ = timing.calibrate(runner, 0.3)
        t = {n: [] for n in ways}
        for r in range(rounds):
            for n in (("threads", "rule") if r % 2 == 0 else ("rule", "threads")):
                S.split = ways[n]; t[n].append(timing.time_call(lambda: runner.run(k)) / k)
        S.split = ways["rule"]
        q = np.array(t["rule"]) / np.array(t["threads"])
        print(f"{net} b{batch}: threads {1e3*np.median(t['threads']):.2f} ms, rule {1e3*np.median(t['rule']):.2f} ms, "
              f"rule/threads {np.median(q):.3f} ({np.percentile(q, 25):.3f}-{np.percentile(q, 75):.3f})", flush=True)
print(f"load {os.getloadavg()}")
