"""Whole training steps, register-blocked direct kernels (this commit's rule) against the
previous direct path (the row passes for float32 too, and the old rule: <= 16 output channels,
>= 512 pixels, kw 3 or 5, <= 4096 weights), swapped in one process with fusion_ab's paired
blocks. Usage: python benchmarks/cpu_results/blocked-intel-2026-12-06/probes/blocked_ab.py
NET [NET ...] --batch-sizes B [B ...] [--rounds R] [--switch blocked|all-planes]
(all-planes: the rule without its plane condition against the rule; worker-ranges: the direct
paths' batch in one range per worker against kept_split ranges; channels-forward: the
channels-in-lanes forward where its rule says, against never)."""
import argparse

from benchmarks import fusion_ab
from minicnn.kernels import cpu
from minicnn.kernels.cpu import direct

NEW_RULE, NEW_BLOCKED = cpu.direct_rule, direct._blocked


def old_rule(w, pixels, stride):
    return (w.shape[0] <= 16 and pixels >= 512 and w.shape[3] in (3, 5) and tuple(stride) == (1, 1)
            and w.size <= 4096)


def set_blocked(flag):
    cpu.CONV_SCHEDULE.direct_rule = NEW_RULE if flag else old_rule
    cpu.CONV_SCHEDULE.direct_max = cpu.DIRECT_MAX
    direct._blocked = NEW_BLOCKED if flag else (lambda *a: False)


def all_planes_rule(w, pixels, stride):
    """This commit's rule without its plane condition (float32)."""
    if w.dtype != "float32":
        return NEW_RULE(w, pixels, stride)
    return tuple(stride) == (1, 1) and w.shape[3] <= cpu.KW_MAX


def set_all_planes(flag):
    cpu.CONV_SCHEDULE.direct_rule = all_planes_rule if flag else NEW_RULE


NEW_ITEMS = type(cpu.CONV_SCHEDULE).direct_items


def set_worker_ranges(flag):
    """The direct paths' ranges: one per worker (this commit) or kept_split ranges as before."""
    sched = cpu.CONV_SCHEDULE
    sched.direct_items = (lambda n, macs: NEW_ITEMS(sched, n, macs)) if flag else \
        (lambda n, macs: sched.work_items(n, [(0, n)], macs))


from minicnn.kernels.cpu import direct_blocked  # noqa: E402

NEW_CHANNELS = direct_blocked.channels_in_lanes


def set_channels_forward(flag):
    """The channels-in-lanes forward where its rule says (this commit), or never."""
    direct_blocked.channels_in_lanes = NEW_CHANNELS if flag else (lambda *a: False)


fusion_ab.SWITCHES["blocked"] = (set_blocked, "blocked", "rows")
fusion_ab.SWITCHES["channels-forward"] = (set_channels_forward, "channels-fwd", "positions-fwd")
fusion_ab.SWITCHES["worker-ranges"] = (set_worker_ranges, "worker-ranges", "8-ranges")
fusion_ab.SWITCHES["all-planes"] = (set_all_planes, "all-planes", "rule")
ap = argparse.ArgumentParser()
ap.add_argument("nets", nargs="+")
ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 64])
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--min-time", type=float, default=0.5)
ap.add_argument("--switch", default="blocked", choices=["blocked", "all-planes", "worker-ranges", "channels-forward"])
a = ap.parse_args()
for net in a.nets:
    for b in a.batch_sizes:
        print(fusion_ab.step_ab("numba", net, b, a.rounds, a.min_time, switch=a.switch), flush=True)
