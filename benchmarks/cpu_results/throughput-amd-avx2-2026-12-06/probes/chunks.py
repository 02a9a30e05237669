import sys, time, statistics
from benchmarks import common
from minicnn.kernels import cpu
net, bs = sys.argv[1], int(sys.argv[2])
configs = [tuple(float(v) for v in c.split(",")) for c in sys.argv[3:]]  # keep_mib,chunk_mib
MiB = 2**20
r = common.make_runner("numba", net, bs, "train")
t = common.make_runner("torch-cpu", net, bs, "train", threads=2)
r.run(3); t.run(3)
res = {c: [] for c in configs}; res["torch"] = []
for rep in range(5):
    for c in configs:
        cpu.CONV_SCHEDULE.keep, cpu.CONV_SCHEDULE.chunk = int(c[0] * MiB), int(c[1] * MiB)
        r.run(1)
        t0 = time.perf_counter(); r.run(3); res[c].append((time.perf_counter() - t0) / 3)
    t0 = time.perf_counter(); t.run(3); res["torch"].append((time.perf_counter() - t0) / 3)
for k, v in res.items():
    print(k, "median ms %.1f  min %.1f" % (statistics.median(v) * 1e3, min(v) * 1e3))
