import numpy as np, time, sys
sys.path.insert(0,'/work/main')
from threadpoolctl import threadpool_limits
from kernels.cpu import winograd as wg, workspace
from kernels.cpu.simd import LANES
rng = np.random.default_rng(0)
def med(f, reps=100):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
for (N,C,K,H,r) in [(4,64,128,8,5),(4,32,64,16,5),(64,32,64,16,5),(64,64,64,8,3)]:
    p=r//2; m=wg.TILE[r]; a=m+r-1
    x = rng.standard_normal((N,C,H,H),dtype=np.float32); w = (rng.standard_normal((K,C,r,r),dtype=np.float32)*0.05).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    th=tw=-(-H//m); T=N*th*tw; hp=wp=th*m+a-m
    u=np.empty(a*a*K*C,np.float32); v=np.empty(a*a*T*C,np.float32); mm=np.empty((a*a,T,K),np.float32); y=np.empty((N,K,H,H),np.float32)
    f = dict(wt=lambda: wg._specialised(wg._weight_impl, r)(w, u, np.empty(r*r*C,np.float32), np.empty(a*r*C,np.float32)),
             it=lambda: wg._specialised(wg._input_impl, r)(x, 0, N, p, p, th, tw, np.empty(hp*wp*C,np.float32), np.empty(a*a*LANES,np.float32), v, T),
             gemm=lambda: np.matmul(v.reshape(a*a,T,C), u.reshape(a*a,K,C).transpose(0,2,1), out=mm),
             ot=lambda: wg._specialised(wg._output_impl, r)(mm.reshape(-1), b, True, 0, N, th, tw, np.empty(m*a*LANES,np.float32), np.empty(m*m*LANES,np.float32), y, T))
    with threadpool_limits(1):
        print((N,C,K,H,r), {k: round(med(g),3) for k,g in f.items()})
