"""Which Numba compilations the first step of a net makes, and how long each took (empty cache)."""
import sys, time, collections
from numba.core import event as ev
from benchmarks import common
net = sys.argv[1]; bs = int(sys.argv[2]) if len(sys.argv) > 2 else 64
with ev.install_recorder("numba:compile") as rec:
    t0 = time.perf_counter()
    runner = common.make_runner("numba", net, bs, "train"); runner.run(1)
    wall = time.perf_counter() - t0
starts = {}
rows = []
for ts, e in rec.buffer:
    key = id(e.data["dispatcher"]), str(e.data["args"])
    if e.is_start: starts[key] = ts
    else: rows.append((ts - starts.pop(key), e.data["dispatcher"].py_func.__name__, str(e.data["args"])[:80]))
rows.sort(reverse=True)
tot = collections.Counter()
for dt, name, args in rows: tot[name.split("_lanes")[0][:60]] += dt
print(f"{net} b{bs}: first step {wall:.1f} s; {len(rows)} compilations (nested ones counted inside their callers too)")
for dt, name, args in rows[:40]: print(f"{dt:7.2f} s  {name[:110]}")
