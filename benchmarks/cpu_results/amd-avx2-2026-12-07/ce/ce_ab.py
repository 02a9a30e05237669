"""In-process A/B of the numba backend's cross-entropy kernels (kernels/cpu/loss.py) against the
reference NumPy code it ran before: one runner, the backend's two table entries swapped in
alternating blocks of training steps; and the layer's forward + backward alone.
Run from the repo root: PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/ce/ce_ab.py tutorial:4 ..."""
import sys, time, timeit
import numba, numpy as np
numba.set_num_threads(2)
import minicnn as mc
from benchmarks.common import MinicnnRunner
from minicnn.kernels import reference as ref
from minicnn.kernels.cpu import loss

def use(ops, kernels):
    src = loss if kernels else ref
    ops.cross_entropy_forward, ops.cross_entropy_backward = src.cross_entropy_forward, src.cross_entropy_backward

for spec in sys.argv[1:]:
    net, bs = spec.split(":"); bs = int(bs)
    r = MinicnnRunner(net, "numba", bs)
    ops = r.be.ops
    for on in (True, False):
        use(ops, on)
        for _ in range(20): r.step()
    res = {True: [], False: []}; k = max(5, int(300 / bs))
    for rnd in range(25):
        for on in ((True, False) if rnd % 2 == 0 else (False, True)):
            use(ops, on)
            t = time.perf_counter()
            for _ in range(k): r.step()
            res[on].append((time.perf_counter() - t) / k * 1e3)
    use(ops, True)
    a, b = np.array(res[True]), np.array(res[False]); q = np.percentile(a / b, [25, 75])
    print(f"{net} b{bs}: kernels {np.median(a):.3f} ms, reference {np.median(b):.3f} ms; kernels/reference "
          f"{np.median(a / b):.3f} (quartiles {q[0]:.3f}-{q[1]:.3f})", flush=True)

mc.set_backend("numba")
ce = mc.nn.CrossEntropyLoss()
x = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32); y = np.arange(4)
ops = mc.backend.current().ops
for on in (False, True, False, True):
    use(ops, on)
    f = lambda: (ce(x, y), ce.backward())
    f()
    print("CrossEntropyLoss forward + backward, (4, 10):", "kernels" if on else "reference",
          "%.1f us" % (min(timeit.repeat(f, number=5000, repeat=5)) / 5000 * 1e6))
use(ops, True)
