"""kernels/cpu/heap.py: once the numba backend is selected, a freed large array's memory is
reused without page faults (glibc); MINICNN_KEEP_FREED_MEMORY=0 leaves malloc alone.

Each case runs in a fresh interpreter: the malloc setting is process-wide and cannot be undone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minicnn.kernels.cpu import heap

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="the C library is not glibc")

# Allocate, free and allocate again a 64 MiB array, touching every page, 5 times after the
# backend is selected; print the minor page faults of the last 4 rounds.
CHILD = r"""
import resource, numpy as np, minicnn
minicnn.set_backend("numba")
from minicnn.kernels.cpu import heap
np.ones(1 << 24, np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    a = np.ones(1 << 24, np.float32)
    del a
print(heap._done, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _child(env_value):
    env = dict(os.environ)
    env.pop("MINICNN_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["MINICNN_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_numba_backend_keeps_freed_memory_for_reuse():
    done, faults = _child(None)
    assert done
    assert faults < 50  # the same heap memory each round (measured here: 0)


def test_env_opt_out_leaves_malloc_alone():
    done, faults = _child("0")
    assert not done
    # above glibc's 32 MiB cap on its dynamic threshold, each round is a fresh mapping whose pages
    # fault in again (measured here: 2,176 in 4 rounds, with NumPy advising huge pages)
    assert faults > 200


def test_opt_out_values():
    for value, expected in (("0", False), ("off", False), ("no", False), ("1", True), ("", True)):
        os.environ["MINICNN_KEEP_FREED_MEMORY"] = value
        try:
            assert heap.enabled_by_env() is expected, value
        finally:
            del os.environ["MINICNN_KEEP_FREED_MEMORY"]
