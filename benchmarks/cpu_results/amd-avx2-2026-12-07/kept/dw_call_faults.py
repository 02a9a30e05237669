import time, resource, numpy as np
from minicnn.kernels.cpu import direct
import numba
import os; numba.set_num_threads(int(os.environ.get("T","2")))
flt=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rng=np.random.default_rng(0)
n,c,o,h=4,64,128,8
x=rng.standard_normal((n,c,h,h),dtype=np.float32); w=rng.standard_normal((o,c,5,5),dtype=np.float32)
dy=rng.standard_normal((n,o,h,h),dtype=np.float32)
out=np.empty_like(w)
for rg in [[(0,2),(2,4)],[(0,4)]]:
  for useout in (False,True):
    f=lambda: direct.conv2d_direct_weight_grad(x,dy,5,5,(1,1),(2,2),ranges=rg,out=out if useout else None)
    for _ in range(20): f()
    ts=[]; f0=flt()
    for _ in range(300):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    ts=np.array(ts)*1e3
    print(rg,useout,'median %.3f ms min %.3f faults/call %.1f'%(np.median(ts),ts.min(),(flt()-f0)/300))
