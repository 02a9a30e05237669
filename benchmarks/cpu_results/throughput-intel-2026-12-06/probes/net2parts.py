"""Net2's three convs (k5 p2): the schedule's forward/backward (1 and 2 threads) beside their
pieces run serially on the whole batch: im2col, the products, the bias add, col2im.
python net2parts.py N  -> ms, min of 25 (each measured after a warm-up)."""
import sys, time
import numpy as np, numba
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
S = cpu.CONV_SCHEDULE

def best(fn, r=25):
    fn(); ts = []
    for _ in range(r):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3

n = int(sys.argv[1])
rng = np.random.default_rng(0)
for c, h, o in [(3, 32, 32), (32, 16, 64), (64, 8, 128)]:
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, 5, 5), dtype=np.float32) * 0.05
    b = rng.standard_normal(o, dtype=np.float32)
    row = {}
    for t in (1, 2):
        numba.set_num_threads(t)
        y, cache = S.conv2d_forward(x, w, b, (1, 1), (2, 2))
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        row[f"fwd{t}"] = best(lambda: S.conv2d_forward(x, w, b, (1, 1), (2, 2)))
        row[f"bwd{t}"] = best(lambda: S.conv2d_backward(dy, cache, need_dx=c != 3))
    numba.set_num_threads(1)
    cols = cpu.im2col(x, 5, 5, 1, 1, 2, 2); w2 = w.reshape(o, -1); out = np.empty((n, o, h * h), np.float32)
    d = dy.reshape(n, o, h * h); dcols = np.empty_like(cols); dx = np.empty_like(x)
    row["im2col"] = best(lambda: cpu.im2col(x, 5, 5, 1, 1, 2, 2, out=cols))
    row["mm"] = best(lambda: np.matmul(w2, cols, out=out))
    row["bias"] = best(lambda: out.__iadd__(b.reshape(1, o, 1)))
    row["dwT"] = best(lambda: [cols[i] @ d[i].T for i in range(n)])
    row["dcols"] = best(lambda: np.matmul(w2.T, d, out=dcols))
    row["col2im"] = best(lambda: cpu.col2im(dcols, n, c, h, h, 5, 5, 1, 1, 2, 2, out=dx))
    row["db"] = best(lambda: d.sum(axis=(0, 2)))
    print(f"conv {c}->{o} b{n}: " + " ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
