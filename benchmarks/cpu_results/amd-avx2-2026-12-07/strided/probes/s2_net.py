"""ResNet-20 b64 train/infer, per-layer: stride-2 layers via im2col (committed rule) or direct, interleaved."""
import sys, numpy as np, numba
numba.set_num_threads(2)
import minicnn as mc
from minicnn.kernels import cpu
from benchmarks.layer_profile import profile
S = cpu.CONV_SCHEDULE; new_rule = S.direct_rule  # strided float32 layers direct
def stride1(w, p, s):  # the rule before: stride 1 only
    return tuple(s) == (1, 1) and new_rule(w, p, s)
mode = sys.argv[1]; bs = int(sys.argv[2])
for rnd in range(3):
    for name, rule in (("stride1-only", stride1), ("strided-direct", new_rule)):
        S.direct_rule = rule
        rep = profile("resnet20", "numba", bs, mode, steps=10, min_time=2.0)
        e = {r['key']: r['median_s'] * 1e3 for r in rep['entries']}
        s2 = {k: round(v, 2) for k, v in e.items() if k.startswith(("layer2.0.conv1", "layer3.0.conv1"))}
        print(rnd, name, f"step {rep['step_median_s']*1e3:.1f} ms", s2, flush=True)
