"""Net2's conv layers at batch 4 on numba, 2 threads: forward, backward (dx + dW) and backward without dx (dW alone)
through the conv schedule, and the direct dx / dW kernels called alone (one call, no ranges). Run from the repository
root: PYTHONPATH=. python <this file>."""
import time, numpy as np
import minicnn as mc
mc.set_backend("numba")
from minicnn.kernels import cpu
from benchmarks.machine import set_threads
set_threads(2)
sched = cpu.CONV_SCHEDULE
rng = np.random.default_rng(0)
for (c, o, hw) in [(32, 64, 16), (64, 128, 8), (3, 32, 32)]:
    x = rng.standard_normal((4, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((o, c, 5, 5)).astype(np.float32)
    b = np.zeros(o, np.float32)
    y, cache = sched.conv2d_forward(x, w, b, (1, 1), (2, 2))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    macs = 4 * o * hw * hw * c * 25
    fns = {"fwd": lambda: sched.conv2d_forward(x, w, b, (1, 1), (2, 2)),
           "bwd": lambda: sched.conv2d_backward(dy, cache, True),
           "bwd_nodx": lambda: sched.conv2d_backward(dy, cache, False),
           "dx": lambda: cpu.conv2d_direct_input_grad(dy, w, hw, hw, (1, 1), (2, 2)),
           "dW": lambda: cpu.conv2d_direct_weight_grad(x, dy, 5, 5, (1, 1), (2, 2))}
    for name, fn in fns.items():
        for _ in range(20): fn()
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(50): fn()
            ts.append((time.perf_counter() - t0) / 50)
        t = sorted(ts)[3]
        mult = {"fwd": 1, "bwd": 2, "bwd_nodx": 1, "dx": 1, "dW": 1}[name]
        print(f"{c}->{o} {hw}x{hw} {name:9s} {t*1e3:7.3f} ms  {2*macs*mult/t/1e9:6.1f} GFLOP/s")
