"""The blocked forward kernel on one thread alone against two threads at once (each its own
samples, Python threads, the kernels release the GIL): how much the second vCPU adds here.
Usage: python two_threads.py [N per thread] [ROUNDS]"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from minicnn.kernels.cpu import direct_blocked as db

n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
rng = np.random.default_rng(0)
pool = ThreadPoolExecutor(2)
for name, c, o, h, k, p in [("net2 conv2", 32, 64, 16, 5, 2), ("net2 conv3", 64, 128, 8, 5, 2),
                            ("resnet 32", 32, 32, 16, 3, 1)]:
    xs = [rng.standard_normal((n, c, h, h)).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = np.zeros(o, np.float32)
    ys = [np.empty((n, o, h, h), np.float32) for _ in range(2)]
    run = lambda i: db.forward(xs[i], w, b, True, p, p, ys[i])
    run(0)
    one, two = [], []
    for _ in range(rounds):
        t0 = time.perf_counter(); run(0); run(1); one.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); list(pool.map(run, (0, 1))); two.append(time.perf_counter() - t0)
    macs = 2 * n * o * c * k * k * h * h
    t1, t2 = np.median(one), np.median(two)
    print(f"{name}: two calls one after the other {t1*1e3:.2f} ms ({2*macs/t1/1e9:.0f} GF/s), "
          f"at once on two threads {t2*1e3:.2f} ms ({2*macs/t2/1e9:.0f} GF/s): x{t1/t2:.2f}", flush=True)
