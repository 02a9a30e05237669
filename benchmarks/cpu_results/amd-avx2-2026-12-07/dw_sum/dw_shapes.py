import time, numpy as np, numba
numba.set_num_threads(2)
from minicnn.kernels.cpu import direct
rng=np.random.default_rng(0)
out=[]
for (n,c,o,h,k,p) in [(4,64,128,8,5,2),(4,32,64,16,5,2),(4,3,32,32,5,2),(64,16,16,32,3,1),(64,32,32,16,3,1),(64,64,64,8,3,1)]:
    x=rng.standard_normal((n,c,h,h),dtype=np.float32); dy=rng.standard_normal((n,o,h,h),dtype=np.float32)
    per=-(-n//2); rg=[(i,min(n,i+per)) for i in range(0,n,per)]
    f=lambda: direct.conv2d_direct_weight_grad(x,dy,k,k,(1,1),(p,p),ranges=rg)
    for _ in range(10): f()
    ts=[]
    for _ in range(60):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    out.append('%s %.3f'%((n,c,o,h,k),1e3*np.median(ts)))
print(' | '.join(out))
