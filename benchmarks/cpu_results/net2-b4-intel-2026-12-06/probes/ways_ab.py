"""Whole numba training steps, four ways of running the conv shares, swapped in one process
(blocks rotating): "threads" (run_split for every call), "rule" (split_chooser's default),
"blas" (run_shares_blas_threads for every call: BLAS left at 2 threads until the next run_split),
"blas2" (no split at all, BLAS at 2 threads throughout), "fwd-blas" (the forwards the blas way,
the backwards the threads way).
[BATCHES="4"] [WAYS="threads rule"] python ways_ab.py [rounds] [nets...]"""
import sys, os
import numpy as np
from benchmarks import common, timing, machine

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
BATCHES = [int(b) for b in os.environ.get("BATCHES", "4").split()]
nets = sys.argv[2:] or ["net2", "tutorial"]
machine.set_threads(None, torch_too=False)
from minicnn.kernels import cpu
from minicnn.kernels.cpu import threads
from minicnn.kernels.cpu.split_chooser import SplitChooser
S = cpu.CONV_SCHEDULE
class FwdBlas:
    backward = False
    def __call__(self, fn, items):
        return (threads.run_split if self.backward else threads.run_shares_blas_threads)(fn, items)
fwd_blas = FwdBlas()
for name in ("conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward"):
    f = getattr(S, name)
    def wrapped(*a, _f=f, _b=name.endswith("backward"), **k):
        fwd_blas.backward = _b
        return _f(*a, **k)
    setattr(S, name, wrapped)
cpu.TABLE.update(S.table())  # before the numba backend is built from it
ways = {"threads": SplitChooser(force="threads"), "rule": SplitChooser(), "blas": SplitChooser(force="blas"),
        "blas2": None, "fwd-blas": fwd_blas}
ways = {k: ways[k] for k in os.environ.get("WAYS", " ".join(ways)).split()}
def use(n):
    S.split = ways[n]
    threads.release_blas() if n == "blas2" else threads.hold_blas()
print(f"load {os.getloadavg()}", flush=True)
for net in nets:
    for batch in BATCHES:
        runner = common.make_runner("numba", net, batch, "train")
        for n in ways:
            use(n); runner.run(3)
        use("threads"); k, _ = timing.calibrate(runner, 0.3)
        t = {n: [] for n in ways}
        names = list(ways)
        for r in range(rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                use(n); t[n].append(timing.time_call(lambda: runner.run(k)) / k)
        use("rule")
        base = np.array(t["threads"])
        print(f"{net} b{batch}: " + "; ".join(f"{n} {1e3*np.median(v):.2f} ms ({np.median(np.array(v)/base):.3f})"
                                              for n, v in t.items()), flush=True)
print(f"load {os.getloadavg()}")
