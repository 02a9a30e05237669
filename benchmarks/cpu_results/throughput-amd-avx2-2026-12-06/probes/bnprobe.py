import time, statistics
import numpy as np
from numba import njit, prange
from numba import uint64 as _u
from minicnn.kernels.cpu import batchnorm as B
from minicnn.kernels import reference as R
FM = {"reassoc"}
@njit(fastmath=FM, cache=False, nogil=True)
def rsum(f, base, m, shift):
    s = 0.0
    for k in range(m):
        s += np.float64(f[_u(base + k)]) - shift
    return s
@njit(fastmath=FM, cache=False, nogil=True)
def rsq(f, base, m, mu):
    s = 0.0
    for k in range(m):
        d = np.float64(f[_u(base + k)]) - mu
        s += d * d
    return s
@njit(fastmath=FM, cache=False, nogil=True)
def rdot(a, b, base, m):
    s = 0.0
    for k in range(m):
        s += np.float64(a[_u(base + k)]) * b[_u(base + k)]
    return s
def fwd(x, gamma, beta, eps, affine, m, y, xhat, mean, var, inv_std):
    n = x.shape[0]; c = x.shape[1]
    xf = x.reshape(x.size); yf = y.reshape(y.size); hf = xhat.reshape(xhat.size)
    count = n * m
    for ch in prange(c):
        s = 0.0
        for i in range(n):
            s += rsum(xf, (i * c + ch) * m, m, 0.0)
        mu = s / count
        q = 0.0
        for i in range(n):
            q += rsq(xf, (i * c + ch) * m, m, mu)
        v = q / count
        istd = 1.0 / np.sqrt(v + eps)
        g = np.float64(gamma[ch]) if affine else 1.0
        b = np.float64(beta[ch]) if affine else 0.0
        for i in range(n):
            base = (i * c + ch) * m
            for k in range(m):
                j = _u(base + k)
                h = (xf[j] - mu) * istd
                hf[j] = h
                yf[j] = h * g + b
        mean[ch] = mu; var[ch] = v; inv_std[ch] = istd
    return y, mean, var, xhat, inv_std
def bwd(dy, xhat, inv_std, gamma, affine, m, dx, dgamma, dbeta):
    n = dy.shape[0]; c = dy.shape[1]
    df = dy.reshape(dy.size); hf = xhat.reshape(xhat.size); of = dx.reshape(dx.size)
    count = n * m
    for ch in prange(c):
        sdy = 0.0; sdyx = 0.0
        for i in range(n):
            base = (i * c + ch) * m
            sdy += rsum(df, base, m, 0.0)
            sdyx += rdot(df, hf, base, m)
        dgamma[ch] = sdyx; dbeta[ch] = sdy
        g = np.float64(gamma[ch]) if affine else 1.0
        f = np.float64(inv_std[ch]) * g / count
        for i in range(n):
            base = (i * c + ch) * m
            for k in range(m):
                j = _u(base + k)
                of[j] = f * (count * np.float64(df[j]) - sdy - hf[j] * sdyx)
    return dx, dgamma, dbeta
fser = njit(nogil=True, error_model="numpy")(fwd); fpar = njit(nogil=True, parallel=True, error_model="numpy")(fwd)
bser = njit(nogil=True, error_model="numpy")(bwd); bpar = njit(nogil=True, parallel=True, error_model="numpy")(bwd)
def med(fn, r=30):
    fn(); ts=[]
    for _ in range(r):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
for shape in [(64,16,32,32),(64,32,16,16),(64,64,8,8),(128,16,32,32),(4,16,32,32)]:
    rng=np.random.default_rng(0); x=(rng.standard_normal(shape)*2+1).astype(np.float32)
    c=shape[1]; m=x.size//(shape[0]*c); g=rng.standard_normal(c).astype(np.float32); b=rng.standard_normal(c).astype(np.float32)
    dy=rng.standard_normal(shape).astype(np.float32)
    y0,mu0,v0,h0,s0 = B.batchnorm_forward(x,g,b,1e-5)
    st=[np.empty(c,np.float32) for _ in range(3)]
    out=[]
    for name,ff,bb in [("ser",fser,bser),("par",fpar,bpar)]:
        y1,mu1,v1,h1,s1 = ff(x,g,b,1e-5,True,m,np.empty_like(x),np.empty_like(x),*st)
        dx0,dg0,db0 = B.batchnorm_backward(dy,h0,s0,g)
        dx1,dg1,db1 = bb(dy,h0,s0,g,True,m,np.empty_like(dy),np.empty(c,np.float32),np.empty(c,np.float32))
        err=max(np.abs(y1-y0).max(), np.abs(dx1-dx0).max()/np.abs(dx0).max(), np.abs(dg1-dg0).max()/np.abs(dg0).max())
        tf=med(lambda: ff(x,g,b,1e-5,True,m,np.empty_like(x),np.empty_like(x),*st))
        tb=med(lambda: bb(dy,h0,s0,g,True,m,np.empty_like(dy),np.empty(c,np.float32),np.empty(c,np.float32)))
        out.append(f"{name} fwd {tf:.3f} bwd {tb:.3f} err {err:.1e}")
    tf0=med(lambda: B.batchnorm_forward(x,g,b,1e-5)); tb0=med(lambda: B.batchnorm_backward(dy,h0,s0,g))
    print(shape, f"current fwd {tf0:.3f} bwd {tb0:.3f} |", " | ".join(out))
