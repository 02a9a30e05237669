import resource, sys, numpy as np
from benchmarks import common
import numba; numba.set_num_threads(2)
net=sys.argv[1]; bs=int(sys.argv[2])
runner=common.MinicnnRunner(net,'numba',bs,'train',0)
acc={}
def flt(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def wrap(key,fn):
    def w(*a,**k):
        f0=flt(); out=fn(*a,**k); acc[key]=acc.get(key,0)+flt()-f0; return out
    return w
for name,m in runner.model.named_modules():
    if not name or m._modules or type(m).__name__ in ("ReLU","MaxPool2d","BatchNorm2d","BatchNorm1d"): continue
    for p in ('forward','backward'): setattr(m,p,wrap(name+'.'+p,getattr(m,p)))
for p in ('zero_grad','step'): setattr(runner.opt,p,wrap('opt.'+p,getattr(runner.opt,p)))
runner.ce.forward=wrap('ce.f',runner.ce.forward); runner.ce.backward=wrap('ce.b',runner.ce.backward)
for _ in range(10): runner.run(1)
acc.clear(); f0=flt(); S=50
for _ in range(S): runner.step()
tot=(flt()-f0)/S
print('faults/step %.1f'%tot)
for k,v in sorted(acc.items(),key=lambda kv:-kv[1]):
    if v/S>=0.5: print('%-22s %.1f'%(k,v/S))
