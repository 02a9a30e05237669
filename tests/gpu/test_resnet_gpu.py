"""ResNet-20 (residual blocks, BatchNorm, AdaptiveAvgPool2d) trains on the cupy backend
to the numpy backend's numbers in float64, and AvgPool2d agrees too. Skips cleanly
without CuPy or a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


def test_resnet20_trains_on_cupy_as_on_numpy():
    from test_resnet import _train  # the CPU test's training loop, any backend

    _, l_np, w_np = _train("numpy", np.float64, steps=3)
    _, l_cp, w_cp = _train("cupy", np.float64, steps=3)
    np.testing.assert_allclose(l_cp, l_np, rtol=1e-9)
    for k in w_np:
        np.testing.assert_allclose(w_cp[k], w_np[k], rtol=1e-7, atol=1e-10, err_msg=k)


def test_avgpool_layers_on_cupy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 7))
    g1 = rng.standard_normal((2, 3, 5, 4))
    g2 = rng.standard_normal((2, 3, 2, 3))
    out = {}
    prev = mc.backend_name()
    try:
        for be in ("numpy", "cupy"):
            mc.set_backend(be)
            a, b = nn.AvgPool2d(3, 2, 1), nn.AdaptiveAvgPool2d((2, 3))
            ya, yb = a(mc.asarray(x)), b(mc.asarray(x))
            out[be] = [mc.to_numpy(v) for v in (ya, yb, a.backward(mc.asarray(g1)), b.backward(mc.asarray(g2)))]
    finally:
        mc.set_backend(prev)
    for got, want in zip(out["cupy"], out["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_resnet20_in_evaluation_mode_on_cupy_as_on_numpy():
    """Inference runs the fused batch norm -> ReLU (stem and blocks) and the fused merge on
    cupy: float64 output and input gradient as the numpy backend's (which fuses nothing)."""
    from minicnn import models

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 32, 32))
    g = rng.standard_normal((2, 10))
    prev_backend, prev_dtype = mc.backend_name(), nn.get_default_dtype()
    out = {}
    try:
        nn.set_default_dtype(np.float64)
        for be in ("numpy", "cupy"):
            mc.set_backend(be)
            mc.manual_seed(0)
            model = models.resnet20()
            for i, m in enumerate(model.modules()):  # running statistics that are not 0 and 1
                if isinstance(m, nn.BatchNorm2d):
                    r = np.random.default_rng(100 + i)
                    m.running_mean[...] = mc.asarray(r.standard_normal(m.num_features) * 0.1)
                    m.running_var[...] = mc.asarray(r.uniform(0.5, 2.0, m.num_features))
            model.eval()
            y = model(mc.asarray(x))
            out[be] = [mc.to_numpy(y), mc.to_numpy(model.backward(mc.asarray(g)))]
    finally:
        mc.set_backend(prev_backend)
        nn.set_default_dtype(prev_dtype)
    for a, b in zip(out["cupy"], out["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
