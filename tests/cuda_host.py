"""The harness of the host-built CUDA kernel tests (tests/test_cuda_host*.py): the CUDA
kernels compiled for the host with g++, and NumPy standing in for CuPy.

``kernels/cuda/host/host_launch.cpp`` compiles every ``kernels/cuda/*.cu`` as plain C++
(``kernels/cuda/host/cuda_host.h`` stands in for the CUDA built-ins) into a shared
library that runs a "launch" one (block, thread) at a time (block kernels, with shared memory
and barriers: a block at a time, its threads as fibers meeting at each barrier; see
``HostKernels.block_kernels``). No GPU and no CuPy needed;
the ``host`` fixture skips when g++ is missing. Two layers are tested with it:

* the kernels themselves, launched directly on small grids (3 blocks x 32 threads, so the
  grid-stride loops go round), for float32 and float64 and both index widths, in
  increasing and decreasing thread order (a result that depends on the order would mean
  two threads write one element);
* the Python wrappers in ``minicnn.kernels.cuda`` (the ``emulated`` fixture): NumPy stands
  in for CuPy and the host library for the compiled module, which checks the kernel names,
  argument order, scalar types (CuPy passes NumPy scalars by their exact size), output
  shapes and the choice between kernels.

The fixtures ``host`` (built once per test session) and ``emulated`` are registered in
tests/conftest.py.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import reference as ref

CUDA_DIR = Path(__file__).resolve().parents[1] / "kernels" / "cuda"
HOST_SRC = CUDA_DIR / "host" / "host_launch.cpp"
GRID, BLOCK = 3, 32
DTYPES = [np.float32, np.float64]
SFX = {np.float32: "f32", np.float64: "f64"}
FILL_BYTE = 0xAB  # outputs are allocated filled with this, so unwritten elements show

_SCALARS = {
    "i": (ctypes.c_int, np.int32),
    "q": (ctypes.c_longlong, np.int64),
    "f": (ctypes.c_float, np.float32),
    "d": (ctypes.c_double, np.float64),
}
_POINTEES = {
    "F": np.float32,
    "D": np.float64,
    "Q": np.int64,
    "U": np.uint64,
    "B": np.bool_,
}


# --------------------------------------------------------------------------
# building and launching
# --------------------------------------------------------------------------


class HostKernels:
    """ctypes front end of the host build (see host_launch.cpp)."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        lib.host_kernel_count.restype = ctypes.c_int
        lib.host_kernel_name.restype = ctypes.c_char_p
        lib.host_kernel_name.argtypes = [ctypes.c_int]
        lib.host_kernel_signature.restype = ctypes.c_char_p
        lib.host_kernel_signature.argtypes = [ctypes.c_int]
        lib.host_kernel_is_block.restype = ctypes.c_int
        lib.host_kernel_is_block.argtypes = [ctypes.c_int]
        lib.host_launch.restype = ctypes.c_int
        lib.host_launch.argtypes = [
            ctypes.c_char_p,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
        ]
        self.lib = lib
        self.signatures = {
            lib.host_kernel_name(i).decode(): lib.host_kernel_signature(i).decode()
            for i in range(lib.host_kernel_count())
        }
        # block kernels: shared memory and barriers, run a block at a time as fibers
        self.block_kernels = {lib.host_kernel_name(i).decode() for i in range(lib.host_kernel_count())
                              if lib.host_kernel_is_block(i) == 1}

    def launch(self, name, grid, block, args, order=0, strict=False):
        """Run kernel ``name`` on a grid x block 1-D grid with ``args``.

        Arrays must be C-contiguous with the pointee dtype of the kernel's
        parameter. ``strict``: scalars must already be the NumPy type of the
        parameter (what CuPy needs); otherwise they are converted.
        """
        assert name in self.signatures, f"no kernel {name!r} in the host build"
        sig = self.signatures[name]
        assert len(args) == len(sig), f"{name}: {len(args)} arguments for signature {sig!r}"
        holders = []
        for k, (code, a) in enumerate(zip(sig, args)):
            if code.isupper():
                want = np.dtype(_POINTEES[code])
                assert isinstance(a, np.ndarray), f"{name} arg {k}: expected an array, got {type(a)}"
                assert a.dtype == want, f"{name} arg {k}: dtype {a.dtype}, kernel wants {want}"
                assert a.flags.c_contiguous, f"{name} arg {k}: array not C-contiguous"
                holders.append(ctypes.c_void_p(a.ctypes.data))
            else:
                ctype, nptype = _SCALARS[code]
                if strict:
                    assert type(a) is nptype, (
                        f"{name} arg {k}: {type(a).__name__} passed, kernel parameter is "
                        f"{nptype.__name__} (CuPy passes a NumPy scalar by its own size)"
                    )
                holders.append(ctype(a.item() if isinstance(a, np.generic) else a))
        argv = (ctypes.c_void_p * max(1, len(holders)))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders]
        )
        rc = self.lib.host_launch(name.encode(), grid, block, argv, order)
        assert rc != -2, f"host_launch({name}): a barrier not every thread of a block reached"
        assert rc != -3, f"host_launch({name}): __syncthreads() in a kernel not registered as a block kernel"
        assert rc == 0, f"host_launch({name}) returned {rc}"


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot build the host version of the CUDA kernels")
    out = tmp_path_factory.mktemp("cuda_host") / "libminicnn_cuda_host.so"
    cmd = [
        gxx,
        "-std=c++17",
        "-O1",
        "-shared",
        "-fPIC",
        "-ffp-contract=off",  # no FMA contraction: each operation rounds as in numpy
        "-Wall",
        "-Wextra",
        str(HOST_SRC),
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"host build failed:\n{' '.join(cmd)}\n{proc.stderr}"
    return HostKernels(out)


def filled(shape, dtype):
    """An output buffer whose every byte is FILL_BYTE (never a valid result)."""
    a = np.empty(shape, dtype=dtype)
    a.view(np.uint8)[...] = FILL_BYTE
    return a


def assert_same(a, b, what=""):
    """Equal shape and dtype; NaN where the other has NaN; otherwise bit for bit."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    if a.dtype.kind == "f":
        na, nb = np.isnan(a), np.isnan(b)
        np.testing.assert_array_equal(na, nb, err_msg=f"{what}: NaN positions differ")
        a, b = np.where(na, 0, a), np.where(nb, 0, b)
        ui = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
        bad = a.view(ui) != b.view(ui)
        assert not bad.any(), f"{what}: {bad.sum()} elements differ, e.g. {a[bad][:5]} vs {b[bad][:5]}"
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def run_both_orders(host, name, make_args, outputs, grid=GRID, block=BLOCK):
    """Launch with increasing and with decreasing thread order; outputs must agree.

    ``make_args()`` returns the argument tuple with fresh output buffers;
    ``outputs`` are the positions of the outputs in it. Returns the outputs.
    """
    results = []
    for order in (0, 1):
        args = make_args()
        host.launch(name, grid, block, args, order=order)
        results.append([args[k] for k in outputs])
    for a, b in zip(*results):
        assert_same(a, b, f"{name}: thread order changed the result")
    return results[0]


# --------------------------------------------------------------------------
# geometry cases
# --------------------------------------------------------------------------


def _random_geometries(count, seed, pad_below_kernel):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if pad_below_kernel:
            ph, pw = int(rng.integers(0, (kh + 1) // 2 + 1)), int(rng.integers(0, (kw + 1) // 2 + 1))
            ph, pw = min(ph, kh - 1), min(pw, kw - 1)
        else:
            ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
        if oh >= 1 and ow >= 1:
            out.append((n, c, h, w, kh, kw, sh, sw, ph, pw))
    return out


# (n, c, h, w, kh, kw, sh, sw, ph, pw)
FIXED = [
    (2, 3, 8, 8, 3, 3, 1, 1, 1, 1),  # 'same' conv
    (1, 2, 7, 9, 3, 2, 2, 3, 1, 0),  # odd sizes, uneven strides
    (2, 1, 5, 5, 1, 1, 1, 1, 0, 0),  # 1x1
    (1, 1, 6, 6, 2, 2, 3, 3, 0, 0),  # stride > kernel: pixels no tap reaches
    (1, 2, 4, 4, 4, 4, 1, 1, 0, 0),  # kernel = image
    (3, 2, 8, 6, 2, 2, 2, 2, 0, 0),  # the usual 2x2/2 pooling
    (1, 3, 9, 9, 3, 3, 2, 2, 1, 1),  # overlapping 3x3/2 windows
]
CONV_CASES = FIXED + _random_geometries(14, seed=1, pad_below_kernel=False)
CONV_CASES += [(1, 2, 3, 4, 2, 3, 1, 2, 2, 3)]  # padding wider than the kernel
POOL_CASES = FIXED + _random_geometries(14, seed=2, pad_below_kernel=True)


def _ids(cases):
    return ["n{}c{}h{}w{}_k{}x{}_s{}x{}_p{}x{}".format(*g) for g in cases]


def _pool_input(rng, shape, dtype, specials=True):
    """Small integers (many ties), with NaN and +-inf sprinkled in."""
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    if specials and x.size >= 8:
        flat = x.reshape(-1)
        k = rng.choice(flat.size, size=max(1, flat.size // 12), replace=False)
        flat[k] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype), size=k.size)
    return x


# --------------------------------------------------------------------------
# activation.cu
# --------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 30.0, -30.0, 1.0, -1.0]


def _act_input(dtype, n=517, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    x[: len(SPECIALS)] = SPECIALS
    return x.reshape(11, 47)


def _tol(dtype):
    return dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)


def assert_close_scaled(got, want, scale, dtype, ulps=8, what=""):
    """|got - want| <= ulps * eps * scale + 2e-6 |want| (f32), elementwise.

    For formulas that cancel (GELU near large negative x: 1 + tanh -> 0) a
    few-ulp difference in tanh/erf between libraries is amplified relative to
    the result but stays small relative to ``scale`` (e.g. |x|).
    """
    got, want, scale = (np.asarray(v, dtype=np.float64) for v in (got, want, scale))
    eps = np.finfo(dtype).eps
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    bound = ulps * eps * scale + rtol * np.abs(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))  # inf == inf, NaN ~ NaN
    bad = ~(same | (np.abs(got - want) <= bound))
    assert not bad.any(), f"{what}: {bad.sum()} off, e.g. {got[bad][:4]} vs {want[bad][:4]}"


# --------------------------------------------------------------------------
# the Python wrappers, with NumPy for CuPy and the host build for NVRTC
# --------------------------------------------------------------------------


class _FakeCupy:
    """What the wrappers use of CuPy, on NumPy; ``empty`` returns poisoned buffers."""

    zeros = staticmethod(np.zeros)
    ascontiguousarray = staticmethod(np.ascontiguousarray)
    asarray = staticmethod(np.asarray)

    @staticmethod
    def empty(shape, dtype=np.float64):
        return filled(shape, dtype)


_MODULE_OF = {  # first match wins: relu_maxpool2d before relu
    "relu_maxpool2d": "pool",
    "conv2d_direct": "conv",
    "conv2d_igemm": "conv_igemm",
    "igemm_sum_splits": "conv_igemm",
    "im2col": "conv",
    "col2im": "conv",
    "maxpool2d": "pool",
    "maxunpool2d": "pool",
    "relu": "activation",
    "add_relu": "activation",
    "leaky": "activation",
    "elu": "activation",
    "gelu": "activation",
    "sgd": "optim",
    "adam": "optim",
    "cross_entropy": "loss",
}


@pytest.fixture
def emulated(host, monkeypatch):
    """Route minicnn.kernels.cuda's launches to the host build (patched in ``launch``, where
    the wrappers read them); returns the launch log."""
    log = []

    def get_function(module, kernel):
        family = next(f for f in _MODULE_OF if kernel.startswith(f))
        assert module == _MODULE_OF[family], f"kernel {kernel} looked up in {module}.cu"

        def fn(grid, block, args):
            assert isinstance(grid, tuple) and isinstance(block, tuple), "grid/block must be tuples"
            assert 1 <= grid[0] <= 2**31 - 1 and 1 <= block[0] <= 1024
            log.append(kernel)
            host.launch(kernel, grid[0], block[0], args, strict=True)

        return fn

    monkeypatch.setattr(cuda_kernels.launch, "_cupy", lambda: _FakeCupy)
    monkeypatch.setattr(cuda_kernels.launch, "_on_device", lambda *a: all(isinstance(v, np.ndarray) for v in a))
    monkeypatch.setattr(cuda_kernels.launch, "get_function", get_function)
    monkeypatch.setattr(cuda_kernels.launch, "BLOCK", 32)
    monkeypatch.setattr(cuda_kernels.launch, "MAX_GRID", 3)
    return log
