"""Per-call host (Python) time of the cupy conv wrappers, NumPy standing in for CuPy and every launch a no-op
(commit 93e17d5: conv_igemm._launch_plan). Run from the repository root: PYTHONPATH=. python <this file>."""
import time, numpy as np
import minicnn.kernels.cuda as ck
from minicnn.kernels.cuda import launch, conv_igemm, conv

class FakeCupy:
    @staticmethod
    def empty(shape, dtype=np.float64): return np.empty(shape, dtype)
    ascontiguousarray = staticmethod(np.ascontiguousarray)
launch._cupy = lambda: FakeCupy
launch._on_device = lambda *a: True
launch.get_function = lambda module, kernel: (lambda grid, block, args: None)
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
b = np.zeros(16, np.float32)
dy = np.empty((64, 16, 32, 32), np.float32)
out = np.empty_like(dy); dxo = np.empty_like(x); dwo = np.empty_like(w)
cases = {
  "igemm fwd": lambda: conv_igemm.conv2d_igemm(x, w, b, (1, 1), (1, 1), out=out),
  "igemm dx": lambda: conv_igemm.conv2d_igemm_input_grad(dy, w, 32, 32, (1, 1), (1, 1), out=dxo),
  "igemm dW": lambda: conv_igemm.conv2d_igemm_weight_grad(x, dy, 3, 3, (1, 1), (1, 1), out=dwo),
  "direct fwd": lambda: conv.conv2d_direct(x, w, b, (1, 1), (1, 1), out=out),
  "im2col": lambda: conv.im2col(x, 3, 3, 1, 1, 1, 1),
}
for name, fn in cases.items():
    for _ in range(200): fn()
    best = []
    for r in range(5):
        t0 = time.perf_counter()
        for _ in range(2000): fn()
        best.append((time.perf_counter() - t0) / 2000 * 1e6)
    print(f"{name:12s} {min(best):6.1f} us  (median {sorted(best)[2]:.1f})")
