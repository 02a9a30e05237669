import resource, numpy as np
flt=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
S=204800
def t(label, f, k=50):
    for _ in range(5): f()
    f0=flt()
    for _ in range(k): f()
    print(label, (flt()-f0)/k)
def seq():
    dw=np.empty(S,np.float32)
    dws=np.empty((2,S),np.float32)
    for r in range(2):
        dwt=np.empty(S+16,np.float32); dwt[:]=1
        dws[r]=dwt[:S]
        del dwt
    dw[...]=dws[0]; dw+=dws[1]
    return dw
t('seq', seq)
def seq2():
    dw=np.empty(S,np.float32)
    dws=np.empty((2,S),np.float32)
    dwt=[np.empty(S+16,np.float32) for r in range(2)]
    for r in range(2): dwt[r][:]=1; dws[r]=dwt[r][:S]
    del dwt
    dw[...]=dws[0]; dw+=dws[1]
    return dw
t('seq2', seq2)
K1=np.empty((2,S),np.float32); K2=np.empty((2,S+16),np.float32)
def seq3():
    dw=np.empty(S,np.float32)
    dws=K1
    for r in range(2): K2[r][:]=1; dws[r]=K2[r][:S]
    dw[...]=dws[0]; dw+=dws[1]
    g=dw.astype(np.float32,copy=True)
    return g
t('seq3', seq3)
