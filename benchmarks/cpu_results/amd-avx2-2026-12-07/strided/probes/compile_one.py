import time, numpy as np, sys
from minicnn.kernels.cpu import direct_blocked as db
x = np.random.rand(4, 16, 16, 16).astype(np.float32); w = np.random.rand(16, 16, 3, 3).astype(np.float32)
y = np.empty((4, 16, 16, 16), np.float32)
grid = np.array([16, 16, 0, 0, 1, 1], np.int64)
for par in (False, True):
  for kh in (3, 1):
    k = db._specialised(db._forward_impl, parallel_build=par, **db._positions_consts(kh, kh, 1, kh, 1, 1, 1))
    t = time.perf_counter()
    k(x, w.reshape(-1), 0, 16 * kh * kh, kh * kh, w.reshape(-1)[:16], False, kh // 2, kh // 2, y, grid, np.array([0, 2, 4]))
    print(f"parallel={par} {kh}x{kh}: compile + first call {time.perf_counter() - t:.2f} s", flush=True)
