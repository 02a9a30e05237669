# Per-call A/B of the blocked kernels plans (kernels/cpu/plans.py): Plans.enabled on/off, alternating
# blocks in one process. Run from the repo root: PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/plans/calls_ab.py
import timeit, numpy as np, minicnn as mc, sys
mc.set_backend('numba')
import numba; numba.set_num_threads(2)
from minicnn.kernels.cpu import direct, CONV_SCHEDULE as S
from minicnn.kernels.cpu.plans import Plans
rng=np.random.default_rng(0)
CASES=[("tiny 8->8 8x8 k3 b1",1,8,8,8,3,1,1),("tutorial conv2 b4",4,6,16,14,5,1,0),("resnet 16ch 32x32 b4",4,16,16,32,3,1,1),("resnet s2 16->32 b4",4,16,32,32,3,2,1),("net2 conv3 b4",4,64,128,8,5,1,2)]
for name,N,cin,cout,hw,k,s,p in CASES:
    x=rng.standard_normal((N,cin,hw,hw)).astype(np.float32); w=rng.standard_normal((cout,cin,k,k)).astype(np.float32); b=rng.standard_normal(cout).astype(np.float32)
    oh=(hw+2*p-k)//s+1; g=rng.standard_normal((N,cout,oh,oh)).astype(np.float32)
    items=S.direct_items(N, N*w.size*oh*oh)
    fs={"fwd":lambda: direct.conv2d_direct(x,w,b,(s,s),(p,p),ranges=items),
        "dx":lambda: direct.conv2d_direct_input_grad(g,w,hw,hw,(s,s),(p,p),ranges=items),
        "dw":lambda: direct.conv2d_direct_weight_grad(x,g,k,k,(s,s),(p,p),ranges=items)}
    out=[]
    for fn,f in fs.items():
        f()
        n=max(20, int(2000/(1+N*w.size*oh*oh/1e6)))
        on=[];off=[]
        for rep in range(15):
            for flag in ((True,False) if rep%2==0 else (False,True)):
                Plans.enabled=flag
                t=timeit.timeit(f,number=n)/n*1e6
                (on if flag else off).append(t)
        Plans.enabled=True
        on=np.array(on);off=np.array(off)
        out.append(f"{fn} {np.median(off):.1f}->{np.median(on):.1f} us (saved {np.median(off-on):.1f})")
    print(f"{name:24s} items {len(items)}: " + "; ".join(out), flush=True)
