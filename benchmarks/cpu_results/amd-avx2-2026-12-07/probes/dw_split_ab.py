"""The blocked weight gradient cut by batch range (one sum per range, added after) or by input
channel (``direct_blocked_dw.channel_blocks``), on the layers of Net2 and ResNet-20, two ranges
on both cores as the conv schedule calls it (out=None, as in the net). The two ways alternate
call by call; 3 rounds, each the median of K calls per way; ms. Needs ../dw_split/channel_split.patch applied (the change was not kept). Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_split_ab.py [batch ...]"""
import sys, time
import numpy as np
from minicnn.kernels.cpu import direct, direct_blocked_dw as dwm

rng = np.random.default_rng(0)
LAYERS = [("net2 conv2", 32, 64, 16, 5, 1), ("net2 conv3", 64, 128, 8, 5, 1),
          ("resnet s1", 16, 16, 32, 3, 1), ("resnet s2", 32, 32, 16, 3, 1), ("resnet s3", 64, 64, 8, 3, 1),
          ("resnet 16->32 s2", 16, 32, 32, 3, 2), ("resnet 32->64 s2", 32, 64, 16, 3, 2)]
WAYS = {"batch": 10 ** 9, "channel": dwm.CHANNELS_PER_PART}
for n in [int(a) for a in sys.argv[1:]] or [4, 64]:
    R = [(0, n // 2), (n // 2, n)]
    K = 60 if n <= 8 else 15
    for name, c, o, hw, k, st in LAYERS:
        p = k // 2
        oh = (hw + 2 * p - k) // st + 1
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        dy = rng.standard_normal((n, o, oh, oh)).astype(np.float32)
        f = lambda: direct.conv2d_direct_weight_grad(x, dy, k, k, (st, st), (p, p), ranges=R)
        for way in WAYS.values():
            dwm.CHANNELS_PER_PART = way; f(); f()
        res = {w: [] for w in WAYS}
        for r in range(3):
            ts = {w: [] for w in WAYS}
            for _ in range(K):
                for w, v in WAYS.items():
                    dwm.CHANNELS_PER_PART = v
                    t = time.perf_counter(); f(); ts[w].append(time.perf_counter() - t)
            for w in WAYS:
                res[w].append(np.median(ts[w]) * 1e3)
        dwm.CHANNELS_PER_PART = WAYS["channel"]
        print(f"b{n} {name}: " + "  ".join(f"{w} " + "/".join(f"{v:.3f}" for v in res[w]) for w in WAYS), flush=True)
