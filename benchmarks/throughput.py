"""Training and inference throughput of the seed nets, every backend vs PyTorch.

    python -m benchmarks.throughput [--backends numpy numba] [--nets tutorial net2]
        [--batch-sizes 4 64 256] [--repeats 5] [--min-time 0.2] [--no-torch]
        [--device cpu|cuda|both] [--modes train infer] [--out DIR] [--quick]

For each net x batch size x mode (train: forward + loss + backward + SGD
momentum step; infer: ``model.eval()`` forward) it times every minicnn
backend present (numpy, numba, cupy) and, in the same run, PyTorch on the CPU
with ``torch.set_num_threads(numba.get_num_threads())`` (and on CUDA with
``--device cuda``/``both`` when a GPU is there). See ``benchmarks.common``
for the steps and ``measure`` for the protocol: first call timed alone
(warm-up / JIT compile), then repeats of blocks of k steps (>= ``--min-time``
seconds each), round-robin over the implementations; the median per-step time
is reported.

Prints a markdown table (images/s, time ratio to PyTorch, numba speed-up over
numpy, GFLOP/s = 2 * MACs / time) and a first-call table, and writes
``throughput.json`` and ``throughput.png`` to ``--out`` (default
``benchmarks/results/``, or ``$OUT`` when set).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from benchmarks import common, machine, timing
from benchmarks.common import DEFAULT_NETS, MODES, NETS, fmt_num
from minicnn.atomic import atomic_write, write_text_atomic

DEFAULT_BATCH_SIZES = (4, 64, 256)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.throughput",
                                 description="minicnn training/inference throughput vs PyTorch")
    ap.add_argument("--backends", nargs="+", default=None,
                    help="minicnn backends (default: all of minicnn.available_backends()); 'cupy-graph' "
                         "adds cupy with the training step replayed from a CUDA graph (training rows only)")
    extra = ", ".join(n for n in NETS if n not in DEFAULT_NETS)
    ap.add_argument("--nets", nargs="+", default=None,
                    help=f"nets (default: {', '.join(DEFAULT_NETS)}; also {extra})")
    ap.add_argument("--batch-sizes", nargs="+", default=None, help="default: 4 64 256")
    ap.add_argument("--modes", nargs="+", default=None, help="train and/or infer (default: both)")
    ap.add_argument("--repeats", type=int, default=None, help="timed blocks per configuration (default 5)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds per timed block: k steps are run per block so that it lasts this long "
                         "(default 0.2)")
    ap.add_argument("--torch", action=argparse.BooleanOptionalAction, default=None,
                    help="also time PyTorch (default: when installed)")
    ap.add_argument("--device", choices=("cpu", "cuda", "both"), default="cpu",
                    help="device(s) for PyTorch (cuda only when a GPU is available)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for numba, OpenBLAS (NumPy) and PyTorch alike; default: numba and OpenBLAS "
                         "as they are, PyTorch gets numba.get_num_threads()")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default $OUT or benchmarks/results)")
    ap.add_argument("--torch-graph", action=argparse.BooleanOptionalAction, default=None,
                    help="with cupy-graph and PyTorch on cuda: also time PyTorch's whole training step "
                         "replayed from a CUDA graph (torch-cuda-graph), cupy-graph's peer (default: on)")
    ap.add_argument("--torch-tf32", choices=("default", "on", "off"), default="default",
                    help="PyTorch's TF32 switches on cuda: default (PyTorch's: TF32 cuDNN convolutions, "
                         "FP32 matmuls), or both on / both off")
    ap.add_argument("--minicnn-tf32", choices=("default", "conv", "on", "off"), default="default",
                    help="minicnn's TF32 switches (minicnn.backend.tf32) for the cupy backend: default "
                         "(as they are; minicnn's defaults are PyTorch's, TF32 convolution products and "
                         "FP32 matmuls), conv (the same, set explicitly), on (convolutions and matmuls), "
                         "off (exact FP32)")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG")
    ap.add_argument("--quick", action="store_true",
                    help="smoke-test settings for whatever is not given: tutorial net, batch 4, 1 repeat, "
                         "min-time 0.01 s")
    args = ap.parse_args(argv)

    import minicnn

    avail = minicnn.available_backends()
    q = args.quick
    args.backends = common.split_list(args.backends) or list(avail)
    allowed = list(avail) + (["cupy-graph"] if "cupy" in avail else [])
    bad = [b for b in args.backends if b not in allowed]
    if bad:
        ap.error(f"backend(s) {bad} not available here; available: {allowed}")
    args.nets = common.split_list(args.nets) or (["tutorial"] if q else list(DEFAULT_NETS))
    for n in args.nets:
        if n not in NETS:
            ap.error(f"unknown net {n!r}; choose from {list(NETS)}")
    args.batch_sizes = common.split_list(args.batch_sizes, int) or ([4] if q else list(DEFAULT_BATCH_SIZES))
    args.modes = common.split_list(args.modes) or list(MODES)
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}; choose from {list(MODES)}")
    if args.repeats is None:
        args.repeats = 1 if q else 5
    if args.min_time is None:
        args.min_time = 0.01 if q else 0.2
    if args.repeats < 1 or args.min_time < 0:
        ap.error("--repeats must be >= 1 and --min-time >= 0")
    args.out = args.out or common.default_out_dir()

    if args.torch_tf32 != "default" and "cuda" not in (args.device, "both"):
        ap.error("--torch-tf32 needs --device cuda or both")
    args.torch_devices = []
    if args.torch is not False:
        if machine.torch_available():
            devs = ["cpu", "cuda"] if args.device == "both" else [args.device]
            if "cuda" in devs and not machine.torch_cuda_available():
                print("note: --device cuda asked but PyTorch sees no CUDA device; timing PyTorch on the CPU",
                      file=sys.stderr)
                devs = ["cpu"]
            args.torch_devices = devs
        elif args.torch:
            ap.error("--torch given but PyTorch is not installed")
    return args


def impl_labels(args) -> list[str]:
    labels = list(args.backends) + [common.TORCH_LABELS[d] for d in args.torch_devices]
    if "torch-cuda" in labels and "cupy-graph" in labels and args.torch_graph is not False:
        labels.append("torch-cuda-graph")  # the like-for-like peer of cupy-graph
    return labels


def reference_for(label: str, labels: list[str]) -> str | None:
    """The PyTorch run a result is compared with, like with like: PyTorch's whole-step CUDA
    graph for cupy-graph (when timed), PyTorch CUDA eager for the other GPU runs, PyTorch
    CPU for the CPU backends."""
    if label == "cupy-graph" and "torch-cuda-graph" in labels:
        return "torch-cuda-graph"
    if label.startswith("torch"):
        return None
    want = "torch-cuda" if label in common.GPU_IMPLS else "torch-cpu"
    return want if want in labels else None


def _set_torch_tf32(mode: str) -> None:
    """PyTorch's TF32 switches: "default" leaves PyTorch's own (TF32 for cuDNN convolutions,
    full FP32 for matmuls), "on"/"off" set both."""
    if mode == "default":
        return
    import torch

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = mode == "on"


def _set_minicnn_tf32(mode: str) -> None:
    """minicnn's TF32 switches for the cupy backend's float32 products (see --minicnn-tf32)."""
    if mode == "default":
        return
    from minicnn.backend import tf32

    tf32.conv = mode in ("conv", "on")
    tf32.matmul = mode == "on"


def run(args, log=print) -> dict:
    threads = machine.set_threads(args.threads, torch_too=bool(args.torch_devices))
    if "cuda" in args.torch_devices:
        _set_torch_tf32(args.torch_tf32)
    _set_minicnn_tf32(getattr(args, "minicnn_tf32", "default"))
    labels = impl_labels(args)
    meta = machine.env_info()
    from minicnn.backend import tf32

    meta["minicnn_tf32"] = {"conv": tf32.conv, "matmul": tf32.matmul}
    argv = sys.argv[1:] if getattr(args, "argv", None) is None else list(args.argv)
    meta.update(threads=threads, command=" ".join(["python -m benchmarks.throughput", *argv]),
                repeats=args.repeats, min_time_s=args.min_time, seed=args.seed, lr=common.LR,
                momentum=common.MOMENTUM, dtype="float32", impls=labels)
    results = []
    macs = {}
    t_start = time.perf_counter()
    for net in args.nets:
        macs[net] = common.count_macs(net)
        for bs in args.batch_sizes:
            for mode in args.modes:
                t0 = time.perf_counter()
                runners, errors = [], {}
                for label in labels:
                    if label.endswith("-graph") and mode != "train":
                        errors[label] = None  # graphed runners time training steps only
                        continue
                    try:
                        runners.append(common.make_runner(label, net, bs, mode, args.seed, threads))
                    except Exception as e:
                        errors[label] = f"{type(e).__name__}: {e}"
                res = timing.measure(runners, args.repeats, args.min_time, log=log)
                for label, err in errors.items():
                    res[label] = {"error": err, "step_times_s": [], "median_step_s": None, "min_step_s": None,
                                  "first_call_s": None, "steps_per_repeat": 0, "repeats": 0}
                rows = _rows(net, bs, mode, labels, res, macs[net])
                results.extend(rows)
                del runners
                gc.collect()
                log(_progress_line(net, bs, mode, rows, time.perf_counter() - t0))
    meta["elapsed_s"] = time.perf_counter() - t_start
    try:
        meta["loadavg_end"] = list(__import__("os").getloadavg())
    except OSError:  # pragma: no cover
        pass
    return {"meta": meta, "macs": macs, "results": results}


def _rows(net, bs, mode, labels, res, macs):
    mac_img = macs["train_per_image" if mode == "train" else "forward_per_image"]
    rows = []
    for label in labels:
        d = res[label]
        t = d["median_step_s"]
        rows.append({
            "net": net, "batch_size": bs, "mode": mode, "impl": label,
            "kind": "torch" if label.startswith("torch") else "minicnn",
            "device": "cuda" if label in common.GPU_IMPLS else "cpu",
            "median_step_s": t, "min_step_s": d["min_step_s"], "step_times_s": d["step_times_s"],
            "steps_per_repeat": d["steps_per_repeat"], "repeats": d["repeats"],
            "first_call_s": d["first_call_s"],
            "warmup_overhead_s": (d["first_call_s"] - t) if (t and d["first_call_s"] is not None) else None,
            "images_per_s": bs / t if t else None,
            "macs_per_step": mac_img * bs,
            "gflops": 2 * mac_img * bs / t / 1e9 if t else None,
            "error": d["error"],
        })
    by = {r["impl"]: r for r in rows}
    for r in rows:
        ref = reference_for(r["impl"], labels)
        rt = by[ref]["median_step_s"] if ref else None
        r["torch_ref"] = ref
        r["time_ratio_vs_torch"] = r["median_step_s"] / rt if (rt and r["median_step_s"]) else None
        base = by.get("numpy", {}).get("median_step_s")
        r["speedup_vs_numpy"] = base / r["median_step_s"] if (base and r["median_step_s"]) else None
    return rows


def _progress_line(net, bs, mode, rows, dt):
    parts = []
    for r in rows:
        if r["error"]:
            parts.append(f"{r['impl']} ERROR")
        elif r["images_per_s"] is None:
            continue  # not timed in this mode
        else:
            parts.append(f"{r['impl']} {fmt_num(r['images_per_s'])} img/s")
    return f"[{dt:6.1f} s] {net:8s} b{bs:<4d} {mode:5s}: " + ", ".join(parts)


# --- reporting -------------------------------------------------------------------

def tables(report: dict) -> str:
    """Markdown tables: throughput with ratios, then first-call (warm-up/compile) times."""
    rows = report["results"]
    labels = report["meta"]["impls"]
    ours = [lb for lb in labels if not lb.startswith("torch")]
    keys = []
    for r in rows:
        k = (r["net"], r["batch_size"], r["mode"])
        if k not in keys:
            keys.append(k)
    by = {(r["net"], r["batch_size"], r["mode"], r["impl"]): r for r in rows}

    head = ["net", "batch", "mode"] + [f"{lb} img/s" for lb in labels]
    head += [f"{lb} t/t_torch" for lb in ours if reference_for(lb, labels)]
    if "numpy" in labels and "numba" in labels:
        head.append("numba speed-up vs numpy")
    head += [f"{lb} GFLOP/s" for lb in labels]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for net, bs, mode in keys:
        cells = [net, str(bs), mode]
        get = lambda lb, f: (by.get((net, bs, mode, lb)) or {}).get(f)  # noqa: E731
        cells += [("ERR" if get(lb, "error") and get(lb, "images_per_s") is None else fmt_num(get(lb, "images_per_s")))
                  for lb in labels]
        cells += [fmt_num(get(lb, "time_ratio_vs_torch")) for lb in ours if reference_for(lb, labels)]
        if "numpy" in labels and "numba" in labels:
            cells.append(fmt_num(get("numba", "speedup_vs_numpy")))
        cells += [fmt_num(get(lb, "gflops")) for lb in labels]
        out.append("| " + " | ".join(cells) + " |")

    out += ["", "First call (warm-up / JIT compile or cache load), seconds, vs the median step:", ""]
    head2 = ["net", "batch", "mode"] + [f"{lb} first / step" for lb in labels]
    out += ["| " + " | ".join(head2) + " |", "|" + "---|" * len(head2)]
    for net, bs, mode in keys:
        cells = [net, str(bs), mode]
        for lb in labels:
            r = by.get((net, bs, mode, lb)) or {}
            f, s = r.get("first_call_s"), r.get("median_step_s")
            cells.append(f"{fmt_num(f)} / {fmt_num(s)}" if f is not None else "-")
        out.append("| " + " | ".join(cells) + " |")

    errs = [r for r in rows if r["error"]]
    if errs:
        out += ["", "Errors:"] + [f"- {r['net']} b{r['batch_size']} {r['mode']} {r['impl']}: {r['error']}"
                                  for r in errs]
    m = report["meta"]
    out += ["", f"t/t_torch: median step time divided by PyTorch's ({m.get('torch', 'n/a')}, "
                f"{m['threads']} thread(s); > 1 = slower than PyTorch). GFLOP/s = 2 * MACs / time "
                f"(training counted as 3x forward MACs). Median of {m['repeats']} blocks of >= "
                f"{m['min_time_s']} s."]
    return "\n".join(out)


def plot(report: dict, path: Path) -> Path | None:
    """Bar chart of images/s: one panel per (mode, net), bars per implementation, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    labels = report["meta"]["impls"]
    nets = list(dict.fromkeys(r["net"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    sizes = list(dict.fromkeys(r["batch_size"] for r in rows))
    by = {(r["net"], r["batch_size"], r["mode"], r["impl"]): r for r in rows}
    fig, axes = plt.subplots(len(modes), len(nets), figsize=(3.6 * len(nets) + 1, 3.2 * len(modes) + 0.6),
                             squeeze=False)
    width = 0.8 / max(1, len(labels))
    colors = {"numpy": "#4C72B0", "numba": "#55A868", "cupy": "#8172B2", "torch-cpu": "#C44E52",
              "torch-cuda": "#DD8452", "cupy-graph": "#64B5CD", "torch-cuda-graph": "#937860"}
    for i, mode in enumerate(modes):
        for j, net in enumerate(nets):
            ax = axes[i][j]
            lowest = []
            for li, lb in enumerate(labels):
                xs, ys = [], []
                for si, bs in enumerate(sizes):
                    r = by.get((net, bs, mode, lb))
                    if r and r["images_per_s"]:
                        xs.append(si + (li - (len(labels) - 1) / 2) * width)
                        ys.append(r["images_per_s"])
                ax.bar(xs, ys, width, label=lb, color=colors.get(lb))
                lowest += ys
            ax.set_yscale("log")
            if lowest:  # room below the smallest bar, so no bar is cut to a sliver
                ax.set_ylim(bottom=min(lowest) / 2)
            ax.set_xticks(range(len(sizes)), [f"b{s}" for s in sizes])
            ax.set_title(f"{net} - {mode}", fontsize=10)
            if j == 0:
                ax.set_ylabel("images / s (log)")
            ax.grid(axis="y", alpha=0.3, which="both")
    axes[0][0].legend(fontsize=8)
    m = report["meta"]
    fig.suptitle(f"minicnn throughput, {m.get('cpu_model', m['machine'])}, {m['threads']} thread(s), "
                 f"{m['date'][:10]}", fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.argv = argv
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    log(f"throughput: nets {args.nets}, batch sizes {args.batch_sizes}, modes {args.modes}, "
        f"impls {impl_labels(args)}, repeats {args.repeats}, min-time {args.min_time} s")
    report = run(args, log=log)
    text = tables(report)
    out = Path(args.out)
    report["files"] = {"json": str(out / "throughput.json"), "md": str(out / "throughput.md")}
    if not args.no_plot:
        report["files"]["png"] = str(plot(report, out / "throughput.png"))
    common.write_json(out / "throughput.json", report)
    write_text_atomic(out / "throughput.md", text + "\n")
    print(text)
    print(f"\nwrote {out / 'throughput.json'}" + ("" if args.no_plot else f", {out / 'throughput.png'}")
          + f", {out / 'throughput.md'}")
    return report


if __name__ == "__main__":
    main()
