import sys, time, statistics, importlib.util
from benchmarks import common
from minicnn import backend
from minicnn.kernels import cpu
spec = importlib.util.spec_from_file_location("old_conv_schedule", "/tmp/probe/old_conv_schedule.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
net, bs = sys.argv[1], int(sys.argv[2])
r = common.make_runner("numba", net, bs, "train")
ops = backend.current().ops
olds = old.ConvSchedule.__new__(old.ConvSchedule); olds.__dict__.update(cpu.CONV_SCHEDULE.__dict__)
variants = {"old": olds.conv2d_forward, "new": cpu.CONV_SCHEDULE.conv2d_forward}
r.run(3)
t0 = time.perf_counter(); r.run(3); k = max(1, int(0.5 / ((time.perf_counter() - t0) / 3)))
res = {v: [] for v in variants}
for rep in range(9):
    for v, fn in variants.items():
        ops.conv2d_forward = fn
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[v].append((time.perf_counter() - t0) / k)
a, b = (statistics.median(res[v]) * 1e3 for v in variants)
print(f"{net} b{bs}: old {a:.3f} ms, new {b:.3f} ms (min {min(res['old'])*1e3:.3f} / {min(res['new'])*1e3:.3f}), ratio {a/b:.3f}")
