# A quick Numba prototype of the Linear layers' small products at batch 4 (not built into minicnn) against
# NumPy/OpenBLAS, one process, min of 5 x 2000 calls, microseconds. Run: python benchmarks/cpu_results/amd-avx2-2026-12-07/small_gemm/small_gemm.py
import numpy as np, timeit, numba
from numba import njit
@njit(cache=False, fastmath={"reassoc","contract"}, nogil=True)
def xwt(x, w, out):
    # out (M, N) = x (M, K) @ w (N, K)^T, M <= 4 rows at a time
    m, k = x.shape; n = w.shape[0]
    for r0 in range(0, m, 4):
        r1 = min(m, r0 + 4)
        for j in range(n):
            s0 = np.float32(0); s1 = np.float32(0); s2 = np.float32(0); s3 = np.float32(0)
            if r1 - r0 == 4:
                for t in range(k):
                    wv = w[j, t]
                    s0 += x[r0, t] * wv; s1 += x[r0+1, t] * wv; s2 += x[r0+2, t] * wv; s3 += x[r0+3, t] * wv
                out[r0, j] = s0; out[r0+1, j] = s1; out[r0+2, j] = s2; out[r0+3, j] = s3
            else:
                for r in range(r0, r1):
                    s = np.float32(0)
                    for t in range(k): s += x[r, t] * w[j, t]
                    out[r, j] = s
    return out
@njit(cache=False, fastmath={"reassoc","contract"}, nogil=True)
def dxw(d, w, out):
    # out (M, K) = d (M, N) @ w (N, K)
    m, n = d.shape; k = w.shape[1]
    for r in range(m):
        for t in range(k): out[r, t] = 0
        for j in range(n):
            s = d[r, j]
            for t in range(k): out[r, t] += s * w[j, t]
    return out
@njit(cache=False, fastmath={"reassoc","contract"}, nogil=True)
def dw_outer(d, x, out):
    # out (N, K) = d (M, N)^T @ x (M, K), M small
    m, n = d.shape; k = x.shape[1]
    for j in range(n):
        for t in range(k): out[j, t] = 0
        for r in range(m):
            s = d[r, j]
            for t in range(k): out[j, t] += s * x[r, t]
    return out
rng=np.random.default_rng(0)
def t(f): f(); return min(timeit.repeat(f, number=2000, repeat=5))/2000*1e6
for (m,k,n) in [(4,400,120),(4,120,84),(4,84,10),(4,2048,64),(4,64,10)]:
    x=rng.standard_normal((m,k)).astype(np.float32); w=rng.standard_normal((n,k)).astype(np.float32); out=np.empty((m,n),np.float32)
    d=rng.standard_normal((m,n)).astype(np.float32); o2=np.empty((m,k),np.float32); o3=np.empty((n,k),np.float32)
    print((m,k,n), "fwd blas %.1f numba %.1f | dx blas %.1f numba %.1f | dW blas %.1f numba %.1f" % (
        t(lambda: x@w.T), t(lambda: xwt(x,w,out)), t(lambda: d@w), t(lambda: dxw(d,w,o2)), t(lambda: d.T@x), t(lambda: dw_outer(d,x,o3))),
        "err", np.abs(xwt(x,w,out)-x@w.T).max(), np.abs(dw_outer(d,x,o3)-d.T@x).max())
