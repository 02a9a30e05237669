"""Per-layer convolution times on the GPU: minicnn's two cupy paths beside PyTorch's cuDNN, for
every distinct Conv2d of the nets, so that a device run shows where the implicit-GEMM kernels
(``kernels/cuda/conv_igemm.cu``, ``MINICNN_CONV_IMPLICIT``) win or lose against im2col + cuBLAS
(the default) and against cuDNN, layer by layer.

    python -m benchmarks.conv_layers_gpu [--nets tutorial net2 resnet20] [--batch-sizes 64 256]
        [--rounds 5] [--iters 10] [--tf32 on|off] [--out DIR]
    python -m benchmarks.conv_layers_gpu --list     # the layers only (no GPU needed)

* Methods: ``im2col`` (``kernels.cuda.CONV_SCHEDULE`` with ``use_implicit_gemm(False)``),
  ``implicit`` (the same schedule with ``use_implicit_gemm(True)``), ``cudnn`` (PyTorch's
  ``conv2d`` and its autograd backward, when PyTorch with CUDA is installed).
* Per layer and batch size: forward (output + bias) and backward (input gradient, weight
  gradient, bias gradient) each timed as a block of ``--iters`` calls ended by a device
  synchronisation (eager wall time, Python launch work included), the methods interleaved
  round by round, the median over ``--rounds`` rounds.
* TF32 (``--tf32``): ``on`` (both libraries' defaults: convolutions on TF32 tensor cores) or
  ``off`` (exact FP32 on both sides).

Prints one table (ms per call; implicit / im2col and implicit / cudnn, below 1 = implicit
faster) and writes ``conv_layers_gpu.json``. Without CuPy and a CUDA device it says so and
exits 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import count_macs, default_out_dir, write_json

NETS = ("tutorial", "deconv", "net2", "resnet20")


def conv_layers(nets) -> list[dict]:
    """The distinct Conv2d layers of ``nets`` (per-image input shape, output channels, window),
    each with the nets and layer names that have it."""
    seen: dict = {}
    for net in nets:
        for layer in count_macs(net)["layers"]:
            if layer["type"] != "Conv2d":
                continue
            key = (tuple(layer["in_shape"]), layer["out_shape"][0], tuple(layer["kernel"]), tuple(layer["stride"]),
                   tuple(layer["padding"]))
            entry = seen.setdefault(key, {"in_shape": list(key[0]), "out_channels": key[1], "kernel": list(key[2]),
                                          "stride": list(key[3]), "padding": list(key[4]), "where": [],
                                          "macs_per_image": layer["macs"]})
            entry["where"].append(f"{net}.{layer['name']}")
    return list(seen.values())


def describe(layer: dict) -> str:
    c, h, w = layer["in_shape"]
    (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
    return f"{c}->{layer['out_channels']} k{kh}x{kw} s{sh}x{sw} on {h}x{w}"


def _methods(layer: dict, batch: int, tf32: bool, seed: int = 0) -> dict:
    """{name: (forward(), backward())} on one batch of this layer, on the device."""
    import cupy

    import minicnn as mc
    from minicnn import backend
    from minicnn.kernels import cuda

    mc.set_backend("cupy")
    backend.tf32.conv = tf32
    rng = np.random.default_rng(seed)
    c, h, w = layer["in_shape"]
    o, (kh, kw) = layer["out_channels"], layer["kernel"]
    stride, padding = tuple(layer["stride"]), tuple(layer["padding"])
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((o, c, kh, kw)) / np.sqrt(c * kh * kw)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    xd, wd, bd = (cupy.asarray(a) for a in (x, wt, b))
    sched = cuda.CONV_SCHEDULE
    y0, _ = sched.conv2d_forward(xd, wd, bd, stride, padding)
    dy = cupy.asarray(rng.standard_normal(y0.shape).astype(np.float32))
    methods = {}
    for name, implicit in (("im2col", False), ("implicit", True)):
        def forward(implicit=implicit):
            cuda.use_implicit_gemm(implicit)
            return sched.conv2d_forward(xd, wd, bd, stride, padding)

        cache = {}

        def backward(implicit=implicit, forward=forward, cache=cache):
            if "c" not in cache:
                cache["c"] = forward()[1]
            cuda.use_implicit_gemm(implicit)
            return sched.conv2d_backward(dy, cache["c"], True)

        methods[name] = (forward, backward)
    try:
        import torch
    except ImportError:
        return methods
    if not torch.cuda.is_available():
        return methods
    torch.backends.cudnn.allow_tf32 = tf32
    tx = torch.as_tensor(x, device="cuda").requires_grad_(True)
    tw = torch.as_tensor(wt, device="cuda").requires_grad_(True)
    tb = torch.as_tensor(b, device="cuda").requires_grad_(True)
    tdy = torch.as_tensor(cupy.asnumpy(dy), device="cuda")

    def t_forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, stride, padding)

    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)

    def t_backward():
        return torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)

    methods["cudnn"] = (t_forward, t_backward)
    return methods


def _sync():
    import cupy

    cupy.cuda.Device().synchronize()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def time_layer(methods: dict, rounds: int, iters: int) -> dict:
    """{method: {"forward_ms": median, "backward_ms": median}}: blocks of ``iters`` calls, the
    methods interleaved round by round (each warmed up first)."""
    times = {name: {"forward": [], "backward": []} for name in methods}
    for name, (fwd, bwd) in methods.items():  # warm-up: compilation, plans, cuDNN's choices
        fwd(), bwd(), fwd(), bwd()
    _sync()
    for _ in range(rounds):
        for name, fns in methods.items():
            for pas, fn in zip(("forward", "backward"), fns):
                _sync()
                t0 = time.perf_counter()
                for _ in range(iters):
                    fn()
                _sync()
                times[name][pas].append((time.perf_counter() - t0) / iters * 1e3)
    return {name: {f"{pas}_ms": statistics.median(v) for pas, v in t.items()} for name, t in times.items()}


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.conv_layers_gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", nargs="+", default=["tutorial", "net2", "resnet20"], choices=NETS)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tf32", choices=["on", "off"], default="on")
    ap.add_argument("--list", action="store_true", help="print the layers and exit (no GPU needed)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    layers = conv_layers(a.nets)
    if a.list:
        for layer in layers:
            print(f"{describe(layer):28s} {layer['macs_per_image'] / 1e6:7.2f} MMAC/image  {', '.join(layer['where'])}")
        return 0
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as e:  # noqa: BLE001 - any reason there is no usable GPU
        print(f"conv_layers_gpu: no usable CUDA GPU here ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    from minicnn.kernels import cuda

    implicit_before = cuda.IMPLICIT
    rows = []
    print(f"TF32 {a.tf32}; ms per call (eager, synchronised per block of {a.iters}), median of {a.rounds} rounds")
    print("| layer | batch | pass | im2col | implicit | cudnn | implicit/im2col | implicit/cudnn |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for layer in layers:
            for batch in a.batch_sizes:
                res = time_layer(_methods(layer, batch, a.tf32 == "on"), a.rounds, a.iters)
                rows.append({**layer, "batch": batch, "tf32": a.tf32, "ms": res})
                for pas in ("forward", "backward"):
                    ms = {name: res[name][f"{pas}_ms"] for name in res}
                    cudnn = ms.get("cudnn")
                    print(f"| {describe(layer)} | {batch} | {pas} | {ms['im2col']:.3f} | {ms['implicit']:.3f} | "
                          f"{'-' if cudnn is None else f'{cudnn:.3f}'} | {_ratio(ms['implicit'], ms['im2col'])} | "
                          f"{_ratio(ms['implicit'], cudnn)} |", flush=True)
    finally:
        cuda.use_implicit_gemm(implicit_before)
    out = default_out_dir() if a.out is None else Path(a.out)
    print("wrote", write_json(out / "conv_layers_gpu.json", {"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
