"""Stride-2 layers of ResNet-20 at b64: schedule im2col path vs the direct kernels (2 threads)."""
import time, numpy as np, minicnn as mc
mc.set_backend("numba")
from minicnn.kernels import cpu
from minicnn.kernels.cpu import direct, threads
import numba; numba.set_num_threads(2)
S = cpu.CONV_SCHEDULE
committed = S.direct_rule
def med(f, k=15):
    f(); ts=[]
    for _ in range(k):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return sorted(ts)[k//2]*1e3
rng=np.random.default_rng(0)
for (c,o,h) in [(16,32,32),(32,64,16)]:
    x=rng.standard_normal((64,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,3,3)).astype(np.float32)
    st,pd=(2,2),(1,1)
    res={}
    for name, rule in [("im2col", committed), ("direct", lambda w,p,s: w.dtype==np.float32)]:
        S.direct_rule = rule
        y, cache = S.conv2d_forward(x, w, None, st, pd)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        res[name+" fwd"] = med(lambda: S.conv2d_forward(x, w, None, st, pd))
        res[name+" bwd"] = med(lambda: S.conv2d_backward(dy, cache))
        res[name+" bwd dW only"] = med(lambda: S.conv2d_backward(dy, cache, need_dx=False))
    S.direct_rule = committed
    macs = 64*o*c*9*(h//2)**2
    print(f"c{c} o{o} {h}x{h} s2:", {k: f"{v:.2f} ms" for k,v in res.items()}, f"fwd MACs {macs/1e6:.0f}M")
