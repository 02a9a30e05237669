"""Both forward kinds with several tiles on the nets' layers, one thread, GFLOP/s; beside it
OpenBLAS's product of the same layer (im2col's (O x K) @ (K x L) per sample, one thread).
Usage: PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/fwd_kinds.py"""
import time, numpy as np
from threadpoolctl import threadpool_limits
from minicnn.kernels.cpu import direct_blocked as db
LANES = db.LANES
def tm(f, reps=25):
    """The fastest of reps calls, ms (this VM's speed wanders; the minimum is the steadiest)."""
    for _ in range(2): f()
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return np.min(ts) * 1e3
rng = np.random.default_rng(0)
B = np.array
def pos(x, w, b, p, y, ob, qv):
    o, c, kh, kw = w.shape
    st = B([0, c * kh * kw, kh * kw, kw, 1], np.int64)
    return db.run(db._forward_impl, dict(OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv), (x, w.reshape(-1), st, kh, kw, b, True, p, p, y), B([0, x.shape[0]], np.int64))
def chan(x, w, b, p, y, ov, pp):
    o, c, kh, kw = w.shape
    bc = ov * LANES
    wpad = np.zeros((c, kh, kw, -(-o // bc) * bc), np.float32); wpad[..., :o] = w.transpose(1, 2, 3, 0)
    return db.run(db._forward_channels_impl, dict(OV=ov, P=pp, NACC_F=ov * pp), (x, wpad, b, True, p, p, kh, kw, y), B([0, x.shape[0]], np.int64))
print("LANES", LANES, "default pos tile", db.FWD_OB, db.FWD_QV, "SLOTS", db.SLOTS)
layers = [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("net2 conv1", 3, 32, 32, 5),
          ("tut conv1", 3, 6, 32, 5), ("resnet s1", 16, 16, 32, 3), ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3)]
with threadpool_limits(1):
    for name, c, o, hw, k in layers:
        n = 16
        w = rng.standard_normal((o, c, k, k)).astype(np.float32); b = np.zeros(o, np.float32)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        y = np.empty((n, o, hw, hw), np.float32); y2 = np.empty_like(y)
        fl = 2 * n * w.size * hw * hw / 1e9
        cols = rng.standard_normal((n, c * k * k, hw * hw)).astype(np.float32); wm = w.reshape(o, -1)
        out = np.empty((n, o, hw * hw), np.float32)
        t = tm(lambda: np.matmul(wm, cols, out=out))
        line = f"{name} c{c} o{o} {hw}x{hw} k{k}: blas {fl/t*1e3:.0f} | default {'chan' if db.channels_in_lanes(c, o, k, k) else 'pos'} {fl/tm(lambda: db.forward(x, w, b, True, k//2, k//2, y2))*1e3:.0f} | pos"
        pos(x, w, b, k // 2, y, 4, 2)
        for ob, qv in ((4, 2), (2, 4), (3, 3), (4, 3), (6, 2), (2, 6), (3, 4), (8, 1), (12, 1), (1, 8)):
            tt = tm(lambda: pos(x, w, b, k // 2, y2, ob, qv)); assert np.allclose(y, y2, atol=1e-3)
            line += f" {ob}x{qv} {fl/tt*1e3:.0f}"
        if o >= 16:
            line += " | chan"
            for ov, pp in ((4, 3), (2, 6), (2, 5), (1, 12), (3, 4), (2, 4), (4, 2), (1, 8)):
                if ov * LANES > o * 2: continue
                tt = tm(lambda: chan(x, w, b, k // 2, y2, ov, pp)); assert np.allclose(y, y2, atol=1e-3)
                line += f" {ov}x{pp} {fl/tt*1e3:.0f}"
        print(line, flush=True)
