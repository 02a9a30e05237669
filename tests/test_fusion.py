"""Fused runs of layers (minicnn.fusion, kernels/fused.py, kernels/cpu/fused.py).

* The numba ReLU -> MaxPool2d kernels equal, bit for bit, the composition they replace
  (the reference ReLU and max-pool kernels, forward and backward), on inputs with ties,
  zeros of both signs, windows of negatives and NaNs, for float32 and float64.
* A Sequential on the numba backend gives the same output, input gradient, parameter
  gradients and switches with fusion on and off, and fuses only the runs it may.
* The numba add + ReLU kernel (the residual merge) equals relu(a + b) bit for bit, and a
  ResNet gives the same bits with it and without.
* The numba evaluation batch norm + ReLU kernel equals the composition bit for bit, and a
  ResNet in evaluation mode gives the same output and gradients with it and without; which
  batch norm -> ReLU runs a Sequential fuses (ReLU -> MaxPool2d keeps a ReLU both want).
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "prange"])
def test_numba_add_relu_is_relu_of_the_sum(dtype, parallel, monkeypatch):
    """Zeros of both signs, sums that cancel to +-0, NaNs and infinities that meet."""
    a = hostile_input((2, 3, 9, 7), dtype, seed=1)
    b = hostile_input((2, 3, 9, 7), dtype, seed=2)
    b.reshape(-1)[:8] = -a.reshape(-1)[:8]  # exact cancellation
    a.reshape(-1)[-2:], b.reshape(-1)[-2:] = np.inf, -np.inf  # inf - inf = NaN
    if parallel:
        monkeypatch.setattr(cpu_fused, "ADD_RELU_PAR_MIN", 0)
    with np.errstate(invalid="ignore"):  # inf - inf
        want_y, want_mask = ref.relu_forward(a + b)
        for y, mask in (cpu_fused.add_relu_forward(a, b), ref_fused.add_relu_forward(a, b)):
            same_bits(y, want_y)
            same_bits(mask, want_mask)
        a16, b16 = a.astype(np.float16), b.astype(np.float16)
        same_bits(cpu_fused.add_relu_forward(a16, b16)[0], ref.relu_forward(a16 + b16)[0])  # not compiled for
        same_bits(cpu_fused.add_relu_forward(a, b[:1])[0], ref.relu_forward(a + b[:1])[0])  # broadcast: the definition


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_residual_merge_fused_and_unfused_are_equal(restore_backend, shortcut):
    """ResNet-20's blocks merge through fusion.add_relu on numba: the same output, input
    gradient and parameter gradients as relu2(main + shortcut) with fusion off; a ReLU with
    a visualisation rule is not fused."""
    mc.set_backend("numba")
    mc.manual_seed(0)
    model = models.resnet20(shortcut=shortcut)
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    calls = []
    real = mc.backend.current().ops.add_relu_forward

    def counted(a, b):
        calls.append(a.shape)
        return real(a, b)

    mc.backend.current().ops.add_relu_forward = counted
    try:
        fused = _pass(model, x)
        assert len(calls) == 9  # every block's merge
        fusion.set_enabled(False)
        try:
            plain = _pass(model, x)
        finally:
            fusion.set_enabled(True)
        assert len(calls) == 9
        model.layer1[0].relu2.backward_mode = "guided"
        model(x)
        assert len(calls) == 9 + 8  # that block's merge ran the module
    finally:
        mc.backend.current().ops.add_relu_forward = real
    for a, b in zip(fused[:2] + tuple(fused[2]), plain[:2] + tuple(plain[2])):
        same_bits(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (5, 4), (2, 3, 6)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "prange"])
def test_numba_batchnorm_relu_eval_is_the_composition(dtype, shape, affine, parallel, monkeypatch):
    """relu(batch norm with running statistics): values that normalise to exactly +-0 (x at
    the mean), NaNs and infinities; y, inv_std and the mask bit for bit."""
    c = shape[1]
    rng = np.random.default_rng(5)
    x = hostile_input(shape, dtype, seed=3) if len(shape) == 4 else rng.integers(-3, 3, size=shape).astype(dtype)
    mean = rng.integers(-1, 2, size=c).astype(dtype)
    var = rng.uniform(0.5, 2.0, size=c).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype) if affine else None
    beta = np.zeros(c, dtype) if affine else None  # z = 0 * gamma + 0 where x == mean: signed zeros
    x.reshape(-1)[:2] = [np.inf, -np.inf]
    if parallel:
        monkeypatch.setattr(cpu_fused, "BN_RELU_PAR_MIN", 0)
    with np.errstate(invalid="ignore"):
        z, want_inv = ref.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5)
        want_y, want_mask = ref.relu_forward(z)
        for y, inv_std, mask in (cpu_fused.batchnorm_relu_forward_eval(x, gamma, beta, mean, var, 1e-5),
                                 ref_fused.batchnorm_relu_forward_eval(x, gamma, beta, mean, var, 1e-5)):
            same_bits(y, want_y)
            same_bits(inv_std, want_inv)
            same_bits(mask, want_mask)
        assert want_mask.any() and not want_mask.all()
        x16 = x.astype(np.float16)  # not compiled for: the definition
        same_bits(cpu_fused.batchnorm_relu_forward_eval(x16, None, None, mean, var, 1e-5)[0],
                  ref_fused.batchnorm_relu_forward_eval(x16, None, None, mean, var, 1e-5)[0])
    with pytest.raises(ValueError, match="mean has 2 values, expected one per channel"):
        cpu_fused.batchnorm_relu_forward_eval(x, gamma, beta, mean[:2], var, 1e-5)


def _eval_pass(model, x, seed=0):
    """Output, input gradient and parameter gradients of one evaluation-mode pass."""
    model.zero_grad()
    y = model(x)
    dx = model.backward(np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype))
    return (y, dx) + tuple(p.grad.copy() for p in model.parameters())


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet_evaluation_batchnorm_relu_fused_and_unfused_are_equal(restore_backend, shortcut):
    """In evaluation mode ResNet-20's stem (a Sequential run) and every block's relu1(bn1(.))
    run through ops.batchnorm_relu_forward_eval on numba: the same output, input gradient
    and parameter gradients as with fusion off; in training mode the layers run as they are."""
    mc.set_backend("numba")
    mc.manual_seed(0)
    model = models.resnet20(shortcut=shortcut)
    rng = np.random.default_rng(6)
    for m in model.modules():  # running statistics that are not 0 and 1
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features).astype(np.float32) * 0.1
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features).astype(np.float32)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    calls = []
    ops = mc.backend.current().ops
    real = ops.batchnorm_relu_forward_eval

    def counted(*args):
        calls.append(args[0].shape)
        return real(*args)

    ops.batchnorm_relu_forward_eval = counted
    try:
        model.eval()
        fused = _eval_pass(model, x)
        assert len(calls) == 1 + 9  # the stem and every block's bn1 -> relu1
        fusion.set_enabled(False)
        try:
            plain = _eval_pass(model, x)
        finally:
            fusion.set_enabled(True)
        model.train()
        model(x)
        assert len(calls) == 10
    finally:
        ops.batchnorm_relu_forward_eval = real
    for a, b in zip(fused, plain):
        same_bits(a, b)


def test_which_batchnorm_relu_runs_are_fused(restore_backend):
    mc.set_backend("numba")

    def kinds(*mods):
        return [type(s).__name__ for s in fusion.steps(nn.Sequential(*mods))]

    assert kinds(nn.BatchNorm2d(3), nn.ReLU()) == ["BatchNormReLU"]
    assert kinds(nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)) == ["BatchNormReLU", "Linear"]
    assert kinds(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2)) == ["BatchNorm2d", "ReLUMaxPool2d"]
    assert kinds(nn.BatchNorm2d(3), nn.ReLU(backward_mode="guided")) == ["BatchNorm2d", "ReLU"]
    assert kinds(nn.BatchNorm2d(3), nn.LeakyReLU()) == ["BatchNorm2d", "LeakyReLU"]


def test_batchnorm_relu_of_mixed_dtypes_runs_the_modules(restore_backend):
    """float64 running statistics with a float32 input: the layers' own promotions, not fused."""
    mc.set_backend("numba")
    bn, relu = nn.BatchNorm2d(3), nn.ReLU()
    bn.eval()
    bn._buffers["running_var"] = bn.running_var.astype(np.float64)
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 4)).astype(np.float32)
    calls = []
    ops = mc.backend.current().ops
    real = ops.batchnorm_relu_forward_eval
    ops.batchnorm_relu_forward_eval = lambda *a: calls.append(1) or real(*a)
    try:
        got = fusion.batchnorm_relu(bn, relu, x)
    finally:
        ops.batchnorm_relu_forward_eval = real
    assert not calls
    fusion.set_enabled(False)
    try:
        same_bits(got, relu(bn(x)))
    finally:
        fusion.set_enabled(True)
