import sys, time, statistics
from benchmarks import common
from minicnn import backend
from minicnn.kernels import cpu, reference
net, bs = sys.argv[1], int(sys.argv[2])
r = common.make_runner("numba", net, bs, "infer")
ops = backend.current().ops
variants = {"reference": reference.batchnorm_forward_eval, "numba": cpu.batchnorm_forward_eval}
r.run(2)
t0 = time.perf_counter(); r.run(2); k = max(1, int(0.5 / ((time.perf_counter() - t0) / 2)))
res = {v: [] for v in variants}
for rep in range(7):
    for v, fn in variants.items():
        ops.batchnorm_forward_eval = fn
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[v].append((time.perf_counter() - t0) / k)
a, b = (statistics.median(res[v]) * 1e3 for v in variants)
print(f"{net} b{bs} infer: BN eval reference {a:.2f} ms, numba {b:.2f} ms per step (min {min(res['reference'])*1e3:.2f} / {min(res['numba'])*1e3:.2f}), ratio {a/b:.3f}")
