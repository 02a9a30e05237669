"""Whole training steps, the numba backend's conv schedule of another revision against this tree's,
swapped in one process (blocks alternating). python sched_ab.py OLD_REV [rounds] [nets...]
Prints per net/batch the median step of each and the median (quartiles) of new/old ratios."""
import importlib.util, subprocess, sys, tempfile, os
import numpy as np
from benchmarks import common, timing, machine
from minicnn import backend

rev = sys.argv[1]; rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
nets = sys.argv[3:] or ["net2", "resnet20", "tutorial"]
src = subprocess.run(["git", "show", f"{rev}:kernels/conv_schedule.py"], capture_output=True, text=True, check=True).stdout
path = os.path.join(tempfile.mkdtemp(), "old_conv_schedule.py"); open(path, "w").write(src)
spec = importlib.util.spec_from_file_location("old_conv_schedule", path); old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
machine.set_threads(None, torch_too=False)
from minicnn.kernels import cpu
new_s = cpu.CONV_SCHEDULE
kw = dict(keep=new_s.keep, chunk=new_s.chunk, split=new_s.split, kept_split=new_s.kept_split,
          split_min_macs=new_s.split_min_macs, stack_limit=new_s.stack_limit, dw_transposed=new_s.dw_transposed,
          scratch_max=new_s.scratch_max)
old_s = old.ConvSchedule(new_s.ops, **kw)
print(f"old {rev} vs new (working tree); load {os.getloadavg()}", flush=True)
for net in nets:
    for batch in (4, 64):
        runner = common.make_runner("numba", net, batch, "train")
        ops = backend.current().ops
        def use(s):
            for k, f in s.table().items():
                setattr(ops, k, f)
        use(old_s); runner.run(3); use(new_s); runner.run(3)
        k, _ = timing.calibrate(runner, 0.3)
        t = {"old": [], "new": []}
        for r in range(rounds):
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                use(old_s if name == "old" else new_s)
                t[name].append(timing.time_call(lambda: runner.run(k)) / k)
        use(new_s)
        ratio = np.array(t["new"]) / np.array(t["old"])
        print(f"{net} b{batch}: old {1e3 * np.median(t['old']):.2f} ms, new {1e3 * np.median(t['new']):.2f} ms, "
              f"new/old {np.median(ratio):.3f} ({np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f})", flush=True)
print(f"load {os.getloadavg()}")
