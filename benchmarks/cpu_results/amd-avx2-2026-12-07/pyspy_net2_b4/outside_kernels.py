"""Aggregates a py-spy raw profile of loop.py: the samples inside the timed steps whose leaf is
not a kernel call (warm-up compile and import samples left out), by leaf line. Argument: the raw file."""
import sys
from collections import Counter
WORK=('Launch.__call__ (kernels/cpu/direct_blocked.py:129)','Launch.__call__ (kernels/cpu/direct_blocked.py:128)','element_wise (kernels/cpu/threads.py:292)','element_wise (kernels/cpu/threads.py:290)','sgd_update (kernels/cpu/optim.py:90)','matmul (kernels/reference/products.py:66)','_sum (numpy/_core/_methods.py:49)','Parameter.accumulate (minicnn/nn/module.py:52)')
c=Counter(); selfc=Counter(); total=0; over=0
for line in open(sys.argv[1]):
    stack,_,n=line.rstrip().rpartition(' ')
    n=int(n); frames=stack.split(';')
    if not any('step' in f and 'common.py' in f for f in frames): continue
    total+=n
    if any(("dispatcher.py" in f or "importlib" in f) for f in frames): total-=n; continue
    if frames[-1] in WORK: continue
    over+=n
    selfc[frames[-1]]+=n
    seen=set()
    for f in frames:
        k=f.rsplit(':',1)[0]
        if k not in seen: c[k]+=n; seen.add(k)
print('total',total,'overhead %.1f%%'%(100*over/total))
for k,n in c.most_common(0): print('%5.1f%% %s'%(100*n/total,k))
print('--- self')
for k,n in selfc.most_common(40): print('%5.2f%% %s'%(100*n/total,k))
