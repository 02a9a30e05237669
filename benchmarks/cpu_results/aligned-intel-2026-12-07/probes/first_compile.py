"""First training step of each net (the kernels compiled, or loaded from Numba's cache) against a
later step. Run with an empty NUMBA_CACHE_DIR, then again with the same one.
Usage: NUMBA_CACHE_DIR=DIR python first_compile.py NET [NET ...]"""
import sys
import time

from benchmarks import common

for net in sys.argv[1:]:
    t0 = time.perf_counter()
    runner = common.make_runner("numba", net, 64, "train")
    runner.run(1)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner.run(1)
    print(f"{net} b64: first step (with making the model) {first:.2f} s, next step {time.perf_counter() - t0:.3f} s",
          flush=True)
