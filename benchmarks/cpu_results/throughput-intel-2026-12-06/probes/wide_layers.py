"""Per conv layer, the CPU schedule's forward + backward with wide on/off, alternating blocks, in one
process; numba threads from argv[2] (default 2). python wide_layers.py N [threads] [rounds]"""
import sys, time
import numpy as np, numba
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
S = cpu.CONV_SCHEDULE
n = int(sys.argv[1]); numba.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
LAYERS = [("net2.conv1", 3, 32, 32, 5, 2), ("net2.conv2", 32, 16, 64, 5, 2), ("net2.conv3", 64, 8, 128, 5, 2),
          ("tut.conv2", 6, 14, 16, 5, 0), ("res.16", 16, 32, 16, 3, 1), ("res.32", 32, 16, 32, 3, 1),
          ("res.64", 64, 8, 64, 3, 1)]
rng = np.random.default_rng(0)

def step(x, w, b, p, dy, need_dx):
    y, cache = S.conv2d_forward(x, w, b, (1, 1), (p, p))
    S.conv2d_backward(dy, cache, need_dx=need_dx)

for name, c, h, o, k, p in LAYERS:
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.05
    b = rng.standard_normal(o, dtype=np.float32)
    oh = h + 2 * p - k + 1
    dy = rng.standard_normal((n, o, oh, oh), dtype=np.float32)
    need_dx = c != 3
    res = {True: [], False: []}
    reps = max(3, int(2e8 // (n * o * c * k * k * oh * oh * 6)))
    for r in range(rounds):
        for flag in ((True, False) if r % 2 else (False, True)):
            S.wide = flag
            step(x, w, b, p, dy, need_dx)
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter(); step(x, w, b, p, dy, need_dx); ts.append(time.perf_counter() - t0)
            res[flag].append(np.median(ts) * 1e3)
    S.wide = False
    on, off = np.median(res[True]), np.median(res[False])
    ratios = np.array(res[True]) / np.array(res[False])
    print(f"{name} b{n}: per-sample {off:.3f} ms, wide {on:.3f} ms, wide/per-sample {np.median(ratios):.3f} "
          f"({np.percentile(ratios, 25):.3f}-{np.percentile(ratios, 75):.3f})", flush=True)
