"""TF32 on the cupy backend (minicnn.tf32, PyTorch's switches): off gives the exact FP32
products bit for bit, on stays within TF32's rounding, float64 is never affected.
Skips cleanly without CuPy or a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, nn

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


@pytest.fixture(autouse=True)
def _cupy_exact_afterwards():
    saved = (backend.tf32.matmul, backend.tf32.conv)
    mc.set_backend("cupy")
    yield
    backend.tf32.matmul, backend.tf32.conv = saved


def _conv_and_linear(dtype):
    mc.manual_seed(0)
    conv, fc = nn.Conv2d(16, 32, 3, padding=1), nn.Linear(512, 64)
    if dtype == np.float64:
        conv, fc = conv.double(), fc.double()
    rng = np.random.default_rng(0)
    x = mc.asarray(rng.standard_normal((8, 16, 12, 12)).astype(dtype))
    v = mc.asarray(rng.standard_normal((8, 512)).astype(dtype))
    return mc.to_numpy(conv(x)), mc.to_numpy(fc(v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tf32_off_is_exact_and_on_is_close(dtype):
    backend.tf32.matmul = backend.tf32.conv = False
    exact_conv, exact_fc = _conv_and_linear(dtype)
    again_conv, again_fc = _conv_and_linear(dtype)
    np.testing.assert_array_equal(again_conv, exact_conv)
    backend.tf32.matmul = backend.tf32.conv = True
    tf_conv, tf_fc = _conv_and_linear(dtype)
    if dtype == np.float64:  # never on TF32
        np.testing.assert_array_equal(tf_conv, exact_conv)
        np.testing.assert_array_equal(tf_fc, exact_fc)
        return
    # TF32 keeps 10 mantissa bits of each input: relative error ~1e-3 per product, summed over K terms
    for got, want in ((tf_conv, exact_conv), (tf_fc, exact_fc)):
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 5e-3 * scale
    backend.tf32.matmul = backend.tf32.conv = False  # and back to the exact products
    back_conv, back_fc = _conv_and_linear(dtype)
    np.testing.assert_array_equal(back_conv, exact_conv)
    np.testing.assert_array_equal(back_fc, exact_fc)
