"""Per-layer time breakdown of one minicnn training (or inference) step.

    python -m benchmarks.layer_profile --net tutorial --batch-size 64 --backend numba
        [--mode train|infer] [--steps 20] [--min-time 1.0] [--warmup 3] [--out DIR]

Wraps ``forward`` and ``backward`` of every leaf module of the net (conv,
pool, ReLU, linear, ...), the losses' forward/backward and the optimiser's
``zero_grad``/``step`` with timers, runs ``--warmup`` untimed steps (JIT
compile), then at least ``--steps`` steps and at least ``--min-time`` seconds,
and reports the median time of each entry per step, its share of the median
step, and for conv / conv-transpose / linear layers the achieved GFLOP/s
(forward 2*MACs, backward 4*MACs: grad-input + grad-weight). ``other`` is the
step time not inside any timed call (Python glue, the gradient sum where the
deconv net's two paths meet). On the cupy backend every timed call is
bracketed by device synchronisations.

Prints the entries sorted by time and writes
``layer_profile_<net>_<backend>_b<batch>[_infer].json`` to ``--out``
(default ``benchmarks/results/`` or ``$OUT``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common, machine
from benchmarks.common import NETS, fmt_num


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.layer_profile",
                                 description="per-layer forward/backward times of one minicnn net")
    ap.add_argument("--net", default="tutorial", choices=NETS)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--backend", default=None, help="numpy, numba or cupy (default: numba if present)")
    ap.add_argument("--mode", default="train", choices=common.MODES)
    ap.add_argument("--steps", type=int, default=20, help="at least this many timed steps")
    ap.add_argument("--min-time", type=float, default=1.0, help="and at least this many seconds of steps")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (JIT compile)")
    ap.add_argument("--threads", type=int, default=None, help="threads for numba and OpenBLAS (default: as they are)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import minicnn

    avail = minicnn.available_backends()
    args.backend = args.backend or ("numba" if "numba" in avail else "numpy")
    if args.backend not in avail:
        ap.error(f"backend {args.backend!r} not available here; available: {avail}")
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0:
        ap.error("--batch-size and --steps must be >= 1, --warmup >= 0")
    args.out = args.out or common.default_out_dir()
    return args


def profile(net: str, backend_name: str, batch_size: int, mode: str = "train", steps: int = 20,
            min_time: float = 1.0, warmup: int = 3, max_steps: int = 2000, seed: int = 0) -> dict:
    runner = common.MinicnnRunner(net, backend_name, batch_size, mode, seed)
    gpu = runner.be.is_gpu
    sync = runner.sync
    clock = time.perf_counter
    acc: dict = {}
    ncalls: dict = {}
    info: dict = {}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            if gpu:
                sync()
            t0 = clock()
            out = fn(*args, **kwargs)
            if gpu:
                sync()
            acc[key] = acc.get(key, 0.0) + clock() - t0
            ncalls[key] = ncalls.get(key, 0) + 1
            return out

        return wrapper

    macs = {layer["name"]: layer for layer in common.count_macs(net)["layers"]}
    order = 0
    for name, m in runner.model.named_modules():
        if not name or m._modules:
            continue
        passes = ("forward",) if mode == "infer" else ("forward", "backward")
        for p in passes:
            key = f"{name}.{p}"
            setattr(m, p, timed(key, getattr(m, p)))
            lm = macs.get(name)
            info[key] = {"layer": name, "type": type(m).__name__, "pass": p, "order": order,
                         "desc": m.extra_repr(),
                         "macs_per_step": (lm["macs"] * batch_size * (1 if p == "forward" else 2)) if lm else None}
        order += 1
    if mode == "train":
        extras = [("loss.ce", runner.ce), ("loss.mse", runner.mse)]
        for lname, crit in extras:
            if crit is None:
                continue
            for p in ("forward", "backward"):
                key = f"{lname}.{p}"
                setattr(crit, p, timed(key, getattr(crit, p)))
                info[key] = {"layer": lname, "type": type(crit).__name__, "pass": p, "order": order, "desc": "",
                             "macs_per_step": None}
            order += 1
        for p in ("zero_grad", "step"):
            key = f"optimizer.{p}"
            setattr(runner.opt, p, timed(key, getattr(runner.opt, p)))
            info[key] = {"layer": "optimizer", "type": "SGD", "pass": p, "order": order, "desc": "momentum 0.9",
                         "macs_per_step": None}
            order += 1

    t_warm = clock()
    for _ in range(warmup):
        runner.run(1)
    warmup_s = clock() - t_warm
    per_step, totals = [], []
    t_all = clock()
    while len(totals) < max_steps and (len(totals) < steps or clock() - t_all < min_time):
        acc.clear()
        t0 = clock()
        runner.step()
        runner.sync()
        totals.append(clock() - t0)
        per_step.append(dict(acc))
    ncalls_per_step = {k: v / (warmup + len(totals)) for k, v in ncalls.items()}
    total_med = float(np.median(totals))
    entries = []
    for key, meta in info.items():
        ts = [s.get(key, 0.0) for s in per_step]
        med = float(np.median(ts))
        e = dict(meta, key=key, median_s=med, mean_s=float(np.mean(ts)), share=med / total_med,
                 calls_per_step=ncalls_per_step.get(key, 0.0))
        e["gflops"] = 2 * meta["macs_per_step"] / med / 1e9 if (meta["macs_per_step"] and med > 0) else None
        entries.append(e)
    other = [t - sum(s.values()) for t, s in zip(totals, per_step)]
    other_med = float(np.median(other))
    entries.append({"key": "other", "layer": "other", "type": "(glue)", "pass": "-", "order": order,
                    "desc": "step time outside the timed calls", "median_s": other_med,
                    "mean_s": float(np.mean(other)), "share": other_med / total_med, "calls_per_step": 0,
                    "macs_per_step": None, "gflops": None})
    entries.sort(key=lambda e: -e["median_s"])
    sums = {}
    for e in entries:
        sums[e["pass"]] = sums.get(e["pass"], 0.0) + e["median_s"]
    return {
        "meta": dict(machine.env_info(), net=net, backend=backend_name, batch_size=batch_size, mode=mode,
                     warmup_steps=warmup, warmup_s=warmup_s, steps=len(totals)),
        "step_median_s": total_med,
        "step_min_s": float(min(totals)),
        "images_per_s": batch_size / total_med,
        "sum_by_pass_s": sums,
        "entries": entries,
    }


def table(rep: dict) -> str:
    m = rep["meta"]
    lines = [f"{m['net']} net, backend {m['backend']}, batch {m['batch_size']}, {m['mode']}: median step "
             f"{rep['step_median_s'] * 1e3:.3f} ms ({fmt_num(rep['images_per_s'])} img/s) over {m['steps']} steps; "
             f"warm-up {m['warmup_steps']} steps {m['warmup_s']:.3f} s", ""]
    head = ["#", "entry", "type", "median ms", "% of step", "GFLOP/s", "calls/step"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, e in enumerate(rep["entries"], 1):
        name = e["key"] if not e["desc"] else f"{e['key']} ({e['desc']})"
        lines.append("| " + " | ".join([str(i), name, e["type"], f"{e['median_s'] * 1e3:.3f}",
                                        f"{100 * e['share']:.1f}", fmt_num(e["gflops"]),
                                        fmt_num(e["calls_per_step"])]) + " |")
    s = rep["sum_by_pass_s"]
    lines += ["", "sum of medians by pass (ms): " + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in sorted(s.items())),
              "(medians are taken per entry, so they need not add up exactly to the median step)"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        machine.set_threads(args.threads, torch_too=False)
    rep = profile(args.net, args.backend, args.batch_size, args.mode, args.steps, args.min_time, args.warmup,
                  args.max_steps, args.seed)
    rep["meta"]["command"] = " ".join(["python -m benchmarks.layer_profile",
                                       *(sys.argv[1:] if argv is None else argv)])
    suffix = "" if args.mode == "train" else "_infer"
    path = Path(args.out) / f"layer_profile_{args.net}_{args.backend}_b{args.batch_size}{suffix}.json"
    common.write_json(path, rep)
    print(table(rep))
    print(f"\nwrote {path}")
    return rep


if __name__ == "__main__":
    main()
