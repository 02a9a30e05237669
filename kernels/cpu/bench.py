"""Time the Numba CPU kernels against the reference on the PyTorch CIFAR-10
tutorial net's shapes (conv 3->6 k5, pool 2, conv 6->16 k5, pool 2, fc).

    python -m minicnn.kernels.cpu.bench [--batches 4 64] [--variants]

Prints microseconds per call: the fastest of many individually timed calls
after a warm-up call (JIT compilation excluded; robust to a busy machine). ``--variants`` also times the serial
and the parallel compiled variant of each kernel separately (the wrapper picks
one by size; this shows whether the thresholds are right on this machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .. import reference as ref
from . import activations, conv, pooling
from . import TABLE as CPU


def _best_us(fn, budget=0.25, max_calls=20000):
    """Fastest single call in microseconds (after a warm-up call).

    The minimum over many individually timed calls, not the mean of a loop: on
    a shared machine most calls are slowed by other processes, the fastest one
    is the kernel's own time. (Loop-averaged timeit numbers agree on a quiet
    machine.)
    """
    fn()
    best = float("inf")
    clock = time.perf_counter
    start = clock()
    for _ in range(max_calls):
        t0 = clock()
        fn()
        t1 = clock()
        if t1 - t0 < best:
            best = t1 - t0
        if t1 - start > budget:
            break
    return best * 1e6


def _cases(n, dtype):
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    x1, x2 = f(n, 3, 32, 32), f(n, 6, 14, 14)
    c1, c2 = ref.im2col(x1, 5, 5, 1, 1, 0, 0), ref.im2col(x2, 5, 5, 1, 1, 0, 0)
    a1, a2 = f(n, 6, 28, 28), f(n, 16, 10, 10)
    o1, i1 = ref.maxpool2d_forward(a1, 2, 2, 2, 2, 0, 0)
    o2, i2 = ref.maxpool2d_forward(a2, 2, 2, 2, 2, 0, 0)
    m1 = a1 > 0
    h1 = f(n, 120)
    b6 = f(6)
    g6 = np.abs(f(6)) + 0.5
    u1 = rng.random(a1.shape, dtype=np.float32)
    u2 = rng.random(a2.shape[:2] + (1, 1), dtype=np.float32)
    fc1_w, fc1_g = f(120, 400), f(120, 400)
    conv2_w, conv2_g = f(16, 150), f(16, 150)
    z = lambda a: np.zeros_like(a)  # noqa: E731
    return [
        # (label, kernel name, args builder -> tuple, kernel module, serial, parallel)
        ("im2col   x(N,3,32,32) k5", "im2col", lambda: (x1, 5, 5, 1, 1, 0, 0), conv._im2col_ser, conv._im2col_par),
        ("im2col   x(N,6,14,14) k5", "im2col", lambda: (x2, 5, 5, 1, 1, 0, 0), conv._im2col_ser, conv._im2col_par),
        ("col2im   ->(N,3,32,32) k5", "col2im", lambda: (c1, n, 3, 32, 32, 5, 5, 1, 1, 0, 0), conv._col2im_ser, conv._col2im_par),
        ("col2im   ->(N,6,14,14) k5", "col2im", lambda: (c2, n, 6, 14, 14, 5, 5, 1, 1, 0, 0), conv._col2im_ser, conv._col2im_par),
        ("maxpool fwd (N,6,28,28) 2x2", "maxpool2d_forward", lambda: (a1, 2, 2, 2, 2, 0, 0), pooling._mp_fwd_ser, pooling._mp_fwd_par),
        ("maxpool fwd (N,16,10,10) 2x2", "maxpool2d_forward", lambda: (a2, 2, 2, 2, 2, 0, 0), pooling._mp_fwd_ser, pooling._mp_fwd_par),
        ("maxpool bwd (N,6,28,28) 2x2", "maxpool2d_backward", lambda: (o1, i1, 28, 28), None, None),
        ("maxpool bwd (N,16,10,10) 2x2", "maxpool2d_backward", lambda: (o2, i2, 10, 10), None, None),
        ("unpool fwd (N,6,28,28)", "maxunpool2d_forward", lambda: (o1, i1, 28, 28), None, None),
        ("unpool bwd (N,6,28,28)", "maxunpool2d_backward", lambda: (a1, i1), None, None),
        ("relu fwd (N,6,28,28)", "relu_forward", lambda: (a1,), activations._relu_fwd_ser, activations._relu_fwd_par),
        ("relu bwd (N,6,28,28)", "relu_backward", lambda: (a1, m1), activations._relu_bwd_ser, activations._relu_bwd_par),
        ("relu fwd (N,120)", "relu_forward", lambda: (h1,), activations._relu_fwd_ser, activations._relu_fwd_par),
        ("leaky fwd (N,6,28,28)", "leaky_relu_forward", lambda: (a1, 0.01), None, None),
        ("elu fwd (N,6,28,28)", "elu_forward", lambda: (a1, 1.0), None, None),
        ("gelu fwd (N,6,28,28)", "gelu_forward", lambda: (a1, "none"), None, None),
        ("gelu bwd (N,6,28,28)", "gelu_backward", lambda: (a1, a1, "none"), None, None),
        ("sgd mom. fc1 (120,400)", "sgd_update", lambda: (fc1_w, fc1_g, z(fc1_w), 1e-3, 0.9, 0.0, False, 0.0, False), None, None),
        ("sgd mom. conv2 (16,150)", "sgd_update", lambda: (conv2_w, conv2_g, z(conv2_w), 1e-3, 0.9, 0.0, False, 0.0, False), None, None),
        ("adam fc1 (120,400)", "adam_update", lambda: (fc1_w, fc1_g, z(fc1_w), z(fc1_w), 3, 1e-6, 0.9, 0.999, 1e-8, 0.0), None, None),
        ("adam conv2 (16,150)", "adam_update", lambda: (conv2_w, conv2_g, z(conv2_w), z(conv2_w), 3, 1e-6, 0.9, 0.999, 1e-8, 0.0), None, None),
        ("dropout fwd (N,6,28,28)", "dropout_forward", lambda: (a1, u1, 0.5), activations._dropout_fwd_ser, activations._dropout_fwd_par),
        ("dropout2d fwd (N,16,10,10)", "dropout_forward", lambda: (a2, u2, 0.5), None, None),
        ("batchnorm fwd (N,6,28,28)", "batchnorm_forward", lambda: (a1, g6, b6, 1e-5), None, None),
        ("batchnorm bwd (N,6,28,28)", "batchnorm_backward", lambda: (a1, a1, g6, g6), None, None),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 64])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--variants", action="store_true")
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    head = f"{'kernel':36s} {'N':>3s} {'numba us':>9s} {'ref us':>9s} {'speedup':>8s}"
    if args.variants:
        head += f" {'serial':>8s} {'parallel':>8s}"
    print(head)
    for n in args.batches:
        for label, name, build, ser, par in _cases(n, dtype):
            a = build()
            t_cpu = _best_us(lambda: CPU[name](*a))
            t_ref = _best_us(lambda: ref.TABLE[name](*a))
            line = f"{label:36s} {n:3d} {t_cpu:9.1f} {t_ref:9.1f} {t_ref / t_cpu:7.1f}x"
            if args.variants and ser is not None:
                # a kernel takes the wrapper's arguments followed by its outputs
                outs = CPU[name](*a)
                outs = outs if isinstance(outs, tuple) else (outs,)
                t_s = _best_us(lambda: ser(*a, *outs))
                t_p = _best_us(lambda: par(*a, *outs))
                line += f" {t_s:8.1f} {t_p:8.1f}"
            print(line)


if __name__ == "__main__":
    main()
