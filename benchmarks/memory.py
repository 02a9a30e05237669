"""Peak resident memory of a training step: minicnn (each CPU backend) vs PyTorch CPU.

    python -m benchmarks.memory [--net net2] [--batch-size 256] [--steps 8]
        [--impls numpy numba torch-cpu] [--threads N] [--out DIR]

Each implementation runs in a fresh Python subprocess (so one library's
allocations, caches or JIT cannot count against another), which

1. imports its library, builds the model, the optimiser and the batch
   (float32, the same shapes for all), then reads the *baseline*
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss``;
2. runs ``--steps`` full training steps (forward, loss, backward, SGD momentum
   step), reading ``ru_maxrss`` after each;
3. prints a JSON line.

Reported: the absolute peak RSS (what the process needed, library code and
its import-time memory included) and the increment over the baseline (what
the training step itself added: activations, caches such as im2col columns,
gradients, momentum buffers, temporaries). For numba the first step also
includes JIT compilation or loading of cached kernels (LLVM), so the
increment after step 1 is shown separately from the final one.

Then, in the same subprocess, a *warm* measurement: the first model is
dropped, freed heap is returned to the OS (``malloc_trim``), the peak mark is
reset (``/proc/self/clear_refs``, Linux), a new model is built and the steps
run again; its increment excludes JIT and import-time memory (memory a
library keeps cached after the first model is gone counts in its baseline
instead). The ratio columns divide by PyTorch's numbers. The last column is
the median count of minor page faults (``ru_minflt``) in a step of the second
half of the first phase: memory the step touched for the first time.

Writes ``memory.json`` to ``--out`` (default ``benchmarks/results/`` or ``$OUT``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import common, machine
from benchmarks.common import NETS, fmt_num


def _maxrss_mb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS)
    return kb / (2**20 if sys.platform == "darwin" else 2**10)


def child(impl: str, net: str, batch_size: int, steps: int, threads: int | None) -> dict:
    """Runs in the subprocess: baseline after imports + model creation, then peaks per step."""
    t0 = time.perf_counter()
    after_python = _maxrss_mb()
    if impl.startswith("torch"):  # numba is not imported here: its import would count in torch's baseline
        import torch

        if threads:
            torch.set_num_threads(threads)
    else:
        import minicnn  # noqa: F401

        if threads:
            machine.set_threads(threads, torch_too=False)
    after_import = _maxrss_mb()
    runner = common.make_runner(impl, net, batch_size, "train", seed=0, threads=threads)
    baseline = _maxrss_mb()
    baseline_rss_now = machine.rss_now_mb()
    peaks, times, faults = [], [], []
    for _ in range(steps):
        ts, f0 = time.perf_counter(), _minor_faults()
        runner.run(1)
        times.append(time.perf_counter() - ts)
        faults.append(_minor_faults() - f0)
        peaks.append(_maxrss_mb())
    cold_end = machine.rss_now_mb()
    holder = [runner]
    del runner
    warm = _warm_phase(impl, net, batch_size, steps, threads, holder)
    return {
        "impl": impl, "net": net, "batch_size": batch_size, "steps": steps, "pid": os.getpid(),
        "maxrss_after_python_mb": after_python, "maxrss_after_import_mb": after_import,
        "baseline_mb": baseline, "rss_at_baseline_mb": baseline_rss_now,
        "peak_after_each_step_mb": peaks, "peak_mb": peaks[-1],
        "increment_mb": peaks[-1] - baseline, "increment_after_step1_mb": peaks[0] - baseline,
        "rss_end_mb": cold_end, "step_times_s": times, "minor_faults_per_step": faults,
        "steady_faults_per_step": statistics.median(faults[steps // 2:]),
        "warm": warm, "wall_s": time.perf_counter() - t0,
    }


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _warm_phase(impl, net, batch_size, steps, threads, holder: list) -> dict | None:
    """Second measurement in the same process, with JIT and imports done.

    Drops the first model, resets the kernel's peak-RSS mark (Linux:
    ``echo 5 > /proc/self/clear_refs``, which also resets ru_maxrss), builds a
    new model and runs the steps again. The increment then excludes JIT
    compilation; freed memory the allocator kept counts in the baseline.
    """
    import gc

    holder.clear()  # the only reference to the first runner: its model, batch and caches go
    gc.collect()
    try:  # hand freed heap pages back to the OS (glibc), so they do not hide in the new baseline
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    reset = _maxrss_mb()
    runner = common.make_runner(impl, net, batch_size, "train", seed=1, threads=threads)
    baseline = _maxrss_mb()
    peaks = []
    for _ in range(steps):
        runner.run(1)
        peaks.append(_maxrss_mb())
    return {"maxrss_after_reset_mb": reset, "baseline_mb": baseline, "peak_after_each_step_mb": peaks,
            "peak_mb": peaks[-1], "increment_mb": peaks[-1] - baseline}


def run_child(impl: str, net: str, batch_size: int, steps: int, threads: int | None, timeout: float) -> dict:
    args = ["--child", impl, "--net", net, "--batch-size", str(batch_size), "--steps", str(steps)]
    return common.run_json_child("benchmarks.memory", args + (["--threads", str(threads)] if threads else []),
                                 impl, timeout)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                 description="peak RSS of a training step, minicnn vs PyTorch (subprocesses)")
    ap.add_argument("--net", default="net2", choices=NETS)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8,
                    help="training steps per phase (the peak grows for ~6 steps as the allocator settles)")
    ap.add_argument("--impls", nargs="+", default=None,
                    help="minicnn CPU backends and/or torch-cpu (default: numpy, numba, torch-cpu if present)")
    ap.add_argument("--threads", type=int, default=None, help="threads for numba/OpenBLAS/PyTorch in each child")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per subprocess")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is None:
        import minicnn

        avail = [b for b in minicnn.available_backends() if b != "cupy"]
        default = avail + (["torch-cpu"] if machine.torch_available() else [])
        args.impls = common.split_list(args.impls) or default
        ok = set(avail) | ({"torch-cpu"} if machine.torch_available() else set())
        bad = [i for i in args.impls if i not in ok]
        if bad:
            ap.error(f"{bad} not available here; choose from {sorted(ok)}")
    if args.batch_size < 1 or args.steps < 1:
        ap.error("--batch-size and --steps must be >= 1")
    args.out = args.out or common.default_out_dir()
    return args


def table(results: list[dict]) -> str:
    ref = next((r for r in results if r.get("impl") == "torch-cpu" and "error" not in r), None)
    head = ["impl", "baseline MiB", "peak RSS MiB", "increment MiB", "increment after step 1 MiB",
            "peak / torch", "increment / torch", "warm increment MiB", "warm increment / torch",
            "page faults / step"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            out.append(f"| {r['impl']} | error: {r['error'][:200]} |" + " |" * (len(head) - 2))
            continue
        rp = r["peak_mb"] / ref["peak_mb"] if ref else None
        ri = r["increment_mb"] / ref["increment_mb"] if ref and ref["increment_mb"] > 0 else None
        w = r.get("warm") or {}
        wref = (ref or {}).get("warm") or {}
        rw = (w["increment_mb"] / wref["increment_mb"]
              if w.get("increment_mb") is not None and wref.get("increment_mb") else None)
        out.append("| " + " | ".join([r["impl"], fmt_num(r["baseline_mb"]), fmt_num(r["peak_mb"]),
                                      fmt_num(r["increment_mb"]), fmt_num(r["increment_after_step1_mb"]),
                                      fmt_num(rp), fmt_num(ri), fmt_num(w.get("increment_mb")),
                                      fmt_num(rw), fmt_num(r.get("steady_faults_per_step"))]) + " |")
    return "\n".join(out)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.net, args.batch_size, args.steps, args.threads)))
        return {}
    results = []
    for impl in args.impls:
        print(f"memory: {impl} {args.net} batch {args.batch_size} ...", file=sys.stderr, flush=True)
        # PyTorch gets numba's thread count, as in the throughput benchmark
        threads = args.threads or (machine.numba_threads() if impl.startswith("torch") else None)
        results.append(run_child(impl, args.net, args.batch_size, args.steps, threads, args.timeout))
    report = {"meta": dict(machine.env_info(), net=args.net, batch_size=args.batch_size, steps=args.steps,
                           threads=args.threads,
                           command=" ".join(["python -m benchmarks.memory",
                                             *(sys.argv[1:] if argv is None else argv)])),
              "results": results}
    print(f"Peak resident memory, {args.net} training step, batch {args.batch_size}, float32, "
          f"{args.steps} steps, one fresh process each (ru_maxrss):\n")
    print(table(results))
    path = common.write_json(Path(args.out) / "memory.json", report)
    print(f"\nwrote {path}")
    return report


if __name__ == "__main__":
    main()
