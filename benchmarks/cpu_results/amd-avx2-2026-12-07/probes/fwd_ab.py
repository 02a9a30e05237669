"""Today's forward kernels (taps at run time, the 8-lane tiles 4x2 / 4x3) against constant-tap
copies with other tiles, interleaved: 9 rounds, in each every variant the fastest of 5 calls;
the median over rounds, GFLOP/s, one thread. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/fwd_ab.py"""
import sys, time, numpy as np
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from threadpoolctl import threadpool_limits
from minicnn.kernels.cpu import direct_blocked as db
import fwd_const as fc, chan_const as cc
B = np.array
def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(1)
layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
          ("tut conv2", 6, 16, 14, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
with threadpool_limits(1):
    for name, c, o, hw, k in layers:
        n = 16
        w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32)
        fl = 2 * n * w.size * hw * hw / 1e9
        p = k // 2
        var = {"today": lambda: db.forward(x, w, b, True, p, p, y)}
        for ob, qv in ((4, 2), (3, 4), (2, 6), (2, 5), (4, 3)):
            var[f"pos{ob}x{qv}c"] = (lambda ob=ob, qv=qv: fc.const(x, w, b, p, y, ob, qv))
        if c >= 16 and o >= 32:
            for ov, pp in ((2, 6), (2, 5), (3, 4), (4, 3), (1, 12)):
                var[f"ch{ov}x{pp}c"] = (lambda ov=ov, pp=pp: cc.const(x, w, b, p, y, ov, pp))
        for f in var.values(): f(); f()
        res = {k_: [] for k_ in var}
        for r in range(9):
            for k_, f in var.items():
                res[k_].append(best(f))
        print(f"{name} ({'chan' if db.channels_in_lanes(c, o, k, k) else 'pos'} today):" + "".join(f" {k_} {fl/np.median(v):.0f}" for k_, v in res.items()), flush=True)
