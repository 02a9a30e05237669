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
