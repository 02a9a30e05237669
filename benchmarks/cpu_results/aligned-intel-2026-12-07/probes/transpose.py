"""The channels-in-lanes forward's weight transpose (Net2 conv3: (128, 64, 5, 5) -> (64, 5, 5, 128))
as a Numba loop 16 channels at a time (tried in direct_blocked.py, not kept) against NumPy's copy
of the transposed view; ms and page faults per call. Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/transpose.py"""
import resource
import time

import numpy as np
from numba import njit
from numba import uint64 as _u

from minicnn.kernels.cpu import direct_blocked as db


@njit(nogil=True)
def weight_transposed(w, op, out):
    o, c, kh, kw = w.shape
    rows = c * kh * kw
    wf, of = w.reshape(w.size), out.reshape(out.size)
    for k0 in range(0, o, 16):
        for r in range(rows):
            for k in range(k0, min(o, k0 + 16)):
                of[_u(r * op + k)] = wf[_u(k * rows + r)]
    return out


def tm(f, reps=300):
    for _ in range(5):
        f()
    ts = []
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(reps):
        a = time.perf_counter()
        f()
        ts.append(time.perf_counter() - a)
    return np.median(ts) * 1e3, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / reps


w = np.random.default_rng(0).standard_normal((128, 64, 5, 5)).astype(np.float32)
out = db._aligned_zeros(64 * 25 * 128).reshape(64, 5, 5, 128)
print("Numba loop into a kept buffer: %.3f ms, %.0f faults" % tm(lambda: weight_transposed(w, 128, out)))
print("NumPy copy of the transposed view: %.3f ms, %.0f faults" % tm(lambda: np.ascontiguousarray(w.transpose(1, 2, 3, 0))))
print("fresh aligned zeros alone: %.3f ms, %.0f faults" % tm(lambda: db._aligned_zeros(64 * 25 * 128)))
