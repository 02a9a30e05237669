"""Two threads at once: the direct forward of 256 samples (tutorial conv1) on one thread, split in two halves
on two threads, and one half alone, median of 20 calls (ms). python benchmarks/cpu_results/direct-intel-2026-12-06/probes/two_threads.py"""
import numpy as np, time, sys, threading
sys.path.insert(0, '.')
from minicnn.kernels.cpu import direct as D, conv as kc
from concurrent.futures import ThreadPoolExecutor
rng=np.random.default_rng(0)
n,c,h,o,k=256,3,32,6,5
x=rng.standard_normal((n,c,h,h)).astype(np.float32); w=rng.standard_normal((o,c,k,k)).astype(np.float32); b=np.zeros(o,np.float32)
y=np.empty((n,o,28,28),np.float32)
D.conv2d_direct(x,w,b,(1,1),(0,0),out=y)
ex=ThreadPoolExecutor(2)
def one(): D.conv2d_direct(x,w,b,(1,1),(0,0),out=y)
def two():
    fs=[ex.submit(D.conv2d_direct,x[i*128:(i+1)*128],w,b,(1,1),(0,0),out=y[i*128:(i+1)*128]) for i in range(2)]
    [f.result() for f in fs]
def half(): D.conv2d_direct(x[:128],w,b,(1,1),(0,0),out=y[:128])
for f in (one,two,half,one,two,half):
    f(); ts=[]
    for _ in range(20):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    print(f.__name__, '%.2f ms'%(np.median(ts)*1e3))
