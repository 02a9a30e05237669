"""Variant probe (not kept): the forward with 4 output channels per pass for 5-wide rows, against the committed
kernels (2 per pass) and im2col + product, one thread, batch 64. python benchmarks/cpu_results/direct-intel-2026-12-06/probes/quads.py"""
import numpy as np, time, sys
sys.path.insert(0,'.')
from numba import njit, uint64 as _u
from minicnn.kernels.cpu import direct as D, direct_rows
from minicnn.kernels.cpu import conv as kc
from threadpoolctl import threadpool_limits

@njit(fastmath={"contract"}, boundscheck=False, nogil=True)
def row5_quad(acc, a0, plane, s0, wf, w0, wstride, span, sp):
    t = np.empty(20, wf.dtype)
    for k in range(4):
        for j in range(5):
            t[k*5+j] = wf[w0 + k*wstride + j]
    t00,t01,t02,t03,t04 = t[0],t[1],t[2],t[3],t[4]
    t10,t11,t12,t13,t14 = t[5],t[6],t[7],t[8],t[9]
    t20,t21,t22,t23,t24 = t[10],t[11],t[12],t[13],t[14]
    t30,t31,t32,t33,t34 = t[15],t[16],t[17],t[18],t[19]
    for p in range(span):
        q = _u(s0 + p)
        x0, x1, x2, x3, x4 = plane[q], plane[q + _u(1)], plane[q + _u(2)], plane[q + _u(3)], plane[q + _u(4)]
        i0 = _u(a0 + p); i1 = _u(a0 + sp + p); i2 = _u(a0 + 2*sp + p); i3 = _u(a0 + 3*sp + p)
        v = acc[i0]; v += t00*x0; v += t01*x1; v += t02*x2; v += t03*x3; v += t04*x4; acc[i0] = v
        v = acc[i1]; v += t10*x0; v += t11*x1; v += t12*x2; v += t13*x3; v += t14*x4; acc[i1] = v
        v = acc[i2]; v += t20*x0; v += t21*x1; v += t22*x2; v += t23*x3; v += t24*x4; acc[i2] = v
        v = acc[i3]; v += t30*x0; v += t31*x1; v += t32*x2; v += t33*x3; v += t34*x4; acc[i3] = v

@njit(boundscheck=False, nogil=True)
def fwd4(x, w, b, ph, pw, y):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    hp, wp = h + 2*ph, wd + 2*pw
    oh, ow = hp-kh+1, wp-kw+1
    span = (oh-1)*wp + ow
    xf = x.reshape(x.size); wf = w.reshape(w.size); yf = y.reshape(y.size)
    plane = np.zeros(hp*wp, x.dtype); acc = np.zeros(o*span, x.dtype)
    for s in range(n):
        acc[:] = 0
        for ch in range(c):
            direct_rows.pad_plane(xf, (s*c+ch)*h*wd, h, wd, ph, pw, wp, plane)
            for k in range(0, o, 4):
                for i in range(kh):
                    row5_quad(acc, k*span, plane, i*wp, wf, ((k*c+ch)*kh+i)*kw, c*kh*kw, span, span)
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
  for name,(n,c,h,o,k,p) in dict(tut2=(64,6,14,16,5,0),net2c1=(64,3,32,32,5,2),tut1q=(64,3,32,8,5,0)).items():
    x=rng.standard_normal((n,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,k,k)).astype(np.float32); b=rng.standard_normal(o).astype(np.float32)
    oh=h+2*p-k+1; y=np.empty((n,o,oh,oh),np.float32)
    r=D.conv2d_direct(x,w,b,(1,1),(p,p)); fwd4(x,w,b,p,p,y); err=np.abs(r-y).max()/np.abs(r).max()
    def f_i2c():
        cols=kc.im2col(x,k,k,1,1,p,p); yy=np.matmul(w.reshape(o,-1),cols); yy+=b.reshape(1,o,1)
    print(name, 'im2col %.2f pairs %.2f quads %.2f ms (err %.1e)'%(bench(f_i2c), bench(lambda: D.conv2d_direct(x,w,b,(1,1),(p,p))), bench(lambda: fwd4(x,w,b,p,p,y)), err))
