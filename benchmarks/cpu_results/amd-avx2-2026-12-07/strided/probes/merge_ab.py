"""ResNet-20 steps with minicnn.fusion on (the residual merge in one pass) and off, interleaved in
one process, 2 threads: median step ms over 7 blocks of >= 0.3 s per round."""
import sys, time, numba
numba.set_num_threads(2)
from minicnn import fusion
from benchmarks import common
for mode in sys.argv[1:]:
    for bs in (64, 256):
        runner = common.make_runner("numba", "resnet20", bs, mode)
        runner.run(2)
        res = {True: [], False: []}
        for rnd in range(3):
            for on in (True, False):
                fusion.set_enabled(on)
                ts = []
                for _ in range(7):
                    k, t0 = 0, time.perf_counter()
                    while time.perf_counter() - t0 < 0.3:
                        runner.run(1); k += 1
                    ts.append((time.perf_counter() - t0) / k)
                res[on].append(sorted(ts)[3] * 1e3)
        fusion.set_enabled(True)
        print(f"resnet20 {mode} b{bs}: fused {[round(v, 1) for v in res[True]]} ms, unfused "
              f"{[round(v, 1) for v in res[False]]} ms, ratio {[round(a / b, 3) for a, b in zip(res[True], res[False])]}",
              flush=True)
