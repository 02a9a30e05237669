"""Full training steps of the seed models on the ``cupy`` backend against ``numpy``.

Skips cleanly without CuPy or a CUDA device. SGD runs in float32 with
tolerances of float32 rounding accumulated over a few steps. Adam runs in
float64: it divides each gradient by its own running RMS, so an element whose
gradient is rounding noise (e.g. a weight of a dead ReLU input) moves by about
``lr`` in a direction the rounding picks. In float32 the numpy and numba CPU
backends already disagree that way (Net2 after 3 Adam steps: 3 of 131072
fc1.weight entries outside rtol 1e-3 / atol 1e-5), so float32 Adam cannot be
compared elementwise; float64 makes the noise negligible and checks the same
kernels (the float32 Adam kernel is compared alone in test_cupy_kernels).
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DeconvNet, MNISTNet, Net2, TutorialNet

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


def _steps(backend, make, shape, steps, two_outputs=False, opt_name="sgd", dtype=np.float32):
    mc.set_backend(backend)
    mc.manual_seed(0)
    nn.set_default_dtype(dtype)
    try:
        net = make()
    finally:
        nn.set_default_dtype(np.float32)
    net.train()
    rng = np.random.default_rng(1)
    x = mc.asarray(rng.standard_normal(shape).astype(np.float32).astype(dtype))
    y = mc.asarray(rng.integers(0, 10, shape[0]))
    ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
    opt = (mc.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
           if opt_name == "sgd" else mc.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        if two_outputs:
            logits, xhat = net(x)
            loss = ce(logits, y) + mse(xhat, x)
            net.backward(ce.backward(), mse.backward())
        else:
            loss = ce(net(x), y)
            net.backward(ce.backward())
        opt.step()
        losses.append(float(loss))
    state = net.state_dict()
    mc.set_backend("numpy")
    return losses, state


MODELS = [
    (TutorialNet, (8, 3, 32, 32), False),
    (DeconvNet, (8, 3, 32, 32), True),
    (Net2, (8, 3, 32, 32), False),
]


@pytest.mark.parametrize("make,shape,two", MODELS)
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_training_steps_match_numpy(make, shape, two, opt_name):
    dtype = np.float32 if opt_name == "sgd" else np.float64
    rtol, atol = (1e-3, 1e-5) if dtype == np.float32 else (1e-9, 1e-12)
    ref_losses, ref_state = _steps("numpy", make, shape, 3, two, opt_name, dtype)
    gpu_losses, gpu_state = _steps("cupy", make, shape, 3, two, opt_name, dtype)
    np.testing.assert_allclose(gpu_losses, ref_losses, rtol=1e-4 if dtype == np.float32 else 1e-10)
    for k, v in ref_state.items():
        assert gpu_state[k].dtype == v.dtype == (dtype if v.dtype.kind == "f" else v.dtype), k
        np.testing.assert_allclose(gpu_state[k], v, rtol=rtol, atol=atol, err_msg=k)


@pytest.mark.parametrize("make,shape,two", MODELS)
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_training_steps_with_implicit_gemm_match_numpy(make, shape, two, opt_name):
    """The same steps with every convolution through the implicit-GEMM kernels
    (``use_implicit_gemm``, MINICNN_CONV_IMPLICIT=1)."""
    from minicnn.kernels import cuda

    dtype = np.float32 if opt_name == "sgd" else np.float64
    rtol, atol = (1e-3, 1e-5) if dtype == np.float32 else (1e-9, 1e-12)
    ref_losses, ref_state = _steps("numpy", make, shape, 3, two, opt_name, dtype)
    cuda.use_implicit_gemm(True)
    try:
        gpu_losses, gpu_state = _steps("cupy", make, shape, 3, two, opt_name, dtype)
    finally:
        cuda.use_implicit_gemm(cuda.IMPLICIT_AT_IMPORT)
    np.testing.assert_allclose(gpu_losses, ref_losses, rtol=1e-4 if dtype == np.float32 else 1e-10)
    for k, v in ref_state.items():
        np.testing.assert_allclose(gpu_state[k], v, rtol=rtol, atol=atol, err_msg=k)


def test_dropout_model_runs_on_gpu():
    # MNISTNet uses dropout drawn on the device: check shapes and that training moves the loss.
    losses, _ = _steps("cupy", MNISTNet, (16, 1, 28, 28), 5)
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("make", [TutorialNet, Net2, DeconvNet])
def test_fused_and_unfused_steps_are_bitwise_equal(make):
    """ReLU -> MaxPool2d through the fused kernels (minicnn.fusion) gives the unfused numbers."""
    from minicnn import fusion

    two = make is DeconvNet
    fused_losses, fused = _steps("cupy", make, (8, 3, 32, 32), 3, two)
    fusion.set_enabled(False)
    try:
        plain_losses, plain = _steps("cupy", make, (8, 3, 32, 32), 3, two)
    finally:
        fusion.set_enabled(True)
    assert fused_losses == plain_losses
    for k in fused:
        assert fused[k].tobytes() == plain[k].tobytes(), k


def test_same_seed_twice_is_bitwise_equal():
    _, a = _steps("cupy", DeconvNet, (8, 3, 32, 32), 3, True)
    _, b = _steps("cupy", DeconvNet, (8, 3, 32, 32), 3, True)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_arrays_stay_on_device():
    mc.set_backend("cupy")
    try:
        net = TutorialNet()
        out = net(mc.asarray(np.zeros((2, 3, 32, 32), np.float32)))
        assert isinstance(out, cupy.ndarray)
        assert all(isinstance(p.data, cupy.ndarray) for p in net.parameters())
        with pytest.raises(TypeError, match="mixed"):
            net(np.zeros((2, 3, 32, 32), np.float32))
    finally:
        mc.set_backend("numpy")
