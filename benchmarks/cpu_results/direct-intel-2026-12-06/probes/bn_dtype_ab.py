"""Batch norm's element-wise passes in the array's dtype against float64: the kernels alone at ResNet's
shapes, then whole ResNet-20 training steps with the two kernel-table entries swapped in one process,
blocks alternating (fusion_ab's step_ab). The change tried (not kept) is ``bn_dtype.patch``; run

    git show c1e4298:kernels/cpu/batchnorm.py > /tmp/batchnorm_float64.py   # the float64 module
    git apply benchmarks/cpu_results/direct-intel-2026-12-06/probes/bn_dtype.patch
    python benchmarks/cpu_results/direct-intel-2026-12-06/probes/bn_dtype_ab.py /tmp/batchnorm_float64.py 9
    git checkout kernels/cpu/batchnorm.py
"""
import importlib.util, sys, time
sys.path.insert(0, '.')
import numpy as np
from benchmarks import fusion_ab, machine
from minicnn.kernels import cpu
import minicnn.kernels.cpu.batchnorm as new
spec = importlib.util.spec_from_file_location("minicnn.kernels.cpu.batchnorm_old", sys.argv[1])
old = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = old  # (Numba's cache imports the module by name when it loads a kernel)
spec.loader.exec_module(old)
old.BN_PAR_MIN = new.BN_PAR_MIN  # the package's parallel-mode threshold (set_parallel), not the copy's default
machine.set_threads(None, torch_too=False)
def best(f, reps=30):
    f(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return 1e3 * np.median(ts)
rng = np.random.default_rng(0)
for shape in ((64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8)):
    x = rng.standard_normal(shape).astype(np.float32); g = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32); dy = rng.standard_normal(shape).astype(np.float32)
    out = {}
    for name, mod in (("float64", old), ("dtype", new)):
        y, mean, var, xhat, istd = mod.batchnorm_forward(x, g, b, 1e-5)
        out[name] = (best(lambda: mod.batchnorm_forward(x, g, b, 1e-5)), best(lambda: mod.batchnorm_backward(dy, xhat, istd, g)))
    print(f"{shape}: forward float64 {out['float64'][0]:.3f} / dtype {out['dtype'][0]:.3f} ms, backward {out['float64'][1]:.3f} / {out['dtype'][1]:.3f} ms", flush=True)
from minicnn import backend as B
def set_new(flag):
    mod = new if flag else old
    ops = B.get("numba").ops  # the numba backend's kernel table
    ops.batchnorm_forward, ops.batchnorm_backward = mod.batchnorm_forward, mod.batchnorm_backward
fusion_ab.SWITCHES["bn"] = (set_new, "dtype", "float64")
for batch in (64, 128):
    print(fusion_ab.step_ab("numba", "resnet20", batch, int(sys.argv[2]), 1.0, "bn"), flush=True)
set_new(True)
