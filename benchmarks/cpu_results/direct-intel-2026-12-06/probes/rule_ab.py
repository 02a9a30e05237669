"""The CPU rule as committed against a variant that also sends first layers (<= 3 input channels)
with up to 32 output channels to the direct kernels (Net2's conv1), whole training steps in one
process, blocks alternating (fusion_ab's step_ab).
python benchmarks/cpu_results/direct-intel-2026-12-06/probes/rule_ab.py ROUNDS NET... (batch 4, 64, 256)"""
import sys
sys.path.insert(0, '.')
from benchmarks import fusion_ab, machine
from minicnn.kernels import cpu

committed = cpu.direct_rule


def wider(w, pixels, stride):
    return committed(w, pixels, stride) or (w.shape[1] <= 3 and w.shape[0] <= 32 and pixels >= cpu.DIRECT_MIN_PIXELS
                                            and w.shape[3] in (3, 5) and tuple(stride) == (1, 1))


def set_rule(flag):
    cpu.CONV_SCHEDULE.direct_rule = wider if flag else committed


fusion_ab.SWITCHES["rule"] = (set_rule, "first-layers-32", "committed")
machine.set_threads(None, torch_too=False)
for net in sys.argv[2:]:
    for batch in (4, 64, 256):
        print(fusion_ab.step_ab("numba", net, batch, int(sys.argv[1]), 0.3, "rule"), flush=True)
set_rule(False)
