"""Training steps of one net in a loop, for a profiler: args net batch seconds."""
import sys, time
sys.path.insert(0, '.')  # run from the repository root
import numba; numba.set_num_threads(2)
from benchmarks.common import MinicnnRunner
net = sys.argv[1] if len(sys.argv) > 1 else 'net2'
r = MinicnnRunner(net, 'numba', int(sys.argv[2]) if len(sys.argv) > 2 else 4)
r.run(20)
t = time.perf_counter(); r.run(200); print('step ms', (time.perf_counter() - t) / 200 * 1e3)
t0 = time.perf_counter()
while time.perf_counter() - t0 < float(sys.argv[3]) if len(sys.argv) > 3 else 20:
    r.run(50)
