"""A tutorial-net (or other net) batch-4 training step with the direct conv calls timed inside it,
direct_split_min_macs 0 (every call split) against the CPU's limit, 6 alternating rounds of 300
steps: the step's median and each call's time per step. Arg: the net; run from the repository root."""
import sys, time
sys.path.insert(0, '.')
import numpy as np, numba
numba.set_num_threads(2)
from collections import defaultdict
from benchmarks.common import MinicnnRunner
from minicnn.kernels import cpu
from minicnn.kernels.cpu import direct
net = sys.argv[1]
r = MinicnnRunner(net, 'numba', 4)
acc = defaultdict(float)
names = ('conv2d_direct', 'conv2d_direct_input_grad', 'conv2d_direct_weight_grad')
orig = {n: getattr(direct, n) for n in names}
def mk(n, f):
    def g(*a, **k):
        t = time.perf_counter(); res = f(*a, **k); acc[(n, a[0].shape)] += time.perf_counter() - t; return res
    return g
ops = cpu.CONV_SCHEDULE.ops
for n in names:
    setattr(ops, n, mk(n, orig[n]))
res = {}
for rnd in range(6):
    for lim in ((0, cpu.DIRECT_SPLIT_MIN_MACS) if rnd % 2 == 0 else (cpu.DIRECT_SPLIT_MIN_MACS, 0)):
        cpu.CONV_SCHEDULE.direct_split_min_macs = lim
        r.run(20); acc.clear()
        t = time.perf_counter(); r.run(300); T = (time.perf_counter() - t) / 300
        res.setdefault(lim, []).append((T, dict(acc)))
for lim, runs in res.items():
    print('limit', lim, 'step median %.0f us' % (np.median([T for T, _ in runs]) * 1e6))
    keys = sorted(runs[0][1])
    for k in keys:
        print('   %-28s %-18s %.1f us' % (k[0], k[1], np.median([a[k] for _, a in runs]) / 300 * 1e6))
