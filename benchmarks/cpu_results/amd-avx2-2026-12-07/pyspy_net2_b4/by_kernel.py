"""Aggregates a py-spy raw profile of loop.py: samples inside the timed steps whose leaf is a
kernel call, by the calls above it. Argument: the raw file."""
import sys
from collections import Counter
c=Counter(); total=0
for line in open(sys.argv[1]):
    stack,_,n=line.rstrip().rpartition(' ')
    n=int(n); frames=stack.split(';')
    if not any('step' in f and 'common.py' in f for f in frames): continue
    total+=n
    leaf=frames[-1].split(' (')[0]
    if leaf in ('Launch.__call__','element_wise'):
        # find the module-level caller (a layer) and kernel caller
        path=[f.split(' (')[0] for f in frames]
        layer=[p for p in path if p.endswith(('.forward','.backward')) and p.split('.')[0] in ('Conv2d','Linear','MaxPool2d','ReLU','Sequential','_Fused','FusedReLUMaxPool')]
        kern=path[-2]
        c[(leaf, kern, path[-3], path[-4])]+=n
for k,n in c.most_common(25): print('%5.1f%% %s'%(100*n/total,k))
