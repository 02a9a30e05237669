"""BN evaluation forward, before (y and xhat written: commit e74570b's kernel, rebuilt here) and
after (y only), on ResNet-20's b256 shapes, 2 threads, interleaved; medians of 15 calls in ms."""
import time, numpy as np, numba
from numba import prange, uint64 as _u
from minicnn.kernels.cpu import batchnorm as bn, threads
from minicnn.kernels.cpu._jit import dual, serial
numba.set_num_threads(2)

def _normalize_row(xf, hf, yf, base, m, mu, s, g, b, write_y):  # e74570b's, verbatim
    for k in range(m):
        j = _u(base + k)
        h = (xf[j] - mu) * s
        hf[j] = h
        if write_y:
            yf[j] = h * g + b


_normalize_row = serial(_normalize_row)


def _old_eval_impl(x, gamma, beta, affine, mean, inv_std, m, y, xhat):  # e74570b's _bn_eval_impl, verbatim
    n = x.shape[0]
    c = x.shape[1]
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    hf = xhat.reshape(xhat.size)
    for ch in prange(c):
        for i in range(n):
            _normalize_row(xf, hf, yf, (i * c + ch) * m, m, mean[ch], inv_std[ch], gamma[ch], beta[ch], affine)
    return y, xhat


old_ser, old_par = dual(_old_eval_impl)

def old(x, g, b, mean, var, eps):
    inv = 1.0 / np.sqrt(var + eps); xhat = np.empty_like(x); y = np.empty_like(x)
    threads.element_wise(old_ser, old_par, x.size, bn.BN_PAR_MIN, bn.BN_TEAM_MIN, x, g, b, True, mean, inv,
                         x.size // (x.shape[0] * x.shape[1]), y, xhat)
    return y, xhat, inv

def new(x, g, b, mean, var, eps):
    return bn.batchnorm_forward_eval(x, g, b, mean, var, eps)

def med(f, k=15):
    ts = []
    for _ in range(k):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return sorted(ts)[k // 2] * 1e3
rng = np.random.default_rng(0)
for shape in [(256, 16, 32, 32), (256, 32, 16, 16), (256, 64, 8, 8), (64, 16, 32, 32)]:
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    g, b, mu, var = (rng.random(c).astype(np.float32) + 0.5 for _ in range(4))
    assert np.array_equal(old(x, g, b, mu, var, 1e-5)[0], new(x, g, b, mu, var, 1e-5)[0])
    res = {"before": [], "after": []}
    for _ in range(3):
        res["before"].append(med(lambda: old(x, g, b, mu, var, 1e-5)))
        res["after"].append(med(lambda: new(x, g, b, mu, var, 1e-5)))
    print(shape, {k: [round(v, 2) for v in vs] for k, vs in res.items()}, flush=True)
