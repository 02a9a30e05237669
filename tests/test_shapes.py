"""Property tests: output sizes of conv/pool/transpose-conv match the formula and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn import nn

try:
    import torch
except ImportError:  # the formula checks still run
    torch = None

dims = st.integers(1, 12)
small = st.integers(1, 4)


@settings(max_examples=40, deadline=None)
@given(h=dims, w=dims, k=small, s=small, p=st.integers(0, 2), c=st.integers(1, 3), o=st.integers(1, 3))
def test_conv2d_output_size(h, w, k, s, p, c, o):
    if h + 2 * p < k or w + 2 * p < k:
        with pytest.raises(ValueError, match="smaller than the kernel"):
            nn.Conv2d(c, o, k, s, p)(mc.asarray(np.zeros((1, c, h, w), np.float32)))
        return
    y = nn.Conv2d(c, o, k, s, p)(mc.asarray(np.zeros((2, c, h, w), np.float32)))
    assert y.shape == (2, o, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if torch is not None:
        assert tuple(torch.nn.Conv2d(c, o, k, s, p)(torch.zeros(2, c, h, w)).shape) == y.shape


@settings(max_examples=40, deadline=None)
@given(h=dims, w=dims, k=small, s=small, p=st.integers(0, 2), op=st.integers(0, 3))
def test_conv_transpose2d_output_size(h, w, k, s, p, op):
    if op >= s:
        with pytest.raises(ValueError, match="output_padding"):
            nn.ConvTranspose2d(2, 3, k, s, p, op)
        return
    expect = ((h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op)
    m = nn.ConvTranspose2d(2, 3, k, s, p, op)
    if min(expect) < 1:
        with pytest.raises(ValueError, match="non-positive output size"):
            m(mc.asarray(np.zeros((1, 2, h, w), np.float32)))
        return
    y = m(mc.asarray(np.zeros((1, 2, h, w), np.float32)))
    assert y.shape[2:] == expect
    if torch is not None:
        t = torch.nn.ConvTranspose2d(2, 3, k, s, p, op)(torch.zeros(1, 2, h, w))
        assert tuple(t.shape) == y.shape


@settings(max_examples=40, deadline=None)
@given(h=dims, w=dims, k=small, s=small, p=st.integers(0, 2))
def test_maxpool_output_size(h, w, k, s, p):
    if 2 * p > k:
        with pytest.raises(ValueError, match="padding"):
            nn.MaxPool2d(k, s, p)
        return
    if h + 2 * p < k or w + 2 * p < k:
        return
    y = nn.MaxPool2d(k, s, p)(mc.asarray(np.zeros((1, 2, h, w), np.float32)))
    assert y.shape[2:] == ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if torch is not None:
        assert tuple(torch.nn.functional.max_pool2d(torch.zeros(1, 2, h, w), k, s, p).shape) == y.shape


@pytest.mark.parametrize("name", ["tutorial", "deconv", "net2", "mnist"])
def test_empty_batch_forward_backward(name, cpu_backend):
    """A batch of 0 images goes through forward and backward like PyTorch's:
    outputs and dx of batch 0, parameter gradients all zero (nothing summed)."""
    from minicnn.models import MODELS

    model = MODELS[name]()
    shape = (0, 1, 28, 28) if name == "mnist" else (0, 3, 32, 32)
    x = mc.asarray(np.zeros(shape, np.float32))
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    assert [o.shape[0] for o in outs] == [0] * len(outs)
    model.zero_grad()
    dx = model.backward(*[np.zeros_like(o) for o in outs])
    assert dx.shape == shape
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.data.shape, pname
        assert not np.any(np.asarray(p.grad)), pname


@pytest.mark.usefixtures("cpu_backend")
def test_maxunpool2d_default_size_counts_padding():
    """(H - 1) * stride - 2 * padding + kernel: a 3x3 map unpooled by MaxUnpool2d(3, 2, 1) is 5x5."""
    x = mc.asarray(np.ones((1, 2, 3, 3), dtype=np.float32))
    idx = mc.asarray(np.zeros((1, 2, 3, 3), dtype=np.int64))
    assert tuple(nn.MaxUnpool2d(3, 2, 1)(x, idx).shape) == (1, 2, 5, 5)
    assert tuple(nn.MaxUnpool2d(2)(x, idx).shape) == (1, 2, 6, 6)


@pytest.mark.usefixtures("cpu_backend")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_leaky_relu_gradients_at_exactly_zero(dtype):
    """PyTorch's rule at the kink: ReLU passes no gradient at 0 (or -0.0), LeakyReLU the slope."""
    x = mc.asarray(np.array([[0.0, -0.0, 2.0, -3.0]], dtype=dtype))
    ones = mc.asarray(np.ones((1, 4), dtype=dtype))
    relu, leaky = nn.ReLU(), nn.LeakyReLU(0.25)
    relu(x)
    np.testing.assert_array_equal(mc.to_numpy(relu.backward(ones)), [[0, 0, 1, 0]])
    leaky(x)
    np.testing.assert_array_equal(mc.to_numpy(leaky.backward(ones)), [[0.25, 0.25, 1, 0.25]])
