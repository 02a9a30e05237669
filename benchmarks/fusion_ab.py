"""Fusion on vs off (``minicnn.fusion``), in one process, blocks alternating (or, with
``--switch``, another setting: the CPU conv schedule's transposed weight-gradient sum or its
small-batch BLAS-threads way, its kernels' kept scratch blocks, the blocked forward's
whole-row vectors, the blocked kernels' plans made once per shape, the channels weight
gradient's cut by input channel or small direct calls split over the cores too; or on the
cupy backends TF32 convolutions or the implicit-GEMM convolution kernels; on either, the wide
conv layout and direct convolution: on
the GPU for the layers with at most ``--direct-max`` weights, on the CPU for those its rule
picks (``kernels/cpu/__init__.py``, ``direct_rule``) with at most that many).

    python -m benchmarks.fusion_ab [--backend numba|cupy|cupy-graph] [--nets net2 tutorial]
        [--batch-sizes 4 64] [--rounds 15] [--min-time 0.3] [--threads N] [--no-kernels]
        [--switch fusion|dw-transposed|cpu-split|tf32-conv|implicit|wide|direct|kept|row-vectors|
                  dw-rows|plans|dw-channels|direct-split]
        [--wide-max-pixels L]
        [--direct-max K] [--direct-split-min M]

* Training steps (``benchmarks.common``'s runner: forward, loss, zero_grad, backward,
  SGD): for each net and batch size, ``--rounds`` pairs of timed blocks, one with
  fusion on and one off (``fusion.set_enabled``), in alternating order; prints the
  median step of each and the median (and quartiles) of the paired on/off ratios.
  Below 1: fused is faster.
* Kernels (numba only, unless ``--no-kernels``): the ReLU -> MaxPool2d inputs of the
  tutorial net and Net2 at each batch size, ``relu_forward`` + ``maxpool2d_forward``
  against ``relu_maxpool2d_forward`` and the two backward kernels against
  ``relu_maxpool2d_backward``; min over 40 calls each.

Prints the load average before and after: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks import common, machine, timing
from minicnn import fusion

# (net, the shape of each ReLU -> MaxPool2d input, without the batch)
POOL_INPUTS = {"tutorial": [(6, 28, 28), (16, 10, 10)], "net2": [(32, 32, 32), (64, 16, 16), (128, 8, 8)]}


def _set_dw_transposed(flag: bool) -> None:
    from minicnn.kernels.cpu import CONV_SCHEDULE

    CONV_SCHEDULE.dw_transposed = flag


def _set_tf32_conv(flag: bool) -> None:
    from minicnn.backend import tf32

    tf32.conv = flag


WIDE_MAX_PIXELS = None  # --wide-max-pixels: with --switch wide, only layers with at most this many L


def _set_wide(flag: bool) -> None:
    """Both backends' schedules (only the selected backend's is used)."""
    from minicnn.kernels import cpu, cuda

    for sched in (cpu.CONV_SCHEDULE, cuda.CONV_SCHEDULE):
        sched.wide, sched.wide_max_pixels = flag, WIDE_MAX_PIXELS


def _set_cpu_split(flag: bool) -> None:
    """The CPU schedule's split with a small batch on BLAS's threads (kernels/cpu/split_chooser.py,
    ``small="blas"``: its default until 2026-12-07), or ``run_split`` for every call (the default)."""
    from minicnn.kernels.cpu import CONV_SCHEDULE
    from minicnn.kernels.cpu.split_chooser import SplitChooser

    CONV_SCHEDULE.split = SplitChooser(small="blas") if flag else SplitChooser()


DIRECT_MAX = 4096  # --switch direct (--direct-max): the cap on a direct layer's weights (GPU: all its convs up to it)


def _set_direct(flag: bool) -> None:
    """The direct kernels (no column matrix) on the cupy and the numba backend's schedules: on the
    GPU every layer with at most ``--direct-max`` weights, on the CPU the layers its rule picks
    (few output channels on a large plane, stride 1) with at most that many."""
    from minicnn.kernels import cpu
    from minicnn.kernels.cuda import CONV_SCHEDULE

    CONV_SCHEDULE.direct_max = cpu.CONV_SCHEDULE.direct_max = DIRECT_MAX if flag else 0


def _set_implicit(flag: bool) -> None:
    """The cupy backend's convolutions through the implicit-GEMM kernels (``kernels/cuda/conv_igemm.cu``:
    output, input and weight gradients without a column matrix), or as imported (im2col + cuBLAS)."""
    from minicnn.kernels import cuda

    cuda.use_implicit_gemm(flag)


def _set_kept(flag: bool) -> None:
    """The CPU kernels' kept scratch blocks (``kernels/cpu/workspace.py``), or a fresh block on
    every call (as before they were kept)."""
    from minicnn.kernels.cpu import workspace

    workspace.KEPT_MAX = 32 * 1024 * 1024 if flag else -1


def _set_row_vectors(flag: bool) -> None:
    """The positions-in-lanes forward's whole-row vectors where its rule takes them
    (``kernels/cpu/direct_tiles.py``, ``_row_vectors``), or the flat span everywhere."""
    from minicnn.kernels.cpu import direct_tiles

    direct_tiles.ROW_VECTORS = flag


def _set_dw_rows(flag: bool) -> None:
    """The channels weight gradient's one-row tile on wide stride-1 planes
    (``kernels/cpu/direct_blocked_dw.py``, ``channel_tile``), or the whole-kernel tile wherever
    it fits."""
    from minicnn.kernels.cpu import direct_blocked_dw

    direct_blocked_dw.WHOLE_KERNEL_OW = 8 if flag else 0


def _set_plans(flag: bool) -> None:
    """The blocked kernels' plans kept per shape (``kernels/cpu/plans.py``), or worked out again
    on every call (what the code did before them, plus building the plan object)."""
    from minicnn.kernels.cpu.plans import Plans

    Plans.enabled = flag


def _set_dw_channels(flag: bool) -> None:
    """The channels weight gradient cut by input channel where dW is larger than x and d
    together (``kernels/cpu/direct_blocked_dw.py``, ``channel_parts``), or by batch range always."""
    from minicnn.kernels.cpu import direct_blocked_dw

    direct_blocked_dw.CHANNEL_PARTS = flag


DIRECT_SPLIT_MIN = None  # --direct-split-min: with --switch direct-split, the limit when on (default the CPU's)


def _set_direct_split(flag: bool) -> None:
    """The numba backend's direct conv calls cut into one batch range per core from
    ``DIRECT_SPLIT_MIN`` multiply-adds (``ConvSchedule.direct_split_min_macs``; by default
    ``kernels/cpu/__init__.py``'s ``DIRECT_SPLIT_MIN_MACS``), or from ``split_min_macs`` (4 Mi)
    as the products are."""
    from minicnn.kernels import cpu

    on = cpu.DIRECT_SPLIT_MIN_MACS if DIRECT_SPLIT_MIN is None else DIRECT_SPLIT_MIN
    cpu.CONV_SCHEDULE.direct_split_min_macs = on if flag else cpu.CONV_SCHEDULE.split_min_macs


# --switch: (setter, label when on, label when off)
SWITCHES = {"fusion": (fusion.set_enabled, "fused", "unfused"),
            "dw-transposed": (_set_dw_transposed, "dW^T", "dW"),
            "cpu-split": (_set_cpu_split, "blas-small", "threads"),
            "tf32-conv": (_set_tf32_conv, "TF32-conv", "FP32-conv"),
            "wide": (_set_wide, "wide", "per-sample"),
            "direct": (_set_direct, "direct", "im2col"),
            "implicit": (_set_implicit, "implicit-GEMM", "im2col"),
            "kept": (_set_kept, "kept", "fresh"),
            "row-vectors": (_set_row_vectors, "rows", "flat"),
            "dw-rows": (_set_dw_rows, "dW-rows", "dW-whole"),
            "plans": (_set_plans, "planned", "unplanned"),
            "dw-channels": (_set_dw_channels, "dW-channels", "dW-ranges"),
            "direct-split": (_set_direct_split, "split-from-limit", "split-4Mi")}
GPU_SWITCHES = ("tf32-conv", "implicit")  # the cupy backend's
CPU_SWITCHES = ("dw-transposed", "cpu-split", "kept", "row-vectors", "dw-rows", "plans",
                "dw-channels", "direct-split")  # the numba backend's (direct and wide: both)


def step_ab(backend: str, net: str, batch: int, rounds: int, min_time: float, switch: str = "fusion") -> str:
    """Paired blocks of training steps with the switch on and off, in alternating order. With
    ``cupy-graph`` each setting gets its own runner, captured with the switch set as it will be
    replayed (a graph keeps the kernels it recorded); otherwise one runner serves both."""
    set_flag, on_name, off_name = SWITCHES[switch]
    graphed = backend.endswith("-graph")
    runners = {}
    for flag in ((True, False) if graphed else (True,)):
        set_flag(flag)
        runners[flag] = common.make_runner(backend, net, batch, "train")
        runners[flag].run(3)  # compile, warm (and capture) before calibrating
    set_flag(True)
    k, _ = timing.calibrate(runners[True], min_time)
    if not graphed:
        runners[False] = runners[True]
        set_flag(False)
        runners[False].run(2)  # warm the other path too
        set_flag(True)
    on, off, ratio = [], [], []
    for r in range(rounds):
        t = {}
        for flag in ((True, False) if r % 2 == 0 else (False, True)):
            set_flag(flag)
            t[flag] = timing.time_call(lambda: runners[flag].run(k)) / k
        set_flag(True)
        on.append(t[True])
        off.append(t[False])
        ratio.append(t[True] / t[False])
    q1, q3 = np.percentile(ratio, [25, 75])
    return (f"{net} b{batch} train: {k} steps/block, {rounds} rounds; median step {on_name} {1e3 * np.median(on):.2f} ms, "
            f"{off_name} {1e3 * np.median(off):.2f} ms; {on_name}/{off_name} {np.median(ratio):.3f} "
            f"(quartiles {q1:.3f}-{q3:.3f})")


def kernel_ab(batch: int, shape: tuple) -> str:
    import minicnn.kernels.cpu as K

    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    h, w = shape[1:]
    y, mask = K.relu_forward(x)
    pooled, idx = K.maxpool2d_forward(y, 2, 2, 2, 2, 0, 0)
    out, fidx = K.relu_maxpool2d_forward(x, 2, 2)
    assert np.array_equal(out, pooled) and np.array_equal(fidx, idx)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)

    def best(fn, reps=40):
        return 1e3 * min(timing.time_call(fn) for _ in range(reps))

    sep_f = best(lambda: K.maxpool2d_forward(K.relu_forward(x)[0], 2, 2, 2, 2, 0, 0))
    fus_f = best(lambda: K.relu_maxpool2d_forward(x, 2, 2))
    sep_b = best(lambda: K.relu_backward(K.maxpool2d_backward(dout, idx, h, w), mask))
    fus_b = best(lambda: K.relu_maxpool2d_backward(dout, out, idx, h, w, 2, 2))
    return (f"kernels {(batch, *shape)}: forward separate {sep_f:.3f} ms, fused {fus_f:.3f} ms; "
            f"backward separate {sep_b:.3f} ms, fused {fus_b:.3f} ms (min of 40)")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> None:
    global WIDE_MAX_PIXELS, DIRECT_MAX, DIRECT_SPLIT_MIN
    ap = argparse.ArgumentParser(description="minicnn.fusion on vs off: training steps and kernels")
    ap.add_argument("--backend", default="numba", choices=("numba", "cupy", "cupy-graph"))
    ap.add_argument("--nets", nargs="+", default=["net2", "tutorial"], choices=sorted(common.NETS))
    ap.add_argument("--switch", default="fusion", choices=sorted(SWITCHES),
                    help="what each pair of blocks turns on and off: fusion; the CPU conv schedule's "
                         "transposed weight-gradient sum or a small batch on BLAS's threads against "
                         "run_split for every call, kept scratch blocks against fresh ones, or whole-row "
                         "vectors against the flat span, the channels weight gradient's row tile on wide "
                         "planes against its whole-kernel tile (numba only); "
                         "the wide conv layout; direct convolution "
                         "(no column matrix; GPU: layers with at most --direct-max weights, CPU: its rule's "
                         "layers under that cap); on the cupy backends TF32 for the convolutions (kernels "
                         "are timed only for fusion on numba)")
    ap.add_argument("--wide-max-pixels", type=int, default=None,
                    help="with --switch wide: only layers with at most this many output pixels go wide")
    ap.add_argument("--direct-max", type=int, default=DIRECT_MAX,
                    help=f"with --switch direct: the cap on a direct layer's weights (default {DIRECT_MAX})")
    ap.add_argument("--direct-split-min", type=int, default=None,
                    help="with --switch direct-split: the multiply-adds from which a direct call is split "
                         "when on (default the CPU's DIRECT_SPLIT_MIN_MACS)")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[4, 64])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed block")
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: numba's)")
    ap.add_argument("--no-kernels", action="store_true")
    a = ap.parse_args(argv)
    if a.switch in CPU_SWITCHES and a.backend != "numba":
        ap.error(f"--switch {a.switch} is the numba backend's schedule")
    if a.switch in GPU_SWITCHES and not a.backend.startswith("cupy"):
        ap.error(f"--switch {a.switch} is the cupy backend's")
    WIDE_MAX_PIXELS, DIRECT_MAX, DIRECT_SPLIT_MIN = a.wide_max_pixels, a.direct_max, a.direct_split_min
    threads = machine.set_threads(a.threads, torch_too=False)
    print(f"load average {_load()}; backend {a.backend}, numba threads {threads}")
    for net in a.nets:
        for batch in a.batch_sizes:
            print(step_ab(a.backend, net, batch, a.rounds, a.min_time, a.switch), flush=True)
            if a.backend == "numba" and not a.no_kernels and a.switch == "fusion" and net in POOL_INPUTS:
                for shape in POOL_INPUTS[net]:
                    print("  " + kernel_ab(batch, shape), flush=True)
    print(f"load average {_load()}; {time.strftime('%Y-%m-%d %H:%M:%S %z')}")


if __name__ == "__main__":
    main()
