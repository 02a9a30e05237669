"""ResNet-20's 3x3 stages (16, 32, 64 channels at 32x32, 16x16, 8x8), batch 64, one thread: im2col + products
against the direct kernels, ms. python benchmarks/cpu_results/direct-intel-2026-12-06/probes/resnet_layers.py"""
import numpy as np, time, sys
sys.path.insert(0,'.')
from minicnn.kernels.cpu import direct as D
from minicnn.kernels.cpu import conv as kc
from threadpoolctl import threadpool_limits
def bench(f, rep=20):
    f(); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
rng=np.random.default_rng(0)
with threadpool_limits(1):
  for name,(n,c,h,o,k,p) in dict(res16=(64,16,32,16,3,1),res32=(64,32,16,32,3,1),res64=(64,64,8,64,3,1)).items():
    x=rng.standard_normal((n,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,k,k)).astype(np.float32); b=rng.standard_normal(o).astype(np.float32)
    oh=h+2*p-k+1; d=rng.standard_normal((n,o,oh,oh)).astype(np.float32)
    cols=np.empty((n,c*k*k,oh*oh),np.float32)
    def f_i2c():
        kc.im2col(x,k,k,1,1,p,p,out=cols); yy=np.matmul(w.reshape(o,-1),cols)
    def dw_i2c():
        kc.im2col(x,k,k,1,1,p,p,out=cols); acc=cols[0]@d[0].reshape(o,-1).T
        for s in range(1,n): acc+=cols[s]@d[s].reshape(o,-1).T
    def dx_i2c():
        dc=np.matmul(w.reshape(o,-1).T, d.reshape(n,o,-1)); kc.col2im(dc,n,c,h,h,k,k,1,1,p,p)
    r=[bench(f_i2c),bench(lambda: D.conv2d_direct(x,w,b,(1,1),(p,p))),bench(dw_i2c),bench(lambda: D.conv2d_direct_weight_grad(x,d,k,k,(1,1),(p,p))),bench(dx_i2c),bench(lambda: D.conv2d_direct_input_grad(d,w,h,h,(1,1),(p,p)))]
    print(f"{name} fwd im2col {r[0]:.2f} direct {r[1]:.2f} | dW {r[2]:.2f} / {r[3]:.2f} | dx {r[4]:.2f} / {r[5]:.2f} ms")
