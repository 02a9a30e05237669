"""Per-call time of the cupy backend's matmul (cuBLAS through ctypes, see
``minicnn.kernels.cuda.gemm``) against ``cupy.matmul``, on the products of the
tutorial net's training step at batch 256 (GPU only).

    python -m benchmarks.matmul_overhead [--calls 2000]

Alternates the two implementations in blocks of ``--calls`` calls (5 rounds,
synchronised before and after each block) and prints the median microseconds
per call of each, for each shape.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.matmul_overhead", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import cupy as cp

    from minicnn.kernels.cuda import gemm

    rng = cp.random.default_rng(0)
    f = cp.float32
    shapes = {  # name: (a, b) as in the tutorial net at batch 256
        "conv1 fwd  (6,75)@(256,75,784)": (rng.standard_normal((6, 75), dtype=f),
                                          rng.standard_normal((256, 75, 784), dtype=f)),
        "conv2 dW   (256,16,100)@(256,100,150)": (rng.standard_normal((256, 16, 100), dtype=f),
                                                 rng.standard_normal((256, 150, 100), dtype=f).transpose(0, 2, 1)),
        "fc1 fwd    (256,400)@(400,120)": (rng.standard_normal((256, 400), dtype=f),
                                           rng.standard_normal((120, 400), dtype=f).T),
        "fc3 dW     (10,256)@(256,84)": (rng.standard_normal((256, 10), dtype=f).T,
                                         rng.standard_normal((256, 84), dtype=f)),
    }
    sync = cp.cuda.get_current_stream().synchronize
    print(f"| product | minicnn matmul us/call | cupy.matmul us/call | ratio |\n|---|---|---|---|")
    for name, (a, b) in shapes.items():
        times = {"minicnn": [], "cupy": []}
        fns = {"minicnn": gemm.matmul, "cupy": cp.matmul}
        for fn in fns.values():  # warm up (compile, handles, workspace)
            fn(a, b)
        for _ in range(args.rounds):
            for label, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    fn(a, b)
                sync()
                times[label].append((time.perf_counter() - t0) / args.calls * 1e6)
        m, c = statistics.median(times["minicnn"]), statistics.median(times["cupy"])
        print(f"| {name} | {m:.1f} | {c:.1f} | {m / c:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
