"""``threads.element_wise``: the fused ReLU + max-pool, batch norm and ReLU kernels run their
parallel builds on Numba's threads from their ``*_TEAM_MIN`` sizes (where ``numba_team``
allows), with the bits of their serial builds."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels.cpu import activations, batchnorm, fused, threads

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")


def _calls(monkeypatch, module, name, seen):
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: seen.append(name) or real(*a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_parallel_builds_give_the_serial_bits(dtype, monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 32, 32)).astype(dtype)  # 65,536 elements
    big = rng.standard_normal((4, 16, 128, 128)).astype(dtype)  # 2^20
    gamma, beta = rng.standard_normal(16).astype(dtype), rng.standard_normal(16).astype(dtype)
    mean, var = rng.standard_normal(16).astype(dtype), rng.random(16).astype(dtype) + 0.5

    def run():
        out, idx = fused.relu_maxpool2d_forward(x, 2, 2)
        dx = fused.relu_maxpool2d_backward(out * 0.5, out, idx, 32, 32, 2, 2)
        y, m, v, xhat, inv = batchnorm.batchnorm_forward(x, gamma, beta, 1e-5)
        bwd = batchnorm.batchnorm_backward(x, xhat, inv, gamma)
        ev = batchnorm.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5)
        r, mask = activations.relu_forward(big)
        return [out, idx, dx, y, m, v, xhat, inv, *bwd, *ev, r, mask, activations.relu_backward(big, mask)]

    seen = []
    for module, name in ((fused, "_fwd_par"), (fused, "_bwd_par"), (batchnorm, "_bn_fwd_par"),
                         (batchnorm, "_bn_bwd_par"), (batchnorm, "_bn_eval_par"), (activations, "_relu_fwd_par"),
                         (activations, "_relu_bwd_par")):
        _calls(monkeypatch, module, name, seen)
    together = run()
    assert len(set(seen)) == 7  # every kernel ran its parallel build
    for module, name in ((fused, "RELU_MAXPOOL_TEAM_MIN"), (batchnorm, "BN_TEAM_MIN"), (activations, "RELU_TEAM_MIN")):
        monkeypatch.setattr(module, name, 1 << 62)
    seen.clear()
    alone = run()
    assert seen == []
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)


def test_small_arrays_and_shares_keep_the_serial_build(monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 2)
    seen = []
    _calls(monkeypatch, fused, "_fwd_par", seen)
    fused.relu_maxpool2d_forward(np.ones((4, 6, 28, 28), np.float32), 2, 2)  # the tutorial net's b4: 18,816
    assert seen == []
    monkeypatch.setattr(threads._local, "inside", True, raising=False)  # inside a run_split share
    fused.relu_maxpool2d_forward(np.ones((4, 16, 32, 32), np.float32), 2, 2)
    assert seen == []


def test_each_parallel_threshold_name_is_one_modules():
    """``set_parallel`` finds the thresholds by name (``*_PAR_MIN``): a name that two modules
    share (one importing the other's) would leave one of them out."""
    import minicnn.kernels.cpu as cpu

    seen = {}
    for mod in cpu._THRESHOLD_MODULES:
        for name in dir(mod):
            if name.endswith("_PAR_MIN"):
                assert name not in seen, f"{name} in {seen.get(name)} and {mod.__name__}"
                seen[name] = mod.__name__
    assert set(seen) == set(cpu._DEFAULT_THRESHOLDS)
