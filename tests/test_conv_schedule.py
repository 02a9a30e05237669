"""kernels/conv_schedule.py runs the conv products by batch ranges; every path gives
the numbers of the plain whole-batch layer functions in minicnn/nn/conv.py.

Each path is forced by its limit, with batch ranges of at least 2 samples, so
that a bug that mixes up samples inside one range (``cols[k]`` -> ``cols[0]``
in the per-sample products, say) changes the result:

* kept     -- the whole column matrix built once and kept for backward;
* shares   -- the kept matrix cut into ranges dealt to (fake) threads;
* chunks   -- the matrix built a range at a time and rebuilt in backward;
* rebuilt  -- nothing kept (``keep=0``, the GPU's setting), the whole batch's
  matrix built at once in forward and again in backward;
* per-sample weight-gradient products (``stack_limit``), in both of those;
* the weight gradient summed as its transpose (``dw_transposed``, the CPU's setting);
* the wide layout (``wide``: a range's column matrix as (K, n*L), one product per range),
  kept, shared, chunked and rebuilt, in both weight-gradient orientations;
* the direct kernels (``direct_max``: output and input gradient without a column matrix;
  here the GPU's NumPy fallbacks, the kernels themselves in tests/test_cuda_host.py; and the
  CPU's, with their weight gradient, whole and dealt to shares);
* scratch buffers (``scratch_max``: a range's temporary columns written into a per-thread
  buffer kept between calls, the CPU's setting), chunked, shared and kept.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.kernels import reference as ref
from minicnn.kernels.conv_schedule import ConvSchedule
from minicnn.kernels.cuda import conv as cuda_conv
from minicnn.nn import conv

N = 8
# the GPU's direct kernels; on NumPy arrays their wrappers run the reference composition
DIRECT = dict(conv2d_direct=cuda_conv.conv2d_direct, conv2d_direct_input_grad=cuda_conv.conv2d_direct_input_grad)
CONV = dict(cin=3, cout=5, k=3, stride=(2, 1), padding=(1, 2), hw=(9, 7))
TRANSPOSE = dict(cin=4, cout=3, k=3, stride=(2, 2), padding=(1, 0), hw=(5, 4), output_padding=(1, 0))
# stride 1: the CPU's direct kernels run their own loops (other strides: the im2col composition)
CONV_S1 = dict(cin=3, cout=5, k=3, stride=(1, 1), padding=(1, 2), hw=(9, 7))
TRANSPOSE_S1 = dict(cin=4, cout=3, k=3, stride=(1, 1), padding=(1, 0), hw=(5, 4), output_padding=(0, 0))


def _kernels(name):
    if name == "numpy":
        return SimpleNamespace(im2col=ref.im2col, col2im=ref.col2im, matmul=ref.matmul,
                               im2col_wide=ref.im2col_wide, col2im_wide=ref.col2im_wide, **DIRECT)
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    from minicnn.kernels import cpu

    return SimpleNamespace(im2col=cpu.im2col, col2im=cpu.col2im, matmul=cpu.matmul,
                           im2col_wide=cpu.TABLE["im2col_wide"], col2im_wide=cpu.TABLE["col2im_wide"], **DIRECT)


class Shares:
    """A split like kernels/cpu/threads.run_split (items dealt round-robin into 2
    shares), run serially, recording the ranges each share received."""

    def __init__(self):
        self.seen = []

    def __call__(self, fn, items):
        items = list(items)
        shares = [items[t::2] for t in range(2)] if len(items) > 1 else [items]
        self.seen.append(shares)
        return [fn(s) for s in shares]


def _bytes_per_sample(case, transpose):
    """Column-matrix bytes of one float64 sample (what the schedule compares with its limits)."""
    k, (h, w) = case["k"], case["hw"]
    if transpose:
        return case["cout"] * k * k * h * w * 8
    oh = ref.conv_out_size(h, k, case["stride"][0], case["padding"][0])
    ow = ref.conv_out_size(w, k, case["stride"][1], case["padding"][1])
    return case["cin"] * k * k * oh * ow * 8


PATHS = {
    # name: (schedule settings as multiples of one sample's column bytes, split?)
    "kept": (dict(keep=10**9, chunk=10**9), False),
    "kept-per-sample-dW": (dict(keep=10**9, chunk=10**9, stack_limit=0), False),
    "shares": (dict(keep=10**9, chunk=10**9, kept_split=4, split_min_macs=0), True),
    "shares-per-sample-dW": (dict(keep=10**9, chunk=10**9, kept_split=4, split_min_macs=0, stack_limit=0), True),
    "chunks": (dict(keep=0, chunk=2), False),
    "chunks-per-sample-dW": (dict(keep=0, chunk=2, stack_limit=0), False),
    "chunks-shares": (dict(keep=0, chunk=3), True),
    # the GPU's setting: nothing kept, the whole batch built at once, again in backward
    "rebuilt-whole": (dict(keep=0, chunk=10**9), False),
    # the weight gradient summed as its transpose (the CPU's setting), stacked and per sample
    "kept-dwT": (dict(keep=10**9, chunk=10**9, dw_transposed=True), False),
    "shares-per-sample-dwT": (dict(keep=10**9, chunk=10**9, kept_split=4, split_min_macs=0, stack_limit=0,
                                   dw_transposed=True), True),
    "chunks-dwT": (dict(keep=0, chunk=2, dw_transposed=True), False),
    "chunks-shares-per-sample-dwT": (dict(keep=0, chunk=3, stack_limit=0, dw_transposed=True), True),
    # the wide layout (K, n*L): kept (columns sliced per range), shared, chunked, rebuilt (the GPU's
    # candidate), and with the transposed weight gradient
    "kept-wide": (dict(keep=10**9, chunk=10**9, wide=True), False),
    "shares-wide": (dict(keep=10**9, chunk=10**9, kept_split=4, split_min_macs=0, wide=True), True),
    "chunks-wide": (dict(keep=0, chunk=2, wide=True), False),
    "chunks-shares-dwT-wide": (dict(keep=0, chunk=3, dw_transposed=True, wide=True), True),
    "rebuilt-whole-wide": (dict(keep=0, chunk=10**9, wide=True), False),
    # the direct kernels for output and input gradient (dW through a product as before)
    "rebuilt-direct": (dict(keep=0, chunk=10**9, direct_max=10**9), False),
    "chunks-direct-wide": (dict(keep=0, chunk=2, direct_max=10**9, wide=True), False),
    # the temporaries in per-thread scratch buffers (the CPU's setting): chunked, shared, kept
    "chunks-scratch": (dict(keep=0, chunk=2, scratch_max=10**9), False),
    "chunks-shares-scratch-dwT": (dict(keep=0, chunk=3, dw_transposed=True, scratch_max=10**9), True),
    "kept-scratch": (dict(keep=10**9, chunk=10**9, scratch_max=10**9), False),
    "chunks-shares-scratch-dwT-wide": (dict(keep=0, chunk=3, dw_transposed=True, scratch_max=10**9, wide=True),
                                       True),
}
NOT_KEPT = ("chunks", "rebuilt")


def _schedule(path, kernels, per_sample_bytes):
    settings, split = PATHS[path]
    settings = dict(settings)
    if settings["chunk"] < 10**9:
        settings["chunk"] *= per_sample_bytes  # ranges of 2 or 3 samples
    shares = Shares() if split else None
    return ConvSchedule(kernels, split=shares, **settings), shares


def _inputs(case, transpose, rng):
    cin, cout, k = case["cin"], case["cout"], case["k"]
    x = rng.standard_normal((N, cin, *case["hw"]))
    w = rng.standard_normal((cin, cout, k, k) if transpose else (cout, cin, k, k))
    b = rng.standard_normal(cout)
    return x, w, b


def _compare_with_the_plain_math(sched, case, transpose, need_dx, x, w, b, rng):
    """The schedule's forward and backward against the plain layer functions (on the reference
    kernels), to 1e-12; returns the schedule's forward cache."""
    prev = mc.backend_name()
    mc.set_backend("numpy")  # the plain functions run on the reference kernels
    try:
        if transpose:
            args = (x, w, b, case["stride"], case["padding"], case["output_padding"])
            want, cache = conv.conv_transpose2d_forward(*args)
            got, got_cache = sched.conv_transpose2d_forward(*args)
            dout = rng.standard_normal(want.shape)
            want_grads = conv.conv_transpose2d_backward(dout, cache, need_dx)
            got_grads = sched.conv_transpose2d_backward(dout, got_cache, need_dx)
        else:
            args = (x, w, b, case["stride"], case["padding"])
            want, cache = conv.conv2d_forward(*args)
            got, got_cache = sched.conv2d_forward(*args)
            dout = rng.standard_normal(want.shape)
            want_grads = conv.conv2d_backward(dout, cache, need_dx)
            got_grads = sched.conv2d_backward(dout, got_cache, need_dx)
    finally:
        mc.set_backend(prev)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for g, wnt in zip(got_grads, want_grads):
        assert (g is None) == (wnt is None)
        if g is not None:
            np.testing.assert_allclose(g, wnt, rtol=1e-12, atol=1e-12)
    return got_cache


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "transpose"])
@pytest.mark.parametrize("need_dx", [True, False])
def test_every_path_equals_the_plain_layer_math(kernels, path, transpose, need_dx):
    case = TRANSPOSE if transpose else CONV
    rng = np.random.default_rng(0)
    x, w, b = _inputs(case, transpose, rng)
    sched, shares = _schedule(path, _kernels(kernels), _bytes_per_sample(case, transpose))
    got_cache = _compare_with_the_plain_math(sched, case, transpose, need_dx, x, w, b, rng)
    if not transpose:
        assert (got_cache[1] is None) == path.startswith(NOT_KEPT)  # no whole matrix kept
    if shares is not None:  # forward and backward were dealt to two shares of >= 2-sample ranges
        assert len(shares.seen) == 2
        for dealt in shares.seen:
            assert len(dealt) == 2 and all(j - i >= 2 for share in dealt for i, j in share)


def test_the_numba_backend_schedule_at_its_own_limits_on_a_large_layer():
    """Conv2d(64, 128, 3, padding=1), batch 8, float64: at the CPU schedule's real
    limits the matrix is built in 3-sample chunks with per-sample dW products (the
    path where a sample mix-up once went unnoticed); it must equal the numpy backend."""
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    from minicnn.kernels.cpu import CONV_SCHEDULE

    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 64, 8, 8))
    g = rng.standard_normal((8, 128, 8, 8))
    per_sample = 64 * 9 * 64 * 8
    assert CONV_SCHEDULE.chunks(8, per_sample) == [(0, 3), (3, 6), (6, 8)]
    assert 3 * 128 * 64 * 9 * 8 > CONV_SCHEDULE.stack_limit  # per-sample products
    assert CONV_SCHEDULE.dw_transposed  # summed as dW^T
    results = {}
    prev = mc.backend_name()
    try:
        for name in ("numpy", "numba"):
            mc.set_backend(name)
            mc.manual_seed(0)
            m = nn.Conv2d(64, 128, 3, padding=1).double()
            y = m(mc.asarray(x))
            dx = m.backward(mc.asarray(g))
            results[name] = [mc.to_numpy(a) for a in (y, dx, m.weight.grad, m.bias.grad)]
    finally:
        mc.set_backend(prev)
    for a, b in zip(results["numba"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


def test_limits_pick_the_paths():
    s = ConvSchedule(None, keep=100, chunk=30, split=Shares(), kept_split=4, split_min_macs=1000)
    assert s.chunks(10, 10) == [(0, 10)]                              # 100 bytes: kept
    assert s.chunks(11, 10) == [(0, 3), (3, 6), (6, 9), (9, 11)]     # chunks of 30 bytes
    assert s.chunks(3, 1000) == [(0, 1), (1, 2), (2, 3)]             # at least one sample per chunk
    assert s.keeps(10, 10) and not s.keeps(11, 10)
    gpu = ConvSchedule(None, keep=0, chunk=100)                       # kernels.cuda's setting
    assert gpu.chunks(10, 10) == [(0, 10)] and not gpu.keeps(10, 10)  # one range, built, not kept
    assert s.work_items(10, [(0, 10)], macs=999) == [(0, 10)]         # too little work to split
    assert s.work_items(10, [(0, 10)], macs=1000) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert ConvSchedule(None, keep=100, chunk=30).work_items(10, [(0, 10)], 10**9) == [(0, 10)]  # no split


def test_direct_calls_split_from_their_own_limit():
    """A direct call is cut into one range per worker from ``split_min_macs`` multiply-adds, or,
    where the backend's kernels run the ranges themselves (``ops.direct_ranges``, the CPU's on
    Numba's threads), from ``direct_split_min_macs`` (by default the same limit)."""
    split = SimpleNamespace(workers=lambda: 2)
    ops = SimpleNamespace(conv2d_direct=None, direct_ranges=True)
    s = ConvSchedule(ops, keep=0, chunk=10**9, split=split, kept_split=4, split_min_macs=1000,
                     direct_split_min_macs=100)
    assert s.direct_items(4, 99) == [(0, 4)]
    assert s.direct_items(4, 100) == [(0, 2), (2, 4)]
    ops.direct_ranges = False  # one call per range on the split's threads: the products' limit
    assert s.direct_items(4, 999) == [(0, 4)]
    assert s.direct_items(4, 1000) == [(0, 2), (2, 4)]
    assert ConvSchedule(ops, keep=0, chunk=1, split_min_macs=7).direct_split_min_macs == 7


def test_the_cpu_splits_small_direct_calls_from_its_limit():
    """The numba backend's limit: the tutorial net's convs stay one range at batch 4 (0.96 and
    1.41 Mi multiply-adds: slower split, measured) and are split at batch 8."""
    from minicnn.kernels import cpu

    s = cpu.CONV_SCHEDULE
    assert s.ranges_in_kernels() and s.direct_split_min_macs == cpu.DIRECT_SPLIT_MIN_MACS < s.split_min_macs
    for n, conv1_macs, conv2_macs in ((4, 4 * 6 * 75 * 784, 4 * 16 * 150 * 100), (8, 8 * 6 * 75 * 784,
                                                                                  8 * 16 * 150 * 100)):
        for macs in (conv1_macs, conv2_macs):
            assert (macs >= s.direct_split_min_macs) == (n == 8)


@pytest.mark.parametrize("wide", [False, True])
def test_the_wide_switch_picks_the_layout_and_one_product_per_range(wide):
    """With ``wide`` every column matrix is built, and every gradient scattered, in the wide
    layout, and each range of the batch is one product (not one per sample)."""
    calls = []

    def logged(name, fn):
        def run(*a, **k):
            calls.append((name, a[0].shape if name == "matmul" else None, a[1].shape if name == "matmul" else None))
            return fn(*a, **k)
        return run

    kernels = SimpleNamespace(**{n: logged(n, getattr(ref, n))
                                 for n in ("im2col", "col2im", "matmul", "im2col_wide", "col2im_wide")})
    sched = ConvSchedule(kernels, keep=0, chunk=10**9, wide=wide)
    rng = np.random.default_rng(0)
    for transpose in (False, True):
        case = TRANSPOSE if transpose else CONV
        x, w, b = _inputs(case, transpose, rng)
        calls.clear()
        if transpose:
            y, cache = sched.conv_transpose2d_forward(x, w, b, case["stride"], case["padding"], case["output_padding"])
            sched.conv_transpose2d_backward(np.ones_like(y), cache)
        else:
            y, cache = sched.conv2d_forward(x, w, b, case["stride"], case["padding"])
            sched.conv2d_backward(np.ones_like(y), cache)
        names = {c[0] for c in calls}
        layout = {"im2col_wide", "col2im_wide"} if wide else {"im2col", "col2im"}
        assert names - {"matmul"} == layout, (transpose, names)
        products = [c for c in calls if c[0] == "matmul"]
        assert len(products) == 3  # forward, dW, dX: one each for the whole batch
        if wide:  # 2-D products: the samples side by side
            assert all(len(a) == 2 and len(bb) == 2 for _, a, bb in products)


def test_wide_max_pixels_picks_the_layout_per_layer_and_backward_follows_the_kept_matrix():
    """``wide_max_pixels``: only layers with at most that many columns per sample go wide; a kept
    matrix's own layout decides backward's, even with the switch flipped in between."""
    used = []

    def logged(name):
        def run(*a, **k):
            used.append(name)
            return getattr(ref, name)(*a, **k)
        return run

    kernels = SimpleNamespace(matmul=ref.matmul, **{n: logged(n) for n in ("im2col", "col2im", "im2col_wide",
                                                                           "col2im_wide")})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    prev = mc.backend_name()
    mc.set_backend("numpy")
    try:
        want, cache = conv.conv2d_forward(x, w, b, (1, 1), (1, 1))  # 36 columns per sample
        dout = rng.standard_normal(want.shape)
        want_grads = conv.conv2d_backward(dout, cache)
    finally:
        mc.set_backend(prev)
    for limit, keep, layout in ((36, 10**9, "im2col_wide"), (35, 10**9, "im2col"), (36, 0, "im2col_wide"),
                                (None, 0, "im2col_wide")):
        sched = ConvSchedule(kernels, keep=keep, chunk=10**9, wide=True, wide_max_pixels=limit)
        used.clear()
        got, got_cache = sched.conv2d_forward(x, w, b, (1, 1), (1, 1))
        sched.wide = not sched.wide if keep else sched.wide  # a kept matrix keeps its layout
        got_grads = sched.conv2d_backward(dout, got_cache)
        assert set(used) == ({layout, layout.replace("im2col", "col2im")}), (limit, keep, used)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        for g, wnt in zip(got_grads, want_grads):
            np.testing.assert_allclose(g, wnt, rtol=1e-12, atol=1e-12)


def test_direct_max_picks_the_direct_kernels_by_weight_size():
    """Layers whose weight has at most ``direct_max`` elements run their output and input gradient
    through the direct kernels (no im2col in forward; in backward only the weight gradient's)."""
    calls = []

    def logged(name, fn):
        def run(*a, **k):
            calls.append(name)
            return fn(*a, **k)
        return run

    names = ("im2col", "col2im", "matmul")
    kernels = SimpleNamespace(**{n: logged(n, getattr(ref, n)) for n in names},
                              **{n: logged(n, f) for n, f in DIRECT.items()})
    rng = np.random.default_rng(0)
    for transpose in (False, True):
        case = TRANSPOSE if transpose else CONV
        x, w, b = _inputs(case, transpose, rng)
        for limit, direct in ((w.size, True), (w.size - 1, False)):
            sched = ConvSchedule(kernels, keep=0, chunk=10**9, direct_max=limit)
            assert sched.direct(w, 1, (1, 1)) == direct
            calls.clear()
            if transpose:
                y, cache = sched.conv_transpose2d_forward(x, w, b, case["stride"], case["padding"],
                                                          case["output_padding"])
                forward = list(calls)
                sched.conv_transpose2d_backward(np.ones_like(y), cache)
            else:
                y, cache = sched.conv2d_forward(x, w, b, case["stride"], case["padding"])
                forward = list(calls)
                sched.conv2d_backward(np.ones_like(y), cache)
            backward = calls[len(forward):]
            if direct:
                assert forward == ["conv2d_direct_input_grad" if transpose else "conv2d_direct"]
                assert backward[0] == ("conv2d_direct" if transpose else "conv2d_direct_input_grad")
                assert "col2im" not in backward and backward.count("matmul") == 1  # dW's product only
            else:
                assert not any(c.startswith("conv2d_direct") for c in calls)
    assert not ConvSchedule(SimpleNamespace(**{n: getattr(ref, n) for n in names}), keep=0, chunk=1,
                            direct_max=10**9).direct(w, 1, (1, 1))  # a backend without the kernels: never
    # direct_rule: the backend's own choice by weight and plane must hold too
    w5, w3 = np.zeros((6, 3, 5, 5)), np.zeros((16, 3, 3, 3))
    ruled = ConvSchedule(kernels, keep=0, chunk=1, direct_max=512,
                         direct_rule=lambda w, px, stride: w.shape[3] == 5 and px > 9 and stride == (1, 1))
    assert ruled.direct(w5, 10, (1, 1)) and not ruled.direct(w3, 10, (1, 1)) and not ruled.direct(w5, 9, (1, 1))
    assert not ruled.direct(w5, 10, [2, 1])  # the stride reaches the rule (as a tuple)
    assert ConvSchedule(kernels, keep=0, chunk=1, direct_max=512).direct(w3, 1, (2, 2))  # no rule: the size alone


def test_the_cpu_schedule_sends_its_layers_to_the_direct_kernels():
    """The CPU's rule, on the layers of the nets here (a ConvTranspose2d: the Conv2d it is the
    adjoint of, whose output channels are the transpose's input channels). float32: the
    register-blocked kernels, every layer up to 7 taps wide with a stride up to its kernel's;
    float64: the passes, stride 1, few output channels on a large plane."""
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    from minicnn.kernels import cpu

    sched = ConvSchedule(cpu.CONV_SCHEDULE.ops, keep=0, chunk=1, direct_max=cpu.DIRECT_MAX,
                         direct_rule=cpu.direct_rule)
    assert cpu.CONV_SCHEDULE.direct_rule is cpu.direct_rule
    for shape, pixels, f32, f64 in (((6, 3, 5, 5), 28 * 28, True, True),  # tutorial/DeconvNet conv1
                                    ((10, 1, 5, 5), 24 * 24, True, True),  # MNISTNet conv1
                                    ((6, 3, 5, 5), 28 * 28, True, True),  # DeconvNet's deconv1 (6 -> 3): its input plane
                                    ((12, 3, 5, 5), 28 * 28, True, True),  # SmallCifarNet conv1
                                    ((16, 3, 3, 3), 32 * 32, True, True), ((16, 16, 3, 3), 32 * 32, True, True),  # ResNet
                                    ((32, 32, 3, 3), 16 * 16, True, False), ((64, 64, 3, 3), 8 * 8, True, False),
                                    ((16, 6, 5, 5), 10 * 10, True, False),  # tutorial conv2
                                    ((32, 3, 5, 5), 32 * 32, True, False),  # Net2 conv1
                                    ((64, 32, 5, 5), 16 * 16, True, False),  # Net2 conv2
                                    ((128, 64, 5, 5), 8 * 8, True, False),  # Net2 conv3
                                    ((16, 16, 1, 1), 32 * 32, True, False), ((16, 16, 7, 7), 32 * 32, True, False),
                                    ((16, 16, 9, 9), 32 * 32, False, False)):  # wider than the blocked kernels go
        assert sched.direct(np.zeros(shape, np.float32), pixels, (1, 1)) == f32, (shape, pixels)
        assert sched.direct(np.zeros(shape, np.float64), pixels, (1, 1)) == f64, (shape, pixels)
    for shape, pixels in (((32, 16, 3, 3), 16 * 16), ((64, 32, 3, 3), 8 * 8)):  # ResNet's stride-2 layers
        assert sched.direct(np.zeros(shape, np.float32), pixels, (2, 2))
        assert not sched.direct(np.zeros(shape, np.float64), pixels, (2, 2))  # the passes: stride 1 only
    assert not sched.direct(np.zeros((32, 16, 1, 1), np.float32), 16 * 16, (2, 2))  # a 1x1 projection: im2col


@pytest.mark.parametrize("split", [False, True], ids=["whole", "shares"])
@pytest.mark.parametrize("case", ["stride-1", "stride-2"])
@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "transpose"])
@pytest.mark.parametrize("need_dx", [True, False])
def test_the_cpu_direct_kernels_equal_the_plain_layer_math(split, case, transpose, need_dx):
    """The numba backend's direct kernels with their weight gradient: forward, dx and dW with no
    column matrix, the batch whole or dealt to two shares whose weight gradients are summed."""
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    from minicnn.kernels import cpu

    ops = SimpleNamespace(im2col=ref.im2col, col2im=ref.col2im, matmul=ref.matmul,
                          conv2d_direct=cpu.conv2d_direct, conv2d_direct_input_grad=cpu.conv2d_direct_input_grad,
                          conv2d_direct_weight_grad=cpu.conv2d_direct_weight_grad)
    used = []
    for name in ("im2col", "col2im", "matmul"):  # none of these may run
        setattr(ops, name, lambda *a, _n=name, **k: used.append(_n))
    params = {("stride-1", False): CONV_S1, ("stride-1", True): TRANSPOSE_S1,
              ("stride-2", False): CONV, ("stride-2", True): TRANSPOSE}[case, transpose]
    shares = Shares() if split else None
    sched = ConvSchedule(ops, keep=0, chunk=10**9, split=shares, kept_split=4, split_min_macs=0, direct_max=10**9)
    rng = np.random.default_rng(1)
    x, w, b = _inputs(params, transpose, rng)
    _compare_with_the_plain_math(sched, params, transpose, need_dx, x, w, b, rng)
    assert used == []  # no column matrix, no product
    if split:  # forward and backward each dealt to two shares of 2-sample ranges
        assert len(shares.seen) == 2
        assert all(len(dealt) == 2 and all(j - i == 2 for sh in dealt for i, j in sh) for dealt in shares.seen)


def test_the_gpu_direct_fallback_keeps_the_dtype_of_x_and_w():
    """A float64 bias on float32 x and w: the schedule's output is float32 (x's and w's type, as on
    the im2col path), also where the GPU's direct wrapper runs its fallback (here: NumPy arrays)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5)
    ops = SimpleNamespace(im2col=ref.im2col, col2im=ref.col2im, matmul=ref.matmul, **DIRECT)
    got, _ = ConvSchedule(ops, keep=0, chunk=10**9, direct_max=10**9).conv2d_forward(x, w, b, (1, 1), (1, 1))
    want, _ = ConvSchedule(ops, keep=0, chunk=10**9).conv2d_forward(x, w, b, (1, 1), (1, 1))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_scratch_buffers_are_kept_per_thread_and_leave_nothing_behind(kernels):
    """With ``scratch_max`` the chunks' columns go through one buffer per thread and name,
    kept from call to call (no fresh pages), and every call gives the plain schedule's
    numbers although the buffer still holds the previous call's columns; a chunk larger
    than ``scratch_max`` gets a fresh array; another thread has buffers of its own."""
    import threading

    ops = _kernels(kernels)
    per_sample = _bytes_per_sample(CONV, False)
    plain = ConvSchedule(ops, keep=0, chunk=2 * per_sample)
    sched = ConvSchedule(ops, keep=0, chunk=2 * per_sample, scratch_max=2 * per_sample)
    rng = np.random.default_rng(5)
    _, w, b = _inputs(CONV, False, rng)
    args = (CONV["stride"], CONV["padding"])
    bufs = []
    for _ in range(2):  # the second call finds the first call's columns in the buffers
        x = rng.standard_normal((N, CONV["cin"], *CONV["hw"]))
        want, want_cache = plain.conv2d_forward(x, w, b, *args)
        got, got_cache = sched.conv2d_forward(x, w, b, *args)
        np.testing.assert_array_equal(got, want)
        dout = rng.standard_normal(want.shape)
        for g, wnt in zip(sched.conv2d_backward(dout, got_cache), plain.conv2d_backward(dout, want_cache)):
            np.testing.assert_array_equal(g, wnt)
        bufs.append(dict(sched._local.bufs))
    assert set(bufs[0]) == {("cols", np.dtype(np.float64)), ("dcols", np.dtype(np.float64))}
    assert all(bufs[1][key] is buf for key, buf in bufs[0].items())  # the same arrays, reused
    assert sched.scratch(np, "cols", (3, per_sample // 8), np.float64) is None  # 3 samples > scratch_max

    seen = []
    t = threading.Thread(target=lambda: (sched.conv2d_forward(x, w, b, *args),
                                         seen.append(dict(sched._local.bufs))))
    t.start()
    t.join()
    assert seen and seen[0][("cols", np.dtype(np.float64))] is not bufs[0][("cols", np.dtype(np.float64))]
