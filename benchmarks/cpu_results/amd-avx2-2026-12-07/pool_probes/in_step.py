import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numpy as np, numba; numba.set_num_threads(2)
from collections import defaultdict
from benchmarks.common import MinicnnRunner
import minicnn.kernels.cpu.fused as F
import minicnn.kernels.cpu as K
acc = defaultdict(float); cnt = defaultdict(int)
def wrap(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); acc[name] += time.perf_counter() - t; cnt[name] += 1; return r
    setattr(mod, name, g)
r = MinicnnRunner('net2', 'numba', 4)
ops = r.be.ops
print(type(ops))
for name in ('relu_maxpool2d_forward', 'relu_maxpool2d_backward', 'sgd_update', 'matmul'):
    if hasattr(ops, name):
        f = getattr(ops, name)
        def mk(f, name):
            def g(*a, **k):
                t = time.perf_counter(); res = f(*a, **k); acc[name] += time.perf_counter() - t; cnt[name] += 1; return res
            return g
        try:
            setattr(ops, name, mk(f, name))
        except Exception as e:
            print('cannot wrap', name, e)
r.run(30)
acc.clear(); cnt.clear()
t = time.perf_counter(); r.run(300); T = (time.perf_counter() - t) / 300
print('step %.0f us' % (T * 1e6))
for k in acc: print(k, '%.0f us per step, %.1f calls' % (acc[k] / 300 * 1e6, cnt[k] / 300))
