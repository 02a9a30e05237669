import sys, time, statistics
from benchmarks import common
from minicnn.kernels import cpu
net, bs = sys.argv[1], int(sys.argv[2])
configs = [int(float(c) * 2**20) for c in sys.argv[3:]]  # split_min_macs in Mi
r = common.make_runner("numba", net, bs, "train")
r.run(3)
k = max(1, int(0.3 / (lambda t0: (r.run(3), (time.perf_counter() - t0) / 3)[1])(time.perf_counter())))
res = {c: [] for c in configs}
for rep in range(7):
    for c in configs:
        cpu.CONV_SCHEDULE.split_min_macs = c
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[c].append((time.perf_counter() - t0) / k)
for c, v in res.items():
    print(net, bs, "split_min %6.0f Mi MACs: median ms %.3f  min %.3f" % (c / 2**20, statistics.median(v) * 1e3, min(v) * 1e3))
