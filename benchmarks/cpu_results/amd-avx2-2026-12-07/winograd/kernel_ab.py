import numpy as np, time, sys
sys.path.insert(0,'/work/main')
from threadpoolctl import threadpool_limits
from kernels.cpu import conv2d_direct, conv2d_direct_input_grad
from kernels.cpu import winograd as wg
rng = np.random.default_rng(0)
def med(f, reps=100):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
shapes = [(4,64,128,8,5),(4,32,64,16,5),(64,32,64,16,5),(64,64,128,8,5),(64,16,16,32,3),(64,32,32,16,3),(64,64,64,8,3),(4,16,16,32,3)]
if len(sys.argv) > 1: shapes = shapes[:int(sys.argv[1])]
for (N,C,K,H,r) in shapes:
    p = r//2
    x = rng.standard_normal((N,C,H,H),dtype=np.float32); w = (rng.standard_normal((K,C,r,r),dtype=np.float32)*0.05).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    y = wg.conv2d(x, w, b, (p,p))
    ref = conv2d_direct(x.astype(np.float64),w.astype(np.float64),b.astype(np.float64),(1,1),(p,p))
    ref32 = conv2d_direct(x,w,b,(1,1),(p,p))
    err = np.abs(y-ref).max()/np.abs(ref).max(); e32 = np.abs(ref32-ref).max()/np.abs(ref).max()
    d = rng.standard_normal(y.shape, dtype=np.float32)
    dx = wg.input_grad(d, w, H, H, (p,p))
    dref = conv2d_direct_input_grad(d.astype(np.float64), w.astype(np.float64), H, H, (1,1), (p,p))
    derr = np.abs(dx-dref).max()/np.abs(dref).max()
    rg = [(0, N//2), (N//2, N)]
    with threadpool_limits(1):
        tw1 = med(lambda: wg.conv2d(x, w, b, (p,p)))
        td1 = med(lambda: conv2d_direct(x,w,b,(1,1),(p,p)))
        tw2 = med(lambda: wg.conv2d(x, w, b, (p,p), ranges=rg))
        td2 = med(lambda: conv2d_direct(x,w,b,(1,1),(p,p), ranges=rg))
        tx2 = med(lambda: wg.input_grad(d, w, H, H, (p,p), ranges=rg))
        tdx2 = med(lambda: conv2d_direct_input_grad(d, w, H, H, (1,1), (p,p), ranges=rg))
    print((N,C,K,H,r), f'err {err:.1e} (direct {e32:.1e}) dx err {derr:.1e} | 1 thread wino {tw1:.3f} direct {td1:.3f} | 2 ranges wino {tw2:.3f} direct {td2:.3f} | dx wino {tx2:.3f} direct {tdx2:.3f}')
