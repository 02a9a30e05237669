"""How fast a net's convolutions could be on the CPU with NumPy's BLAS, beside PyTorch's.

    python -m benchmarks.gemm_ceiling [--net net2] [--batch-size 64] [--threads 2] [--repeats 15]

minicnn's CPU convolutions are im2col + matrix products through NumPy's BLAS
(OpenBLAS in the NumPy wheels), then col2im, the batch dealt to ``--threads``
threads that each run BLAS on one thread (``kernels/conv_schedule.py``). This
times *only those products* for each Conv2d of ``--net``, as one thread's share
runs them (ceil(batch / threads) samples, BLAS on one thread; per sample:
forward W (O, K) @ cols_n (K, L); backward dW^T += cols_n (K, L) @ d_n^T, as
the CPU schedule sums the weight gradient, and dcols_n = W^T @ d_n except for
the first layer, whose input gradient is not needed), which is the layer's
time with a perfect split and nothing else; the weight gradient is also timed
in the orientation the layer's math writes, dW += d_n @ cols_n^T; and
PyTorch's whole ``conv2d`` forward and backward (oneDNN) at the same shapes on
``--threads`` threads. The products' sum is a floor under minicnn's convolution
time: a step whose im2col, col2im, bias, activation and pooling passes took no
time at all would still take that long. When that floor exceeds PyTorch's
convolutions, no fusion of the passes around the GEMMs can close the gap; only
faster products can.

Each block is timed ``--repeats`` times after one untimed call, one block
after the other (not interleaved); the median is printed. Quiet machine only (check ``uptime``).
Also printed: a 1024^3 SGEMM through NumPy and through ``torch.mm``, the
BLAS's own rate on a large square product.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks import common, machine


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def conv_layers(net: str) -> list[dict]:
    """Each Conv2d of ``net``: name, (C, H, W) in, (O, OH, OW) out, kernel, stride, padding."""
    from minicnn import nn
    from minicnn.models import MODELS

    mods = dict(MODELS[net]().named_modules())
    out = []
    for layer in common.count_macs(net)["layers"]:
        m = mods[layer["name"]]
        if isinstance(m, nn.Conv2d):
            out.append({"name": layer["name"], "in": tuple(layer["in_shape"]), "out": tuple(layer["out_shape"]),
                        "kernel": m.kernel_size, "stride": m.stride, "padding": m.padding})
    return out


def measure(net: str, batch: int, threads: int, repeats: int) -> dict:
    from threadpoolctl import threadpool_limits

    torch = None
    if machine.torch_available():
        import torch
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    share = -(-batch // threads)  # the samples of one thread's share
    for i, layer in enumerate(conv_layers(net)):
        (c, h, w), (o, oh, ow) = layer["in"], layer["out"]
        kh, kw = layer["kernel"]
        k, n_l = c * kh * kw, oh * ow
        f = np.float32
        w2 = rng.standard_normal((o, k), dtype=f)
        cols = rng.standard_normal((share, k, n_l), dtype=f)
        d = rng.standard_normal((share, o, n_l), dtype=f)
        out, dcols = np.empty((o, n_l), f), np.empty((k, n_l), f)
        dw, dw_t = np.zeros((o, k), f), np.zeros((k, o), f)
        need_dx = i > 0

        def forward():
            for s in range(share):
                np.matmul(w2, cols[s], out=out)

        def weight_grad():  # as the layer's math writes it: dW += d_n @ cols_n^T
            for s in range(share):
                np.add(dw, d[s] @ cols[s].T, out=dw)

        def weight_grad_transposed():  # as the CPU schedule sums it: dW^T += cols_n @ d_n^T
            for s in range(share):
                np.add(dw_t, cols[s] @ d[s].T, out=dw_t)

        def input_grad():
            for s in range(share):
                np.matmul(w2.T, d[s], out=dcols)

        with threadpool_limits(1, user_api="blas"):
            fwd = _median_ms(forward, repeats)
            dw_ms, dw_t_ms = _median_ms(weight_grad, repeats), _median_ms(weight_grad_transposed, repeats)
            dx_ms = _median_ms(input_grad, repeats) if need_dx else 0.0
        row = {**layer, "K": k, "L": n_l, "macs": batch * o * k * n_l, "gemm_fwd_ms": fwd,
               "gemm_bwd_ms": dw_t_ms + dx_ms, "dw_ms": dw_ms, "dw_transposed_ms": dw_t_ms, "need_dx": need_dx}
        if torch is not None:
            x = torch.from_numpy(rng.standard_normal((batch, c, h, w), dtype=f)).requires_grad_(need_dx)
            wt = torch.from_numpy(rng.standard_normal((o, c, kh, kw), dtype=f)).requires_grad_(True)
            bt = torch.zeros(o, requires_grad=True)
            g = torch.from_numpy(rng.standard_normal((batch, o, oh, ow), dtype=f))
            conv = torch.nn.functional.conv2d
            kwargs = {"stride": layer["stride"], "padding": layer["padding"]}
            row["torch_fwd_ms"] = _median_ms(lambda: conv(x, wt, bt, **kwargs), repeats)  # as in training
            both = _median_ms(lambda: conv(x, wt, bt, **kwargs).backward(g), repeats)
            row["torch_bwd_ms"] = max(0.0, both - row["torch_fwd_ms"])
        rows.append(row)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        big = {"numpy_sgemm_1024_gflops": 2 * 1024**3 / _median_ms(lambda: a @ a, repeats) / 1e6}
    if torch is not None:
        at = torch.from_numpy(a)
        big["torch_mm_1024_gflops"] = 2 * 1024**3 / _median_ms(lambda: at @ at, repeats) / 1e6
    return {"net": net, "batch": batch, "threads": threads, "layers": rows, **big}


def table(res: dict) -> str:
    def rate(macs, ms):
        return f"{ms:.2f} ({2 * macs / ms / 1e6:.0f})" if ms > 0 else "-"

    torch = "torch_fwd_ms" in res["layers"][0] if res["layers"] else False
    cols = ["layer", "C, H, W -> O", "K x L per sample", "products fwd ms (GFLOP/s)", "products bwd ms (GFLOP/s)",
            "dW as d @ cols^T ms (GFLOP/s)", "dW as (cols @ d^T)^T ms (GFLOP/s)"]
    cols += ["PyTorch conv fwd ms (GFLOP/s)", "PyTorch conv bwd ms (GFLOP/s)"] if torch else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    tot = {"gemm_fwd_ms": 0.0, "gemm_bwd_ms": 0.0, "torch_fwd_ms": 0.0, "torch_bwd_ms": 0.0}
    for r in res["layers"]:
        m, mb = r["macs"], r["macs"] * (2 if r["need_dx"] else 1)
        line = (f"| {r['name']} | {', '.join(map(str, r['in']))} -> {r['out'][0]} | {r['K']} x {r['L']} | "
                f"{rate(m, r['gemm_fwd_ms'])} | {rate(mb, r['gemm_bwd_ms'])} | {rate(m, r['dw_ms'])} | "
                f"{rate(m, r['dw_transposed_ms'])} |")
        if torch:
            line += f" {rate(m, r['torch_fwd_ms'])} | {rate(mb, r['torch_bwd_ms'])} |"
        lines.append(line)
        for key in tot:
            tot[key] += r.get(key, 0.0)
    ours = tot["gemm_fwd_ms"] + tot["gemm_bwd_ms"]
    summary = (f"\n{res['net']}, batch {res['batch']}, {res['threads']} thread(s): the products alone "
               f"{ours:.1f} ms per training step (forward {tot['gemm_fwd_ms']:.1f}, backward {tot['gemm_bwd_ms']:.1f})")
    if torch:
        theirs = tot["torch_fwd_ms"] + tot["torch_bwd_ms"]
        summary += (f"; PyTorch's whole convolutions {theirs:.1f} ms (forward {tot['torch_fwd_ms']:.1f}, "
                    f"backward {tot['torch_bwd_ms']:.1f}); ratio {ours / theirs:.2f}")
    big = f"\n1024^3 SGEMM: NumPy's BLAS {res['numpy_sgemm_1024_gflops']:.0f} GFLOP/s"
    if "torch_mm_1024_gflops" in res:
        big += f", torch.mm {res['torch_mm_1024_gflops']:.0f} GFLOP/s"
    return "\n".join(lines) + summary + big


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gemm_ceiling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default="net2", choices=list(common.NETS))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args(argv)
    if a.batch_size < 1 or a.threads < 1 or a.repeats < 1:
        ap.error("--batch-size, --threads and --repeats must be >= 1")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print(table(measure(a.net, a.batch_size, a.threads, a.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
