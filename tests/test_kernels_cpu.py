"""The Numba CPU kernels (``minicnn.kernels.cpu``) against the reference kernels: the
kernel table, im2col/col2im and max pooling (activations, optimisers, dropout and
batch norm: ``test_kernels_cpu_elementwise.py``; shared fixtures: ``cpu_kernel_helpers.py``).

Every kernel is run in its serial compiled variant for float32 and float64
and in its parallel variant for float32 (the ``dtype`` fixture moves the size
thresholds so the wrapper picks the variant wanted), on a fixed list of
hand-picked and seeded-random shapes: odd sizes, batch 1, padding, stride >
kernel, overlapping pooling windows, non-contiguous inputs, ties, NaN, +-inf.
Pooling indices and values, pool-backward/unpool routing (and sums) and
im2col/col2im are compared exactly (np.array_equal). No timing assertions
here: see benchmarks/ for timings.
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_kernel_helpers import DTYPES, _distinct, _out, _rng, dtype  # noqa: F401 (dtype: a fixture)

from minicnn.kernels import cpu
from minicnn.kernels import reference as ref
from minicnn.kernels.cpu import activations, conv

# (n, c, h, w, kh, kw, sh, sw, ph, pw)
CONV_CASES = [
    (1, 1, 5, 5, 3, 3, 1, 1, 0, 0),
    (2, 3, 7, 9, 3, 2, 2, 1, 1, 0),  # odd sizes, rectangular kernel
    (1, 2, 6, 5, 2, 2, 3, 3, 0, 1),  # stride > kernel
    (3, 2, 8, 8, 5, 5, 1, 1, 2, 2),  # "same" padding
    (2, 1, 4, 4, 1, 1, 1, 1, 0, 0),  # 1x1
    (1, 3, 5, 7, 3, 3, 2, 2, 3, 1),  # padding as large as the kernel: all-zero rows
    (2, 2, 9, 4, 4, 1, 2, 3, 1, 2),
    (4, 3, 32, 32, 5, 5, 1, 1, 0, 0),  # tutorial net conv1, batch 4
    (4, 6, 14, 14, 5, 5, 1, 1, 0, 0),  # tutorial net conv2, batch 4
]
_r = np.random.default_rng(1234)
for _ in range(6):
    _kh, _kw = int(_r.integers(1, 5)), int(_r.integers(1, 5))
    _sh, _sw = int(_r.integers(1, 4)), int(_r.integers(1, 4))
    _ph, _pw = int(_r.integers(0, 3)), int(_r.integers(0, 3))
    _h = int(_r.integers(max(1, _kh - 2 * _ph), 12))
    _w = int(_r.integers(max(1, _kw - 2 * _pw), 12))
    CONV_CASES.append((int(_r.integers(1, 4)), int(_r.integers(1, 4)), _h, _w, _kh, _kw, _sh, _sw, _ph, _pw))

# pooling: padding <= kernel // 2 (PyTorch's rule), so every window holds an element
POOL_CASES = [
    (1, 1, 4, 4, 2, 2, 2, 2, 0, 0),
    (2, 3, 7, 5, 3, 3, 2, 2, 1, 1),  # overlapping windows, odd sizes, padding
    (1, 2, 9, 9, 3, 3, 1, 1, 1, 1),  # heavy overlap
    (2, 2, 8, 7, 2, 3, 3, 4, 1, 1),  # stride > kernel
    (3, 2, 6, 6, 4, 2, 1, 2, 2, 1),
    (2, 3, 5, 6, 2, 2, 1, 1, 0, 0),  # 2x2 fast path with overlapping windows
    (1, 1, 5, 6, 1, 1, 1, 1, 0, 0),
    (4, 6, 28, 28, 2, 2, 2, 2, 0, 0),  # tutorial net pool1, batch 4
    (4, 16, 10, 10, 2, 2, 2, 2, 0, 0),  # tutorial net pool2, batch 4
]
for _ in range(6):
    _kh, _kw = int(_r.integers(1, 5)), int(_r.integers(1, 5))
    _sh, _sw = int(_r.integers(1, 5)), int(_r.integers(1, 5))
    _ph, _pw = int(_r.integers(0, _kh // 2 + 1)), int(_r.integers(0, _kw // 2 + 1))
    _h, _w = int(_r.integers(_kh, 13)), int(_r.integers(_kw, 13))
    POOL_CASES.append((int(_r.integers(1, 4)), int(_r.integers(1, 4)), _h, _w, _kh, _kw, _sh, _sw, _ph, _pw))


def _ids(cases):
    return ["x".join(map(str, c[:4])) + "-k%d%d-s%d%d-p%d%d" % c[4:] for c in cases]


# ---------------------------------------------------------------- registry


def test_table_covers_reference_and_backend_uses_it():
    assert set(ref.TABLE) <= set(cpu.TABLE)
    assert {"conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward"} <= set(cpu.TABLE)
    from minicnn import backend

    ops = backend.get("numba").ops
    for name, fn in cpu.TABLE.items():
        assert getattr(ops, name) is fn


def test_set_parallel_switches_every_threshold():
    was = cpu.parallel_enabled()
    try:
        cpu.set_parallel(False)
        assert not cpu.parallel_enabled()
        assert conv.IM2COL_PAR_MIN > 1 << 40 and activations.CHEAP_PAR_MIN > 1 << 40
        x = np.arange(2 * 3 * 9 * 9, dtype=np.float32).reshape(2, 3, 9, 9)
        np.testing.assert_array_equal(cpu.im2col(x, 3, 3, 1, 1, 1, 1), ref.im2col(x, 3, 3, 1, 1, 1, 1))
        cpu.set_parallel(True)
        assert cpu.parallel_enabled() and conv.IM2COL_PAR_MIN < 1 << 40
    finally:
        cpu.set_parallel(was)


# ---------------------------------------------------------------- im2col / col2im


@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_im2col_col2im(case, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = case
    rng = _rng("conv", case, dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    got = cpu.im2col(x, kh, kw, sh, sw, ph, pw)
    want = ref.im2col(x, kh, kw, sh, sw, ph, pw)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)

    cols = rng.standard_normal(want.shape).astype(dtype)
    got = cpu.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    want = ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    assert got.dtype == dtype and got.shape == (n, c, h, w) and got.flags.c_contiguous
    # same order of summation as the reference: bit-identical
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_im2col_col2im_wide(case, dtype):
    """The wide layout (C*kh*kw, N*OH*OW): the reference's values exactly, col2im_wide summing
    each pixel's taps in col2im's order, and out= written in place."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = case
    rng = _rng("conv-wide", case, dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    want = ref.im2col_wide(x, kh, kw, sh, sw, ph, pw)
    got = cpu.im2col_wide(x, kh, kw, sh, sw, ph, pw)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    buf = np.full(want.shape, np.nan, dtype=dtype)
    assert cpu.im2col_wide(x, kh, kw, sh, sw, ph, pw, out=buf) is buf
    np.testing.assert_array_equal(buf, want)

    cols = rng.standard_normal(want.shape).astype(dtype)
    want = ref.col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    got = cpu.col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    assert got.dtype == dtype and got.shape == (n, c, h, w) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    # the same sums as col2im of the per-sample layout, bit for bit
    blocks = np.ascontiguousarray(cols.reshape(c * kh * kw, n, -1).transpose(1, 0, 2))
    np.testing.assert_array_equal(got, cpu.col2im(blocks, n, c, h, w, kh, kw, sh, sw, ph, pw))
    img = np.full(x.shape, np.nan, dtype=dtype)
    assert cpu.col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=img) is img
    np.testing.assert_array_equal(img, want)
    with pytest.raises(ValueError, match="col2im_wide: out must be"):
        cpu.col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=np.empty((n, c, h, w + 1), dtype))


def test_im2col_col2im_out(dtype):
    """out= writes into the caller's array, gives the same bits, and rejects a wrong buffer."""
    rng = _rng("conv-out", dtype)
    x = rng.standard_normal((3, 2, 7, 6)).astype(dtype)
    want = ref.im2col(x, 3, 3, 2, 1, 1, 1)
    buf = np.full(want.shape, np.nan, dtype=dtype)  # stale contents must be overwritten
    assert cpu.im2col(x, 3, 3, 2, 1, 1, 1, out=buf) is buf
    np.testing.assert_array_equal(buf, want)
    cols = rng.standard_normal(want.shape).astype(dtype)
    img = np.full(x.shape, np.nan, dtype=dtype)
    assert cpu.col2im(cols, 3, 2, 7, 6, 3, 3, 2, 1, 1, 1, out=img) is img
    np.testing.assert_array_equal(img, ref.col2im(cols, 3, 2, 7, 6, 3, 3, 2, 1, 1, 1))
    other = np.float64 if dtype == np.float32 else np.float32
    for bad in (np.empty(want.shape[:-1] + (want.shape[-1] + 1,), dtype), np.empty(want.shape, other),
                np.empty(want.shape[::-1], dtype).T):
        with pytest.raises(ValueError, match="im2col: out must be a C-contiguous"):
            cpu.im2col(x, 3, 3, 2, 1, 1, 1, out=bad)
    with pytest.raises(ValueError, match="col2im: out must be"):
        cpu.col2im(cols, 3, 2, 7, 6, 3, 3, 2, 1, 1, 1, out=np.empty((3, 2, 7, 5), dtype))


@pytest.mark.parametrize("impl", [ref, cpu], ids=["reference", "numba"])
def test_im2col_col2im_bad_geometry(impl):
    """Both backends accept and reject the same geometries, with the same messages."""
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        impl.im2col(x, 3, 3, 0, 1, 0, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        impl.im2col(x, 0, 3, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="padding >= 0"):
        impl.col2im(np.zeros(9, np.float32), 1, 1, 4, 4, 3, 3, 1, 1, -1, 0)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        impl.im2col(x, 5, 3, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        impl.col2im(np.zeros(0, np.float32), 1, 1, 4, 4, 6, 3, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="col2im: cols has 9 elements"):
        impl.col2im(np.zeros(9, np.float32), 1, 1, 4, 4, 3, 3, 1, 1, 0, 0)
    # the smallest legal case: padded image exactly the kernel size -> one output position
    assert impl.im2col(x, 6, 4, 1, 1, 1, 0).shape == (1, 24, 1)


@pytest.mark.parametrize("impl", [ref, cpu], ids=["reference", "numba"])
def test_im2col_col2im_out_rejects(impl):
    """out= must be writeable, and for the numba kernels must not overlap the input."""
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5)
    cols = impl.im2col(x, 3, 3, 1, 1, 0, 0)
    ro = np.empty_like(cols)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="im2col: out is read-only"):
        impl.im2col(x, 3, 3, 1, 1, 0, 0, out=ro)
    img = np.empty_like(x)
    img.flags.writeable = False
    with pytest.raises(ValueError, match="col2im: out is read-only"):
        impl.col2im(cols, 2, 3, 5, 5, 3, 3, 1, 1, 0, 0, out=img)
    if impl is cpu:  # the reference builds its result first, so an overlapping out is fine there
        big = np.zeros(cols.size + x.size)
        with pytest.raises(ValueError, match="col2im: out overlaps the input"):
            cpu.col2im(big[: cols.size].reshape(cols.shape), 2, 3, 5, 5, 3, 3, 1, 1, 0, 0,
                       out=big[cols.size - 1: cols.size - 1 + x.size].reshape(x.shape))
        xs = np.zeros(x.size + cols.size)
        xs[: x.size] = x.ravel()
        with pytest.raises(ValueError, match="im2col: out overlaps the input"):
            cpu.im2col(xs[: x.size].reshape(x.shape), 3, 3, 1, 1, 0, 0, out=xs[1: 1 + cols.size].reshape(cols.shape))


def test_im2col_col2im_non_contiguous(dtype):
    rng = _rng("conv-nc", dtype)
    base = rng.standard_normal((3, 5, 9, 14)).astype(dtype)
    x = base[:, ::2, :, ::2]  # (3, 3, 9, 7), strided view
    assert not x.flags.c_contiguous
    want = ref.im2col(x, 3, 2, 1, 2, 1, 1)
    np.testing.assert_array_equal(cpu.im2col(x, 3, 2, 1, 2, 1, 1), want)
    cols = rng.standard_normal(want.shape).astype(dtype)
    cols_t = np.ascontiguousarray(cols.transpose(0, 2, 1)).transpose(0, 2, 1)  # F-ish view
    assert not cols_t.flags.c_contiguous
    np.testing.assert_array_equal(
        cpu.col2im(cols_t, 3, 3, 9, 7, 3, 2, 1, 2, 1, 1), ref.col2im(cols, 3, 3, 9, 7, 3, 2, 1, 2, 1, 1)
    )


def test_col2im_is_adjoint_of_im2col():
    # <im2col(x), y> == <x, col2im(y)> -- independent of the reference
    rng = _rng("adjoint")
    x = rng.standard_normal((2, 3, 9, 8))
    y = rng.standard_normal(cpu.im2col(x, 3, 4, 2, 1, 1, 2).shape)
    lhs = np.vdot(cpu.im2col(x, 3, 4, 2, 1, 1, 2), y)
    rhs = np.vdot(x, cpu.col2im(y, 2, 3, 9, 8, 3, 4, 2, 1, 1, 2))
    assert lhs == pytest.approx(rhs, rel=1e-12)


# ---------------------------------------------------------------- max pooling


@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_maxpool_forward_backward_distinct(case, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = case
    rng = _rng("pool", case, dtype)
    x = _distinct(rng, (n, c, h, w), dtype)
    out, idx = cpu.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    rout, ridx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    assert out.dtype == dtype and idx.dtype == np.int64
    assert out.shape == (n, c, _out(h, kh, sh, ph), _out(w, kw, sw, pw))
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(out, rout)

    # backward: routing (and, with overlapping windows, the sums) bit-identical
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = cpu.maxpool2d_backward(dout, idx, h, w)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx, ref.maxpool2d_backward(dout, ridx, h, w))

    # unpool forward places x at idx (the last write wins on a repeated index)
    up = cpu.maxunpool2d_forward(dout, idx, h, w)
    assert up.dtype == dtype
    np.testing.assert_array_equal(up, ref.maxunpool2d_forward(dout, ridx, h, w))
    # unpool backward gathers
    g = rng.standard_normal((n, c, h, w)).astype(dtype)
    np.testing.assert_array_equal(cpu.maxunpool2d_backward(g, idx), ref.maxunpool2d_backward(g, ridx))


def test_maxpool_ties_and_infinities(dtype):
    """Many equal values (and -inf next to the -inf padding): same first-max index."""
    rng = _rng("ties", dtype)
    for case in POOL_CASES[:7]:
        n, c, h, w, kh, kw, sh, sw, ph, pw = case
        x = rng.choice(np.array([-np.inf, -1.0, 0.0, 2.0], dtype=dtype), size=(n, c, h, w))
        out, idx = cpu.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        rout, ridx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(out, rout)
    # all-equal input: the first window position every time
    x = np.full((1, 1, 4, 4), 3.0, dtype=dtype)
    _, idx = cpu.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])


def test_maxpool_nan(dtype):
    """A NaN is the maximum of its window (the first NaN if several), as in the reference."""
    rng = _rng("nan", dtype)
    for case in POOL_CASES[:7]:
        n, c, h, w, kh, kw, sh, sw, ph, pw = case
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        x[rng.random(x.shape) < 0.15] = np.nan
        out, idx = cpu.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        rout, ridx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(out, rout)  # NaN == NaN here
        assert np.isnan(out).any()
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], dtype=dtype)
    out, idx = cpu.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_all_padding_window(dtype):
    # padding > kernel / 2 (PyTorch refuses it; the reference allows it): windows
    # lying wholly in the padding give -inf and the first padding position
    x = _distinct(_rng("allpad"), (2, 2, 3, 4), dtype)
    for args in [(1, 1, 1, 1, 1, 1), (2, 1, 3, 2, 2, 1)]:
        out, idx = cpu.maxpool2d_forward(x, *args)
        rout, ridx = ref.maxpool2d_forward(x, *args)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(out, rout)
        assert np.isneginf(out).any() and (idx < 0).any()


def test_pool_non_contiguous_inputs(dtype):
    rng = _rng("pool-nc", dtype)
    base = _distinct(rng, (2, 6, 10, 16), dtype)
    x = base[:, ::2, :, ::2]
    out, idx = cpu.maxpool2d_forward(x, 3, 3, 2, 2, 1, 1)
    rout, ridx = ref.maxpool2d_forward(x, 3, 3, 2, 2, 1, 1)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(out, rout)
    dbig = rng.standard_normal((2, 3, 5, 8)).astype(dtype)
    dout = dbig[..., ::2]  # (2, 3, 5, 4), strided
    idx_nc = np.asfortranarray(idx)
    np.testing.assert_array_equal(
        cpu.maxpool2d_backward(dout, idx_nc, 10, 8), ref.maxpool2d_backward(dout, ridx, 10, 8)
    )
    np.testing.assert_array_equal(
        cpu.maxunpool2d_forward(dout, idx_nc, 10, 8), ref.maxunpool2d_forward(dout, ridx, 10, 8)
    )


def test_pool_bad_indices_raise():
    dout = np.ones((1, 1, 2, 2), np.float32)
    bad = np.array([[[[0, 1], [2, 16]]]], dtype=np.int64)  # plane of 4x4 = 16
    with pytest.raises(IndexError):
        cpu.maxpool2d_backward(dout, bad, 4, 4)
    with pytest.raises(IndexError):
        cpu.maxpool2d_backward(dout, -bad, 4, 4)
    with pytest.raises(IndexError):
        cpu.maxunpool2d_forward(dout, bad, 4, 4)
    with pytest.raises(IndexError):
        cpu.maxunpool2d_backward(np.ones((1, 1, 4, 4), np.float32), bad)
    # negative indices wrap once, as NumPy's indexing does in the reference
    neg = np.array([[[[-1, -16], [3, 5]]]], dtype=np.int64)
    np.testing.assert_array_equal(
        cpu.maxunpool2d_forward(dout * 2, neg, 4, 4), ref.maxunpool2d_forward(dout * 2, neg, 4, 4)
    )


def test_maxpool_zero_stride_is_a_value_error():
    x = np.zeros((1, 1, 4, 4), np.float32)
    for impl in (ref, cpu):
        with pytest.raises(ValueError, match="strides must be positive"):
            impl.maxpool2d_forward(x, 2, 2, 0, 1, 0, 0)


def test_reference_out_must_match_the_input_array_library():
    """The reference (also the CUDA wrappers' fallback) refuses an out= of another
    array library than its result with a ValueError, not a library TypeError."""

    class DeviceArray(np.ndarray):  # stands in for a CuPy array: only the module name matters
        pass

    DeviceArray.__module__ = "cupy._core.core"
    result = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="im2col: out must be a cupy array like the input, got a numpy"):
        ref.check_out("im2col", np.empty((2, 3), np.float32), (2, 3), np.float32, like=result.view(DeviceArray))
    ref.check_out("im2col", np.empty((2, 3), np.float32), (2, 3), np.float32, like=result)  # same library: fine
