"""Per-call time of the cupy backend's matmul (cuBLAS through ctypes, see
``minicnn.kernels.cuda.gemm``) against ``cupy.matmul``, on the products of the
tutorial net's training step at batch 256.

    python -m benchmarks.matmul_overhead [--calls 2000]            # on a GPU
    python -m benchmarks.matmul_overhead --stub [--calls 20000]    # no GPU needed

On a GPU it alternates the two implementations in blocks of ``--calls`` calls
(5 rounds, synchronised before and after each block) and prints the median
microseconds per call of each, for each shape.

``--stub`` times only the host side of minicnn's matmul, the part that is
Python and ctypes and the same on any machine: CuPy is replaced by NumPy
arrays that carry a ``.data.ptr`` and libcublas by a C stub built here with
``cc`` whose functions return at once. What it prints is the work the wrapper
adds to each product before the GPU sees it (the GPU run above adds cuBLAS's
own launch cost on top).
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import statistics
import subprocess
import tempfile
import time
import types
from pathlib import Path

import numpy as np

# (a, b) shapes of the tutorial net's products at batch 256; "T" = passed as a transposed view
SHAPES = {
    "conv1 fwd  (6,75)@(256,75,784)": ((6, 75), (256, 75, 784), ""),
    "conv2 dW   (256,16,100)@(256,100,150)": ((256, 16, 100), (256, 150, 100), "b"),
    "fc1 fwd    (256,400)@(400,120)": ((256, 400), (120, 400), "b"),
    "fc3 dW     (10,256)@(256,84)": ((256, 10), (256, 84), "a"),
}


def _operands(xp, shape_a, shape_b, transposed):
    """a, b with b (or a) a transposed view of a contiguous array, as the layers pass them."""
    def make(shape, t):
        x = xp.ones(shape, dtype=xp.float32)
        return x.swapaxes(-1, -2) if t else x
    return make(shape_a, "a" in transposed), make(shape_b, "b" in transposed)


def _gpu(args) -> int:
    import cupy as cp

    from minicnn.kernels.cuda import gemm

    sync = cp.cuda.get_current_stream().synchronize
    print("| product | minicnn matmul us/call | cupy.matmul us/call | ratio |\n|---|---|---|---|")
    for name, (sa, sb, t) in SHAPES.items():
        a, b = _operands(cp, sa, sb, t)
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


# -- the host side alone: a stub libcublas and NumPy standing in for CuPy ---------------------

_STUB_C = r"""
#include <stddef.h>
int cublasCreate_v2(void** h) { *h = (void*)16; return 0; }
int cublasSetStream_v2(void* h, void* s) { (void)h; (void)s; return 0; }
int cublasSetWorkspace_v2(void* h, void* w, size_t n) { (void)h; (void)w; (void)n; return 0; }
int cublasSetMathMode(void* h, int m) { (void)h; (void)m; return 0; }
#define GEMM(NAME, T) \
int NAME(void* h, int ta, int tb, int m, int n, int k, const T* al, const T* A, int lda, long long sa, \
         const T* B, int ldb, long long sb, const T* be, T* C, int ldc, long long sc, int batch) { \
    (void)h; (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)al; (void)A; (void)lda; (void)sa; \
    (void)B; (void)ldb; (void)sb; (void)be; (void)C; (void)ldc; (void)sc; (void)batch; return 0; }
GEMM(cublasSgemmStridedBatched, float)
GEMM(cublasDgemmStridedBatched, double)
"""


class _Buffer:
    __slots__ = ("ptr",)

    def __init__(self, ptr=0):
        self.ptr = ptr


_NULL = _Buffer()


class _DeviceArray(np.ndarray):
    """A NumPy array with CuPy's ``.data.ptr`` (never dereferenced: the stub reads nothing)."""

    @property
    def data(self):
        return _NULL


def _fake_cupy():
    buffers: dict = {}  # (shape, dtype) -> one array: allocation is CuPy's pool's business, not timed here

    def empty(shape, dtype=np.float64):
        key = (tuple(shape), np.dtype(dtype).char)
        if key not in buffers:
            buffers[key] = np.empty(shape, dtype).view(_DeviceArray)
        return buffers[key]

    stream = types.SimpleNamespace(ptr=4096, is_capturing=lambda: False)
    cuda = types.SimpleNamespace(
        Device=lambda *a: types.SimpleNamespace(id=0),
        get_current_stream=lambda: stream,
        memory=types.SimpleNamespace(Memory=lambda n: _Buffer(8192)),
        runtime=types.SimpleNamespace(getDevice=lambda: 0),
        device=types.SimpleNamespace(get_cublas_handle=lambda: None),
    )
    return types.SimpleNamespace(
        float32=np.float32, float64=np.float64, cuda=cuda,
        empty=empty,
        ascontiguousarray=lambda a: np.ascontiguousarray(a).view(_DeviceArray),
        ones=lambda shape, dtype=np.float64: np.ones(shape, dtype).view(_DeviceArray),
        matmul=None,
    )


def build_stub(folder: Path) -> Path:
    """Compile the stub libcublas into ``folder``; returns the library's path."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("matmul_overhead --stub: no C compiler (cc or gcc) on PATH")
    src, lib = folder / "cublas_stub.c", folder / "libcublas_stub.so"
    src.write_text(_STUB_C)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    return lib


def use_stub(gemm, lib: Path):
    """Point ``gemm`` at the stub and the fake CuPy (for this process); returns the fake CuPy."""
    cp = _fake_cupy()
    gemm._cupy = lambda: cp
    gemm._cublas_path = lambda: str(lib)
    gemm._state.clear()
    gemm._math.clear()
    gemm._streams.clear()
    gemm._plans.clear()
    ctypes.CDLL(str(lib))  # fail here, not inside the timing, if it does not load
    return cp


def _stub(args) -> int:
    from minicnn.kernels.cuda import gemm

    with tempfile.TemporaryDirectory() as tmp:
        cp = use_stub(gemm, build_stub(Path(tmp)))
        print("host side of minicnn's matmul (stub libcublas, NumPy for CuPy), median of "
              f"{args.rounds} rounds of {args.calls} calls\n")
        print("| product | us/call |\n|---|---|")
        for name, (sa, sb, t) in SHAPES.items():
            a, b = _operands(cp, sa, sb, t)
            gemm.matmul(a, b)
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    gemm.matmul(a, b)
                times.append((time.perf_counter() - t0) / args.calls * 1e6)
            print(f"| {name} | {statistics.median(times):.2f} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.matmul_overhead", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=None, help="calls per timed block (default 2000; 20000 with --stub)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stub", action="store_true", help="time the host side only: no GPU, a stub libcublas")
    args = ap.parse_args(argv)
    if args.calls is None:
        args.calls = 20000 if args.stub else 2000
    return _stub(args) if args.stub else _gpu(args)


if __name__ == "__main__":
    raise SystemExit(main())
