"""Whole training steps with the blocked weight gradient cut by batch range or by input channel
(``direct_blocked_dw.CHANNELS_PER_PART`` switched between blocks of steps in one process),
numba on 2 threads: 7 rounds, each a block of steps per way in alternating order; per way the
median step (ms) of each round, and the median over rounds of channel/batch. Needs ../dw_split/channel_split.patch applied (the change was not kept). Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_split_steps.py net:batch ..."""
import resource, sys, time
import numpy as np
from benchmarks import common
from minicnn.kernels.cpu import direct_blocked_dw as dwm

WAYS = {"batch": 10 ** 9, "channel": dwm.CHANNELS_PER_PART}
for spec in sys.argv[1:] or ["net2:4", "net2:64", "resnet20:4", "resnet20:64"]:
    net, b = spec.split(":")
    b = int(b)
    r = common.make_runner("numba", net, b, "train", threads=2)
    r.activate()
    steps = 40 if b <= 8 else 6
    for v in WAYS.values():
        dwm.CHANNELS_PER_PART = v
        for _ in range(3):
            r.step()
    res = {w: [] for w in WAYS}
    faults = {w: 0 for w in WAYS}
    for rnd in range(7):
        order = list(WAYS) if rnd % 2 == 0 else list(WAYS)[::-1]
        for w in order:
            dwm.CHANNELS_PER_PART = WAYS[w]
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            ts = []
            for _ in range(steps):
                t = time.perf_counter(); r.step(); ts.append(time.perf_counter() - t)
            faults[w] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            res[w].append(np.median(ts) * 1e3)
    ratio = np.median(np.array(res["channel"]) / np.array(res["batch"]))
    print(f"{net} b{b}: " + "  ".join(f"{w} {min(v):.2f}-{max(v):.2f} ms ({faults[w] / (7 * steps):.0f} faults/step)"
                                      for w, v in res.items()) + f"  channel/batch {ratio:.3f}", flush=True)
    dwm.CHANNELS_PER_PART = WAYS["channel"]
