"""One thread, batch 64: each first-layer shape through im2col + product (+ col2im) and through the direct
kernels, median of 30 calls (ms). python benchmarks/cpu_results/direct-intel-2026-12-06/probes/kernels_one_thread.py"""
import numpy as np, time, sys
sys.path.insert(0, '.')
import minicnn as mc
from minicnn.kernels.cpu import direct as D
from minicnn.kernels.cpu import conv as kc
from threadpoolctl import threadpool_limits
def bench(f, rep=30):
    f(); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
rng=np.random.default_rng(0)
with threadpool_limits(1):
  for name,(n,c,h,o,k,p) in dict(tut1=(64,3,32,6,5,0),tut2=(64,6,14,16,5,0),net2c1=(64,3,32,32,5,2),res1=(64,3,32,16,3,1),mnist1=(64,1,28,10,5,0),deconv1T=(64,3,32,6,5,0)).items():
    x=rng.standard_normal((n,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,k,k)).astype(np.float32); b=rng.standard_normal(o).astype(np.float32)
    oh=h+2*p-k+1; d=rng.standard_normal((n,o,oh,oh)).astype(np.float32)
    K=c*k*k
    def f_i2c():
        cols=kc.im2col(x,k,k,1,1,p,p); y=np.matmul(w.reshape(o,-1),cols); y+=b.reshape(1,o,1)
    def b_i2c():
        cols=kc.im2col(x,k,k,1,1,p,p); acc=None; d3=d.reshape(n,o,-1)
        for s in range(n):
            t=cols[s]@d3[s].T; acc=t if acc is None else acc+t
    def dx_i2c():
        dc=np.matmul(w.reshape(o,-1).T, d.reshape(n,o,-1)); kc.col2im(dc,n,c,h,h,k,k,1,1,p,p)
    r=[bench(f_i2c),bench(lambda: D.conv2d_direct(x,w,b,(1,1),(p,p))),bench(b_i2c),bench(lambda: D.conv2d_direct_weight_grad(x,d,k,k,(1,1),(p,p))),bench(dx_i2c),bench(lambda: D.conv2d_direct_input_grad(d,w,h,h,(1,1),(p,p)))]
    print(f"{name:8s} w={w.size:5d} fwd im2col {r[0]:.2f} direct {r[1]:.2f} | dW im2col {r[2]:.2f} direct {r[3]:.2f} | dx im2col {r[4]:.2f} direct {r[5]:.2f} ms")
