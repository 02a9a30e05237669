import time, statistics, sys
import numpy as np, numba
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
S = cpu.CONV_SCHEDULE
numba.set_num_threads(int(sys.argv[2]) if len(sys.argv)>2 else 1)
def med(fn, r=15):
    fn(); ts=[]
    for _ in range(r):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
n=int(sys.argv[1])
for c,h,o in [(16,32,16),(32,16,32),(64,8,64)]:
    rng=np.random.default_rng(0)
    x=rng.standard_normal((n,c,h,h),dtype=np.float32); w=rng.standard_normal((o,c,3,3),dtype=np.float32)*0.1
    y,cache=S.conv2d_forward(x,w,None,(1,1),(1,1))
    dy=rng.standard_normal(y.shape,dtype=np.float32)
    f=med(lambda: S.conv2d_forward(x,w,None,(1,1),(1,1)))
    b=med(lambda: S.conv2d_backward(dy,cache))
    cols=np.empty((1,c*9,h*h),np.float32); w2=w.reshape(o,-1); out=np.empty((1,o,h*h),np.float32)
    d2=dy.reshape(n,o,h*h); dc=np.empty((1,c*9,h*h),np.float32); dx=np.empty((1,c,h,h),np.float32)
    dwt=np.zeros((c*9,o),np.float32)
    def im():
        for i in range(n): cpu.im2col(x[i:i+1],3,3,1,1,1,1,out=cols)
    def mm():
        for i in range(n): np.matmul(w2,cols,out=out)
    def mdw():
        for i in range(n): np.matmul(cols[0],d2[i].T,out=dwt)
    def mdc():
        for i in range(n): np.matmul(w2.T,d2[i],out=dc[0])
    def c2i():
        for i in range(n): cpu.col2im(dc,1,c,h,h,3,3,1,1,1,1,out=dx)
    t=dict(im2col=med(im),fwdmm=med(mm),dwmm=med(mdw),dcmm=med(mdc),col2im=med(c2i))
    print(f"c={c} h={h}: conv fwd {f:.2f} (pieces {t['im2col']+t['fwdmm']:.2f}), bwd {b:.2f} (pieces {t['im2col']+t['dwmm']+t['dcmm']+t['col2im']:.2f}) |", " ".join(f"{k} {v:.2f}" for k,v in t.items()))
