"""Minor page faults per training step (getrusage, whole process) for the numba backend's nets
after a warm-up: python faults.py [batch ...]"""
import resource, sys, time
import numpy as np
from benchmarks import common, machine
machine.set_threads(None, torch_too=False)
for batch in [int(b) for b in sys.argv[1:]] or [4, 64]:
    for net in ("net2", "tutorial", "deconv", "resnet20"):
        r = common.make_runner("numba", net, batch, "train")
        r.run(5)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; t0 = time.perf_counter()
        r.run(20)
        dt = (time.perf_counter() - t0) / 20
        f = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20
        print(f"{net} b{batch}: {f:.0f} minor faults per step ({f * 4 / 1024:.2f} MiB of 4 KiB pages), step {dt*1e3:.2f} ms", flush=True)
