"""Which way the CPU schedule's rule sends each conv call of one training step (numba backend):
python ways_used.py [batch ...]; prints per net the calls by way ("one range" = run in the caller)."""
import collections, sys
from benchmarks import common, machine
machine.set_threads(None, torch_too=False)
from minicnn.kernels import cpu
S = cpu.CONV_SCHEDULE
rule = S.split
count = collections.Counter()
def spy(fn, items):
    items = list(items)
    count["one range" if len(items) == 1 else rule.way(items)] += 1
    return rule(fn, items)
S.split = spy
for batch in [int(b) for b in sys.argv[1:]] or [4, 8]:
    for net in ("tutorial", "deconv", "net2", "resnet20"):
        r = common.make_runner("numba", net, batch, "train")
        r.run(1); count.clear(); r.run(1)
        print(f"{net} b{batch}: " + ", ".join(f"{k} {v}" for k, v in sorted(count.items())), flush=True)
