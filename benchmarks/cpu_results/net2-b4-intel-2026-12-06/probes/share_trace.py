"""Net2 training steps at batch N on the numba backend, the conv schedule's splits traced:
for each run_split call, its wall time and each share's own time (in its thread), median over
steps. Shows how much of a conv call is the shares' work, their imbalance and the hand-over.
python share_trace.py N [steps]"""
import sys, time, collections
import numpy as np
from minicnn import backend, models, nn, optim
backend.set_backend("numba")
from minicnn.kernels import cpu

n = int(sys.argv[1]); steps = int(sys.argv[2]) if len(sys.argv) > 2 else 100
S = cpu.CONV_SCHEDULE
rec = collections.defaultdict(list)
cur = {}
orig_run = S.run

def run(fn, items):
    def timed(share):
        t0 = time.perf_counter(); r = fn(share); cur.setdefault("shares", []).append(time.perf_counter() - t0); return r
    cur.clear()
    t0 = time.perf_counter(); r = orig_run(timed, items); wall = time.perf_counter() - t0
    rec[cur_name[0]].append((wall, sorted(cur["shares"])))
    return r
S.run = run
cur_name = [None]
for name in ("conv2d_forward", "conv2d_backward"):
    f = getattr(S, name)
    def wrap(*a, _f=f, _n=name, **k):
        cur_name[0] = f"{_n} C={ (a[0].shape[1] if _n.endswith('forward') else a[1][0].shape[1]) }"
        t0 = time.perf_counter(); r = _f(*a, **k); rec[cur_name[0] + " total"].append((time.perf_counter() - t0, []))
        return r
    setattr(S, name, wrap)
backend.current().ops.conv2d_forward = S.conv2d_forward
backend.current().ops.conv2d_backward = S.conv2d_backward

m = models.Net2(); opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
lossf = nn.CrossEntropyLoss()
rng = np.random.default_rng(0)
x = rng.standard_normal((n, 3, 32, 32), dtype=np.float32); y = rng.integers(0, 10, n)
def step():
    opt.zero_grad(); out = m(x); lossf(out, y); m.backward(lossf.backward()); opt.step()
for _ in range(5): step()
rec.clear()
ts = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(f"net2 b{n}: median step {np.median(ts)*1e3:.3f} ms")
for k in sorted(rec):
    v = rec[k]
    wall = np.median([a for a, _ in v]) * 1e3
    if v[0][1]:
        sh = np.median(np.array([s for _, s in v]), axis=0) * 1e3
        print(f"{k:32s} split wall {wall:.3f} ms, shares (sorted) {' '.join(f'{s:.3f}' for s in sh)}")
    else:
        print(f"{k:32s} whole call {wall:.3f} ms")
