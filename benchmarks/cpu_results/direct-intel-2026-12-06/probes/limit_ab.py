"""The CPU schedule's direct-kernel limit A against B weights (both on), whole training steps in
one process, blocks alternating (fusion_ab's step_ab).
python benchmarks/cpu_results/direct-intel-2026-12-06/probes/limit_ab.py A B ROUNDS NET... (batch 64 and 256)"""
import sys
sys.path.insert(0, '.')
from benchmarks import fusion_ab, machine
from minicnn.kernels import cpu
a, b, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def set_limit(flag):
    cpu.CONV_SCHEDULE.direct_max = a if flag else b
fusion_ab.SWITCHES["limit"] = (set_limit, f"max{a}", f"max{b}")
machine.set_threads(None, torch_too=False)
for net in sys.argv[4:]:
    for batch in (64, 256):
        print(fusion_ab.step_ab("numba", net, batch, rounds, 0.3, "limit"), flush=True)
