"""The implicit-GEMM convolution kernels (kernels/cuda/conv_igemm.cu, igemm_tile.cuh) built for the
host with g++ (tests/cuda_host.py): the first block kernels, whose 256 threads per block run as
fibers that meet at each __syncthreads() (kernels/cuda/host/cuda_host.h, run_blocks), the TF32
kernels' mma.sync emulated lane by lane with the PTX ISA's fragment layouts.

* the kernels launched directly against the reference (im2col + matmul, col2im, the per-sample
  weight gradient) on conv geometries that cross the tiles and the 16-term steps unevenly, every
  tile height, exact float32, TF32 and float64, both index widths, blocks in both orders
  (bitwise equal);
* the weight gradient's split sum (several blocks' slices added in order) against one block;
* the wrappers (``kernels/cuda/conv_igemm.py``) with NumPy standing in for CuPy: results, ``out=``,
  refusals before any launch, the reference for what the kernels don't take;
* the cupy conv schedule with ``use_implicit_gemm``: Conv2d and ConvTranspose2d forward and
  backward run through these kernels only (no im2col, no product) and equal the plain layer math.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import reference as ref
from minicnn.kernels.cuda import conv_igemm

from cuda_host import DTYPES, SFX, assert_same, filled, run_both_orders
from test_conv_schedule import CONV, TRANSPOSE, _compare_with_the_plain_math, _inputs

THREADS = conv_igemm.THREADS
# (n, c, h, w, o, kh, kw, sh, sw, ph, pw): tiles of C and steps of K cut unevenly
CASES = [
    (2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 2),  # small: one tile, K = 27 (two steps, the second short)
    (3, 4, 10, 11, 70, 3, 2, 1, 1, 1, 0),  # O = 70: two tile rows; N*OH*OW = 3*10*10 = 300 columns
    (1, 17, 6, 6, 3, 5, 5, 1, 1, 2, 2),  # K = 425 (26.6 steps), 'same' 5x5
    (2, 2, 7, 9, 6, 3, 3, 3, 2, 0, 1),  # stride > 1 both ways: dx taps that do not divide
    (1, 1, 4, 4, 2, 1, 1, 1, 1, 0, 0),  # 1x1, K = 1
    (1, 2, 3, 4, 2, 2, 3, 1, 2, 2, 3),  # padding wider than the kernel
]
IDS = ["n{}c{}h{}w{}o{}_k{}x{}_s{}x{}_p{}x{}".format(*g) for g in CASES]


def _tiles(m, p, bm=64):
    return -(-m // bm) * -(-p // (4096 // bm))


def _case(g, dtype, seed=0):
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
    return x, wt, b, dy, (oh, ow)


def tf32(a):
    """float32 ``a`` rounded to TF32 as cvt.rna.tf32.f32 does (10 mantissa bits, to nearest, ties
    away from zero), as float32."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    finite = (u & 0x7F800000) != 0x7F800000
    return np.where(finite, (u + np.uint32(0x1000)) & np.uint32(0xFFFFE000), u).view(np.float32)


def _want(g, x, wt, b, dy, round_inputs=False):
    """Forward (+ b), dx and dW by the reference composition, in float64 (``round_inputs``: from
    the TF32-rounded operands, what the tensor cores multiply; the bias is added unrounded)."""
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    if round_inputs:
        x, wt, dy = tf32(x), tf32(wt), tf32(dy)
    x, wt, b, dy = (a.astype(np.float64) for a in (x, wt, b, dy))
    cols = ref.im2col(x, kh, kw, sh, sw, ph, pw)
    y = ref.matmul(wt.reshape(o, -1), cols) + b.reshape(1, o, 1)
    d = dy.reshape(n, o, -1)
    dx = ref.col2im(ref.matmul(wt.reshape(o, -1).T, d), n, c, h, w, kh, kw, sh, sw, ph, pw)
    dw = ref.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(wt.shape)
    return y.reshape(dy.shape), dx, dw


def _close(got, want, dtype, what):
    """Within the rounding of another summation order (FP32 or FP64 sums): relative to the
    largest entry."""
    tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def _sizes(g, oh, ow):
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    return (n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow)


ARITHMETIC = {"f32": np.float32, "tf32": np.float32, "f64": np.float64}


@pytest.mark.parametrize("g", CASES, ids=IDS)
@pytest.mark.parametrize("arith", list(ARITHMETIC))
def test_igemm_kernels_against_the_reference(host, g, arith):
    """Every tile height (16 x 256, 32 x 128, 64 x 64) with 32-bit indices, blocks in both orders
    (bitwise equal); the 64-bit index kernels once per case. The TF32 kernels (their mma.sync
    fragments emulated lane by lane) against the reference on TF32-rounded operands."""
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    dtype = ARITHMETIC[arith]
    x, wt, b, dy, (oh, ow) = _case(g, dtype)
    want_y, want_dx, want_dw = _want(g, x, wt, b, dy, round_inputs=arith == "tf32")
    sizes = _sizes(g, oh, ow)
    for bm, ix in [(16, "i32"), (32, "i32"), (64, "i32"), (32, "i64")]:
        both = ix == "i32"

        def launch(kind, rows, cols, make_args, out):
            name, grid = f"conv2d_igemm_{kind}_m{bm}_{arith}_{ix}", _tiles(rows, cols, bm)
            if both:
                return run_both_orders(host, name, make_args, [out], grid=grid, block=THREADS)[0]
            args = make_args()
            host.launch(name, grid, THREADS, args)
            return args[out]

        what = f"{arith} m{bm} {ix}"
        y = launch("forward", o, n * oh * ow, lambda: (x, wt, b, filled(dy.shape, dtype), *sizes, 1), 3)
        _close(y, want_y, dtype, f"forward {what}")
        y0 = launch("forward", o, n * oh * ow, lambda: (x, wt, b, filled(dy.shape, dtype), *sizes, 0), 3)
        _close(y0, want_y - b.reshape(1, o, 1, 1), dtype, f"forward without bias {what}")
        dx = launch("input_grad", c, n * h * w, lambda: (dy, wt, filled(x.shape, dtype), *sizes), 2)
        _close(dx, want_dx, dtype, f"input gradient {what}")
        dw = launch("weight_grad", o, c * kh * kw, lambda: (x, dy, filled(wt.shape, dtype), *sizes, 1, 16 * 1000), 2)
        _close(dw, want_dw, dtype, f"weight gradient {what}")


def test_tf32_kernels_round_their_operands(host):
    """The TF32 kernels differ from the exact ones by the operands' rounding: on inputs whose low
    13 mantissa bits are not zero they disagree with the exact FP32 kernel by far more than FP32
    summation error, and agree with the reference on rounded operands."""
    g = (2, 5, 6, 6, 7, 3, 3, 1, 1, 1, 1)
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    x, wt, b, dy, (oh, ow) = _case(g, np.float32, seed=9)
    sizes, grid = _sizes(g, oh, ow), _tiles(o, n * oh * ow, 16)
    out = {}
    for arith in ("f32", "tf32"):
        y = filled(dy.shape, np.float32)
        host.launch(f"conv2d_igemm_forward_m16_{arith}_i32", grid, THREADS, (x, wt, b, y, *sizes, 1))
        out[arith] = y.astype(np.float64)
    exact, _, _ = _want(g, x, wt, b, dy)
    rounded, _, _ = _want(g, x, wt, b, dy, round_inputs=True)
    assert np.abs(out["f32"] - exact).max() < 1e-5 * np.abs(exact).max()
    assert np.abs(out["tf32"] - rounded).max() < 1e-5 * np.abs(exact).max()
    assert np.abs(out["tf32"] - exact).max() > 1e-4 * np.abs(exact).max()  # TF32's 2^-11 per operand


def test_tile_rows():
    """The tile height that pads a layer's channels least, the taller on a tie."""
    assert [conv_igemm.tile_rows(m) for m in (1, 6, 16, 17, 32, 48, 64, 70, 96, 128, 256)] == \
        [16, 16, 16, 32, 32, 16, 64, 16, 32, 64, 64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_igemm_weight_grad_split_sum(host, dtype):
    """The sum over N*OH*OW cut into 3 slices by 3 blocks per tile, then added in order: the
    slices are each range's product, and their sum is the whole weight gradient."""
    g = (3, 2, 8, 8, 5, 3, 3, 1, 1, 1, 1)  # K = 3*64 = 192 terms: chunks 64, 64, 64
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    x, wt, _, dy, (oh, ow) = _case(g, dtype, seed=3)
    _, _, want = _want(g, x, wt, np.zeros(o), dy)
    sfx = SFX[dtype]
    ws = filled((3, o, c * kh * kw), dtype)
    host.launch(f"conv2d_igemm_weight_grad_m16_{sfx}_i32", 3 * _tiles(o, c * kh * kw, 16), THREADS,
                (x, dy, ws, *_sizes(g, oh, ow), 3, 64))
    for s in range(3):  # slice s is sample s's gradient (64 terms = one sample's 8 x 8 plane)
        _, _, part = _want((1, *g[1:]), x[s:s + 1], wt, np.zeros(o), dy[s:s + 1])
        _close(ws[s].reshape(wt.shape), part, dtype, f"slice {s}")
    dw = filled(wt.shape, dtype)
    host.launch(f"igemm_sum_splits_{sfx}", 2, 32, (ws, dw, dw.size, 3))
    assert_same(dw.reshape(-1), (ws[0] + ws[1] + ws[2]).reshape(-1), "sum of the slices, in order")
    _close(dw, want, dtype, "split weight gradient")


def test_split_plan():
    # a small result with a long sum: many splits, each a whole number of steps, none empty
    splits, chunk = conv_igemm.split_plan(16, 400, 128 * 32 * 32)
    assert 1 < splits <= conv_igemm.MAX_SPLITS and chunk % conv_igemm.STEP == 0
    assert (splits - 1) * chunk < 128 * 32 * 32 <= splits * chunk
    # enough tiles already: one split
    assert conv_igemm.split_plan(512, 64 * 64 * 9, 10**6) == (1, 10**6 + (-10**6) % 16)
    # a short sum is not cut below MIN_SPLIT_STEPS steps per split
    splits, chunk = conv_igemm.split_plan(4, 4, 300)
    assert chunk >= conv_igemm.STEP * conv_igemm.MIN_SPLIT_STEPS or splits == 1
    assert conv_igemm.split_plan(4, 4, 0) == (1, conv_igemm.STEP)


@pytest.mark.parametrize("arith", list(ARITHMETIC))
def test_wrappers_conv2d_igemm(emulated, arith, monkeypatch):
    """float32 runs the TF32 kernels when ``minicnn.backend.tf32.conv`` allows it, else the exact
    ones; float64 always the exact ones."""
    from minicnn import backend

    monkeypatch.setattr(backend.tf32, "conv", arith == "tf32")
    dtype = ARITHMETIC[arith]
    g = (4, 3, 9, 7, 5, 3, 2, 2, 1, 1, 1)
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = g
    x, wt, b, dy, (oh, ow) = _case(g, dtype, seed=5)
    want_y, want_dx, want_dw = _want(g, x, wt, b, dy, round_inputs=arith == "tf32")
    stride, padding = (sh, sw), (ph, pw)
    sfx = SFX[dtype]  # the split sum's kernel
    y = conv_igemm.conv2d_igemm(x, wt, b, stride, padding)
    assert emulated[-1] == f"conv2d_igemm_forward_m16_{arith}_i32"
    _close(y, want_y, dtype, "forward")
    out = filled(y.shape, dtype)
    assert conv_igemm.conv2d_igemm(x, wt, None, stride, padding, out=out) is out
    _close(out, want_y - b.reshape(1, o, 1, 1), dtype, "forward into out, no bias")
    dx = conv_igemm.conv2d_igemm_input_grad(dy, wt, h, w, stride, padding)
    assert emulated[-1] == f"conv2d_igemm_input_grad_m16_{arith}_i32"
    _close(dx, want_dx, dtype, "input gradient")
    dw = conv_igemm.conv2d_igemm_weight_grad(x, dy, kh, kw, stride, padding)
    assert emulated[-1] == f"conv2d_igemm_weight_grad_m16_{arith}_i32"  # one split: written straight into dW
    _close(dw, want_dw, dtype, "weight gradient")
    # a split sum through the wrapper: workspace slices, then the ordered sum
    monkeypatch.setattr(conv_igemm, "MIN_SPLIT_STEPS", 1)
    splits, _ = conv_igemm.split_plan(o, c * kh * kw, n * oh * ow)
    assert splits > 1
    out = filled(wt.shape, dtype)
    assert conv_igemm.conv2d_igemm_weight_grad(x, dy, kh, kw, stride, padding, out=out) is out
    assert emulated[-2:] == [f"conv2d_igemm_weight_grad_m16_{arith}_i32", f"igemm_sum_splits_{sfx}"]
    _close(out, want_dw, dtype, f"weight gradient in {splits} splits")
    # shapes that do not fit are refused before any launch
    launches = len(emulated)
    with pytest.raises(ValueError, match="does not fit weight"):
        conv_igemm.conv2d_igemm(x, wt[:, :2], None, stride, padding)
    with pytest.raises(ValueError, match="bias of shape"):
        conv_igemm.conv2d_igemm(x, wt, b[:3], stride, padding)
    with pytest.raises(ValueError, match="spatial size"):
        conv_igemm.conv2d_igemm_input_grad(dy[:, :, :-1], wt, h, w, stride, padding)
    with pytest.raises(ValueError, match="does not fit input"):
        conv_igemm.conv2d_igemm_weight_grad(x, dy[:, :, :-1], kh, kw, stride, padding)
    with pytest.raises(ValueError, match="expected \\(N, C, H, W\\)"):
        conv_igemm.conv2d_igemm_weight_grad(x[0], dy, kh, kw, stride, padding)
    with pytest.raises(ValueError, match="out"):
        conv_igemm.conv2d_igemm_weight_grad(x, dy, kh, kw, stride, padding, out=np.empty((o, c, kh, kw + 1), dtype))
    assert len(emulated) == launches
    # what the kernels don't take (another dtype; an empty batch): the reference, no launch
    half = conv_igemm.conv2d_igemm_weight_grad(x.astype(np.float16), dy.astype(np.float16), kh, kw, stride, padding)
    assert half.dtype == np.float16 and half.shape == wt.shape
    empty = conv_igemm.conv2d_igemm_weight_grad(x[:0], dy[:0], kh, kw, stride, padding)
    assert empty.shape == wt.shape and not empty.any()
    assert len(emulated) == launches


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "transpose"])
@pytest.mark.parametrize("need_dx", [True, False])
def test_the_implicit_schedule_equals_the_plain_layer_math(emulated, transpose, need_dx):
    """``use_implicit_gemm(True)``: the cupy schedule runs Conv2d / ConvTranspose2d (stride 2)
    forward and backward (dx and dW) through the implicit-GEMM kernels alone, and the results
    are the plain layer math's; switching back puts the previous kernels back."""
    sched = cuda_kernels.CONV_SCHEDULE
    ops = sched.ops
    before = (ops.conv2d_direct, ops.conv2d_direct_input_grad, sched.direct_max,
              hasattr(ops, "conv2d_direct_weight_grad"))
    rng = np.random.default_rng(7)
    case = TRANSPOSE if transpose else CONV
    x, w, b = _inputs(case, transpose, rng)
    try:
        cuda_kernels.use_implicit_gemm(True)
        _compare_with_the_plain_math(sched, case, transpose, need_dx, x, w, b, rng)
    finally:
        cuda_kernels.use_implicit_gemm(cuda_kernels.IMPLICIT_AT_IMPORT)
    assert (ops.conv2d_direct, ops.conv2d_direct_input_grad, sched.direct_max,
            hasattr(ops, "conv2d_direct_weight_grad")) == before
    assert emulated and all(k.startswith(("conv2d_igemm", "igemm_sum")) for k in emulated), emulated
    kinds = {k.rsplit("_", 3)[0] for k in emulated if not k.startswith("igemm_sum")}
    # ConvTranspose2d's forward is its Conv2d's input gradient, and its dx that Conv2d's forward
    out_kernel, in_kernel = ("conv2d_igemm_input_grad", "conv2d_igemm_forward") if transpose else \
        ("conv2d_igemm_forward", "conv2d_igemm_input_grad")
    assert kinds == {out_kernel, "conv2d_igemm_weight_grad"} | ({in_kernel} if need_dx else set()), kinds


def test_every_kernel_with_barriers_is_a_block_kernel_in_the_host_build(host):
    """conv_igemm.cu's tiled kernels (the only ones with __syncthreads) are registered as block
    kernels, so the host build runs their threads together; nothing else is."""
    from test_cuda_compile import expected_kernels

    tiled = {k for k in expected_kernels()["conv_igemm"] if k.startswith("conv2d_igemm_")}
    assert len(tiled) == 54 and tiled <= set(host.signatures)
    assert host.block_kernels - {"host_test_shared_reverse", "host_test_divergent_barrier"} == tiled


def test_the_host_build_runs_a_block_together(host):
    """The harness of block kernels: each thread reads the shared-memory entry another thread
    wrote before the barrier (one-at-a-time threads would read what the previous block left);
    a barrier only half a block reaches, or one in a kernel launched thread by thread, fails."""
    for order in (0, 1):
        out = np.full(3 * 64, -1, dtype=np.int64)
        host.launch("host_test_shared_reverse", 3, 64, (out,), order=order)
        want = np.array([b * 10000 + 63 - t for b in range(3) for t in range(64)])
        np.testing.assert_array_equal(out, want)
    with pytest.raises(AssertionError, match="a barrier not every thread of a block reached"):
        host.launch("host_test_divergent_barrier", 1, 32, (np.zeros(32, np.int64),))
    with pytest.raises(AssertionError, match="not registered as a block kernel"):
        host.launch("host_test_stray_sync", 1, 32, (np.zeros(32, np.int64),))


def test_launch_plans_are_kept_per_shape_and_arithmetic(emulated, monkeypatch):
    """The kernel name, block count and size arguments are worked out once per (kind, shape,
    arithmetic): a second call reuses them, TF32 on/off gets its own, and the table is cleared
    when it would pass its cap."""
    from minicnn import backend

    monkeypatch.setattr(conv_igemm, "_LAUNCHES", {})
    x, wt, b, dy, _ = _case((2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1), np.float32)
    monkeypatch.setattr(backend.tf32, "conv", False)
    conv_igemm.conv2d_igemm(x, wt, b, (1, 1), (1, 1))
    conv_igemm.conv2d_igemm(x, wt, b, (1, 1), (1, 1))
    assert len(conv_igemm._LAUNCHES) == 1 and emulated[-2:] == ["conv2d_igemm_forward_m16_f32_i32"] * 2
    monkeypatch.setattr(backend.tf32, "conv", True)
    conv_igemm.conv2d_igemm(x, wt, b, (1, 1), (1, 1))
    assert len(conv_igemm._LAUNCHES) == 2 and emulated[-1] == "conv2d_igemm_forward_m16_tf32_i32"
    kernel, blocks, args = next(iter(conv_igemm._LAUNCHES.values()))
    assert blocks == 1 and all(type(a) is np.int64 for a in args)
    monkeypatch.setattr(conv_igemm, "_LAUNCHES_MAX", 2)
    conv_igemm.conv2d_igemm_input_grad(dy, wt, 9, 7, (1, 1), (1, 1))
    assert len(conv_igemm._LAUNCHES) == 1  # cleared, then this one
