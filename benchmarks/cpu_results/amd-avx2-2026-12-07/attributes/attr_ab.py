"""In-process A/B of parameters and sub-modules kept as plain attributes (minicnn/nn/module.py):
one runner, its modules' plain attributes for parameters and sub-modules removed (lookups through
Module.__getattr__, as before) and put back in alternating blocks."""
import time, sys, numba, numpy as np
numba.set_num_threads(2)
from benchmarks.common import MinicnnRunner
for spec in sys.argv[1:]:
    net, bs = spec.split(":"); bs=int(bs)
    r = MinicnnRunner(net, "numba", bs)
    mods=[m for _, m in r.model.named_modules()]
    saved=[(m, {n: m.__dict__[n] for n in list(m._parameters) + list(m._modules) if n in m.__dict__}) for m in mods]
    def set_attrs(on):
        for m, d in saved:
            if on: m.__dict__.update(d)
            else:
                for n in d: m.__dict__.pop(n, None)
    for on in (True, False):
        set_attrs(on)
        for _ in range(20): r.step()
    res={True:[], False:[]}; k=max(5, int(300/bs))
    for rnd in range(25):
        for on in ((True, False) if rnd%2==0 else (False, True)):
            set_attrs(on)
            t=time.perf_counter()
            for _ in range(k): r.step()
            res[on].append((time.perf_counter()-t)/k*1e3)
    set_attrs(True)
    ra=np.array(res[True]); rb=np.array(res[False]); q=np.percentile(ra/rb,[25,75])
    print(f"{net} b{bs}: attributes {np.median(ra):.3f} ms, __getattr__ {np.median(rb):.3f} ms; attr/getattr {np.median(ra/rb):.3f} (quartiles {q[0]:.3f}-{q[1]:.3f})", flush=True)
