"""The residual merge alone: relu(a + b) as NumPy's add + the ReLU kernel (unfused) against the
add + ReLU kernel (fused), ResNet-20's shapes, 2 threads, interleaved; medians of 21 calls in ms."""
import time, numpy as np, numba
numba.set_num_threads(2)
from minicnn.kernels.cpu import activations, fused
def med(f, k=21):
    ts = []
    for _ in range(k):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return sorted(ts)[k // 2] * 1e3
rng = np.random.default_rng(0)
for shape in [(256, 16, 32, 32), (256, 32, 16, 16), (256, 64, 8, 8), (64, 16, 32, 32), (64, 64, 8, 8)]:
    a = rng.standard_normal(shape).astype(np.float32); b = rng.standard_normal(shape).astype(np.float32)
    res = {"unfused": [], "fused": []}
    for _ in range(3):
        res["unfused"].append(med(lambda: activations.relu_forward(a + b)))
        res["fused"].append(med(lambda: fused.add_relu_forward(a, b)))
    print(shape, {k: [round(v, 3) for v in vs] for k, vs in res.items()}, flush=True)
