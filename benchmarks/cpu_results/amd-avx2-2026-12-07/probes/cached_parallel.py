"""Numba's parallel builds loaded from its on-disk cache run other machine code than in the process
that compiled them: for the cache Numba links the parfor's separately compiled body into the
outer module and optimises it again, and that copy is what a later process runs. This probe
times each blocked kernel's parallel build on one range against its serial build on the same
range (one thread each; the ratio should be 1). Run it twice with the same NUMBA_CACHE_DIR: the
first run compiles (the good copy), the second loads from the cache (the copy users run).
Usage: D=$(mktemp -d); for i in 1 2; do NUMBA_CACHE_DIR=$D PYTHONPATH=. python .../cached_parallel.py; done"""
import time, numpy as np
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm
rng = np.random.default_rng(0)
def tm(f, args):
    ts = []
    for _ in range(5):
        s = time.perf_counter(); f(*args); ts.append(time.perf_counter() - s)
    return min(ts)
B = np.array([0, 16], np.int64)
line = []
for name, c, o, hw, k in [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s3", 64, 64, 8, 3)]:
    p = k // 2
    x = rng.standard_normal((16, c, hw, hw)).astype(np.float32); d = rng.standard_normal((16, o, hw, hw)).astype(np.float32)
    w = rng.standard_normal(o * c * k * k).astype(np.float32); b = np.zeros(o, np.float32)
    dws = np.empty((1, o * c * k * k), np.float32)
    ob = dwm.weight_grad_tile(k); ov, tr = dwm.channel_tile(o, k, k)
    cases = {"fwd": (db._forward_impl, dict(OB=db.FWD_OB, QV=db.FWD_QV, Q=db.FWD_QV * db.LANES, NACC=db.FWD_OB * db.FWD_QV, KH=k, KW=k, TS=1),
                     (x, w, 0, c * k * k, k * k, b, True, p, p, np.empty_like(d), B)),
             "dW pos": (dwm._weight_grad_impl, dict(OB=ob, KW=k, NACC_DW=ob * dwm.KW_MAX), (x, d, p, p, k, k, dws, B)),
             "dW chan": (dwm._weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k), (x, d, p, p, k, k, dws, B))}
    for kind, (impl, consts, args) in cases.items():
        ser = db._specialised(impl, **consts); par = db._specialised(impl, parallel_build=True, **consts)
        ser(*args); par(*args)
        r = np.median([tm(par, args) / tm(ser, args) for _ in range(9)])
        line.append(f"{name} {kind} {r:.2f}")
print("t(parallel build, 1 range) / t(serial build):", "; ".join(line))
