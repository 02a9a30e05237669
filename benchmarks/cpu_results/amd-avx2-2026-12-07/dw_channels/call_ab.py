"""The direct weight gradient alone, cut by input channel or by batch range (two ranges, Numba's
two threads), blocks alternating; medians of 15 calls a block, in us. PYTHONPATH=. needed."""
import sys
import time

import numba
import numpy as np

from minicnn.kernels.cpu import direct, direct_blocked_dw as dd

numba.set_num_threads(2)
rng = np.random.default_rng(0)
LAYERS = {"net2 conv3 b4": (4, 64, 128, 8, 5, 2), "resnet s3 b4": (4, 64, 64, 8, 3, 1)}
for name, (n, c, o, h, k, p) in LAYERS.items():
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    dy = rng.standard_normal((n, o, h, h), dtype=np.float32)
    rg = [(0, n // 2), (n // 2, n)]
    res = {True: [], False: []}
    for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 15):
        for cut in ((True, False) if r % 2 == 0 else (False, True)):
            dd.CHANNEL_PARTS = cut
            direct.conv2d_direct_weight_grad(x, dy, k, k, (1, 1), (p, p), ranges=rg)
            ts = []
            for _ in range(15):
                t = time.perf_counter()
                direct.conv2d_direct_weight_grad(x, dy, k, k, (1, 1), (p, p), ranges=rg)
                ts.append(time.perf_counter() - t)
            res[cut].append(np.median(ts) * 1e6)
    ratio = np.array(res[True]) / np.array(res[False])
    print(f"{name}: by channel {np.median(res[True]):.0f} us, by range {np.median(res[False]):.0f} us; "
          f"channel/range {np.median(ratio):.3f} (quartiles {np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f})")
