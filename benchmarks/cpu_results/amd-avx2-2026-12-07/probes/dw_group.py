"""The weight gradient's samples per group (GROUP, float32 elements of a group's planes) on one
range of 32 samples (one thread) and two ranges of 32 (both cores, Numba's threads): does it
scale? Interleaved, 5 rounds of the fastest of 5 calls, median; ms. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_group.py"""
import time, numpy as np
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm
def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(0)
for name, c, o, hw, k in [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("resnet s2", 32, 32, 16, 3)]:
    p = k // 2
    var = {}
    for n, bounds in ((32, [0, 32]), (64, [0, 32, 64])):
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32); d = rng.standard_normal((n, o, hw, hw)).astype(np.float32)
        B = np.array(bounds, np.int64); dws = np.empty((len(bounds) - 1, o * c * k * k), np.float32)
        chan = o >= 64 or (o >= db.LANES and hw * hw <= 256)
        for g in (1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18):
            if chan:
                ov, tr = dwm.channel_tile(o, k, k)
                consts = dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k, GROUP=g); impl = dwm._weight_grad_channels_impl
            else:
                ob = dwm.weight_grad_tile(k)
                consts = dict(OB=ob, KW=k, NACC_DW=ob * dwm.KW_MAX, GROUP=g); impl = dwm._weight_grad_impl
            var[(n, g)] = (lambda impl=impl, consts=consts, x=x, d=d, dws=dws, B=B: db.run(impl, consts, (x, d, p, p, k, k, dws), B))
    for f in var.values(): f()
    res = {k_: [] for k_ in var}
    for r in range(5):
        for k_, f in var.items():
            res[k_].append(best(f))
    print(f"{name}:" + "".join(f" | n{n} g2^{g.bit_length()-1} {np.median(v)*1e3:.2f}" for (n, g), v in res.items()), flush=True)
