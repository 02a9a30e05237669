"""AvgPool2d and AdaptiveAvgPool2d: finite-difference gradient checks, float64 PyTorch
parity (forward and input gradient), the numpy and numba backends agreeing, and the
argument checks. Runs under every CPU backend."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.nn.pool import adaptive_pool_matrix

from conftest import assert_close, gradcheck

pytestmark = pytest.mark.usefixtures("cpu_backend", "float64")

AVG_CASES = [
    # (N, C, H, W, kernel, stride, padding)
    (2, 3, 6, 6, 2, None, 0),
    (1, 2, 7, 5, 3, 2, 1),                   # padding: zeros count in the mean by default
    (2, 1, 5, 7, 3, 1, 0),                   # overlapping windows: the gradients add up
    (1, 2, 9, 8, (3, 2), (2, 1), (1, 1)),
    (2, 2, 5, 5, 4, 3, 2),
]
ADAPTIVE_CASES = [
    # (N, C, H, W, output_size)
    (2, 3, 8, 8, 1),                         # the global average pool of ResNet
    (1, 2, 7, 5, 3),                         # bins of unequal size that overlap
    (2, 2, 6, 9, (2, 4)),
    (1, 3, 5, 4, (None, 2)),                 # None keeps that input size
    (1, 1, 3, 3, 5),                         # more outputs than inputs: bins repeat pixels
]


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avgpool2d_gradcheck(case, count_include_pad):
    n, c, h, w, k, s, p = case
    x = np.random.default_rng(1).standard_normal((n, c, h, w))
    gradcheck(nn.AvgPool2d(k, s, p, count_include_pad=count_include_pad), [x])


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_avgpool2d_gradcheck(case):
    n, c, h, w, size = case
    x = np.random.default_rng(2).standard_normal((n, c, h, w))
    gradcheck(nn.AdaptiveAvgPool2d(size), [x])


def _torch_parity(ours, theirs, x):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")
    y = ours(mc.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    assert_close(y, ty, "forward")
    r = np.random.default_rng(3).standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(r))
    assert_close(ours.backward(mc.asarray(r)), tx.grad, "input gradient")


@pytest.mark.torch
@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avgpool2d_matches_torch(case, count_include_pad):
    torch = pytest.importorskip("torch")
    n, c, h, w, k, s, p = case
    x = np.random.default_rng(4).standard_normal((n, c, h, w))
    _torch_parity(nn.AvgPool2d(k, s, p, count_include_pad=count_include_pad),
                  torch.nn.AvgPool2d(k, s, p, count_include_pad=count_include_pad), x)


@pytest.mark.torch
def test_avgpool2d_divisor_override_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 7))
    _torch_parity(nn.AvgPool2d(3, 2, 1, divisor_override=5), torch.nn.AvgPool2d(3, 2, 1, divisor_override=5), x)


@pytest.mark.torch
@pytest.mark.parametrize("case", ADAPTIVE_CASES + [(2, 4, 32, 32, 1), (1, 2, 10, 7, (4, 3))])
def test_adaptive_avgpool2d_matches_torch(case):
    torch = pytest.importorskip("torch")
    n, c, h, w, size = case
    x = np.random.default_rng(6).standard_normal((n, c, h, w))
    _torch_parity(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), x)


def test_global_average_pool_is_the_channel_mean():
    x = np.random.default_rng(7).standard_normal((3, 4, 5, 6))
    m = nn.AdaptiveAvgPool2d(1)
    np.testing.assert_allclose(mc.to_numpy(m(mc.asarray(x))), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    dx = mc.to_numpy(m.backward(mc.asarray(np.ones((3, 4, 1, 1)))))
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 30), rtol=1e-12)


def test_adaptive_pool_matrix_uses_pytorch_bins():
    # 5 -> 3: bins [0, 2), [1, 4), [3, 5) (start = floor(i*5/3), end = ceil((i+1)*5/3))
    p = adaptive_pool_matrix(5, 3, np.float64)
    expected = np.array([[1 / 2, 1 / 2, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 1 / 2, 1 / 2]])
    np.testing.assert_allclose(p, expected)
    np.testing.assert_allclose(adaptive_pool_matrix(4, 1, np.float64), np.full((1, 4), 0.25))


def test_float32_in_float32_out():
    x = mc.asarray(np.random.default_rng(8).standard_normal((2, 3, 6, 6)).astype(np.float32))
    for m in (nn.AvgPool2d(2), nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.AdaptiveAvgPool2d(1)):
        y = m(x)
        assert y.dtype == np.float32 and m.backward(mc.asarray(np.ones(y.shape, np.float32))).dtype == np.float32


def test_numpy_and_numba_agree():
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    x = np.random.default_rng(9).standard_normal((4, 3, 9, 9))
    r = {}
    for name in ("numpy", "numba"):
        prev = mc.backend_name()
        mc.set_backend(name)
        try:
            outs = []
            for m in (nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(2), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
                      nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((4, 3))):
                y = m(mc.asarray(x))
                outs += [mc.to_numpy(y), mc.to_numpy(m.backward(mc.asarray(np.cos(mc.to_numpy(y)))))]
            r[name] = outs
        finally:
            mc.set_backend(prev)
    for a, b in zip(r["numpy"], r["numba"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="ceil_mode"):
        nn.AvgPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="padding"):
        nn.AvgPool2d(2, padding=2)
    with pytest.raises(ValueError, match="divisor_override"):
        nn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ValueError, match="smaller than the window"):
        nn.AvgPool2d(5)(mc.asarray(np.zeros((1, 1, 3, 3))))
    with pytest.raises(ValueError, match="output_size"):
        nn.AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.AdaptiveAvgPool2d(1)(mc.asarray(np.zeros((2, 3))))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.AvgPool2d(2).backward(mc.asarray(np.zeros((1, 1, 1, 1))))
    assert "count_include_pad=False" in repr(nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
