"""Direct conv calls of the tutorial net alone: one batch range (the caller) / two ranges (Numba's
threads), forward, input gradient, weight gradient. Argument: the batch size."""
import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numpy as np, numba
numba.set_num_threads(2)
from minicnn.kernels.cpu import direct
rng = np.random.default_rng(0)
def blk(f, reps=31):
    ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e6
N = int(sys.argv[1]) if len(sys.argv) > 1 else 4
for (c, o, h, k) in ((3, 6, 32, 5), (6, 16, 14, 5)):
    x = rng.standard_normal((N, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    oh = h - k + 1
    dy = rng.standard_normal((N, o, oh, oh), dtype=np.float32)
    one, two = None, [(0, N // 2), (N // 2, N)]
    fs = {}
    for name, rg in (('1 range', one), ('2 ranges', two)):
        fs[('fwd', name)] = lambda rg=rg: direct.conv2d_direct(x, w, b, (1, 1), (0, 0), ranges=rg)
        fs[('dx', name)] = lambda rg=rg: direct.conv2d_direct_input_grad(dy, w, h, h, (1, 1), (0, 0), ranges=rg)
        fs[('dw', name)] = lambda rg=rg: direct.conv2d_direct_weight_grad(x, dy, k, k, (1, 1), (0, 0), ranges=rg)
    for f in fs.values(): f(); f()
    res = {key: [] for key in fs}
    for r in range(9):
        for key, f in fs.items(): res[key].append(blk(f))
    macs = N * o * c * k * k * oh * oh
    print(f"b{N} {c}->{o} {h}x{h} ({macs/1e6:.2f} M MACs):", '; '.join(
        f"{p} {np.median(res[(p, '1 range')]):.0f} / {np.median(res[(p, '2 ranges')]):.0f} us" for p in ('fwd', 'dx', 'dw')))
