import sys, time, statistics
from benchmarks import common
from minicnn.kernels import cpu
net, bs = sys.argv[1], int(sys.argv[2])
MiB = 2**20
r = common.make_runner("numba", net, bs, "train")
r.run(3)
t0 = time.perf_counter(); r.run(3); k = max(1, int(0.5 / ((time.perf_counter() - t0) / 3)))
res = {2: [], 0: []}
for rep in range(9):
    for c in res:
        cpu.CONV_SCHEDULE.keep = c * MiB
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[c].append((time.perf_counter() - t0) / k)
a, b = (statistics.median(res[c]) * 1e3 for c in (2, 0))
print(f"{net} b{bs}: keep 2 MiB {a:.3f} ms, keep 0 {b:.3f} ms (min {min(res[2])*1e3:.3f} / {min(res[0])*1e3:.3f}), ratio {a/b:.3f}")
