"""One thread (numba.set_num_threads(1)): a direct forward / input gradient of Net2's conv2 and conv3
whole, on half the batch (what each core does today) and on half the output (input-gradient: input)
channels for the whole batch (a cut by channel): medians of 41 calls, us."""
import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numpy as np, numba
numba.set_num_threads(1)
from minicnn.kernels.cpu import direct
rng = np.random.default_rng(0)
def med(f, reps=41):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e6
for (n, c, o, h) in ((4, 32, 64, 16), (4, 64, 128, 8), (64, 64, 128, 8)):
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, 5, 5), dtype=np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    dy = rng.standard_normal((n, o, h, h), dtype=np.float32)
    wh = np.ascontiguousarray(w[:o // 2]); bh = b[:o // 2].copy()
    wc = np.ascontiguousarray(w[:, :c // 2])
    xh = x[:n // 2].copy(); dyh = dy[:n // 2].copy()
    for rep in range(2):
        f1 = med(lambda: direct.conv2d_direct(x, w, b, (1, 1), (2, 2)))
        fb = med(lambda: direct.conv2d_direct(xh, w, b, (1, 1), (2, 2)))
        fc = med(lambda: direct.conv2d_direct(x, wh, bh, (1, 1), (2, 2)))
        g1 = med(lambda: direct.conv2d_direct_input_grad(dy, w, h, h, (1, 1), (2, 2)))
        gb = med(lambda: direct.conv2d_direct_input_grad(dyh, w, h, h, (1, 1), (2, 2)))
        gc = med(lambda: direct.conv2d_direct_input_grad(dy, wc, h, h, (1, 1), (2, 2)))
        print(f"n{n} {c}->{o} {h}x{h}: fwd whole {f1:.0f} us, half batch {fb:.0f}, half out-channels {fc:.0f} | "
              f"dx whole {g1:.0f}, half batch {gb:.0f}, half in-channels {gc:.0f}")
