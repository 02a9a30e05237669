"""The Numba direct-convolution kernels (``minicnn.kernels.cpu.direct``) against the plain
layer math of ``minicnn.nn.conv`` (im2col, product, col2im on the reference kernels).

They sum in another order than im2col + BLAS, so the comparison is to float rounding
(float64: 1e-12 of the largest value; float32: 1e-5), on hand-picked and seeded-random
geometries: stride 1 with and without padding (the kernels' own path), padding as large as
the kernel (the input gradient's fallback), strides above 1 (float32: the register-blocked
kernels on the input cut into phases; float64: the im2col fallback), float16 (the im2col
fallback), rectangular kernels with 1 to 7 taps per row (every group size of the row
passes), batch 1 and an empty batch. Also: ``out=``, the checks on bad shapes, and that
the same call gives the same bits twice.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels.cpu import direct
from minicnn.nn import conv

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")

# (n, c, h, w, o, kh, kw, sh, sw, ph, pw)
CASES = [
    (4, 3, 32, 32, 6, 5, 5, 1, 1, 0, 0),  # the tutorial net's conv1, batch 4
    (2, 3, 12, 12, 16, 3, 3, 1, 1, 1, 1),  # ResNet's first layer, smaller
    (3, 2, 8, 9, 4, 5, 5, 1, 1, 2, 2),  # "same" padding, odd width
    (1, 1, 5, 11, 2, 1, 7, 1, 1, 0, 3),  # a 7-wide row: groups 5 + 2
    (2, 2, 9, 7, 3, 4, 6, 1, 1, 1, 2),  # 6 = 5 + 1, 4 = 3 + 1
    (2, 3, 7, 6, 2, 2, 2, 1, 1, 0, 1),  # 2 taps
    (2, 2, 6, 6, 3, 3, 3, 1, 1, 3, 3),  # padding as large as the kernel
    (2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1),  # stride (2, 1): phases in float32, the fallback in float64
    (1, 2, 4, 4, 3, 1, 1, 1, 1, 0, 0),  # 1x1
]
_r = np.random.default_rng(77)
for _ in range(6):
    _kh, _kw = int(_r.integers(1, 6)), int(_r.integers(1, 8))
    _ph, _pw = int(_r.integers(0, 3)), int(_r.integers(0, 3))
    _h, _w = int(_r.integers(max(1, _kh - 2 * _ph), 12)), int(_r.integers(max(1, _kw - 2 * _pw), 12))
    CASES.append((int(_r.integers(1, 4)), int(_r.integers(1, 4)), _h, _w, int(_r.integers(1, 5)), _kh, _kw,
                  1, 1, _ph, _pw))

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _case(case, dtype, seed=0):
    n, c, h, w, o, kh, kw, sh, sw, ph, pw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    prev = mc.backend_name()
    mc.set_backend("numpy")
    try:
        y, cache = conv.conv2d_forward(x, wt, b, (sh, sw), (ph, pw))
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, _ = conv.conv2d_backward(dy, cache)
    finally:
        mc.set_backend(prev)
    return (x, wt, b, dy), (y, dx, dw), ((sh, sw), (ph, pw))


def _close(got, want, dtype):
    scale = max(float(np.abs(want).max()), 1.0) if want.size else 1.0
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_direct_kernels_equal_the_layer_math(case, dtype):
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(case, dtype)
    kh, kw = w.shape[2:]
    _close(direct.conv2d_direct(x, w, b, stride, padding), y, dtype)
    _close(direct.conv2d_direct(x, w, None, stride, padding), y - b.reshape(1, -1, 1, 1), dtype)
    _close(direct.conv2d_direct_input_grad(dy, w, x.shape[2], x.shape[3], stride, padding), dx, dtype)
    _close(direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding), dw, dtype)


# float32 cases for the register-blocked kernels (direct_blocked.py) beyond CASES: output
# channels not a multiple of the tiles', kernel widths up to KW_MAX and one past it (the weight
# gradient's row passes), more output positions than one tile, 1x1, many channels.
BLOCKED_CASES = [
    (3, 5, 12, 12, 7, 3, 3, 1, 1, 1, 1),
    (2, 2, 11, 13, 3, 5, 5, 1, 1, 2, 2),
    (2, 3, 10, 12, 2, 2, 7, 1, 1, 0, 3),
    (2, 4, 12, 10, 9, 1, 1, 1, 1, 0, 0),
    (1, 3, 14, 9, 5, 4, 6, 1, 1, 1, 0),
    (2, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1),  # ResNet's 32-channel stage, smaller
    (2, 6, 20, 20, 33, 5, 5, 1, 1, 2, 2),
    (2, 2, 9, 30, 3, 3, 8, 1, 1, 1, 0),  # wider than KW_MAX: the weight gradient's row passes
    (2, 16, 8, 8, 64, 3, 3, 1, 1, 1, 1),  # the forward with channels in the lanes
    (2, 32, 9, 7, 40, 5, 5, 1, 1, 2, 2),  # ... forward and input gradient, 40 and 32 channels
    # strides: the input cut into phases (the input gradient one phase at a time)
    (2, 16, 16, 16, 32, 3, 3, 2, 2, 1, 1),  # ResNet's stride-2 layer, smaller
    (2, 5, 13, 9, 70, 5, 5, 2, 2, 2, 2),  # odd planes; the weight gradient's channels kind
    (2, 2, 10, 15, 3, 4, 6, 3, 2, 1, 2),  # stride (3, 2), a non-square kernel
    (2, 3, 9, 9, 4, 3, 3, 2, 2, 2, 2),  # an input-gradient phase past dy's padding: its fallback
    (2, 3, 9, 10, 4, 2, 2, 3, 3, 1, 1),  # stride past the kernel: phases with no tap (zero)
]


@pytest.mark.parametrize("channels", [False, True], ids=["positions", "channels"])
@pytest.mark.parametrize("case", [(2, 5, 9, 9, 40, 3, 3, 1, 1, 1, 1), (3, 7, 6, 5, 33, 3, 2, 1, 1, 0, 1),
                                  (1, 3, 4, 4, 70, 5, 5, 1, 1, 2, 2), (2, 5, 11, 9, 40, 3, 3, 2, 2, 1, 1)], ids=str)
def test_both_blocked_forwards_equal_the_layer_math(case, channels):
    """The forward kernel of either kind (positions or channels in the lanes, forced), on output
    channels that are no multiple of a tile's and positions no multiple of the channels tile's,
    also for the input gradient (the flipped weight read in place)."""
    from minicnn.kernels.cpu import direct_blocked

    (x, w, b, dy), (y, dx, dw), (stride, (ph, pw)) = _case(case, np.float32, seed=9)
    kh, kw = w.shape[2:]
    got = np.empty_like(y)
    direct_blocked.forward(x, w, b, True, ph, pw, got, channels=channels, stride=stride)
    _close(got, y, np.float32)
    if stride != (1, 1):
        return  # the flipped weight at stride 1 only (a strided input gradient: input_grad_phases)
    if channels and direct_blocked.forward_channels_tile(w.shape[1]) is None:
        return  # too few input channels for the flipped weight's channels tile
    gdx = np.empty_like(dx)
    direct_blocked.forward(dy, w, w.reshape(-1)[:w.shape[1]], False, kh - 1 - ph, kw - 1 - pw, gdx, flipped=True,
                           channels=channels)
    _close(gdx, dx, np.float32)


def test_a_strided_input_gradient_runs_by_phases_unless_a_phase_needs_a_negative_padding():
    """ResNet's stride-2 3x3 layer (padding 1) takes the phases; with padding 2, phase 1 would
    need dy cropped (its first row is past the kernel's reach): None, the caller's fallback."""
    from minicnn.kernels.cpu import direct_phases

    for case, runs in (((2, 4, 10, 10, 6, 3, 3, 2, 2, 1, 1), True), ((2, 3, 9, 9, 4, 3, 3, 2, 2, 2, 2), False)):
        (x, w, b, dy), (y, dx, dw), (stride, (ph, pw)) = _case(case, np.float32, seed=4)
        got = np.full_like(dx, np.nan)
        res = direct_phases.input_grad_phases(dy, w, ph, pw, got, stride)
        assert (res is not None) == runs
        if runs:
            _close(res, dx, np.float32)


@pytest.mark.parametrize("case", BLOCKED_CASES, ids=str)
def test_the_blocked_kernels_equal_the_layer_math(case):
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(case, np.float32, seed=3)
    kh, kw = w.shape[2:]
    _close(direct.conv2d_direct(x, w, b, stride, padding), y, np.float32)
    _close(direct.conv2d_direct_input_grad(dy, w, x.shape[2], x.shape[3], stride, padding), dx, np.float32)
    _close(direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding), dw, np.float32)


def _empty_batch(case):
    """0 samples of ``case`` through the three kernels: empty outputs, a zero weight gradient."""
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(case, np.float32)
    kh, kw = w.shape[2:]
    assert direct.conv2d_direct(x[:0], w, b, stride, padding).shape == (0, *y.shape[1:])
    assert direct.conv2d_direct_input_grad(dy[:0], w, x.shape[2], x.shape[3], stride, padding).shape == \
        (0, *x.shape[1:])
    np.testing.assert_array_equal(direct.conv2d_direct_weight_grad(x[:0], dy[:0], kh, kw, stride, padding),
                                  np.zeros_like(dw))


def test_the_blocked_kernels_take_an_empty_batch():
    """0 samples through every blocked kernel kind."""
    for case in (BLOCKED_CASES[0], BLOCKED_CASES[-1], (2, 16, 8, 8, 64, 3, 3, 1, 1, 1, 1)):
        _empty_batch(case)


def test_the_blocked_kernels_buffers_start_on_a_cache_line():
    """``_aligned_zeros`` (compiled, and called from Python for the transposed weight): n zeros
    whose first element sits on a 64-byte boundary, for any n."""
    from minicnn.kernels.cpu import direct_blocked

    for n in (0, 1, 15, 16, 17, 1000, 204_800):
        a = direct_blocked._aligned_zeros(n)
        assert a.shape == (n,) and a.dtype == np.float32 and a.ctypes.data % 64 == 0
        assert not a.any()


def test_the_blocked_weight_gradient_over_several_sample_groups():
    """Planes too large for one group (direct_blocked_dw.GROUP elements): each sample its own group,
    the groups' lane sums added in order; the same numbers as the layer math, and its own bits
    again on a second call."""
    from minicnn.kernels.cpu import direct_blocked_dw

    case = (3, 1, 300, 300, 2, 3, 3, 1, 1, 1, 1)
    assert (1 + direct_blocked_dw.weight_grad_tile(3)) * 300 * 300 > direct_blocked_dw.GROUP  # more than a group
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(case, np.float32, seed=5)
    got = direct.conv2d_direct_weight_grad(x, dy, 3, 3, stride, padding)
    _close(got, dw, np.float32)
    np.testing.assert_array_equal(direct.conv2d_direct_weight_grad(x, dy, 3, 3, stride, padding), got)


def test_the_channels_weight_gradient_tiles_give_the_same_bits(monkeypatch):
    """A stride-1 3x3 layer on a 16-wide plane with 32 output channels (ResNet-20's second stage):
    with 8 lanes the channels weight gradient takes one kernel row of two vectors there and the
    whole kernel on an 8-wide plane or a strided layer (``channel_tile``); each weight's sum runs
    over the positions in the same order either way, so both tiles give the same bits, and the
    layer math's numbers."""
    from minicnn.kernels.cpu import direct_blocked_dw as dd

    if dd.LANES == 8:
        assert dd.channel_tile(32, 3, 3, 16, 1) == (2, 1)
        assert dd.channel_tile(64, 3, 3, 16, 1) == (2, 1)
        assert dd.channel_tile(32, 3, 3, 8, 1) == (1, 3) == dd.channel_tile(32, 3, 3, 16, 2)
    assert dd.channel_tile(64, 5, 5, 16, 1) == dd.channel_tile(64, 5, 5, 8, 1)  # 5x5: one row anyway
    case = (3, 8, 16, 16, 32, 3, 3, 1, 1, 1, 1)
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(case, np.float32, seed=9)
    rows = direct.conv2d_direct_weight_grad(x, dy, 3, 3, stride, padding, ranges=[(0, 1), (1, 3)])
    monkeypatch.setattr(dd, "WHOLE_KERNEL_OW", 0)  # the whole-kernel tile wherever it fits
    assert dd.channel_tile(32, 3, 3, 16, 1) == (1, 3)
    whole = direct.conv2d_direct_weight_grad(x, dy, 3, 3, stride, padding, ranges=[(0, 1), (1, 3)])
    np.testing.assert_array_equal(rows, whole)
    _close(rows, dw, np.float32)


def test_direct_kernels_write_into_out_and_repeat_their_bits():
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(CASES[2], np.float32)
    kh, kw = w.shape[2:]
    outs = [np.full(y.shape, np.nan, np.float32), np.full(dx.shape, np.nan, np.float32),
            np.full(dw.shape, np.nan, np.float32)]
    got = [direct.conv2d_direct(x, w, b, stride, padding, out=outs[0]),
           direct.conv2d_direct_input_grad(dy, w, x.shape[2], x.shape[3], stride, padding, out=outs[1]),
           direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding, out=outs[2])]
    assert all(g is o for g, o in zip(got, outs))
    for g, want in zip(got, (y, dx, dw)):
        _close(g, want, np.float32)
    again = [direct.conv2d_direct(x, w, b, stride, padding),
             direct.conv2d_direct_input_grad(dy, w, x.shape[2], x.shape[3], stride, padding),
             direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding)]
    for g, a in zip(got, again):
        np.testing.assert_array_equal(g, a)


def test_direct_kernels_take_float16_non_contiguous_and_empty_batches():
    (x, w, b, dy), (y, dx, dw), (stride, padding) = _case(CASES[1], np.float64)
    kh, kw = w.shape[2:]
    # float16 runs the im2col composition (no Numba float16 arithmetic)
    half = direct.conv2d_direct(x.astype(np.float16), w.astype(np.float16), b.astype(np.float16), stride, padding)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float64), y, rtol=0, atol=0.05 * np.abs(y).max())
    # a non-contiguous input (every other channel of a wider array)
    wide = np.repeat(x, 2, axis=1)
    _close(direct.conv2d_direct(wide[:, ::2], w, b, stride, padding), y, np.float64)
    # an empty batch: empty results, a zero weight gradient
    e = direct.conv2d_direct(x[:0], w, b, stride, padding)
    assert e.shape == (0, *y.shape[1:])
    g = direct.conv2d_direct_weight_grad(x[:0], dy[:0], kh, kw, stride, padding)
    np.testing.assert_array_equal(g, np.zeros_like(dw))


def test_direct_kernels_reject_bad_shapes():
    (x, w, b, dy), _, (stride, padding) = _case(CASES[0], np.float32)
    kh, kw = w.shape[2:]
    with pytest.raises(ValueError, match="channels on axis 1"):
        direct.conv2d_direct(x[:, :2], w, b, stride, padding)
    with pytest.raises(ValueError, match="bias of shape"):
        direct.conv2d_direct(x, w, b[:2], stride, padding)
    with pytest.raises(ValueError, match="spatial size"):
        direct.conv2d_direct_input_grad(dy[:, :, 1:], w, x.shape[2], x.shape[3], stride, padding)
    with pytest.raises(ValueError, match="does not fit input"):
        direct.conv2d_direct_weight_grad(x, dy[:, :, 1:], kh, kw, stride, padding)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        direct.conv2d_direct(x[:, :, :3, :3], w, b, stride, padding)
    with pytest.raises(ValueError, match="out must be"):
        direct.conv2d_direct(x, w, b, stride, padding, out=np.empty((1, 2), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        direct.conv2d_direct_input_grad(dy, w, x.shape[2], x.shape[3], stride, padding,
                                        out=dy.reshape(-1)[:x.size].reshape(x.shape))


def test_the_cpu_schedule_limit_comes_from_the_environment(monkeypatch):
    from minicnn.kernels import cpu

    monkeypatch.delenv("MINICNN_CPU_DIRECT_MAX", raising=False)
    assert cpu._direct_max_from_environment() == cpu.DIRECT_MAX == 1 << 20
    monkeypatch.setenv("MINICNN_CPU_DIRECT_MAX", " 0 ")
    assert cpu._direct_max_from_environment() == 0  # off
    monkeypatch.setenv("MINICNN_CPU_DIRECT_MAX", "2400")
    assert cpu._direct_max_from_environment() == 2400
    for bad in ("-1", "many", "1e3"):
        monkeypatch.setenv("MINICNN_CPU_DIRECT_MAX", bad)
        with pytest.raises(ValueError, match="MINICNN_CPU_DIRECT_MAX"):
            cpu._direct_max_from_environment()


@pytest.mark.parametrize("case", [(2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1), (2, 2, 6, 6, 3, 3, 3, 1, 1, 3, 3)],
                         ids=["stride-2", "padding-3"])
def test_an_empty_batch_through_the_fallbacks(case):
    """The im2col fallbacks (stride 2; padding > kh - 1 in the input gradient) on 0 samples:
    empty outputs and a zero weight gradient (no reshape with -1 on an empty array)."""
    _empty_batch(case)


def test_layers_on_the_direct_path_take_an_empty_batch(monkeypatch):
    """Conv2d and ConvTranspose2d with a stride (the direct kernels' fallbacks; the CPU's rule
    sends strided layers to im2col, so a schedule without a rule), forward and backward on 0
    samples, as on the im2col path."""
    from minicnn import nn
    from minicnn.kernels import cpu

    monkeypatch.setattr(cpu.CONV_SCHEDULE, "direct_max", cpu.DIRECT_MAX)  # whatever MINICNN_CPU_DIRECT_MAX says
    monkeypatch.setattr(cpu.CONV_SCHEDULE, "direct_rule", None)  # the size cap alone: strided layers go direct
    prev = mc.backend_name()
    mc.set_backend("numba")
    try:
        for layer, shape in ((nn.Conv2d(3, 6, 5, stride=2), (0, 3, 64, 64)),
                             (nn.ConvTranspose2d(4, 3, 5, stride=2, padding=2, output_padding=1), (0, 4, 24, 24))):
            assert cpu.CONV_SCHEDULE.direct(mc.to_numpy(layer.weight.data), 1, (2, 2))
            y = layer(mc.asarray(np.zeros(shape, np.float32)))
            dx = layer.backward(np.zeros_like(y))
            assert y.shape[0] == 0 and dx.shape == shape
            assert not np.any(mc.to_numpy(layer.weight.grad))
    finally:
        mc.set_backend(prev)


def test_compiled_names_do_not_depend_on_the_hash_seed():
    """The cache name of a kernel compiled with a set of fastmath flags is the same in every
    process (a set's repr depends on PYTHONHASHSEED; _jit._tag sorts it)."""
    import subprocess
    import sys

    code = "from minicnn.kernels.cpu import direct_rows; print(direct_rows.row_dots.py_func.__name__)"
    names = {subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "PYTHONHASHSEED": seed},
                            capture_output=True, text=True, check=True).stdout.strip() for seed in ("1", "4", "5")}
    assert len(names) == 1, names


def test_the_cpu_rule_picks_the_direct_layers():
    """float32 (the blocked kernels): kw <= KW_MAX, a stride up to the kernel's; float64 (the
    passes): stride 1, at most 16 output channels and 4096 weights, 512 pixels."""
    from minicnn.kernels import cpu

    def rule(o, c, k, pixels, dtype=np.float32, stride=(1, 1)):
        return cpu.direct_rule(np.zeros((o, c, k, k), dtype), pixels, stride)

    assert rule(64, 32, 5, 16 * 16)  # Net2's conv2
    assert rule(128, 64, 5, 8 * 8)  # Net2's conv3: a 5x5 kernel on 8x8
    assert rule(64, 64, 3, 8 * 8)  # ResNet's 64-channel stage
    assert rule(32, 16, 3, 16 * 16, stride=(2, 2))  # ResNet's stride-2 layers
    assert not rule(32, 16, 1, 16 * 16, stride=(2, 2))  # a 1x1 projection with stride 2: im2col
    assert not rule(16, 16, 3, 16 * 16, np.float64, stride=(2, 2))
    assert not rule(4, 4, 9, 100 * 100)  # wider than KW_MAX
    assert rule(16, 16, 3, 32 * 32, np.float64) and not rule(32, 16, 3, 32 * 32, np.float64)
    assert not rule(16, 32, 3, 32 * 32, np.float64)  # 4608 weights


def test_the_kernels_cache_names_follow_the_passes_source():
    """_forward and _weight_grad compile direct_rows.py's passes into their own machine code, and
    Numba checks a cache entry against the function's own file only: the passes' source digest is
    in their cached names, so an edit to direct_rows.py alone recompiles them."""
    from minicnn.kernels.cpu import _jit, direct_rows

    tag = _jit._source_tag(direct_rows)
    for kernel in (direct._forward, direct._weight_grad):
        assert kernel.py_func.__name__.endswith("_" + tag)
    # the blocked kernels compile simd.py's intrinsics into theirs
    from minicnn.kernels.cpu import direct_blocked, simd

    tag = _jit._source_tag(simd)
    for case in BLOCKED_CASES[:2]:  # 3x3 and 5x5: a weight-gradient kernel for each width
        (x, w, b, dy), _, (stride, padding) = _case(case, np.float32)
        direct.conv2d_direct(x, w, b, stride, padding)
        direct.conv2d_direct_weight_grad(x, dy, w.shape[2], w.shape[3], stride, padding)
    names = [k.py_func.__name__ for k in direct_blocked._COMPILED.values()]
    assert len(names) >= 3 and len(set(names)) == len(names)
    # and direct_blocked.py's helpers (the weight-gradient kernels live in another file)
    assert all(name.endswith(f"_{tag}_{_jit._source_tag(direct_blocked)}") for name in names)


def test_the_blocked_kernels_with_8_lanes():
    """The 8-lane kernels (an AVX2 machine's; MINICNN_CPU_LANES=8 on any machine), in a fresh
    process, against the layer math on the blocked cases, and their parallel builds with batch
    ranges against one call per range (and the weight gradient cut by channel against one call)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, sys\n"
        "sys.path.insert(0, %r)\n"
        "import test_kernels_cpu_direct as t\n"
        "from minicnn.kernels.cpu import simd\n"
        "assert simd.LANES == 8, simd.LANES\n"
        "for case in t.BLOCKED_CASES + t.CASES[:3]:\n"
        "    t.test_the_blocked_kernels_equal_the_layer_math(case) if case in t.BLOCKED_CASES else "
        "t.test_direct_kernels_equal_the_layer_math(case, np.float32)\n"
        "import test_kernels_cpu_direct_ranges as r\n"  # and the parallel builds, ranges at once
        "from minicnn.kernels.cpu import threads, direct_blocked_dw as dd\n"
        "threads.workers = lambda: 2\n"
        "for case in r.CHANNEL_CASES:\n"
        "    dd.CHANNEL_PARTS = True\n"
        "    r.check_channel_cut(case, lambda cut: setattr(dd, 'CHANNEL_PARTS', cut))\n"
        "for case in r.CASES[:4]:\n"  # by batch range (CHANNEL_PARTS is False now)
        "    r.test_ranges_give_the_numbers_of_one_call_per_range(case, None, None)\n"
        "print('ok')\n" % os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MINICNN_CPU_LANES": "8"},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_the_lanes_setting_is_checked(monkeypatch):
    from minicnn.kernels.cpu import simd

    monkeypatch.setenv("MINICNN_CPU_LANES", "16")
    assert simd._lanes() == 16
    monkeypatch.setenv("MINICNN_CPU_LANES", "4")
    with pytest.raises(ValueError, match="MINICNN_CPU_LANES"):
        simd._lanes()
