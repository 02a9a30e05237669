"""(Updated to the kernels' later signature: the weight read in place through its strides.)
The blocked kernels' tile shapes on the nets' layers, one thread, alternating rounds (median of
the rounds' best-of-3): forward OB x QV in {4 x 3, 8 x 2} (LANES 16) and the weight gradient's
OB in {4, 8} (or, with dw-kinds: positions in the lanes against channels in the lanes),
beside im2col + BLAS. Usage: python tiles.py [N] [ROUNDS] [tiles|dw-kinds]"""
import sys
import time

import numpy as np

from minicnn.kernels.cpu import conv as cv
from minicnn.kernels.cpu import direct_blocked as db
from minicnn.kernels.cpu.simd import LANES

n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
WHAT = sys.argv[3] if len(sys.argv) > 3 else "tiles"  # or dw-kinds, fwd-tiles, fwd-kinds
rng = np.random.default_rng(0)
LAYERS = [("tutorial conv1", 3, 6, 32, 5, 0), ("net2 conv1", 3, 32, 32, 5, 2), ("net2 conv2", 32, 64, 16, 5, 2),
          ("net2 conv3", 64, 128, 8, 5, 2), ("resnet 16", 16, 16, 32, 3, 1), ("resnet 32", 32, 32, 16, 3, 1),
          ("resnet 64", 64, 64, 8, 3, 1)]


def best(f):
    f()
    t = []
    for _ in range(3):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


print(f"LANES {LANES}, batch {n}, {rounds} rounds; ms, median of rounds")
for name, c, o, h, k, p in LAYERS:
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = np.zeros(o, np.float32)
    oh = h + 2 * p - k + 1
    y = np.empty((n, o, oh, oh), np.float32)
    d = rng.standard_normal(y.shape).astype(np.float32)
    dw = np.empty_like(w)
    fwd = {}
    shapes = {"tiles": ((4, 3), (8, 2)), "fwd-tiles": ((8, 2), (8, 3), (6, 4), (4, 6), (12, 2)), "fwd-kinds": ()}
    for ob, qv in shapes.get(WHAT, ((db.FWD_OB, db.FWD_QV),)) if LANES == 16 else ((db.FWD_OB, db.FWD_QV),):
        kern = db._specialised(db._forward_impl, OB=ob, QV=qv, Q=qv * LANES, NACC=ob * qv)
        st = np.array([0, c * k * k, k * k, k, 1], np.int64)
        fwd[f"fwd {ob}x{qv}"] = (lambda kern=kern, st=st: kern(x, w.reshape(-1), st, k, k, b, True, p, p, y))
    if WHAT == "fwd-kinds":  # forward and input gradient: positions in the lanes against channels
        dx = np.empty_like(x)
        for ch in (False, True):
            lab = "channels" if ch else "positions"
            fwd[f"fwd {lab}"] = (lambda ch=ch: db.forward(x, w, b, True, p, p, y, channels=ch))
            fwd[f"dx {lab}"] = (lambda ch=ch: db.forward(d, w, w.reshape(-1)[:c], False, k - 1 - p, k - 1 - p, dx,
                                                           flipped=True, channels=ch))
    if WHAT == "dw-kinds":  # the weight gradient: positions in the lanes against channels in the lanes
        ob = db.weight_grad_tile(k)
        kern = db._specialised(db._weight_grad_impl, OB=ob, KW=k, NACC_DW=ob * db.KW_MAX)
        fwd[f"dw positions {ob}"] = (lambda kern=kern: kern(x, d, p, p, k, k, dw))
        ov, tr = db.channel_tile(o, k, k)
        kern = db._specialised(db._weight_grad_channels_impl, OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k)
        fwd[f"dw channels {ov}x{tr}"] = (lambda kern=kern: kern(x, d, p, p, k, k, dw))
    elif WHAT == "tiles":
        for ob in (4, 8):
            kern = db._specialised(db._weight_grad_impl, OB=ob, KW=k, NACC_DW=ob * db.KW_MAX)
            fwd[f"dw {ob}"] = (lambda kern=kern: kern(x, d, p, p, k, k, dw))
    wm = w.reshape(o, -1)
    if WHAT != "fwd-kinds":
        fwd["fwd im2col+gemm"] = lambda: np.matmul(wm, cv.im2col(x, k, k, 1, 1, p, p))
        fwd["dw im2col+gemm"] = lambda: np.matmul(cv.im2col(x, k, k, 1, 1, p, p),
                                                  d.reshape(n, o, -1).transpose(0, 2, 1)).sum(0)
    res = {key: [] for key in fwd}
    for r in range(rounds):
        keys = list(fwd) if r % 2 == 0 else list(fwd)[::-1]
        for key in keys:
            res[key].append(best(fwd[key]) * 1e3)
    print(f"{name:15s} " + "  ".join(f"{key} {np.median(v):.3f}" for key, v in res.items()), flush=True)
