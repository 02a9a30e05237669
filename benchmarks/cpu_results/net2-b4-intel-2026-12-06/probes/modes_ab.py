"""Whole numba training steps with the conv products parallelised three ways, swapped in one
process (blocks rotating): "split" (today: run_split's threads, BLAS held at 1 thread), "blas2"
(no split, per-sample products, OpenBLAS's own threads), "blas2-wide" (no split, the wide layout,
OpenBLAS's own threads). [BATCHES="4 64"] python modes_ab.py [rounds] [nets...]; prints each mode's median step
and its median ratio to "split" (quartiles)."""
import sys, os, dataclasses
import numpy as np
from benchmarks import common, timing, machine
from minicnn import backend
from minicnn.kernels.conv_schedule import ConvSchedule

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
BATCHES = [int(b) for b in os.environ.get("BATCHES", "4 64").split()]
nets = sys.argv[2:] or ["net2", "tutorial", "deconv", "resnet20"]
machine.set_threads(None, torch_too=False)
from minicnn.kernels import cpu
from minicnn.kernels.cpu import threads
S = cpu.CONV_SCHEDULE
kw = dict(keep=S.keep, chunk=S.chunk, kept_split=S.kept_split, split_min_macs=S.split_min_macs,
          stack_limit=S.stack_limit, dw_transposed=S.dw_transposed, scratch_max=S.scratch_max)
modes = {"split": (S, True), "blas2": (ConvSchedule(S.ops, split=None, **kw), False),
         "blas2-wide": (ConvSchedule(S.ops, split=None, wide=True, **kw), False)}
print(f"load {os.getloadavg()}", flush=True)
for net in nets:
    for batch in BATCHES:
        runner = common.make_runner("numba", net, batch, "train")
        ops = backend.current().ops
        def use(m):
            s, held = modes[m]
            for k, f in s.table().items():
                setattr(ops, k, f)
            threads.hold_blas() if held else threads.release_blas()
        for m in modes:
            use(m); runner.run(3)
        use("split"); k, _ = timing.calibrate(runner, 0.3)
        t = {m: [] for m in modes}
        names = list(modes)
        for r in range(rounds):
            for m in names[r % 3:] + names[:r % 3]:
                use(m); t[m].append(timing.time_call(lambda: runner.run(k)) / k)
        use("split")
        base = np.array(t["split"])
        print(f"{net} b{batch}: " + "; ".join(
            f"{m} {1e3*np.median(v):.2f} ms" + ("" if m == "split" else
            f" ({np.median(np.array(v)/base):.3f}, {np.percentile(np.array(v)/base, 25):.3f}-{np.percentile(np.array(v)/base, 75):.3f})")
            for m, v in t.items()), flush=True)
print(f"load {os.getloadavg()}")
