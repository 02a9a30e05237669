import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numpy as np, numba; numba.set_num_threads(2)
from minicnn.kernels.cpu import fused
rng=np.random.default_rng(0)
def med(f, reps=101):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e6
for shp in ((4,32,32,32),(4,64,16,16),(4,128,8,8),(64,32,32,32)):
    x=rng.standard_normal(shp,dtype=np.float32)
    out,idx=fused.relu_maxpool2d_forward(x,2,2)
    d=rng.standard_normal(out.shape,dtype=np.float32)
    f=med(lambda: fused.relu_maxpool2d_forward(x,2,2))
    b=med(lambda: fused.relu_maxpool2d_backward(d,out,idx,shp[2],shp[3],2,2))
    s=med(lambda: fused._fwd_ser(x,2,2,np.float32(0),np.empty(out.shape,np.float32),np.empty(out.shape,np.int64)))
    p=med(lambda: fused._fwd_par(x,2,2,np.float32(0),np.empty(out.shape,np.float32),np.empty(out.shape,np.int64)))
    print(shp, 'fwd %.0f us (serial %.0f, parallel %.0f), bwd %.0f us' % (f, s, p, b))
