import resource, numpy as np, sys
flt=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
S=204800
if len(sys.argv)>1:
    big=np.empty(int(sys.argv[1])//4,np.float32); big[:]=1; del big
def seq():
    dw=np.empty(S,np.float32)
    dws=np.empty((2,S),np.float32)
    for r in range(2):
        dwt=np.empty(S+16,np.float32); dwt[:]=1
        dws[r]=dwt[:S]
        del dwt
    dw[...]=dws[0]; dw+=dws[1]
    return dw
for _ in range(5): seq()
f0=flt()
for _ in range(50): seq()
print(sys.argv[1:], (flt()-f0)/50)
