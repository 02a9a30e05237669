"""First call of the channels weight gradient's serial and parallel builds (compile, or load from
the cache on the second run). Usage: D=$(mktemp -d); for i in 1 2; do NUMBA_CACHE_DIR=$D PYTHONPATH=. python .../compile_time.py; done"""
import time, numpy as np
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm
c, o, hw, k = 32, 64, 16, 5; p = 2
x = np.zeros((4, c, hw, hw), np.float32); d = np.zeros((4, o, hw, hw), np.float32)
out = np.empty((2, o * c * 25), np.float32); B = np.array([0, 2, 4], np.int64)
for pb in (False, True):
    t = time.perf_counter()
    db._specialised(dwm._weight_grad_channels_impl, parallel_build=pb, OV=2, TR=1, KW=5, NACC_C=10)(x, d, p, p, k, k, out, B)
    print("parallel" if pb else "serial", f"first call {time.perf_counter() - t:.2f} s")
