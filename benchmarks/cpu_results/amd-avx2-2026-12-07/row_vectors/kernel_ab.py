import time, sys, numpy as np, numba
numba.set_num_threads(2)
from minicnn.kernels.cpu import direct, direct_blocked as db
rng=np.random.default_rng(0)
cases=[(4,64,128,8,5,2),(4,32,64,16,5,2),(4,3,32,32,5,2),(64,64,64,8,3,1),(64,32,32,16,3,1),(64,16,16,32,3,1),(64,16,32,32,3,1,2),(64,32,64,16,3,1,2)]
for cs in cases:
    n,c,o,h,k,p=cs[:6]; st=cs[6] if len(cs)>6 else 1
    x=rng.standard_normal((n,c,h,h),dtype=np.float32); w=rng.standard_normal((o,c,k,k),dtype=np.float32)
    b=rng.standard_normal(o,dtype=np.float32)
    oh=(h+2*p-k)//st+1
    dy=rng.standard_normal((n,o,oh,oh),dtype=np.float32)
    per=-(-n//2); rg=[(i,min(n,i+per)) for i in range(0,n,per)]
    res={}
    for rv in (False, True):
        db.ROW_VECTORS=rv
        f=lambda: direct.conv2d_direct(x,w,b,(st,st),(p,p),ranges=rg)
        g=lambda: direct.conv2d_direct_input_grad(dy,w,h,h,(st,st),(p,p),ranges=rg)
        out=(f(),g())
        for name,fn in (('fwd',f),('dx',g)):
            for _ in range(5): fn()
            ts=[]
            for _ in range(int(sys.argv[1]) if len(sys.argv)>1 else 50):
                t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
            res[(rv,name)]=(np.median(ts)*1e3, out[0] if name=='fwd' else out[1])
    same=all(np.array_equal(res[(False,nm)][1],res[(True,nm)][1]) for nm in ('fwd','dx'))
    print(cs, 'fwd %.3f -> %.3f ms, dx %.3f -> %.3f ms, same bits %s'%(res[(False,'fwd')][0],res[(True,'fwd')][0],res[(False,'dx')][0],res[(True,'dx')][0],same), flush=True)
