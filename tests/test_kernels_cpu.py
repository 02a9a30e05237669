"""The Numba CPU kernels (``minicnn.kernels.cpu``) against the reference kernels.

Every kernel is run in its serial compiled variant for float32 and float64
and in its parallel variant for float32 (the ``dtype`` fixture moves the size
thresholds so the wrapper picks the variant wanted), on a fixed list of
hand-picked and seeded-random shapes: odd sizes, batch 1, padding, stride >
kernel, overlapping pooling windows, non-contiguous inputs, ties, NaN, +-inf.
Pooling indices and values, pool-backward/unpool routing (and sums),
im2col/col2im, ReLU/leaky ReLU, SGD and Adam are compared exactly
(np.array_equal); ELU forward and GELU to
float rounding. No timing assertions here: see the report for timings.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from minicnn.kernels import cpu
from minicnn.kernels import reference as ref
from minicnn.kernels.cpu import activations, batchnorm, conv, optim, pooling

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-6}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}

_MODULES = (conv, pooling, activations, optim, batchnorm)


# (compiled variant, dtype). Every variant is compiled per dtype on first use,
# which dominates this file's cold-cache run time; the parallel variants run
# the same source as the serial ones (only the outer loop is split between
# threads), so they are checked for float32 and the serial ones for both.
MODES = [("serial", np.float32), ("serial", np.float64), ("parallel", np.float32)]


def _force(monkeypatch, variant):
    value = 0 if variant == "parallel" else 1 << 62
    for mod in _MODULES:
        for name in dir(mod):
            if name.endswith("_PAR_MIN"):
                monkeypatch.setattr(mod, name, value)


@pytest.fixture(params=MODES, ids=[f"{v}-{np.dtype(d).name}" for v, d in MODES])
def dtype(request, monkeypatch):
    """The dtype to test, with every wrapper forced onto one compiled variant."""
    variant, dt = request.param
    _force(monkeypatch, variant)
    return dt


@pytest.fixture
def serial_f32(monkeypatch):
    _force(monkeypatch, "serial")
    return np.float32


def _rng(*key):
    """A generator seeded from ``key`` reproducibly (``hash`` is salted per process)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _distinct(rng, shape, dtype):
    """Distinct, exactly representable values (negatives included), shuffled."""
    size = int(np.prod(shape))
    return (rng.permutation(size).astype(dtype) - size // 3).reshape(shape) * dtype(0.5)


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


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


# ---------------------------------------------------------------- activations


def _act_input(rng, dtype, shape=(3, 5, 7, 6)):
    x = rng.standard_normal(shape).astype(dtype) * 3
    flat = x.reshape(-1)
    flat[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 40.0]
    return x


def _check(got, want, dtype, exact):
    assert got.dtype == want.dtype and got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=ATOL[dtype])


def test_relu_leaky(dtype):
    rng = _rng("relu", dtype)
    x = _act_input(rng, dtype)
    dy = _act_input(rng, dtype)
    y, m = cpu.relu_forward(x)
    ry, rm = ref.relu_forward(x)
    assert m.dtype == np.bool_
    _check(y, ry, dtype, True)
    _check(m, rm, dtype, True)
    _check(cpu.relu_backward(dy, m), ref.relu_backward(dy, rm), dtype, True)
    for slope in (0.01, 0.3):
        y, m = cpu.leaky_relu_forward(x, slope)
        ry, rm = ref.leaky_relu_forward(x, slope)
        _check(y, ry, dtype, True)
        _check(m, rm, dtype, True)
        _check(cpu.leaky_relu_backward(dy, m, slope), ref.leaky_relu_backward(dy, rm, slope), dtype, True)
    # zeros of both signs and NaN: the same bits as np.maximum(x, 0) (-0.0 -> +0.0)
    z = np.array([-0.0, 0.0, np.nan, -np.inf, -1.0, 2.0], dtype=dtype)
    assert cpu.relu_forward(z)[0].tobytes() == ref.relu_forward(z)[0].tobytes()
    # non-contiguous inputs and a 2-D (fully connected) shape
    xt = x[:, :, ::2].transpose(0, 1, 3, 2)
    _check(cpu.relu_forward(xt)[0], ref.relu_forward(xt)[0], dtype, True)
    mt = (dy > 0)[:, :, ::2].transpose(0, 1, 3, 2)
    _check(cpu.relu_backward(xt, mt), ref.relu_backward(xt, mt), dtype, True)


def test_elementwise_other_ndims(serial_f32):
    # kernels are compiled per ndim: check the fully-connected (2-D) and a 3-D shape once
    rng = _rng("ndims")
    for shape in [(7, 13), (3, 5, 7)]:
        x = _act_input(rng, np.float32, shape)
        dy = rng.standard_normal(shape).astype(np.float32)
        y, m = cpu.relu_forward(x)
        ry, rm = ref.relu_forward(x)
        _check(y, ry, np.float32, True)
        _check(m, rm, np.float32, True)
        _check(cpu.relu_backward(dy, m), ref.relu_backward(dy, rm), np.float32, True)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0 in the reference
def test_elu(dtype):
    rng = _rng("elu", dtype)
    x = _act_input(rng, dtype)
    dy = _act_input(rng, dtype)
    for alpha in (1.0, 0.4):
        y = cpu.elu_forward(x, alpha)
        ry = ref.elu_forward(x, alpha)
        _check(y, ry, dtype, False)
        _check(cpu.elu_backward(dy, ry, alpha), ref.elu_backward(dy, ry, alpha), dtype, True)


def _check_vs64(got, ref_fn, args, dtype):
    """Within float rounding of the reference evaluated in float64 (then cast), and
    close to the reference in ``dtype`` (whose float32 intermediates lose up to
    ~|x| * 2**-22 to cancellation)."""
    want64 = ref_fn(*[a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args])
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want64.astype(dtype), rtol=RTOL[dtype], atol=ATOL[dtype])
    loose = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref_fn(*args), rtol=RTOL[dtype], atol=loose)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(dtype, approximate):
    rng = _rng("gelu", dtype, approximate)
    x = _act_input(rng, dtype)
    x.reshape(-1)[2:4] = 0  # no infinities: inf * 0 forms make the comparison moot
    dy = rng.standard_normal(x.shape).astype(dtype)
    _check_vs64(cpu.gelu_forward(x, approximate), ref.gelu_forward, (x, approximate), dtype)
    _check_vs64(cpu.gelu_backward(dy, x, approximate), ref.gelu_backward, (dy, x, approximate), dtype)


@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_gelu_float32_is_accurate_in_both_tails(monkeypatch, variant):
    """float32 exact GELU (no libm erf, see kernels/cpu/activations.py) against x * Phi(x)
    with Phi from math.erfc in float64, which does not cancel in the negative tail: within
    4e-7 relative wherever the float32 result is a normal number, forward and backward.
    (float64 keeps math.erf, whose 1 + erf cancels in that tail.)"""
    import math

    _force(monkeypatch, variant)
    x = np.concatenate([np.linspace(-20, 20, 40_001), _rng("gelu-tails").standard_normal(20_000) * 3])
    x = x.astype(np.float32)
    v = x.astype(np.float64)
    phi = np.array([0.5 * math.erfc(-t / math.sqrt(2)) for t in v])
    pdf = np.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    # the derivative's two terms cancel near its zero (x ~ -0.75): relative to their magnitudes there
    for got, want, scale in [(cpu.gelu_forward(x), v * phi, np.abs(v * phi)),
                             (cpu.gelu_backward(np.ones_like(x), x), phi + v * pdf, phi + np.abs(v) * pdf)]:
        assert got.dtype == np.float32
        normal = np.abs(want) > np.finfo(np.float32).tiny
        rel = np.abs(got[normal] - want[normal]) / scale[normal]
        assert rel.max() < 4e-7, (rel.max(), x[normal][rel.argmax()])
        assert np.all(np.abs(got[~normal]) <= 2 * np.finfo(np.float32).tiny)


# ---------------------------------------------------------------- optimisers

SGD_CONFIGS = [
    # lr, momentum, dampening, nesterov, weight_decay
    (0.1, 0.0, 0.0, False, 0.0),
    (0.05, 0.0, 0.0, False, 1e-3),
    (0.01, 0.9, 0.0, False, 0.0),
    (0.01, 0.9, 0.1, False, 5e-4),
    (0.02, 0.8, 0.0, True, 1e-2),
]


@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[str(c) for c in SGD_CONFIGS])
def test_sgd_update(cfg, dtype):
    lr, momentum, dampening, nesterov, wd = cfg
    rng = _rng("sgd", cfg, dtype)
    p = rng.standard_normal((6, 21)).astype(dtype)
    rp = p.copy()
    buf = np.zeros_like(p) if momentum else None
    rbuf = np.zeros_like(p) if momentum else None
    for step in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        cpu.sgd_update(p, g, buf, lr, momentum, dampening, nesterov, wd, step == 0)
        ref.sgd_update(rp, g, rbuf, lr, momentum, dampening, nesterov, wd, step == 0)
        np.testing.assert_array_equal(p, rp)
        if momentum:
            np.testing.assert_array_equal(buf, rbuf)
    assert p.dtype == dtype


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_adam_update(wd, dtype):
    rng = _rng("adam", wd, dtype)
    p = rng.standard_normal((10, 9)).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    rp, rm, rv = p.copy(), m.copy(), v.copy()
    for step in range(1, 4):
        g = rng.standard_normal(p.shape).astype(dtype)
        cpu.adam_update(p, g, m, v, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        ref.adam_update(rp, g, rm, rv, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        np.testing.assert_array_equal(m, rm)
        np.testing.assert_array_equal(v, rv)
        np.testing.assert_array_equal(p, rp)
    assert p.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_optim_non_contiguous_falls_back_in_place(dtype):
    rng = _rng("optim-nc", dtype)
    base = rng.standard_normal((8, 6)).astype(dtype)
    rbase = base.copy()
    g = rng.standard_normal((8, 6)).astype(dtype)[:, ::2]
    buf, rbuf = np.zeros((8, 3), dtype), np.zeros((8, 3), dtype)
    cpu.sgd_update(base[:, ::2], g, buf, 0.1, 0.9, 0.0, False, 0.0, True)
    ref.sgd_update(rbase[:, ::2], g, rbuf, 0.1, 0.9, 0.0, False, 0.0, True)
    np.testing.assert_array_equal(base, rbase)  # the update landed in the view
    m, v, rm, rv = (np.zeros((8, 3), dtype) for _ in range(4))
    cpu.adam_update(base[:, ::2], g, m, v, 1, 1e-2, 0.9, 0.999, 1e-8, 0.0)
    ref.adam_update(rbase[:, ::2], g, rm, rv, 1, 1e-2, 0.9, 0.999, 1e-8, 0.0)
    np.testing.assert_allclose(base, rbase, rtol=RTOL[dtype])


# ---------------------------------------------------------------- dropout, batch norm


@pytest.mark.parametrize("p", [0.1, 0.5, 0.7])  # float32(0.7) < 0.7: u == float32(p) must count as kept
def test_dropout_forward(dtype, p):
    rng = _rng("dropout", dtype, p)
    for shape, ushape in [((4, 6, 28, 28), (4, 6, 28, 28)), ((4, 6, 28, 28), (4, 6, 1, 1)), ((5, 50), (5, 50)),
                          ((3, 7), (3, 1)), ((2, 3, 4, 5), (1, 3, 1, 1))]:  # the last: reference fallback
        x = _act_input(rng, dtype, shape)
        u = rng.random(ushape, dtype=np.float32)
        u.reshape(-1)[::7] = np.float32(p)  # ties with p, compared in float32 as NumPy does
        y, mask = cpu.dropout_forward(x, u, p)
        with np.errstate(invalid="ignore"):  # inf * 0 in a dropped unit is NaN, in both
            ry, rmask = ref.dropout_forward(x, u, p)
        _check(y, ry, dtype, True)
        _check(mask, rmask, dtype, True)
        assert mask.shape == ushape and set(np.unique(mask)) <= {0, dtype(1 / (1 - p))}


def test_dropout_forward_falls_back_where_numpy_would_promote():
    """Inputs the kernel does not cover give the reference's results: a NumPy
    float64 p against float32 draws (compared in float64), integer draws,
    float16, 0-d arrays."""
    x = np.ones(4, np.float32)
    u = np.full(4, np.float32(0.3))
    p = np.float64(float(np.float32(0.3)) + 1e-12)  # above float32(0.3) only in float64
    for args in [(x, u, p), (x, np.array([0, 1, 2, 3]), 0.5), (x.astype(np.float16), u.astype(np.float16), 0.5),
                 (np.array(2.0), np.array(0.9), 0.5)]:
        got, want = cpu.dropout_forward(*args), ref.dropout_forward(*args)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
            np.testing.assert_array_equal(a, b)
    assert not cpu.dropout_forward(x, u, p)[0].any()  # u < p in float64: every unit dropped


def test_batchnorm_mixed_dtypes_follow_the_reference():
    rng = _rng("bn-mixed")
    x = _bn_input(rng, (4, 3, 5), np.float32)
    g, b = np.ones(3), np.zeros(3)  # float64 parameters, float32 input
    got, want = cpu.batchnorm_forward(x, g, b, 1e-5), ref.batchnorm_forward(x, g, b, 1e-5)
    assert [a.dtype for a in got] == [a.dtype for a in want]
    dy = rng.standard_normal(x.shape).astype(np.float32)
    got, want = cpu.batchnorm_backward(dy, want[3], want[4], g), ref.batchnorm_backward(dy, want[3], want[4], g)
    assert [a.dtype for a in got] == [a.dtype for a in want] and got[0].dtype == np.float64
    x16 = x.astype(np.float16)
    assert cpu.batchnorm_forward(x16, None, None, 1e-3)[0].dtype == np.float16
    with pytest.raises(ValueError, match="gamma and beta must both be given"):
        cpu.batchnorm_forward(x, np.ones(3, np.float32), None, 1e-5)


def _bn_input(rng, shape, dtype):
    return (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)


@pytest.mark.parametrize("shape", [(6, 3), (2, 4, 7), (3, 5, 6, 7), (16, 8, 12, 12), (1, 2, 1, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_forward_backward(dtype, shape, affine):
    """Equal to the reference to float rounding (the kernels sum in float64 and
    the reference pairwise in the array's dtype); dtypes and shapes exactly."""
    rng = _rng("bn", dtype, shape, affine)
    x = _bn_input(rng, shape, dtype)
    gamma = rng.uniform(0.5, 1.5, shape[1]).astype(dtype) if affine else None
    beta = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    got = cpu.batchnorm_forward(x, gamma, beta, 1e-5)
    want = ref.batchnorm_forward(x, gamma, beta, 1e-5)
    tol = dict(rtol=1e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for name, a, b in zip(["y", "mean", "var", "xhat", "inv_std"], got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, err_msg=name, **tol)
    dy = rng.standard_normal(shape).astype(dtype)
    xhat, inv_std = want[3], want[4]
    got = cpu.batchnorm_backward(dy, xhat, inv_std, gamma)
    want = ref.batchnorm_backward(dy, xhat, inv_std, gamma)
    m = x.size // shape[1]
    for name, a, b in zip(["dx", "dgamma", "dbeta"], got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # sums of m terms: the reference's float32 rounding grows with m
        scale = np.abs(b).max() + 1
        np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale * max(1.0, np.sqrt(m)),
                                   err_msg=name)


def test_batchnorm_statistics_are_two_pass():
    """Values with a large common offset: a one-pass E[x^2] - mean^2 would lose the
    variance to cancellation; the two-pass kernel keeps it (float64 sums)."""
    x = (np.float32(1e4) + np.arange(24, dtype=np.float32).reshape(2, 3, 4) % 5).astype(np.float32)
    _, mean, var, _, _ = cpu.batchnorm_forward(x, None, None, 0.0)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-7)


def test_maxpool_zero_stride_is_a_value_error():
    x = np.zeros((1, 1, 4, 4), np.float32)
    for impl in (ref, cpu):
        with pytest.raises(ValueError, match="strides must be positive"):
            impl.maxpool2d_forward(x, 2, 2, 0, 1, 0, 0)


def test_batchnorm_bad_shapes():
    with pytest.raises(ValueError, match="gamma has 2 values, expected one per channel \\(3\\)"):
        cpu.batchnorm_forward(np.zeros((2, 3, 4), np.float32), np.ones(2, np.float32), np.zeros(2, np.float32), 1e-5)
    with pytest.raises(ValueError, match="must be one \\(N, C, ...\\) shape"):
        cpu.batchnorm_backward(np.zeros((2, 3)), np.zeros((2, 4)), np.ones(3), None)


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
