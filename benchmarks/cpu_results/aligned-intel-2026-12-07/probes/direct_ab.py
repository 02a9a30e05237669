"""Whole training steps with one change to the register-blocked direct kernels on and off,
swapped in one process with fusion_ab's paired blocks. Usage:
PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/direct_ab.py NET [NET ...]
    --batch-sizes B [B ...] [--rounds R] [--switch aligned]

numba-threads: the direct kernels run the batch ranges at once on Numba's threads (this commit),
against one call per range in run_split's Python threads as before;
element-wise: the fused ReLU + max-pool, batch norm and ReLU kernels on Numba's threads from
their *_TEAM_MIN sizes (threads.element_wise), against their serial builds;
optim: SGD and Adam updates on Numba's threads from 2^16 elements (an optim.OPTIM_TEAM_MIN tried
on top of cad5a2b, not kept: optim_ab.txt), against serial;
relu-2e16: ReLU on Numba's threads from 2^16 elements against its 2^20 (activations.RELU_TEAM_MIN);
small-split: the direct paths split a call of at least 2^19 multiply-adds into ranges (the
products' threshold, split_min_macs, is 2^22), against the products' threshold;
dw-scratch: the weight gradient's later ranges sum into a buffer kept for the next call (a
``direct_blocked_dw._scratch`` that was tried and not kept: no gain), against a fresh array;
aligned: the kernels' vector-loaded buffers (and the transposed weight) start on a 64-byte
boundary (this commit), against NumPy's and Numba's own alignment (16-32 bytes) as before; the
"off" kernels are compiled uncached under other names."""
import argparse
import types

import numpy as np
from numba import njit

from benchmarks import fusion_ab
from minicnn.kernels.cpu import direct_blocked as db

ALIGNED_ZEROS, SPECIALISED = db._aligned_zeros, db._specialised


@njit(nogil=True)
def _plain_zeros(n):
    return np.zeros(n, np.float32)


_OFF = {}


def _specialised_unaligned(impl, **consts):
    consts = dict(consts, LANES=db.LANES)
    key = (impl.__name__,) + tuple(sorted(consts.items()))
    if key not in _OFF:
        g = dict(impl.__globals__, **consts)
        g["_aligned_zeros"] = _plain_zeros
        fn = types.FunctionType(impl.__code__, g, impl.__name__ + "_unaligned_" + "_".join(map(str, key[1:])))
        _OFF[key] = njit(nogil=True, error_model="numpy")(fn)
    return _OFF[key]


def set_aligned(flag):
    db._specialised = SPECIALISED if flag else _specialised_unaligned
    db._aligned_zeros = ALIGNED_ZEROS if flag else (lambda n: np.zeros(n, np.float32))


def set_numba_threads(flag):
    from minicnn.kernels import cpu

    cpu.CONV_SCHEDULE.ops.direct_ranges = flag


def set_dw_scratch(flag):
    from minicnn.kernels.cpu import direct_blocked_dw as dwm

    dwm._scratch = SCRATCH if flag else (lambda rows, size: np.empty((rows, size), np.float32))


from minicnn.kernels.cpu import direct_blocked_dw  # noqa: E402

SCRATCH = getattr(direct_blocked_dw, "_scratch", None)  # (only in the tried version)
def set_small_split(flag):
    from minicnn.kernels.cpu import CONV_SCHEDULE as sched

    cls = type(sched)
    if flag:
        def items(n, macs):
            keep = sched.split_min_macs
            sched.split_min_macs = 1 << 19
            try:
                return cls.direct_items(sched, n, macs)
            finally:
                sched.split_min_macs = keep
        sched.direct_items = items
    else:
        sched.__dict__.pop("direct_items", None)


def set_element_wise(flag):
    from minicnn.kernels.cpu import activations, batchnorm, fused

    for mod, name in ((fused, "RELU_MAXPOOL_TEAM_MIN"), (batchnorm, "BN_TEAM_MIN"), (activations, "RELU_TEAM_MIN")):
        TEAM_MIN.setdefault(name, getattr(mod, name))
        setattr(mod, name, TEAM_MIN[name] if flag else 1 << 62)


TEAM_MIN = {}
def set_relu_2e16(flag):
    from minicnn.kernels.cpu import activations

    activations.RELU_TEAM_MIN = 1 << 16 if flag else 1 << 20


def set_optim(flag):
    from minicnn.kernels.cpu import optim

    optim.OPTIM_TEAM_MIN = 1 << 16 if flag else 1 << 62


SETS = {"optim": (set_optim, "optim-threads", "optim-serial"),
        "relu-2e16": (set_relu_2e16, "relu-from-2^16", "relu-from-2^20"),
        "element-wise": (set_element_wise, "element-wise-threads", "serial"),
        "small-split": (set_small_split, "small-split", "split-min"),
        "dw-scratch": (set_dw_scratch, "dw-scratch", "fresh"),
        "aligned": (set_aligned, "aligned", "unaligned"),
        "numba-threads": (set_numba_threads, "numba-threads", "run_split")}
fusion_ab.SWITCHES.update(SETS)
ap = argparse.ArgumentParser()
ap.add_argument("nets", nargs="+")
ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 64])
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--min-time", type=float, default=0.5)
ap.add_argument("--switch", default="aligned", choices=sorted(SETS))
a = ap.parse_args()
for net in a.nets:
    for b in a.batch_sizes:
        print(fusion_ab.step_ab("numba", net, b, a.rounds, a.min_time, switch=a.switch), flush=True)
