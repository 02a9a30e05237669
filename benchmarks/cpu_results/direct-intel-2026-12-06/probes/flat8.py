"""Variant probe (not kept): up to 8 taps of the whole kernel per pass (offsets across rows) against the
committed row passes and im2col + product, forward only, one thread. python benchmarks/cpu_results/direct-intel-2026-12-06/probes/flat8.py"""
import numpy as np, time, sys
sys.path.insert(0, '.')
from numba import njit, uint64 as _u
from minicnn.kernels.cpu import direct as D, direct_rows
from minicnn.kernels.cpu import conv as kc
from threadpoolctl import threadpool_limits

@njit(fastmath={"contract"}, boundscheck=False)
def taps8(acc, a0, plane, offs, tw, span):
    # acc[a0+p] += sum_t tw[t]*plane[offs[t]+p], groups of 8 then 1
    nt = offs.size
    t = 0
    while t < nt:
        if nt - t >= 8:
            o0,o1,o2,o3,o4,o5,o6,o7 = offs[t],offs[t+1],offs[t+2],offs[t+3],offs[t+4],offs[t+5],offs[t+6],offs[t+7]
            w0,w1,w2,w3,w4,w5,w6,w7 = tw[t],tw[t+1],tw[t+2],tw[t+3],tw[t+4],tw[t+5],tw[t+6],tw[t+7]
            for p in range(span):
                v = acc[_u(a0+p)]
                v += w0*plane[_u(o0+p)]; v += w1*plane[_u(o1+p)]; v += w2*plane[_u(o2+p)]; v += w3*plane[_u(o3+p)]
                v += w4*plane[_u(o4+p)]; v += w5*plane[_u(o5+p)]; v += w6*plane[_u(o6+p)]; v += w7*plane[_u(o7+p)]
                acc[_u(a0+p)] = v
            t += 8
        else:
            o0 = offs[t]; w0 = tw[t]
            for p in range(span):
                acc[_u(a0+p)] += w0*plane[_u(o0+p)]
            t += 1

@njit(boundscheck=False)
def fwd(x, w, b, ph, pw, y):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    hp, wp = h + 2*ph, wd + 2*pw
    oh, ow = hp-kh+1, wp-kw+1
    span = (oh-1)*wp + ow
    xf = x.reshape(x.size); wf = w.reshape(w.size); yf = y.reshape(y.size)
    plane = np.zeros(hp*wp, x.dtype); acc = np.zeros(o*span, x.dtype)
    offs = np.empty(kh*kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            offs[i*kw+j] = i*wp+j
    for s in range(n):
        acc[:] = 0
        for ch in range(c):
            direct_rows.pad_plane(xf, (s*c+ch)*h*wd, h, wd, ph, pw, wp, plane)
            for k in range(o):
                taps8(acc, k*span, plane, offs, wf[(k*c+ch)*kh*kw:(k*c+ch+1)*kh*kw], span)
        for k in range(o):
            for r in range(oh):
                for q in range(ow):
                    yf[((s*o+k)*oh+r)*ow+q] = acc[k*span+r*wp+q] + b[k]
    return y

def bench(f, rep=30):
    f(); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
rng=np.random.default_rng(0)
with threadpool_limits(1):
  for name,(n,c,h,o,k,p) in dict(tut1=(64,3,32,6,5,0),res1=(64,3,32,16,3,1),mnist1=(64,1,28,10,5,0)).items():
    x=rng.standard_normal((n,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,k,k)).astype(np.float32); b=rng.standard_normal(o).astype(np.float32)
    oh=h+2*p-k+1; y=np.empty((n,o,oh,oh),np.float32)
    r=D.conv2d_direct(x,w,b,(1,1),(p,p)); fwd(x,w,b,p,p,y); err=np.abs(r-y).max()/np.abs(r).max()
    def f_i2c():
        cols=kc.im2col(x,k,k,1,1,p,p); yy=np.matmul(w.reshape(o,-1),cols); yy+=b.reshape(1,o,1)
    print(name, 'im2col %.2f rows %.2f flat8 %.2f ms (err %.1e)'%(bench(f_i2c), bench(lambda: D.conv2d_direct(x,w,b,(1,1),(p,p))), bench(lambda: fwd(x,w,b,p,p,y)), err))
