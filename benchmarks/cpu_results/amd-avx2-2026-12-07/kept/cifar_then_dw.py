import sys, resource, numpy as np
flt=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
if len(sys.argv)>1:
    from minicnn.data.cifar import load_batch
    x,y=load_batch('/root/.cache/minicnn-data/cifar-10-batches-py/data_batch_1'); del x,y
S=204800
def seq():
    dw=np.empty(S,np.float32); dws=np.empty((2,S),np.float32)
    for r in range(2):
        dwt=np.empty(S+16,np.float32); dwt[:]=1; dws[r]=dwt[:S]; del dwt
    dw[...]=dws[0]; dw+=dws[1]; return dw
for _ in range(5): seq()
f0=flt()
for _ in range(50): seq()
print(sys.argv[1:], (flt()-f0)/50)
