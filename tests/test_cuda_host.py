"""The CUDA kernels built for the host with g++: index arithmetic vs the reference.

``kernels/cuda/host/host_launch.cpp`` compiles every ``kernels/cuda/*.cu``
as plain C++ (``kernels/cuda/host/cuda_host.h`` stands in for the CUDA
built-ins) into a shared library that runs a "launch" one (block, thread) at
a time. No GPU and no CuPy needed; skipped when g++ is missing.

Two layers are tested:

* the kernels themselves, launched directly on small grids (3 blocks x 32
  threads, so the grid-stride loops go round), for float32 and float64 and
  both index widths, in increasing and decreasing thread order (a result that
  depends on the order would mean two threads write one element);
* the Python wrappers in ``minicnn.kernels.cuda`` with NumPy standing in for
  CuPy and the host library standing in for the compiled module: this checks
  the kernel names, argument order, scalar types (np.int64 / np.int32 /
  float32 / float64, as CuPy passes NumPy scalars by their exact size), output
  shapes and the choice between kernels.
"""

from __future__ import annotations

import ctypes
import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import fused as fused_ops
from minicnn.kernels import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

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
        assert rc == 0, f"host_launch({name}) returned {rc}"


@pytest.fixture(scope="module")
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
# conv.cu
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", CONV_CASES, ids=_ids(CONV_CASES))
def test_im2col_col2im_kernels(host, geom, dtype, ix):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(hash(geom) % 2**32)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    sizes = (h, w, kh, kw, sh, sw, ph, pw, oh, ow)

    total = n * c * kh * kw * oh * ow
    (cols,) = run_both_orders(
        host,
        f"im2col_{SFX[dtype]}_{ix}",
        lambda: (x, filled((n, c * kh * kw, oh * ow), dtype), total, *sizes),
        outputs=[1],
    )
    assert_same(cols, ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col")

    dcols = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    (img,) = run_both_orders(
        host,
        f"col2im_{SFX[dtype]}_{ix}",
        lambda: (dcols, filled((n, c, h, w), dtype), n * c * h * w, *sizes),
        outputs=[1],
    )
    # the same additions in the same order: equal bit for bit
    assert_same(img, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im")

    # the wide layout (C*kh*kw, N*OH*OW): the same values, the batch's blocks side by side
    (wide,) = run_both_orders(
        host,
        f"im2col_wide_{SFX[dtype]}_{ix}",
        lambda: (x, filled((c * kh * kw, n * oh * ow), dtype), total, n, c, *sizes),
        outputs=[1],
    )
    assert_same(wide, ref.im2col_wide(x, kh, kw, sh, sw, ph, pw), "im2col_wide")
    dwide = np.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(c * kh * kw, n * oh * ow)
    (img_wide,) = run_both_orders(
        host,
        f"col2im_wide_{SFX[dtype]}_{ix}",
        lambda: (dwide, filled((n, c, h, w), dtype), n * c * h * w, n, c, *sizes),
        outputs=[1],
    )
    assert_same(img_wide, img, "col2im_wide")
    assert_same(img_wide, ref.col2im_wide(dwide, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im_wide (reference)")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_col2im_is_adjoint_of_im2col(host, dtype):
    """<im2col(x), y> == <x, col2im(y)> (float64 sums)."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = 2, 3, 7, 6, 3, 2, 2, 1, 1, 1
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    sizes = (h, w, kh, kw, sh, sw, ph, pw, oh, ow)
    cols = filled(y.shape, dtype)
    host.launch(f"im2col_{SFX[dtype]}_i32", GRID, BLOCK, (x, cols, cols.size, *sizes))
    img = filled(x.shape, dtype)
    host.launch(f"col2im_{SFX[dtype]}_i32", GRID, BLOCK, (y, img, img.size, *sizes))
    lhs = np.sum(cols.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * img)
    assert lhs == pytest.approx(rhs, rel=1e-5 if dtype == np.float32 else 1e-12)


# --------------------------------------------------------------------------
# pool.cu
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", CONV_CASES, ids=_ids(CONV_CASES))
def test_maxpool_forward_kernel(host, geom, dtype, ix):
    """Values and int64 indices exactly; ties, NaN, +-inf and all-padding windows."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    x = _pool_input(np.random.default_rng(hash(geom) % 2**32), (n, c, h, w), dtype)
    out, idx = run_both_orders(
        host,
        f"maxpool2d_forward_{SFX[dtype]}_{ix}",
        lambda: (
            x,
            filled((n, c, oh, ow), dtype),
            filled((n, c, oh, ow), np.int64),
            n * c * oh * ow,
            h, w, kh, kw, sh, sw, ph, pw, oh, ow,
        ),
        outputs=[1, 2],
    )
    r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    assert_same(idx, r_idx, "maxpool idx")
    assert_same(out, r_out, "maxpool out")


def test_maxpool_forward_nan_rules(host):
    """First maximum on ties; the first NaN wins over everything; -inf padding."""
    x = np.array([[[[1, 5, 5], [np.nan, 2, np.nan], [-np.inf, -np.inf, 0]]]], dtype=np.float32)
    for kh, kw, sh, sw, ph, pw in [(2, 2, 1, 1, 0, 0), (3, 3, 1, 1, 1, 1), (1, 3, 1, 1, 0, 1), (2, 1, 1, 1, 1, 0)]:
        oh, ow = ref.conv_out_size(3, kh, sh, ph), ref.conv_out_size(3, kw, sw, pw)
        out, idx = filled((1, 1, oh, ow), np.float32), filled((1, 1, oh, ow), np.int64)
        host.launch("maxpool2d_forward_f32_i32", 1, 1, (x, out, idx, out.size, 3, 3, kh, kw, sh, sw, ph, pw, oh, ow))
        r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        assert_same(idx, r_idx, f"idx k{kh}x{kw} p{ph}x{pw}")
        assert_same(out, r_out, f"out k{kh}x{kw} p{ph}x{pw}")


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", POOL_CASES, ids=_ids(POOL_CASES))
def test_maxpool_backward_kernels(host, geom, dtype, ix):
    """Gather (with geometry) and per-plane (without) both equal the reference exactly."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(hash(geom) % 2**32 + 1)
    x = _pool_input(rng, (n, c, h, w), dtype)
    _, idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    dout = rng.standard_normal((n, c, oh, ow)).astype(dtype)
    expected = ref.maxpool2d_backward(dout, idx, h, w)

    (dx,) = run_both_orders(
        host,
        f"maxpool2d_backward_{SFX[dtype]}_{ix}",
        lambda: (dout, idx, filled((n, c, h, w), dtype), n * c * h * w, h, w, kh, kw, sh, sw, ph, pw, oh, ow),
        outputs=[2],
    )
    assert_same(dx, expected, "maxpool backward (gather)")

    def planes_args():
        dx = filled((n, c, h, w), dtype)
        ws = dx if dtype == np.float64 else filled((n, c, h, w), np.float64)
        return (dout, idx, ws, dx, n * c, h * w, oh * ow)

    (dx2,) = run_both_orders(host, f"maxpool2d_backward_planes_{SFX[dtype]}_{ix}", planes_args, outputs=[3])
    assert_same(dx2, expected, "maxpool backward (planes)")


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["pool3s1", "pool2s2", "random"])
def test_maxunpool_kernels(host, kind, dtype, ix):
    """Unpool forward (claim + gather; the last duplicate wins, as numpy) and backward."""
    rng = np.random.default_rng({"pool3s1": 11, "pool2s2": 12, "random": 13}[kind])
    n, c, H, W = 2, 3, 7, 6  # the unpooled size
    if kind == "random":
        h, w = 5, 4
        idx = rng.integers(0, H * W, size=(n, c, h, w)).astype(np.int64)  # many duplicates
    else:
        k, s = (3, 1) if kind == "pool3s1" else (2, 2)
        pooled_from = _pool_input(rng, (n, c, H, W), dtype, specials=False)
        _, idx = ref.maxpool2d_forward(pooled_from, k, k, s, s, 0, 0)
        h, w = idx.shape[2:]
    x = rng.standard_normal((n, c, h, w)).astype(dtype)

    def forward():
        winner = np.zeros(n * c * H * W, dtype=np.uint64)
        host.launch(f"maxunpool2d_claim_{ix}", GRID, BLOCK, (idx, winner, x.size, h * w, H * W))
        out = filled((n, c, H, W), dtype)
        host.launch(f"maxunpool2d_gather_{SFX[dtype]}_{ix}", GRID, BLOCK, (x, winner, out, out.size, h * w, H * W))
        return out

    out = forward()
    assert_same(out, ref.maxunpool2d_forward(x, idx, H, W), "maxunpool forward")
    # claim in reverse thread order: the winner must not change
    winner = np.zeros(n * c * H * W, dtype=np.uint64)
    host.launch(f"maxunpool2d_claim_{ix}", GRID, BLOCK, (idx, winner, x.size, h * w, H * W), order=1)
    out2 = filled((n, c, H, W), dtype)
    host.launch(f"maxunpool2d_gather_{SFX[dtype]}_{ix}", GRID, BLOCK, (x, winner, out2, out2.size, h * w, H * W), order=1)
    assert_same(out2, out, "maxunpool forward, reverse order")

    dout = rng.standard_normal((n, c, H, W)).astype(dtype)
    (dx,) = run_both_orders(
        host,
        f"maxunpool2d_backward_{SFX[dtype]}_{ix}",
        lambda: (dout, idx, filled((n, c, h, w), dtype), n * c * h * w, h * w, H * W),
        outputs=[2],
    )
    assert_same(dx, ref.maxunpool2d_backward(dout, idx), "maxunpool backward")


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


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_relu_leaky_kernels(host, dtype):
    s = SFX[dtype]
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    y, mask = run_both_orders(host, f"relu_forward_{s}", lambda: (x, filled(x.shape, dtype), filled(x.shape, np.bool_), x.size), [1, 2])
    r_y, r_mask = ref.relu_forward(x)
    assert_same(y, r_y, "relu y")
    assert_same(mask.view(np.uint8), r_mask.view(np.uint8), "relu mask")
    (dx,) = run_both_orders(host, f"relu_backward_{s}", lambda: (dy, r_mask, filled(x.shape, dtype), x.size), [2])
    assert_same(dx, ref.relu_backward(dy, r_mask), "relu dx")

    slope = 0.01
    y, mask = run_both_orders(
        host,
        f"leaky_relu_forward_{s}",
        lambda: (x, dtype(slope), filled(x.shape, dtype), filled(x.shape, np.bool_), x.size),
        [2, 3],
    )
    r_y, r_mask = ref.leaky_relu_forward(x, slope)
    assert_same(y, r_y, "leaky y")
    assert_same(mask.view(np.uint8), r_mask.view(np.uint8), "leaky mask")
    (dx,) = run_both_orders(
        host, f"leaky_relu_backward_{s}", lambda: (dy, r_mask, dtype(slope), filled(x.shape, dtype), x.size), [3]
    )
    assert_same(dx, ref.leaky_relu_backward(dy, r_mask, slope), "leaky dx")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_elu_kernels(host, dtype):
    s, alpha = SFX[dtype], 1.3
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    (y,) = run_both_orders(host, f"elu_forward_{s}", lambda: (x, dtype(alpha), filled(x.shape, dtype), x.size), [2])
    r_y = ref.elu_forward(x, alpha)
    np.testing.assert_allclose(y, r_y, **_tol(dtype))
    assert_same(np.signbit(y), np.signbit(r_y), "elu sign")
    (dx,) = run_both_orders(
        host, f"elu_backward_{s}", lambda: (dy, r_y, dtype(alpha), filled(x.shape, dtype), x.size), [3]
    )
    assert_same(dx, ref.elu_backward(dy, r_y, alpha), "elu dx")  # no transcendental: exact


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gelu_kernels(host, dtype, approximate):
    s, flag = SFX[dtype], int(approximate == "tanh")
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    finite = np.isfinite(x)
    (y,) = run_both_orders(host, f"gelu_forward_{s}", lambda: (x, filled(x.shape, dtype), x.size, flag), [1])
    r_y = ref.gelu_forward(x, approximate)
    ax = np.abs(x[finite]).astype(np.float64)
    assert_close_scaled(y[finite], r_y[finite], 1 + ax, dtype, what="gelu y")
    (dx,) = run_both_orders(
        host, f"gelu_backward_{s}", lambda: (dy, x, filled(x.shape, dtype), x.size, flag), [2]
    )
    r_dx = ref.gelu_backward(dy, x, approximate)
    assert_close_scaled(dx[finite], r_dx[finite], np.abs(dy[finite]) * (1 + ax) ** 3, dtype, what="gelu dx")
    # the non-finite inputs behave like the reference wherever it is defined
    assert_same(np.isnan(y), np.isnan(r_y), "gelu NaN positions")


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
    "im2col": "conv",
    "col2im": "conv",
    "maxpool2d": "pool",
    "maxunpool2d": "pool",
    "relu": "activation",
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


def test_table_matches_reference_names():
    schedule = set(cuda_kernels.CONV_SCHEDULE.table())
    fused = set(fused_ops.ENTRIES)
    assert set(cuda_kernels.TABLE) - schedule - fused == set(ref.TABLE), "a reference kernel has no CUDA version"
    assert fused <= set(cuda_kernels.TABLE)


def test_host_build_has_every_kernel(host):
    names = set(host.signatures)
    for base in ["im2col", "col2im", "im2col_wide", "col2im_wide", "maxpool2d_forward", "maxpool2d_backward",
                 "maxpool2d_backward_planes",
                 "maxunpool2d_gather", "maxunpool2d_backward"]:
        for s, ix in itertools.product(["f32", "f64"], ["i32", "i64"]):
            assert f"{base}_{s}_{ix}" in names
    assert {"maxunpool2d_claim_i32", "maxunpool2d_claim_i64"} <= names
    for base in ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward",
                 "elu_backward", "gelu_forward", "gelu_backward", "sgd_update", "adam_update",
                 "sgd_update_multi", "adam_update_multi", "cross_entropy_forward", "cross_entropy_backward"]:
        assert {f"{base}_f32", f"{base}_f64"} <= names


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", FIXED, ids=_ids(FIXED))
def test_wrappers_conv_pool(emulated, geom, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    ops = cuda_kernels

    # a non-contiguous input is copied first
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert_same(ops.im2col(xt, kh, kw, sh, sw, ph, pw), ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col")
    dcols = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    assert_same(
        ops.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw),
        ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw),
        "col2im",
    )
    assert emulated[-2:] == [f"im2col_{SFX[dtype]}_i32", f"col2im_{SFX[dtype]}_i32"]
    # out=: the kernels write into the caller's arrays
    cols_buf = np.full((n, c * kh * kw, oh * ow), np.nan, dtype=dtype)
    img_buf = np.full((n, c, h, w), np.nan, dtype=dtype)
    assert ops.im2col(x, kh, kw, sh, sw, ph, pw, out=cols_buf) is cols_buf
    assert ops.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=img_buf) is img_buf
    assert_same(cols_buf, ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col out=")
    assert_same(img_buf, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im out=")
    assert emulated[-2:] == [f"im2col_{SFX[dtype]}_i32", f"col2im_{SFX[dtype]}_i32"]
    with pytest.raises(ValueError, match="im2col: out must be a C-contiguous array"):
        ops.im2col(x, kh, kw, sh, sw, ph, pw, out=cols_buf[:, :, :-1])
    # the wide layout (C*kh*kw, N*OH*OW) through its wrappers, into out= as well
    assert_same(ops.im2col_wide(xt, kh, kw, sh, sw, ph, pw), ref.im2col_wide(x, kh, kw, sh, sw, ph, pw), "im2col_wide")
    dwide = np.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(c * kh * kw, n * oh * ow)
    img_buf = np.full((n, c, h, w), np.nan, dtype=dtype)
    assert ops.col2im_wide(dwide, n, c, h, w, kh, kw, sh, sw, ph, pw, out=img_buf) is img_buf
    assert_same(img_buf, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im_wide out=")
    assert emulated[-2:] == [f"im2col_wide_{SFX[dtype]}_i32", f"col2im_wide_{SFX[dtype]}_i32"]

    xp_ = _pool_input(rng, (n, c, h, w), dtype)
    out, idx = ops.maxpool2d_forward(xp_, kh, kw, sh, sw, ph, pw)
    r_out, r_idx = ref.maxpool2d_forward(xp_, kh, kw, sh, sw, ph, pw)
    assert_same(idx, r_idx, "maxpool idx")
    assert_same(out, r_out, "maxpool out")
    dout = rng.standard_normal(out.shape).astype(dtype)
    expected = ref.maxpool2d_backward(dout, r_idx, h, w)
    assert_same(ops.maxpool2d_backward(dout, idx, h, w), expected, "maxpool backward (planes)")
    assert emulated[-1] == f"maxpool2d_backward_planes_{SFX[dtype]}_i32"
    dx = ops.maxpool2d_backward(dout, idx, h, w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw)
    assert_same(dx, expected, "maxpool backward (gather)")
    assert emulated[-1] == f"maxpool2d_backward_{SFX[dtype]}_i32"
    # geometry that does not give dout's shape: the per-plane kernel, same result
    bad = ops.maxpool2d_backward(dout, idx, h, w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph + 1, pw=pw + 1)
    assert_same(bad, expected, "maxpool backward (mismatched geometry)")
    assert emulated[-1] == f"maxpool2d_backward_planes_{SFX[dtype]}_i32"

    up = ops.maxunpool2d_forward(out, idx, h, w)
    assert_same(up, ref.maxunpool2d_forward(out, r_idx, h, w), "maxunpool forward")
    dup = rng.standard_normal((n, c, h, w)).astype(dtype)
    assert_same(ops.maxunpool2d_backward(dup, idx), ref.maxunpool2d_backward(dup, r_idx), "maxunpool backward")
    assert emulated[-3:] == ["maxunpool2d_claim_i32", f"maxunpool2d_gather_{SFX[dtype]}_i32",
                             f"maxunpool2d_backward_{SFX[dtype]}_i32"]


def test_wrappers_pick_i64_for_huge_arrays(emulated, monkeypatch):
    """With the 32-bit limit lowered, the wrappers switch to the _i64 kernels."""
    monkeypatch.setattr(cuda_kernels.launch, "_I32_MAX", 50)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    assert_same(cuda_kernels.im2col(x, 3, 3, 1, 1, 1, 1), ref.im2col(x, 3, 3, 1, 1, 1, 1), "im2col i64")
    assert emulated[-1] == "im2col_f64_i64"
    out, idx = cuda_kernels.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    assert emulated[-1] == "maxpool2d_forward_f64_i64"
    y = np.random.default_rng(1).standard_normal((1, 1, 3, 2))
    cuda_kernels.maxpool2d_forward(y, 2, 2, 1, 1, 0, 0)
    assert emulated[-1] == "maxpool2d_forward_f64_i32"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_wrappers_activations(emulated, dtype):
    ops = cuda_kernels
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=3)
    y, mask = ops.relu_forward(x)
    r_y, r_mask = ref.relu_forward(x)
    assert_same(y, r_y, "relu y")
    assert mask.dtype == np.bool_ and (mask == r_mask).all()
    assert_same(ops.relu_backward(dy, mask), ref.relu_backward(dy, r_mask), "relu dx")
    y, mask = ops.leaky_relu_forward(x, 0.2)
    r_y, r_mask = ref.leaky_relu_forward(x, 0.2)
    assert_same(y, r_y, "leaky y")
    assert (mask == r_mask).all()
    assert_same(ops.leaky_relu_backward(dy, mask, 0.2), ref.leaky_relu_backward(dy, r_mask, 0.2), "leaky dx")
    y = ops.elu_forward(x, 0.7)
    np.testing.assert_allclose(y, ref.elu_forward(x, 0.7), **_tol(dtype))
    assert_same(ops.elu_backward(dy, y, 0.7), ref.elu_backward(dy, y, 0.7), "elu dx")
    fin = np.isfinite(x)
    ax = np.abs(x[fin]).astype(np.float64)
    for approximate in ("none", "tanh"):
        y = ops.gelu_forward(x, approximate)
        assert_close_scaled(y[fin], ref.gelu_forward(x, approximate)[fin], 1 + ax, dtype, what="gelu y")
        dx = ops.gelu_backward(dy, x, approximate)
        r_dx = ref.gelu_backward(dy, x, approximate)[fin]
        assert_close_scaled(dx[fin], r_dx, np.abs(dy[fin]) * (1 + ax) ** 3, dtype, what="gelu dx")
    assert emulated[-1] == f"gelu_backward_{SFX[dtype]}"
    # non-contiguous input, shape kept
    xt = x.T
    y, _ = ops.relu_forward(xt)
    assert y.shape == xt.shape
    assert_same(y, ref.relu_forward(xt)[0], "relu on a transposed input")


SGD_CONFIGS = [
    # momentum, dampening, nesterov, weight_decay
    (0.0, 0.0, False, 0.0),
    (0.0, 0.0, False, 1e-2),
    (0.9, 0.0, False, 0.0),
    (0.9, 0.1, False, 5e-4),
    (0.9, 0.0, True, 5e-4),
    (0.5, 0.0, True, 0.0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[f"m{m}_d{d}_n{int(nv)}_wd{wd}" for m, d, nv, wd in SGD_CONFIGS])
def test_wrapper_sgd_bitwise(emulated, cfg, dtype):
    momentum, dampening, nesterov, wd = cfg
    rng = np.random.default_rng(21)
    p0 = rng.standard_normal((7, 29)).astype(dtype)
    p_k, p_r = p0.copy(), p0.copy()
    b_k = np.zeros_like(p0) if momentum else None
    b_r = np.zeros_like(p0) if momentum else None
    for step in range(4):
        g = rng.standard_normal(p0.shape).astype(dtype)
        cuda_kernels.sgd_update(p_k, g, b_k, 0.05, momentum, dampening, nesterov, wd, step == 0)
        ref.sgd_update(p_r, g, b_r, 0.05, momentum, dampening, nesterov, wd, step == 0)
        assert_same(p_k, p_r, f"sgd param, step {step}")
        if momentum:
            assert_same(b_k, b_r, f"sgd buf, step {step}")
    assert emulated[-1] == f"sgd_update_{SFX[dtype]}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_wrapper_adam_bitwise(emulated, wd, dtype):
    rng = np.random.default_rng(22)
    p0 = rng.standard_normal((5, 41)).astype(dtype)
    p_k, p_r = p0.copy(), p0.copy()
    m_k, v_k, m_r, v_r = (np.zeros_like(p0) for _ in range(4))
    for step in range(1, 5):
        g = rng.standard_normal(p0.shape).astype(dtype)
        cuda_kernels.adam_update(p_k, g, m_k, v_k, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        ref.adam_update(p_r, g, m_r, v_r, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        assert_same(m_k, m_r, f"adam exp_avg, step {step}")
        assert_same(v_k, v_r, f"adam exp_avg_sq, step {step}")
        assert_same(p_k, p_r, f"adam param, step {step}")
    assert emulated[-1] == f"adam_update_{SFX[dtype]}"


# a list of tensors as an optimiser has them: odd sizes, an empty one, scalars-like
MULTI_SHAPES = [(7, 29), (3,), (0, 4), (1,), (5, 2, 3), (64,)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[f"m{m}_d{d}_n{int(nv)}_wd{wd}" for m, d, nv, wd in SGD_CONFIGS])
def test_wrapper_sgd_multi_bitwise(emulated, cfg, dtype):
    """One launch over the whole list equals the reference tensor by tensor (the
    emulated grid, 3 blocks x 32 threads, strides over 312 elements)."""
    momentum, dampening, nesterov, wd = cfg
    rng = np.random.default_rng(23)
    p0 = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    p_k, p_r = [p.copy() for p in p0], [p.copy() for p in p0]
    b_k = [np.zeros_like(p) for p in p0] if momentum else None
    b_r = [np.zeros_like(p) for p in p0] if momentum else None
    for step in range(3):
        g = [rng.standard_normal(p.shape).astype(dtype) for p in p0]
        emulated.clear()
        cuda_kernels.sgd_update_multi(p_k, g, b_k, 0.05, momentum, dampening, nesterov, wd, step == 0)
        assert emulated == [f"sgd_update_multi_{SFX[dtype]}"]  # one launch for every tensor
        for k in range(len(p0)):
            ref.sgd_update(p_r[k], g[k], b_r[k] if momentum else None, 0.05, momentum, dampening, nesterov, wd,
                           step == 0)
            assert_same(p_k[k], p_r[k], f"sgd multi param {k}, step {step}")
            if momentum:
                assert_same(b_k[k], b_r[k], f"sgd multi buf {k}, step {step}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_wrapper_adam_multi_bitwise(emulated, wd, dtype):
    rng = np.random.default_rng(24)
    p0 = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    p_k, p_r = [p.copy() for p in p0], [p.copy() for p in p0]
    m_k, v_k, m_r, v_r = ([np.zeros_like(p) for p in p0] for _ in range(4))
    for step in range(1, 4):
        g = [rng.standard_normal(p.shape).astype(dtype) for p in p0]
        emulated.clear()
        cuda_kernels.adam_update_multi(p_k, g, m_k, v_k, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        assert emulated == [f"adam_update_multi_{SFX[dtype]}"]
        for k in range(len(p0)):
            ref.adam_update(p_r[k], g[k], m_r[k], v_r[k], step, 1e-3, 0.9, 0.999, 1e-8, wd)
            assert_same(m_k[k], m_r[k], f"adam multi exp_avg {k}, step {step}")
            assert_same(v_k[k], v_r[k], f"adam multi exp_avg_sq {k}, step {step}")
            assert_same(p_k[k], p_r[k], f"adam multi param {k}, step {step}")


def test_multi_tables_are_reused_for_the_same_arrays(emulated, monkeypatch):
    monkeypatch.setattr(cuda_kernels.optim, "_TABLE_CACHE", {})
    ps = [np.ones(5, np.float32), np.ones(3, np.float32)]
    gs = [np.full(5, 0.5, np.float32), np.full(3, 0.5, np.float32)]
    for _ in range(2):
        cuda_kernels.sgd_update_multi(ps, gs, None, 0.1, 0.0, 0.0, False, 0.0, True)
    assert len(cuda_kernels.optim._TABLE_CACHE) == 1
    (table, offsets), = cuda_kernels.optim._TABLE_CACHE.values()
    assert table.dtype == np.uint64 and table.shape == (3, 2) and offsets.tolist() == [0, 5, 8]
    np.testing.assert_allclose(ps[0], 0.9)  # two steps of 0.1 * 0.5
    np.testing.assert_allclose(ps[1], 0.9)


def test_multi_falls_back_per_tensor_for_non_contiguous_state(emulated):
    ps = [np.ones((4, 6))[:, ::2], np.ones(3)]
    gs = [np.ones_like(ps[0]), np.ones(3)]
    emulated.clear()
    cuda_kernels.sgd_update_multi(ps, gs, None, 0.1, 0.0, 0.0, False, 0.0, True)
    np.testing.assert_allclose(ps[0], 0.9)
    np.testing.assert_allclose(ps[1], 0.9)
    assert emulated == ["sgd_update_f64"]  # the strided tensor took the reference, the other its kernel


def test_wrappers_fall_back_to_reference(emulated):
    """float16, integer masks of other shapes, non-contiguous optimiser state: no kernel."""
    x16 = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float16)
    assert_same(cuda_kernels.im2col(x16, 2, 2, 1, 1, 0, 0), ref.im2col(x16, 2, 2, 1, 1, 0, 0), "im2col f16")
    p = np.ones((4, 6))[:, ::2]
    g = np.ones_like(p)
    cuda_kernels.sgd_update(p, g, None, 0.1, 0.0, 0.0, False, 0.0, True)
    np.testing.assert_allclose(p, 0.9)
    assert emulated == []


def test_wrappers_without_cupy_use_reference():
    """NumPy inputs never reach the CUDA path (and never import CuPy)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    assert_same(cuda_kernels.im2col(x, 3, 3, 1, 1, 1, 1), ref.im2col(x, 3, 3, 1, 1, 1, 1), "im2col")
    out, idx = cuda_kernels.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    assert_same(cuda_kernels.maxpool2d_backward(out, idx, 5, 5, kh=2, kw=2, sh=2, sw=2),
                ref.maxpool2d_backward(out, idx, 5, 5), "maxpool backward")


def test_multi_lists_of_different_lengths_are_refused():
    p = [np.ones(3, np.float32), np.ones(2, np.float32)]
    with pytest.raises(ValueError, match=r"lengths \[2, 1, 2\]"):
        cuda_kernels.sgd_update_multi(p, p[:1], p, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match=r"lengths \[2, 2, 2, 1\]"):
        cuda_kernels.adam_update_multi(p, p, p, p[:1], 1, 1e-3, 0.9, 0.999, 1e-8, 0.0)
