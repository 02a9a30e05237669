import time, statistics
import numpy as np
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels.cpu import threads
def med(fn, r=2000):
    for _ in range(20): fn()
    ts=[]
    for _ in range(r):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e6, np.percentile(ts,90)*1e6
print("run_split trivial (us, median, p90):", med(lambda: threads.run_split(lambda s: None, [0,1])))
a=np.ones(1000,np.float32)
def busy(s):
    t=time.perf_counter()
    while time.perf_counter()-t<50e-6: pass
print("run_split with 50us of work per share:", med(lambda: threads.run_split(busy, [0,1])))
def gap():
    threads.run_split(lambda s: None, [0,1]); t=time.perf_counter()
    while time.perf_counter()-t<1e-3: pass
print("after 1 ms idle (incl 1ms):", med(lambda: gap(), r=500))
