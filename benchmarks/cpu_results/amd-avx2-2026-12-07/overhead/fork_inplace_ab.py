import sys, time, numpy as np, resource
sys.path.insert(0, '.')  # run from the repository root
from benchmarks.common import make_runner
from minicnn.nn import residual
old_bwd = residual.BasicBlock.backward
def new_bwd(self, dout):
    d_sum = self.relu2.backward(dout)
    d_main = self.bn2.backward(d_sum)
    d_main = self.conv2.backward(d_main)
    d_main = self.relu1.backward(d_main)
    d_main = self.bn1.backward(d_main)
    d_main = self.conv1.backward(d_main)
    d_skip = self.shortcut.backward(d_sum)
    if d_main is None:
        return None
    d_main += d_skip
    return d_main
net, batch, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = make_runner('numba', net, batch, 'train', threads=2); r.activate()
def use(new): residual.BasicBlock.backward = new_bwd if new else old_bwd
def block(n):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(n): r.step()
    return (time.perf_counter() - t) / n, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n
for new in (False, True):
    use(new)
    for _ in range(5): r.step()
steps = max(2, int(0.6 / block(2)[0]))
rat, fl = [], {True: [], False: []}
for i in range(rounds):
    res = {}
    for new in ((True, False) if i % 2 == 0 else (False, True)):
        use(new); res[new], f = block(steps); fl[new].append(f)
    rat.append(res[True] / res[False])
print(f'{net} b{batch}: in-place/fresh {np.median(rat):.3f} (quartiles {np.percentile(rat,25):.3f}-{np.percentile(rat,75):.3f}), faults/step fresh {np.median(fl[False]):.0f} in-place {np.median(fl[True]):.0f}, {rounds} rounds of {steps} steps')
