"""run_split's hand-over on this VM: an empty split right after another, and after the helper has
been idle for 0.1 / 1 / 5 ms (the gap spent in a GIL-free sleep, not timed). Median and p90 in us."""
import time
import numpy as np
from minicnn import backend
backend.set_backend("numba")
from minicnn.kernels.cpu import threads

def timed_after(gap_s, reps):
    ts = []
    for _ in range(reps):
        if gap_s:
            time.sleep(gap_s)
        t0 = time.perf_counter(); threads.run_split(lambda s: None, [0, 1]); ts.append(time.perf_counter() - t0)
    return np.median(ts) * 1e6, np.percentile(ts, 90) * 1e6

timed_after(0, 50)
for gap in (0, 1e-4, 1e-3, 5e-3):
    m, p = timed_after(gap, 400 if gap < 5e-3 else 200)
    print(f"run_split empty after {gap * 1e3:.1f} ms idle: median {m:.0f} us, p90 {p:.0f} us", flush=True)
