"""A batch-4 training step with every backend entry it calls timed inside it (the ops table's
functions wrapped), direct_split_min_macs 0 (every direct conv call split) against the CPU's
limit, 6 alternating rounds of 300 steps: the step's median and each entry's time per step.
Arg: the net; run from the repository root."""
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
ops = r.be.ops
acc = defaultdict(float)
def mk(n, f):
    def g(*a, **k):
        t = time.perf_counter(); res = f(*a, **k); acc[n] += time.perf_counter() - t; return res
    return g
for n in list(vars(ops)):
    f = getattr(ops, n)
    if callable(f):
        setattr(ops, n, mk(n, f))
for n in ('conv2d_direct', 'conv2d_direct_input_grad', 'conv2d_direct_weight_grad'):
    setattr(cpu.CONV_SCHEDULE.ops, n, mk('  ' + n, getattr(cpu.CONV_SCHEDULE.ops, n)))
res = {}
for rnd in range(6):
    for lim in ((0, cpu.DIRECT_SPLIT_MIN_MACS) if rnd % 2 == 0 else (cpu.DIRECT_SPLIT_MIN_MACS, 0)):
        cpu.CONV_SCHEDULE.direct_split_min_macs = lim
        r.run(20); acc.clear()
        t = time.perf_counter(); r.run(300); T = (time.perf_counter() - t) / 300
        res.setdefault(lim, []).append((T, dict(acc)))
keys = sorted(set(k for runs in res.values() for _, a in runs for k in a))
lims = sorted(res)
print('entry'.ljust(34) + ''.join(('limit %d' % l).rjust(18) for l in lims))
print('step'.ljust(34) + ''.join(('%.1f us' % (np.median([T for T, _ in res[l]]) * 1e6)).rjust(18) for l in lims))
for k in keys:
    print(k.ljust(34) + ''.join(('%.1f us' % (np.median([a.get(k, 0) for _, a in res[l]]) / 300 * 1e6)).rjust(18) for l in lims))
