"""Whole training steps with the channels-in-lanes weight gradient's batch ranges on run_split's
threads, each range through the serial build (direct_blocked_dw.CHANNELS_ON_HELPERS = True),
against Numba's parallel build (False), swapped in one process with fusion_ab's paired blocks.
Run it in a process that loads the kernels from Numba's cache (not the one that compiled them:
see cached_parallel.txt). Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_helpers_ab.py NET [NET ...] --batch-sizes B [B ...] [--rounds R]"""
import argparse

from benchmarks import fusion_ab
from minicnn.kernels.cpu import direct_blocked_dw


def set_helpers(flag):
    direct_blocked_dw.CHANNELS_ON_HELPERS = flag


fusion_ab.SWITCHES["dw-helpers"] = (set_helpers, "run_split-serial", "numba-parallel")
ap = argparse.ArgumentParser()
ap.add_argument("nets", nargs="+")
ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 64])
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--min-time", type=float, default=0.5)
a = ap.parse_args()
for net in a.nets:
    for b in a.batch_sizes:
        print(fusion_ab.step_ab("numba", net, b, a.rounds, a.min_time, switch="dw-helpers"), flush=True)
