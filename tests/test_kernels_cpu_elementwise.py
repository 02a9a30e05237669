"""The Numba CPU kernels (``minicnn.kernels.cpu``) against the reference kernels:
activations, SGD and Adam, dropout and batch norm (the table, im2col/col2im and
pooling: ``test_kernels_cpu.py``; shared fixtures: ``cpu_kernel_helpers.py``).

Serial float32 and float64 and parallel float32 variants (the ``dtype`` fixture),
inputs with 0, -0, NaN and +-inf. ReLU/leaky ReLU, SGD, Adam and dropout are
compared exactly (np.array_equal); ELU forward, GELU and batch norm to float
rounding. No timing assertions here.
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_kernel_helpers import ATOL, DTYPES, RTOL, _force, _rng, dtype, serial_f32  # noqa: F401 (fixtures)

from minicnn.kernels import cpu
from minicnn.kernels import reference as ref

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


@pytest.mark.parametrize("shape", [(6, 3), (2, 4, 7), (3, 5, 6, 7), (16, 8, 12, 12)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_forward_eval_equals_the_reference_bit_for_bit(dtype, shape, affine):
    """Evaluation mode with given statistics: the kernel forms every value with the
    reference's operations in the array's dtype, so y and inv_std are identical; y is a new
    array (x is what the layer keeps for backward)."""
    rng = _rng("bn-eval", dtype, shape, affine)
    x = _bn_input(rng, shape, dtype)
    c = shape[1]
    mean = rng.standard_normal(c).astype(dtype)
    var = rng.uniform(0.1, 3.0, c).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    got = cpu.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5)
    want = ref.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5)
    assert len(got) == len(want) == 2
    for name, a, b in zip(["y", "inv_std"], got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert not np.shares_memory(got[0], x)


def test_batchnorm_forward_eval_mixed_dtypes_and_bad_input():
    rng = _rng("bn-eval-mixed")
    x = _bn_input(rng, (4, 3, 5), np.float32)
    ones, zeros = np.ones(3), np.zeros(3)  # float64 statistics with a float32 input: the reference
    got = cpu.batchnorm_forward_eval(x, ones, zeros, zeros, ones, 1e-5)
    want = ref.batchnorm_forward_eval(x, ones, zeros, zeros, ones, 1e-5)
    assert [a.dtype for a in got] == [a.dtype for a in want]
    with pytest.raises(ValueError, match="mean has 2 values, expected one per channel \\(3\\)"):
        cpu.batchnorm_forward_eval(x, None, None, np.zeros(2, np.float32), np.ones(3, np.float32), 1e-5)
    with pytest.raises(ValueError, match="gamma and beta must both be given"):
        cpu.batchnorm_forward_eval(x, np.ones(3, np.float32), None, zeros.astype(np.float32),
                                   ones.astype(np.float32), 1e-5)


def test_batchnorm_statistics_are_two_pass():
    """Values with a large common offset: a one-pass E[x^2] - mean^2 would lose the
    variance to cancellation; the two-pass kernel keeps it (float64 sums)."""
    x = (np.float32(1e4) + np.arange(24, dtype=np.float32).reshape(2, 3, 4) % 5).astype(np.float32)
    _, mean, var, _, _ = cpu.batchnorm_forward(x, None, None, 0.0)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-7)


def test_batchnorm_bad_shapes():
    with pytest.raises(ValueError, match="gamma has 2 values, expected one per channel \\(3\\)"):
        cpu.batchnorm_forward(np.zeros((2, 3, 4), np.float32), np.ones(2, np.float32), np.zeros(2, np.float32), 1e-5)
    with pytest.raises(ValueError, match="must be one \\(N, C, ...\\) shape"):
        cpu.batchnorm_backward(np.zeros((2, 3)), np.zeros((2, 4)), np.ones(3), None)
