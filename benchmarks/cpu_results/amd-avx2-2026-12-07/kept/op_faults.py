import resource, sys, numpy as np
from benchmarks import common
import numba; numba.set_num_threads(2)
from minicnn import backend
net=sys.argv[1]; bs=int(sys.argv[2])
runner=common.MinicnnRunner(net,'numba',bs,'train',0)
ops=backend.current().ops
flt=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
acc={}; depth=[0]
def wrap(key,fn):
    def w(*a,**k):
        depth[0]+=1
        f0=flt(); 
        try: return fn(*a,**k)
        finally:
            depth[0]-=1
            if depth[0]==0: acc[key]=acc.get(key,0)+flt()-f0
    return w
for k,v in list(vars(ops).items()):
    if callable(v): setattr(ops,k,wrap(k,v))
# also module-level backward/forward for attribution
macc={}
for name,m in runner.model.named_modules():
    if not name or m._modules or type(m).__name__ in ("ReLU","MaxPool2d","BatchNorm2d","BatchNorm1d"): continue
    for p in ('forward','backward'):
        fn=getattr(m,p)
        def mw(*a,_fn=fn,_k=name+'.'+p,**k):
            f0=flt(); out=_fn(*a,**k); macc[_k]=macc.get(_k,0)+flt()-f0; return out
        setattr(m,p,mw)
for _ in range(10): runner.run(1)
acc.clear(); macc.clear(); f0=flt(); S=30
for _ in range(S): runner.step()
print('%s b%d faults/step %.1f'%(net,bs,(flt()-f0)/S))
for k,v in sorted(acc.items(),key=lambda kv:-kv[1]):
    if v/S>=1: print('  op %-34s %.1f'%(k,v/S))
for k,v in sorted(macc.items(),key=lambda kv:-kv[1]):
    if v/S>=1: print('  module %-30s %.1f'%(k,v/S))
