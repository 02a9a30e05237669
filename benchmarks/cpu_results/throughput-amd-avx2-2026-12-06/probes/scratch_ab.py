import sys, time, statistics
from benchmarks import common
from minicnn.kernels import cpu
net, bs = sys.argv[1], int(sys.argv[2])
MiB = 2**20
r = common.make_runner("numba", net, bs, "train")
r.run(3)
t0 = time.perf_counter(); r.run(3); k = max(1, int(0.5 / ((time.perf_counter() - t0) / 3)))
res = {0: [], 4: []}
for rep in range(9):
    for c in (0, 4):
        cpu.CONV_SCHEDULE.scratch_max = c * MiB
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[c].append((time.perf_counter() - t0) / k)
a, b = (statistics.median(res[c]) * 1e3 for c in (0, 4))
print(f"{net} b{bs}: scratch off {a:.2f} ms, on {b:.2f} ms (min {min(res[0])*1e3:.2f} / {min(res[4])*1e3:.2f}), ratio {a/b:.3f}")
