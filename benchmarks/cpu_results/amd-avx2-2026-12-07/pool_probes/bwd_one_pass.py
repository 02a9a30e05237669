import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numpy as np, numba
from numba import njit, prange, uint64 as _u
from minicnn.kernels.cpu import fused

def _bwd2x2(dout, out, idx, dx):
    """One pass for 2x2 windows that tile the plane (h, w even): each window's four pixels
    written once, dout at its switch where out > 0, else 0. A plane whose switch lies outside
    its window is redone as zero + scatter."""
    n, c, oh, ow = dout.shape
    h = dx.shape[2]; w = dx.shape[3]
    m = oh * ow; plane = h * w
    df = dout.reshape(dout.size); of = out.reshape(out.size); jf = idx.reshape(idx.size); gf = dx.reshape(dx.size)
    bad = 0
    for p in prange(n * c):
        gb = p * plane; ob = p * m
        odd = 0
        for oy in range(oh):
            ra = gb + 2 * oy * w
            for ox in range(ow):
                k = _u(ob + oy * ow + ox)
                q = jf[k] - (2 * oy * w + 2 * ox)
                g = 0.0 + df[k] if of[k] > 0 else df[k] * 0  # placeholder
                v = df[k] + 0.0
                pos = of[k] > 0
                z = dx.dtype.type(0) if False else 0.0
                s = _u(ra + 2 * ox)
                gf[s] = v if (pos and q == 0) else 0.0
                gf[s + _u(1)] = v if (pos and q == 1) else 0.0
                gf[s + _u(w)] = v if (pos and q == w) else 0.0
                gf[s + _u(w + 1)] = v if (pos and q == w + 1) else 0.0
                odd += not (q == 0 or q == 1 or q == w or q == w + 1)
        bad += odd
    return dx, bad

ser = njit(cache=False, nogil=True, error_model="numpy")(_bwd2x2)
par = njit(cache=False, nogil=True, error_model="numpy", parallel=True)(_bwd2x2)
numba.set_num_threads(2)
rng = np.random.default_rng(0)
def med(f, reps=201):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e6
for shp in ((4,32,32,32),(4,64,16,16),(4,128,8,8),(64,32,32,32),(64,64,16,16)):
    x = rng.standard_normal(shp, dtype=np.float32)
    out, idx = fused.relu_maxpool2d_forward(x, 2, 2)
    d = rng.standard_normal(out.shape, dtype=np.float32)
    ref = fused.relu_maxpool2d_backward(d, out, idx, shp[2], shp[3], 2, 2)
    dx = np.empty(shp, np.float32)
    got, bad = ser(d, out, idx, dx)
    assert bad == 0 and np.array_equal(got, ref)
    dx2 = np.empty(shp, np.float32)
    cur_s = med(lambda: fused._bwd_ser(d, out, idx, dx2))
    cur_p = med(lambda: fused._bwd_par(d, out, idx, dx2))
    new_s = med(lambda: ser(d, out, idx, dx2))
    new_p = med(lambda: par(d, out, idx, dx2))
    print(shp, 'current serial %.1f parallel %.1f | one pass serial %.1f parallel %.1f us' % (cur_s, cur_p, new_s, new_p))
