"""Host (Python) time of one sgd_update_multi call of the cupy backend, NumPy standing in for CuPy and the launch a
no-op, for the parameter lists of the tutorial net and ResNet-20 (momentum, Nesterov, weight decay), in two ways:
"graph" (the same gradient arrays every step, as a CUDA-graphed loop passes them) and "eager" (new gradient
arrays every step). --cheap-address: the arrays' addresses from a dict, as cheap as CuPy's a.data.ptr (NumPy's
a.ctypes.data costs ~3 us). Run from the repository root: PYTHONPATH=. python <this file> [--cheap-address]."""
import sys
import time

import numpy as np

import minicnn as mc
from minicnn.kernels.cuda import launch, optim
from minicnn.models import MODELS


class FakeCupy:
    ascontiguousarray = staticmethod(np.ascontiguousarray)
    asarray = staticmethod(np.asarray)

    @staticmethod
    def empty(shape, dtype=np.float64):
        return np.empty(shape, dtype)


launch._cupy = lambda: FakeCupy
launch._on_device = lambda *a: all(isinstance(v, np.ndarray) for v in a)
launch.get_function = lambda module, kernel: (lambda grid, block, args: None)
cheap = "--cheap-address" in sys.argv
addresses = {}
if cheap:
    optim.array_address = lambda a: addresses[id(a)]

mc.set_backend("numpy")
for net in ("tutorial", "resnet20"):
    params = [p.data for p in MODELS[net]().parameters()]
    bufs = [np.zeros_like(p) for p in params]
    grads = [np.zeros_like(p) for p in params]
    for a in (*params, *bufs, *grads):
        addresses[id(a)] = a.ctypes.data
    for mode in ("graph", "eager"):
        def call():
            gs = grads
            if mode == "eager":
                gs = [g.copy() for g in grads]
                for g in gs:
                    addresses[id(g)] = g.ctypes.data
            optim.sgd_update_multi(params, gs, bufs, 0.1, 0.9, 0.0, True, 5e-4, False)
        for _ in range(50):
            call()
        best = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(300):
                call()
            best.append((time.perf_counter() - t0) / 300 * 1e6)
        print(f"{net:9s} {len(params):3d} tensors {mode:5s} {min(best):8.1f} us"
              f"{' (includes copying the gradients)' if mode == 'eager' else ''}")
