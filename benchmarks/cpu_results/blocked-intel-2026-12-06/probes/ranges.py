"""The schedule's direct paths at batch 64 with the batch cut into kept_split ranges (8, the
default, against 2: one range per thread), forward and backward of Net2's conv2/conv3 and a
ResNet 32-channel layer, alternating rounds. Usage: python ranges.py [N] [ROUNDS]"""
import sys
import time

import numpy as np

from minicnn.kernels import cpu

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
S = cpu.CONV_SCHEDULE
rng = np.random.default_rng(0)
for name, c, o, h, k, p in [("net2 conv2", 32, 64, 16, 5, 2), ("net2 conv3", 64, 128, 8, 5, 2),
                            ("resnet 32", 32, 32, 16, 3, 1)]:
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = np.zeros(o, np.float32)
    d = rng.standard_normal((n, o, h, h)).astype(np.float32)
    fwd = lambda: S.direct_conv2d_forward(x, w, b, (1, 1), (p, p), (n, o, h, h))
    bwd = lambda: S.direct_backward(d, x, w, (1, 1), (p, p), True)
    res = {}
    for r in range(rounds):
        for ks in ((8, 2) if r % 2 == 0 else (2, 8)):
            S.kept_split = ks
            for label, f in (("fwd", fwd), ("bwd", bwd)):
                f()
                t0 = time.perf_counter(); f(); f(); t = (time.perf_counter() - t0) / 2
                res.setdefault((label, ks), []).append(t)
    S.kept_split = 8
    print(name, "  ".join(f"{lab} ranges {ks}: {np.median(v)*1e3:.2f} ms" for (lab, ks), v in sorted(res.items())),
          flush=True)
