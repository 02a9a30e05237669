import sys, time, numpy as np, os
from benchmarks import common, timing
import threadpoolctl
# warm NumPy's OpenBLAS with a product so its threads exist, as in the throughput run
a = np.random.rand(512, 512).astype(np.float32); a @ a
r = common.make_runner("torch-cpu", sys.argv[1], int(sys.argv[2]), "train", threads=2)
k, _ = timing.calibrate(r, 0.2)
ts = []
for _ in range(5):
    time.sleep(0.25); s = time.perf_counter(); r.run(k); ts.append((time.perf_counter() - s) / k)
print(os.environ.get("OPENBLAS_CORETYPE", "auto"), sys.argv[1], sys.argv[2], f"{int(sys.argv[2]) / np.median(ts):,.0f} img/s")
