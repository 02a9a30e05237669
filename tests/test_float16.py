"""float16 works the same on the numpy and numba backends.

The Numba kernels are compiled for float32/float64 only (Numba has no float16
arithmetic on the CPU); their wrappers hand other dtypes to the reference
functions, as the CUDA wrappers do. So a float16 layer or net runs on the
numba backend and gives the numpy backend's result (issue 14, item 9), instead
of Numba's bare ``NotImplementedError: float16``.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import MODELS

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")


def _run(backend, make, shape, seed=0):
    """Forward and backward of ``make()`` in float16 on ``backend``: (y, dx, param grads)."""
    prev = mc.backend_name()
    mc.set_backend(backend)
    try:
        mc.manual_seed(seed)
        model = make().to(np.float16)
        rng = np.random.default_rng(seed)
        x = mc.asarray(rng.standard_normal(shape).astype(np.float16))
        y = model(x)
        dy = mc.asarray(rng.standard_normal(y.shape).astype(np.float16))
        dx = model.backward(dy)
        grads = [mc.to_numpy(p.grad) for p in model.parameters()]
        return mc.to_numpy(y), mc.to_numpy(dx), grads
    finally:
        mc.set_backend(prev)


LAYERS = {
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 8, 8)),
    "conv2d-stride": (lambda: nn.Conv2d(3, 5, 3, stride=2), (2, 3, 9, 9)),
    "maxpool2d": (lambda: nn.MaxPool2d(2), (2, 3, 8, 8)),
    "relu": (lambda: nn.ReLU(), (2, 3, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_float16_numba_equals_numpy(name):
    make, shape = LAYERS[name]
    y_np, dx_np, g_np = _run("numpy", make, shape)
    y_nb, dx_nb, g_nb = _run("numba", make, shape)
    assert y_nb.dtype == np.float16 and dx_nb.dtype == np.float16
    np.testing.assert_array_equal(y_nb, y_np)
    np.testing.assert_array_equal(dx_nb, dx_np)
    for a, b in zip(g_nb, g_np, strict=True):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_tutorial_net_float16_numba_equals_numpy():
    shape = (4, 3, 32, 32)
    y_np, dx_np, g_np = _run("numpy", MODELS["tutorial"], shape)
    y_nb, dx_nb, g_nb = _run("numba", MODELS["tutorial"], shape)
    assert y_nb.dtype == np.float16 and np.isfinite(y_nb).all()
    np.testing.assert_array_equal(y_nb, y_np)
    np.testing.assert_array_equal(dx_nb, dx_np)
    for a, b in zip(g_nb, g_np, strict=True):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_tutorial_net_float16_large_batch_agrees():
    """With 64 images the numba backend's conv schedule sums the weight gradient
    over batch chunks, in another order than the numpy backend: equal to
    float16 rounding (a few units in the last place), outputs still bitwise."""
    shape = (64, 3, 32, 32)
    y_np, dx_np, g_np = _run("numpy", MODELS["tutorial"], shape)
    y_nb, dx_nb, g_nb = _run("numba", MODELS["tutorial"], shape)
    np.testing.assert_array_equal(y_nb, y_np)
    np.testing.assert_array_equal(dx_nb, dx_np)
    for a, b in zip(g_nb, g_np, strict=True):
        scale = float(np.abs(b.astype(np.float32)).max())
        np.testing.assert_allclose(a.astype(np.float32), b, rtol=0, atol=8e-3 * scale)


def test_float16_sgd_step_on_numba():
    """The optimiser kernels fall back too: one SGD step updates float16 weights in place."""
    prev = mc.backend_name()
    mc.set_backend("numba")
    try:
        p = nn.Parameter(np.ones(5, np.float16))
        p.grad = np.full(5, 0.5, np.float16)
        opt = mc.optim.SGD([p], lr=0.1, momentum=0.9)
        opt.step()
        assert p.data.dtype == np.float16
        np.testing.assert_array_equal(p.data, np.float16(1) - np.float16(0.1) * np.float16(0.5))
    finally:
        mc.set_backend(prev)
