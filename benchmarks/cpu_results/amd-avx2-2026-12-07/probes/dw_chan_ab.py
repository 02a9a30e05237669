"""The channels-in-lanes weight gradient with PU = 4 positions a trip (today) against one
position a trip (commit a5859d3's kernel, rebuilt here from its text), serial builds, one thread,
interleaved (7 rounds, the fastest of 5 calls, median); GFLOP/s and the bits compared. Usage:
PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/probes/dw_chan_ab.py"""
import importlib.util, os, subprocess, tempfile, time, numpy as np
from minicnn.kernels.cpu import direct_blocked as db, direct_blocked_dw as dwm
old = subprocess.run(["git", "show", "a5859d3:kernels/cpu/direct_blocked_dw.py"], capture_output=True, text=True, check=True).stdout
path = os.path.join(tempfile.mkdtemp(), "old_dw.py")
open(path, "w").write(old.replace("from .direct_blocked import", "from minicnn.kernels.cpu.direct_blocked import").replace("from .simd import", "from minicnn.kernels.cpu.simd import"))
spec = importlib.util.spec_from_file_location("old_dw", path); od = importlib.util.module_from_spec(spec); spec.loader.exec_module(od)
old_impl = od._weight_grad_channels_impl
old_impl.__name__ = old_impl.__qualname__ = "_old_weight_grad_channels_impl"  # _specialised keys its kernels by name
def best(f, reps=5):
    ts = []
    for _ in range(reps):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return min(ts)
rng = np.random.default_rng(0)
B = np.array([0, 16], np.int64)
for name, c, o, hw, k in [("net2 conv2", 32, 64, 16, 5), ("net2 conv3", 64, 128, 8, 5), ("tut conv2", 6, 16, 10, 5),
                          ("resnet s2", 32, 32, 16, 3), ("resnet s3", 64, 64, 8, 3), ("deconv", 16, 16, 14, 3)]:
    p = k // 2
    x = rng.standard_normal((16, c, hw, hw)).astype(np.float32); d = rng.standard_normal((16, o, hw, hw)).astype(np.float32)
    ov, tr = dwm.channel_tile(o, k, k); consts = dict(OV=ov, TR=tr, KW=k, NACC_C=ov * tr * k)
    a1, a2 = np.empty((1, o * c * k * k), np.float32), np.empty((1, o * c * k * k), np.float32)
    fo = lambda: db._specialised(old_impl, **consts)(x, d, p, p, k, k, a1, B)
    fn = lambda: db._specialised(dwm._weight_grad_channels_impl, **consts)(x, d, p, p, k, k, a2, B)
    fo(); fn()
    same = np.array_equal(a1, a2)
    r_o, r_n = [], []
    for _ in range(7):
        r_o.append(best(fo)); r_n.append(best(fn))
    fl = 2 * 16 * o * c * k * k * hw * hw / 1e9
    print(f"{name} (OV {ov}, TR {tr}): one position a trip {fl/np.median(r_o):.0f}, PU=4 {fl/np.median(r_n):.0f} GFLOP/s; same bits: {same}", flush=True)
