"""Fused runs of layers (minicnn.fusion, kernels/fused.py, kernels/cpu/fused.py).

* The numba ReLU -> MaxPool2d kernels equal, bit for bit, the composition they replace
  (the reference ReLU and max-pool kernels, forward and backward), on inputs with ties,
  zeros of both signs, windows of negatives and NaNs, for float32 and float64.
* A Sequential on the numba backend gives the same output, input gradient, parameter
  gradients and switches with fusion on and off, and fuses only the runs it may.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import fusion, models, nn
from minicnn.kernels import fused as ref_fused
from minicnn.kernels import reference as ref
from minicnn.kernels.cpu import fused as cpu_fused


def hostile_input(shape, dtype, seed=0, nans=True):
    """Small integers (many ties, many exact zeros), -0.0, whole windows of negatives, NaNs."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 3, size=shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=max(1, flat.size // 10), replace=False)] = -0.0
    x[..., :2, :2] = -1  # a window of negatives in every plane
    if nans:
        flat[rng.choice(flat.size, size=3, replace=False)] = np.nan
    return x


def same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k", [((2, 3, 8, 8), (2, 2)), ((3, 2, 9, 7), (2, 2)), ((2, 2, 9, 9), (3, 3)),
                                     ((1, 4, 6, 8), (2, 4)), ((2, 3, 5, 5), (1, 1))])
@pytest.mark.parametrize("nans", [False, True])
def test_numba_relu_maxpool_is_the_composition(dtype, shape, k, nans):
    x = hostile_input(shape, dtype, nans=nans)
    kh, kw = k
    y, mask = ref.relu_forward(x)
    want_out, want_idx = ref.maxpool2d_forward(y, kh, kw, kh, kw, 0, 0)
    for out, idx in (cpu_fused.relu_maxpool2d_forward(x, kh, kw), ref_fused.relu_maxpool2d_forward(x, kh, kw)):
        same_bits(out, want_out)
        same_bits(idx, want_idx)
    rng = np.random.default_rng(1)
    dout = rng.standard_normal(want_out.shape).astype(dtype)
    dout.reshape(-1)[::7] = -0.0
    h, w = shape[2:]
    want_dx = ref.relu_backward(ref.maxpool2d_backward(dout, want_idx, h, w), mask)
    same_bits(cpu_fused.relu_maxpool2d_backward(dout, want_out, want_idx, h, w, kh, kw), want_dx)
    same_bits(ref_fused.relu_maxpool2d_backward(dout, want_out, want_idx, h, w, kh, kw), want_dx)


def test_numba_relu_maxpool_parallel_variant_and_other_dtypes(monkeypatch):
    x = hostile_input((2, 3, 8, 8), np.float32)
    want = ref_fused.relu_maxpool2d_forward(x, 2, 2)
    monkeypatch.setattr(cpu_fused, "RELU_MAXPOOL_PAR_MIN", 0)  # the prange build
    out, idx = cpu_fused.relu_maxpool2d_forward(x, 2, 2)
    same_bits(out, want[0]) and same_bits(idx, want[1])
    dout = np.ones_like(out)
    same_bits(cpu_fused.relu_maxpool2d_backward(dout, out, idx, 8, 8, 2, 2),
              ref_fused.relu_maxpool2d_backward(dout, out, idx, 8, 8, 2, 2))
    h16 = x.astype(np.float16)  # not compiled for: the reference
    out16, _ = cpu_fused.relu_maxpool2d_forward(h16, 2, 2)
    assert out16.dtype == np.float16 and np.array_equal(out16, want[0].astype(np.float16), equal_nan=True)


def test_numba_relu_maxpool_rejects_bad_switches_and_windows():
    x = hostile_input((1, 2, 4, 4), np.float32, nans=False)
    out, idx = cpu_fused.relu_maxpool2d_forward(x, 2, 2)
    idx[0, 1, 0, 0] = 16
    with pytest.raises(IndexError, match="outside the plane of 16"):
        cpu_fused.relu_maxpool2d_backward(np.ones_like(out), out, idx, 4, 4, 2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        cpu_fused.relu_maxpool2d_forward(x, 5, 2)


def _pass(model, x, seed=0):
    """Output, input gradient, parameter gradients and every MaxPool2d's switches of one pass."""
    model.zero_grad()
    y = model(x)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    dx = model.backward(dy)
    grads = [p.grad.copy() for p in model.parameters()]
    switches = [m.indices.copy() for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    return y, dx, grads, switches


@pytest.mark.parametrize("name", ["tutorial", "net2", "threeblock_net1", "dropout_study"])
def test_fused_and_unfused_passes_are_equal(restore_backend, name):
    mc.set_backend("numba")
    build = {"tutorial": models.TutorialNet, "net2": models.Net2,
             "threeblock_net1": lambda: models.ThreeBlockNet(batch_norm=True),
             "dropout_study": lambda: models.DropoutStudyNet(p=0.0)}[name]
    mc.manual_seed(0)
    model = build()
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype(np.float32)
    fused = _pass(model, x)
    assert any(isinstance(s, fusion.ReLUMaxPool2d) for s in model._steps)
    fusion.set_enabled(False)
    try:
        plain = _pass(model, x)
        assert not any(isinstance(s, fusion.ReLUMaxPool2d) for s in model._steps)
    finally:
        fusion.set_enabled(True)
    for a, b in zip(fused[:2], plain[:2]):
        same_bits(a, b)
    for a, b in zip(fused[2] + fused[3], plain[2] + plain[3]):
        same_bits(a, b)


def test_which_runs_are_fused(restore_backend):
    def kinds(seq):
        mc.set_backend("numba")
        return [type(s).__name__ for s in fusion.steps(seq)]

    assert kinds(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.ReLU())) == ["ReLUMaxPool2d", "ReLU"]
    assert kinds(nn.Sequential(nn.ReLU(backward_mode="guided"), nn.MaxPool2d(2))) == ["ReLU", "MaxPool2d"]
    assert kinds(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, stride=1))) == ["ReLU", "MaxPool2d"]  # overlapping
    assert kinds(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, padding=1))) == ["ReLU", "MaxPool2d"]
    assert kinds(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))) == ["ReLU", "MaxPool2d"]
    assert kinds(nn.Sequential(nn.MaxPool2d(2), nn.ReLU())) == ["MaxPool2d", "ReLU"]
    assert kinds(nn.Sequential(nn.LeakyReLU(), nn.MaxPool2d(2))) == ["LeakyReLU", "MaxPool2d"]
    patched = nn.ReLU()
    patched.forward = lambda x: x  # replaced on the instance: left alone
    assert kinds(nn.Sequential(patched, nn.MaxPool2d(2))) == ["ReLU", "MaxPool2d"]
    mc.set_backend("numpy")  # the reference backend runs every layer on its own
    assert [type(s).__name__ for s in fusion.steps(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)))] == ["ReLU",
                                                                                                  "MaxPool2d"]


def test_inputs_the_kernel_does_not_take_run_the_modules(restore_backend):
    mc.set_backend("numba")
    seq = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(ValueError, match="smaller than the window"):
        seq(np.ones((1, 1, 1, 4), np.float32))
    with pytest.raises(ValueError, match="MaxPool2d"):
        seq(np.ones((2, 4), np.float32))


def test_after_a_fused_forward_the_modules_hold_no_stale_cache(restore_backend):
    mc.set_backend("numba")
    relu, pool = nn.ReLU(), nn.MaxPool2d(2)
    seq = nn.Sequential(relu, pool)
    x = hostile_input((1, 2, 4, 4), np.float32, nans=False)
    relu(x), pool(relu(x))  # caches from separate calls
    y = seq(x)
    assert pool.indices.shape == y.shape
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        relu.backward(np.ones_like(x))
    assert seq.backward(np.ones_like(y)).shape == x.shape
