import time, statistics, sys
import numpy as np, numba
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels import cpu
numba.set_num_threads(1)
S = cpu.CONV_SCHEDULE
def med(fn, r=41):
    fn(); ts=[]
    for _ in range(r):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
n=64; c,h,o,k,p=6,14,16,5,0; oh=10
rng=np.random.default_rng(0)
x=rng.standard_normal((n,c,h,h),dtype=np.float32); w=rng.standard_normal((o,c,k,k),dtype=np.float32)*0.1
w2=w.reshape(o,-1); out=np.empty((n,o,oh*oh),np.float32)
buf=np.empty((17,c*k*k,oh*oh),np.float32)
chunks=S.chunks(n, c*k*k*oh*oh*4); print(chunks)
def sched(): S.conv2d_forward(x,w,None,(1,1),(p,p))
def fresh():
    for i,j in chunks:
        cols=cpu.im2col(x[i:j],k,k,1,1,p,p)
        np.matmul(w2,cols,out=out[i:j])
def reuse():
    for i,j in chunks:
        cols=cpu.im2col(x[i:j],k,k,1,1,p,p,out=buf[:j-i])
        np.matmul(w2,cols,out=out[i:j])
def im_only():
    for i,j in chunks:
        cpu.im2col(x[i:j],k,k,1,1,p,p,out=buf[:j-i])
def mm_only():
    for i,j in chunks:
        np.matmul(w2,buf[:j-i],out=out[i:j])
def mm_only_noout():
    for i,j in chunks:
        np.matmul(w2,buf[:j-i])
for name,fn in [("schedule",sched),("fresh cols",fresh),("reused cols",reuse),("im2col only",im_only),("matmul only",mm_only),("matmul no out",mm_only_noout)]:
    print(name, "%.3f ms" % med(fn))
