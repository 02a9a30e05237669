"""GPU memory of a training step: minicnn's cupy backend (eager and CUDA-graphed) vs PyTorch CUDA.

    python -m benchmarks.gpu_memory [--net resnet20] [--batch-size 128] [--steps 6]
        [--impls cupy cupy-graph torch-cuda] [--out DIR]

The GPU twin of ``benchmarks/memory.py``. Each implementation runs in a fresh
Python subprocess (nothing else on the GPU), which builds the model, the SGD
optimiser and one float32 batch on the device, then runs ``--steps`` training
steps (forward, loss, backward, SGD momentum). Three numbers per implementation:

* **peak allocated**: the most bytes the library's allocator had handed out at
  any moment (tensors/arrays alive, temporaries inside a step included).
  PyTorch: ``torch.cuda.max_memory_allocated()``; cupy: a ``cupy.cuda.MemoryHook``
  that adds each memory-pool ``malloc`` and subtracts each ``free`` (the pool's
  own ``used_bytes()`` is only seen between calls).
* **increment**: peak allocated minus what was allocated once the model,
  optimiser and batch existed (the step's activations, caches, gradients,
  momentum buffers and temporaries).
* **device used**: ``total - free`` from ``cudaMemGetInfo`` after the last step,
  minus the same before the library touched the GPU: what the process holds
  from the driver (context, kernels, the allocator's cache, cuBLAS/cuDNN workspaces).

Writes ``gpu_memory.json`` to ``--out`` (default ``benchmarks/results/`` or ``$OUT``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import common, machine
from benchmarks.common import NETS, fmt_num

IMPLS = ("cupy", "cupy-graph", "torch-cuda")
MIB = 2**20


def _device_used(impl: str) -> int:
    if impl.startswith("torch"):
        import torch

        free, total = torch.cuda.mem_get_info()
    else:
        import cupy

        free, total = cupy.cuda.runtime.memGetInfo()
    return total - free


def child(impl: str, net: str, batch_size: int, steps: int) -> dict:
    """Runs in the subprocess; returns the three numbers (bytes) for ``impl``."""
    if impl.startswith("torch"):
        import torch

        torch.cuda.init()
        used0 = _device_used(impl)  # the context only: nothing allocated yet
        runner = common.make_runner(impl, net, batch_size, "train")
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        runner.run(steps)
        peak = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.max_memory_reserved()
    else:
        import cupy

        cupy.cuda.runtime.free(cupy.cuda.runtime.malloc(1))  # create the context first
        used0 = _device_used(impl)
        hook = _peak_hook_class()()
        with hook:  # hooks are per thread: the whole step runs on this one
            runner = common.make_runner(impl, net, batch_size, "train")
            runner.sync()
            base = hook.used
            hook.peak = base
            runner.run(steps)
        peak = hook.peak
        reserved = cupy.get_default_memory_pool().total_bytes()
    return {"impl": impl, "net": net, "batch_size": batch_size, "steps": steps,
            "allocated_at_start_bytes": base, "peak_allocated_bytes": peak, "increment_bytes": peak - base,
            "allocator_reserved_bytes": reserved, "device_used_bytes": _device_used(impl) - used0}


def _peak_hook_class():
    import cupy

    class PeakHook(cupy.cuda.MemoryHook):
        """Bytes handed out by cupy's memory pool right now (``used``) and at most (``peak``)."""

        name = "minicnn_peak"

        def __init__(self):
            self.used = self.peak = 0

        def malloc_postprocess(self, **kw):
            self.used += kw["mem_size"]
            self.peak = max(self.peak, self.used)

        def free_postprocess(self, **kw):
            self.used -= kw["mem_size"]

    return PeakHook


def run_child(impl: str, net: str, batch_size: int, steps: int, timeout: float) -> dict:
    args = ["--child", impl, "--net", net, "--batch-size", str(batch_size), "--steps", str(steps)]
    return common.run_json_child("benchmarks.gpu_memory", args, impl, timeout)


def table(results: list[dict]) -> str:
    ref = next((r for r in results if r.get("impl") == "torch-cuda" and "error" not in r), None)
    cols = [("peak allocated", "peak_allocated_bytes"), ("increment", "increment_bytes"),
            ("device used", "device_used_bytes")]
    head = ["impl"] + [f"{c} MiB" for c, _ in cols] + [f"{c} / torch" for c, _ in cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            out.append(f"| {r['impl']} | error: {r['error'][:300]} |" + " |" * (len(head) - 2))
            continue
        mib = [fmt_num(r[k] / MIB) for _, k in cols]
        ratio = [fmt_num(r[k] / ref[k]) if ref and ref[k] > 0 else "" for _, k in cols]
        out.append("| " + " | ".join([r["impl"], *mib, *ratio]) + " |")
    return "\n".join(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_memory",
                                 description="GPU memory of a training step, minicnn cupy vs PyTorch CUDA")
    ap.add_argument("--net", default="resnet20", choices=NETS)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--impls", nargs="+", default=None, help=f"some of {' '.join(IMPLS)} (default: all)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per subprocess")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.net, args.batch_size, args.steps)))
        return {}
    impls = common.split_list(args.impls) or list(IMPLS)
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        ap.error(f"unknown --impls {bad}; choose from {list(IMPLS)}")
    results = []
    for impl in impls:
        print(f"gpu memory: {impl} {args.net} batch {args.batch_size} ...", file=sys.stderr, flush=True)
        results.append(run_child(impl, args.net, args.batch_size, args.steps, args.timeout))
    report = {"meta": dict(machine.env_info(), net=args.net, batch_size=args.batch_size, steps=args.steps,
                           command=" ".join(["python -m benchmarks.gpu_memory",
                                             *(sys.argv[1:] if argv is None else argv)])),
              "results": results}
    print(f"GPU memory, {args.net} training step, batch {args.batch_size}, float32, {args.steps} steps, "
          f"one fresh process each:\n")
    print(table(results))
    path = common.write_json(Path(args.out or common.default_out_dir()) / "gpu_memory.json", report)
    print(f"\nwrote {path}")
    return report


if __name__ == "__main__":
    main()
