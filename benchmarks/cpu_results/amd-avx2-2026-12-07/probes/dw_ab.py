"""The weight-gradient kernels with several tiles on the nets' layers, interleaved (9 rounds, each
variant the fastest of 5 calls, median over rounds), one thread, GFLOP/s; beside them OpenBLAS's
product d @ cols^T of the same layer (one thread). Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_ab.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from minicnn.kernels.cpu import direct_blocked_dw as dwm, direct_blocked as db
def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(0)
layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
          ("tut conv2", 6, 16, 14, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
with threadpool_limits(1):
    for name, c, o, hw, k in layers:
        n = 16
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32); d = rng.standard_normal((n, o, hw, hw)).astype(np.float32)
        dw = np.empty((o, c, k, k), np.float32)
        B = np.array([0, n], np.int64)
        fl = 2 * n * dw.size * hw * hw / 1e9
        p = k // 2
        cols = rng.standard_normal((n, c * k * k, hw * hw)).astype(np.float32); dm = d.reshape(n, o, -1); gw = np.empty((o, c * k * k), np.float32)
        def blas():
            for s in range(n):
                np.matmul(dm[s], cols[s].T, out=gw)
        var = {"blas": blas, "today": lambda: dwm.weight_grad(x, d, p, p, k, k, dw)}
        for ob in (1, 2, 3, 4):
            if ob * k <= 14:
                var[f"pos{ob}"] = (lambda ob=ob: db.run(dwm._weight_grad_impl, dict(OB=ob, KW=k, NACC_DW=ob * dwm.KW_MAX), (x, d, p, p, k, k, dw.reshape(1, -1)), B))
        if o >= 8:
            for ov, tr in ((1, 1), (2, 1), (1, k), (2, k) if k == 3 else (3, 1)):
                if ov * tr * k <= 14 and ov * 8 <= 2 * o:
                    var[f"ch{ov}x{tr}"] = (lambda ov=ov, tr=tr: db.run(dwm._weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k), (x, d, p, p, k, k, dw.reshape(1, -1)), B))
        for f in var.values(): f(); f()
        res = {k_: [] for k_ in var}
        for r in range(9):
            for k_, f in var.items():
                res[k_].append(best(f))
        o_ = dw.shape[0]
        kind = "chan" if (o_ >= 64 or (o_ >= 8 and hw * hw <= 256)) else "pos"
        print(f"{name} (today {kind}):" + "".join(f" {k_} {fl/np.median(v):.0f}" for k_, v in res.items()), flush=True)
