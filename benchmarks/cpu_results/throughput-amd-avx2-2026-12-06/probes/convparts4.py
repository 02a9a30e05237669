import time, statistics, sys
import numpy as np, numba
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
S = cpu.CONV_SCHEDULE
numba.set_num_threads(int(sys.argv[2]))
def med(fn, r=41):
    fn(); ts=[]
    for _ in range(r):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
n=int(sys.argv[1])
for c,h,o,k,p in [(3,32,6,5,0),(6,14,16,5,0)]:
    oh=h-k+1+2*p
    rng=np.random.default_rng(0)
    x=rng.standard_normal((n,c,h,h),dtype=np.float32); w=rng.standard_normal((o,c,k,k),dtype=np.float32)*0.1; bb=np.zeros(o,np.float32)
    y,cache=S.conv2d_forward(x,w,bb,(1,1),(p,p))
    dy=rng.standard_normal(y.shape,dtype=np.float32)
    f=med(lambda: S.conv2d_forward(x,w,bb,(1,1),(p,p)))
    fnb=med(lambda: S.conv2d_forward(x,w,None,(1,1),(p,p)))
    b=med(lambda: S.conv2d_backward(dy,cache, need_dx=(c>3)))
    cols=np.empty((n,c*k*k,oh*oh),np.float32); w2=w.reshape(o,-1); out=np.empty((n,o,oh*oh),np.float32)
    d2=dy.reshape(n,o,oh*oh); dc=np.empty((n,c*k*k,oh*oh),np.float32); dx=np.empty((n,c,h,h),np.float32)
    t=dict(im2col=med(lambda: cpu.im2col(x,k,k,1,1,p,p,out=cols)),
      fwdmm=med(lambda: np.matmul(w2,cols,out=out)),
      bias=med(lambda: out.__iadd__(bb.reshape(1,o,1))),
      dwmm=med(lambda: np.matmul(cols,d2.transpose(0,2,1)).sum(0)),
      dcmm=med(lambda: np.matmul(w2.T,d2,out=dc)),
      col2im=med(lambda: cpu.col2im(dc,n,c,h,h,k,k,1,1,p,p,out=dx)))
    print(f"c={c} h={h} o={o}: conv fwd {f:.3f} (no bias {fnb:.3f}; serial pieces {t['im2col']+t['fwdmm']+t['bias']:.3f}), bwd {b:.3f} |", " ".join(f"{k} {v:.3f}" for k,v in t.items()))
