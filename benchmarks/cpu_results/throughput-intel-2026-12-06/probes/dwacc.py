import time, numpy as np
from threadpoolctl import threadpool_limits
def best(f, r=40):
    f(); ts=[]
    for _ in range(r):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return min(ts)*1e3
rng=np.random.default_rng(0)
for (K,L,O,n) in [(1600,64,128,2),(800,256,64,2),(75,1024,32,2),(1600,64,128,1),(800,256,64,1)]:
    cols=rng.standard_normal((n,K,L),dtype=np.float32); d=rng.standard_normal((n,O,L),dtype=np.float32)
    scratch=np.empty((K,O),np.float32)
    def old():
        acc=np.zeros((K,O),np.float32)
        for k in range(n):
            acc += np.matmul(cols[k:k+1], d[k:k+1].transpose(0,2,1)).sum(axis=0)
        return acc
    def new():
        acc=np.matmul(cols[0], d[0].T)
        for k in range(1,n):
            acc += np.matmul(cols[k], d[k].T, out=scratch)
        return acc
    def prod_only():
        for k in range(n): np.matmul(cols[k], d[k].T, out=scratch)
    assert np.allclose(old(), new(), rtol=1e-5, atol=1e-3)
    with threadpool_limits(1,"blas"):
        print(f"K={K} L={L} O={O} n={n}: old {best(old):.3f} new {best(new):.3f} products only {best(prod_only):.3f} ms")
