import numpy as np, time, sys
sys.path.insert(0,'/work/main')
import numba; numba.set_num_threads(2)
from kernels.cpu import direct
from threadpoolctl import threadpool_limits
rng=np.random.default_rng(0)
def med(f, reps=15):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
N=128
for (C, H) in ((16,32),(32,16),(64,8)):
    x=rng.standard_normal((N,C,H,H),dtype=np.float32); w=rng.standard_normal((C,C,3,3),dtype=np.float32); dy=rng.standard_normal((N,C,H,H),dtype=np.float32)
    rg=[(0,N//2),(N//2,N)]
    fl = 2*N*C*C*9*H*H/1e9
    with threadpool_limits(1):
        f=med(lambda: direct.conv2d_direct(x,w,None,(1,1),(1,1),ranges=rg))
        dx=med(lambda: direct.conv2d_direct_input_grad(dy,w,H,H,(1,1),(1,1),ranges=rg))
        dw=med(lambda: direct.conv2d_direct_weight_grad(x,dy,3,3,(1,1),(1,1),ranges=rg))
    print(f'C{C} {H}x{H}: fwd {f:.2f} ms ({fl/f*1e3:.0f} GF/s) dx {dx:.2f} ({fl/dx*1e3:.0f}) dw {dw:.2f} ({fl/dw*1e3:.0f})')
