"""A/B of the numba backend's matrix products: OpenBLAS (NumPy's matmul) vs MKL (prototype in
/tmp/mkl_matmul.py), training steps alternating in one process (benchmarks.fusion_ab's protocol)."""
import sys
sys.path.insert(0, "/tmp")
import os
os.environ.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")
import mkl_matmul
from benchmarks import fusion_ab
from minicnn.kernels import cpu
from minicnn import backend
import numpy as np

_np_matmul = cpu.TABLE["matmul"]


def set_mkl(flag):
    f = mkl_matmul.matmul if flag else _np_matmul
    cpu.CONV_SCHEDULE.ops.matmul = f
    b = backend.get("numba")
    b.table["matmul"] = f
    b.ops.matmul = f


fusion_ab.SWITCHES["mkl"] = (set_mkl, "MKL", "OpenBLAS")
print(fusion_ab._load())
for net, bs in [("net2", 4), ("net2", 64), ("tutorial", 4), ("tutorial", 64), ("resnet20", 64)]:
    print(fusion_ab.step_ab("numba", net, bs, int(sys.argv[1]) if len(sys.argv) > 1 else 7, 0.3, switch="mkl"), flush=True)
print(fusion_ab._load())
