"""CPU schedule keep limit: KEEP_MIB vs 2 MiB, whole training steps, one process (fusion_ab's step_ab).
python benchmarks/cpu_results/direct-intel-2026-12-06/probes/keep_ab.py KEEP_MIB ROUNDS NET... (batch 64 and 256)"""
import sys
sys.path.insert(0, '.')
from benchmarks import fusion_ab, machine
from minicnn.kernels import cpu
mib = int(sys.argv[1])
def set_keep(flag):
    cpu.CONV_SCHEDULE.keep = (mib if flag else 2) * 2**20
fusion_ab.SWITCHES["keep"] = (set_keep, f"keep{mib}MiB", "keep2MiB")
machine.set_threads(None, torch_too=False)
for net in sys.argv[3:]:
    for b in (64, 256):
        print(fusion_ab.step_ab("numba", net, b, int(sys.argv[2]), 0.3, "keep"), flush=True)
