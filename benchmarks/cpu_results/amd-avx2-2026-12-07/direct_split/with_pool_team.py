"""Training steps, one process, blocks alternating: every direct call split and the fused ReLU +
max-pool on Numba's threads from any size, against the defaults. Args: net batch rounds; run from
the repository root."""
import sys, time
sys.path.insert(0, '.')
import numpy as np, numba
numba.set_num_threads(2)
from benchmarks.common import MinicnnRunner
from minicnn.kernels import cpu
from minicnn.kernels.cpu import fused
net, batch, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = MinicnnRunner(net, 'numba', batch)
def setc(on):
    cpu.CONV_SCHEDULE.direct_split_min_macs = 0 if on else cpu.DIRECT_SPLIT_MIN_MACS
    fused.RELU_MAXPOOL_TEAM_MIN = 0 if on else 1 << 16
def block(k):
    t = time.perf_counter(); r.run(k); return (time.perf_counter() - t) / k
setc(True); r.run(5); setc(False); r.run(5)
k = max(5, int(0.3 / block(5)))
res = {True: [], False: []}
for i in range(rounds):
    for on in ((True, False) if i % 2 == 0 else (False, True)):
        setc(on); r.run(2); res[on].append(block(k))
a, b = np.array(res[True]), np.array(res[False]); q = a / b
print(f"{net} b{batch}: split-any + relu-pool team / default {np.median(a)*1e3:.3f} / {np.median(b)*1e3:.3f} ms, ratio {np.median(q):.3f} (quartiles {np.percentile(q,25):.3f}-{np.percentile(q,75):.3f})")
