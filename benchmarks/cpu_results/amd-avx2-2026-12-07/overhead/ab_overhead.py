"""In-process A/B of 14e8208's per-call savings: the previous versions of numba_team (a
contextlib generator), workspace.kept (np.prod), direct_blocked._specialised (sorted key) and
check_input (the description built on every call) patched in and out, rounds alternating.

    PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/overhead/ab_overhead.py NET BATCH [ROUNDS]
"""
import contextlib
import sys
import time
import types

import numpy as np

from benchmarks.common import make_runner
from kernels.cpu import direct_blocked, threads, workspace
from minicnn import backend
from minicnn.nn import _checks, conv, linear, norm, pool, residual


@contextlib.contextmanager
def old_numba_team(parts):
    if getattr(threads._local, "inside", False) or not threads._busy.acquire(blocking=False):
        yield False
        return
    try:
        if threads._held is not None and threads._blas_now != 1:
            threads._set_held_blas(1)
        yield parts > 1 and threads.workers() > 1 and not threads._forked
    finally:
        threads._busy.release()


def old_kept(name, shape, dtype=np.float32):
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > workspace.KEPT_MAX:
        return workspace._aligned(nbytes).view(dtype).reshape(shape)
    blocks = workspace._local.__dict__.setdefault("blocks", {})
    block = blocks.get(name)
    if block is None or block.size < nbytes:
        block = blocks[name] = workspace._aligned(max(nbytes, 1))
    return block[:nbytes].view(dtype).reshape(shape)


_OLD = {}


def old_specialised(impl, parallel_build=False, **consts):
    consts = dict(consts, LANES=direct_blocked.LANES)
    key = (impl.__name__, parallel_build) + tuple(sorted(consts.items()))
    kernel = _OLD.get(key)
    if kernel is None:
        kernel = _OLD[key] = new_specialised(impl, parallel_build, **{k: v for k, v in consts.items() if k != "LANES"})
    return kernel


def old_check_input(layer, x, ndims, channels=None, axis=1, expected="(N, C, H, W)"):
    shape = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "shape") or x.ndim not in ndims:
        raise ValueError(f"{layer._describe()}: expected input {expected}, got shape {shape}")
    if channels is not None and shape[axis] != channels:
        raise ValueError("channels")
    if x.dtype.kind != "f":
        raise TypeError("dtype")
    w = next(iter(layer._parameters.values()), None)
    if w is not None:
        backend.check_same_module(layer._describe(), x, w.data)


new_team, new_kept, new_specialised, new_check = threads.numba_team, workspace.kept, direct_blocked._specialised, _checks.check_input
LAYER_MODULES = (conv, linear, norm, pool, residual)


def use(old: bool):
    threads.numba_team = old_numba_team if old else new_team
    workspace.kept = old_kept if old else new_kept
    direct_blocked._specialised = old_specialised if old else new_specialised
    for m in LAYER_MODULES:
        if hasattr(m, "check_input"):
            m.check_input = old_check_input if old else new_check


def main():
    net, batch = sys.argv[1], int(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    r = make_runner("numba", net, batch, "train", threads=2)
    r.activate()
    for old in (True, False):
        use(old)
        for _ in range(20):
            r.step()
    steps = max(20, int(0.5 / max(1e-4, _time(r, 10) / 10)))
    ratios, t_old, t_new = [], [], []
    for k in range(rounds):
        res = {}
        for old in ((True, False) if k % 2 == 0 else (False, True)):
            use(old)
            res[old] = _time(r, steps) / steps
        t_old.append(res[True]); t_new.append(res[False]); ratios.append(res[False] / res[True])
    use(False)
    q = np.percentile(ratios, [25, 50, 75])
    print(f"{net} b{batch}: step old {np.median(t_old)*1e3:.3f} ms, new {np.median(t_new)*1e3:.3f} ms; "
          f"new/old median {q[1]:.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}) over {rounds} rounds of {steps} steps")


def _time(r, k):
    t = time.perf_counter()
    for _ in range(k):
        r.step()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
