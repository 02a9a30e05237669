import sys, time, statistics
import numpy as np
from benchmarks import common
from minicnn import backend
from minicnn.kernels import cpu
net, bs = sys.argv[1], int(sys.argv[2])
r = common.make_runner("numba", net, bs, "train")
ops = backend.current().ops
orig = cpu.im2col
pool = {}
def pooled(x, kh, kw, sh, sw, ph, pw, out=None):
    if out is None:  # the kept whole-batch matrix: two alternating buffers per shape (probe only)
        n, c, h, w = x.shape
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        key = (n, c * kh * kw, oh * ow, x.dtype)
        bufs = pool.setdefault(key, [np.empty(key[:3], x.dtype), np.empty(key[:3], x.dtype), 0])
        bufs[2] ^= 1
        out = bufs[bufs[2]]
    return orig(x, kh, kw, sh, sw, ph, pw, out=out)
r.run(3)
t0 = time.perf_counter(); r.run(3); k = max(1, int(0.5 / ((time.perf_counter() - t0) / 3)))
res = {"fresh": [], "pooled": []}
for rep in range(9):
    for v in res:
        cpu.CONV_SCHEDULE.ops.im2col = orig if v == "fresh" else pooled
        r.run(1)
        t0 = time.perf_counter(); r.run(k); res[v].append((time.perf_counter() - t0) / k)
a, b = (statistics.median(res[v]) * 1e3 for v in res)
print(f"{net} b{bs}: fresh kept matrix {a:.3f} ms, pooled {b:.3f} ms (min {min(res['fresh'])*1e3:.3f} / {min(res['pooled'])*1e3:.3f}), ratio {a/b:.3f}")
