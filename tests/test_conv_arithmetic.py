"""Report B, task 1: a convolution worked by hand.

A 3x3 Sobel-x kernel, padding 1, no bias, on a 3x5 image (one channel, N = 1).
Conv2d computes a cross-correlation, as PyTorch does: out[i, j] =
sum_{u, v} w[u, v] * x_pad[i + u, j + v] (the kernel is not flipped). The
expected map is the report's hand computation; a plain loop recomputes it here
as well, so a typo in either would show. Runs on every CPU backend, in float64
and in float32 (every value is a small integer: exact in both).
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn

IMAGE = np.array([[1, 0, 2, 3, 1],
                  [3, 2, 0, 7, 0],
                  [0, 6, 1, 1, 4]], dtype=np.float64)
SOBEL_X = np.array([[-1, 0, 1],
                    [-2, 0, 2],
                    [-1, 0, 1]], dtype=np.float64)
REPORT = np.array([[2, -1, 11, -2, -13],
                   [10, -4, 8, 2, -18],
                   [14, -1, -5, 6, -9]], dtype=np.float64)


def cross_correlate(x, w, pad):
    """The definition, one output pixel at a time: zero-pad x, slide w without flipping it."""
    xp = np.pad(x, pad)
    kh, kw = w.shape
    out = np.zeros((xp.shape[0] - kh + 1, xp.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(w[u, v] * xp[i + u, j + v] for u in range(kh) for v in range(kw))
    return out


def test_report_matches_the_definition():
    np.testing.assert_array_equal(cross_correlate(IMAGE, SOBEL_X, 1), REPORT)
    # a convolution proper (kernel flipped) differs: the flip negates Sobel-x, so the test can tell them apart
    np.testing.assert_array_equal(cross_correlate(IMAGE, SOBEL_X[::-1, ::-1], 1), -REPORT)


@pytest.mark.usefixtures("cpu_backend")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_gives_the_report_map(dtype):
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False, dtype=dtype)
    assert conv.bias is None
    conv.weight.data = mc.asarray(SOBEL_X.reshape(1, 1, 3, 3).astype(dtype))
    out = conv(mc.asarray(IMAGE.reshape(1, 1, 3, 5).astype(dtype)))
    assert out.shape == (1, 1, 3, 5), "padding 1 with a 3x3 kernel keeps the 3x5 size"
    assert out.dtype == dtype
    np.testing.assert_array_equal(mc.to_numpy(out)[0, 0], REPORT)


def test_torch_agrees_when_installed():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the oracle is optional here")
    out = torch.nn.functional.conv2d(torch.from_numpy(IMAGE)[None, None], torch.from_numpy(SOBEL_X)[None, None],
                                     padding=1)
    np.testing.assert_array_equal(out[0, 0].numpy(), REPORT)
