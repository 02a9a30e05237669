"""Upper bound of a per-layer plan cache on Net2 / tutorial at batch b: Conv2d.forward/backward
replaced by calls of the kept Launch objects straight from the layer (no checks, no schedule,
no plan lookups), blocks alternating with the normal code. PYTHONPATH=. needed."""
import sys, time
import numpy as np, numba
numba.set_num_threads(2)
from benchmarks.common import MinicnnRunner
from minicnn.nn import conv as convmod
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dd, workspace

net = sys.argv[1]; batch = int(sys.argv[2]); rounds = int(sys.argv[3])
r = MinicnnRunner(net, 'numba', batch)
orig_f, orig_b = convmod.Conv2d.forward, convmod.Conv2d.backward
spy = {}
def spy_launch(self, *args):
    spy.setdefault(_cur[0], []).append((self, args))
    return _call(self, *args)
_call = db.Launch.__call__
_cur = [None]
def rec_f(self, x):
    _cur[0] = (id(self), 'f'); return orig_f(self, x)
def rec_b(self, d):
    _cur[0] = (id(self), 'b'); return orig_b(self, d)
# record which launches (and their shape args) each conv makes, once
db.Launch.__call__ = spy_launch
convmod.Conv2d.forward, convmod.Conv2d.backward = rec_f, rec_b
r.run(1)
db.Launch.__call__ = _call
convmod.Conv2d.forward, convmod.Conv2d.backward = orig_f, orig_b
plans = {}
for (mid, kind), calls in spy.items():
    plans[(mid, kind)] = calls
print([(k[1], [c[0].impl.__name__ for c in v]) for k, v in spy.items()])

def fast_f(self, x):
    (launch, args), = plans[(id(self), 'f')]
    # args: x, w.flat, w0, so, sc, b, has_bias, ph, pw, y, grid
    y = np.empty(args[9].shape, np.float32)
    launch(x, self.weight.data.reshape(-1), args[2], args[3], args[4], self.bias.data, args[6], args[7], args[8], y, args[10])
    self._fast_x = x
    return y
def fast_b(self, d):
    calls = plans[(id(self), 'b')]
    x = self._fast_x
    dx = None
    for launch, args in calls:
        if launch.impl.__name__.startswith('_weight_grad'):
            rows = args[6].shape[0]
            dw = np.empty(self.weight.data.shape, np.float32)
            dws = args[6] if rows > 1 else dw.reshape(1, -1)
            launch(x, d, args[2], args[3], args[4], args[5], dws, workspace.kept("dw_scratch", args[7].shape))
            if rows > 1:
                flat = dw.reshape(-1); flat[...] = dws[0]; flat += dws[1]
        else:
            dx = np.empty(args[9].shape, np.float32)
            w = self.weight.data
            launch(d, w.reshape(-1), args[2], args[3], args[4], w.reshape(-1)[:x.shape[1]], False, args[7], args[8], dx, args[10])
    db_ = d.sum(axis=(0, 2, 3))
    self.weight.accumulate(dw.reshape(self.weight.data.shape)); self.bias.accumulate(db_)
    return dx if self.needs_input_grad else None

def block(k):
    t = time.perf_counter(); r.run(k); return (time.perf_counter() - t) / k
# check the numbers agree
r.run(3)
k = max(5, int(0.3 / block(5)))
res = {'layer-plan': [], 'normal': []}
for i in range(rounds):
    order = ('layer-plan', 'normal') if i % 2 == 0 else ('normal', 'layer-plan')
    for name in order:
        if name == 'layer-plan':
            convmod.Conv2d.forward, convmod.Conv2d.backward = fast_f, fast_b
        else:
            convmod.Conv2d.forward, convmod.Conv2d.backward = orig_f, orig_b
        r.run(2)
        res[name].append(block(k))
a, b = np.array(res['layer-plan']), np.array(res['normal'])
q = a / b
print(f"{net} b{batch}: {k} steps/block, {rounds} rounds; layer-plan {np.median(a)*1e3:.2f} ms, normal {np.median(b)*1e3:.2f} ms; "
      f"ratio {np.median(q):.3f} (quartiles {np.percentile(q,25):.3f}-{np.percentile(q,75):.3f})")
# correctness: one forward+backward each way from the same weights
import copy
def grads(fwd, bwd):
    convmod.Conv2d.forward, convmod.Conv2d.backward = fwd, bwd
    r.opt.zero_grad()
    loss, _, _ = r.objective.forward(r.model, r.x, r.y)
    r.objective.backward(r.model)
    return [p.grad.copy() for p in r.model.parameters()]
g1 = grads(orig_f, orig_b); g2 = grads(fast_f, fast_b)
print('max |diff| per param:', [float(np.abs(a - b).max()) for a, b in zip(g1, g2)])
convmod.Conv2d.forward, convmod.Conv2d.backward = orig_f, orig_b
import resource
def faults(fwd, bwd, k=50):
    convmod.Conv2d.forward, convmod.Conv2d.backward = fwd, bwd
    r.run(5)
    a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    r.run(k)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - a) / k
print('faults per step: normal %.1f, layer-plan %.1f, normal %.1f' % (faults(orig_f, orig_b), faults(fast_f, fast_b), faults(orig_f, orig_b)))
