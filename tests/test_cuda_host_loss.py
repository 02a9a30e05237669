"""The softmax cross-entropy CUDA kernels (loss.cu, kernels/cuda/loss.py) built for the host
with g++ (see tests/cuda_host.py) against the reference
(``minicnn.kernels.reference.cross_entropy_*``), in both thread orders, through the kernels
and through the wrappers. The forward sums over classes in class order, NumPy pairwise, so
it is compared within a few ulps; the backward is the reference's operations in its order,
compared bit for bit. Skipped when g++ is missing."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import reference as ref

from cuda_host import (
    DTYPES,
    SFX,
    assert_same,
    filled,
    run_both_orders,
)

RTOL = {np.float32: 4e-6, np.float64: 1e-14}
ATOL = {np.float32: 2e-5, np.float64: 4e-14}  # rows whose loss is ~0 lose digits to cancellation
SHAPES = [(1, 1), (5, 10), (7, 3), (97, 10), (4, 1000)]  # 97 rows: more than the 3 x 32 host threads


def _logits(shape, dtype, seed=0, specials=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 8).astype(dtype)
    if specials and shape[0] >= 5:
        x[1, :] = x[1, 0]  # a row of ties
        x[2, 0] = 200.0  # a logit whose exp alone would overflow float32
        x[3, :] = -1e30 if dtype == np.float32 else -1e300  # hugely negative, all equal
        x[4, -1] = np.nan  # NaN propagates to its whole row
    return x


def _labels(n, c, seed=1):
    return np.random.default_rng(seed).integers(0, c, size=n).astype(np.int64)


def _close(got, want, dtype, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN positions")
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=what)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{n}x{c}" for n, c in SHAPES])
def test_cross_entropy_kernels(host, shape, dtype):
    n, c = shape
    x, t = _logits(shape, dtype), _labels(n, c)
    want_loss, want_probs = ref.cross_entropy_forward(x, t, "sum")
    probs, nll = run_both_orders(
        host, f"cross_entropy_forward_{SFX[dtype]}",
        lambda: (x, t, filled(shape, dtype), filled((n,), dtype), n, c), outputs=[2, 3])
    _close(probs, want_probs, dtype, "probs")
    want_nll = -np.take_along_axis(x - x.max(axis=1, keepdims=True), t[:, None], 1)[:, 0] + np.log(
        np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1))
    _close(nll, want_nll.astype(dtype), dtype, "per-row losses")
    _close(nll.sum(dtype=dtype), want_loss, dtype, "summed loss")

    scale = dtype(0.37)
    (dx,) = run_both_orders(
        host, f"cross_entropy_backward_{SFX[dtype]}",
        lambda: (want_probs, t, scale, filled(shape, dtype), n * c, c), outputs=[3])
    assert_same(dx, ref.cross_entropy_backward(want_probs, t, scale), "backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_label_out_of_range_gives_nan_not_a_wild_read(host, dtype):
    x = _logits((4, 5), dtype, specials=False)
    t = np.array([0, -1, 5, 4], dtype=np.int64)
    probs, nll = filled((4, 5), dtype), filled((4,), dtype)
    host.launch(f"cross_entropy_forward_{SFX[dtype]}", 1, 32, (x, t, probs, nll, 4, 5))
    assert np.isnan(nll[1]) and np.isnan(nll[2]), nll
    assert np.isfinite(nll[[0, 3]]).all() and np.isfinite(probs).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_cross_entropy_wrappers(emulated, dtype, reduction):
    x, t = _logits((37, 10), dtype, specials=False), _labels(37, 10).astype(np.int32)
    loss, probs = cuda_kernels.cross_entropy_forward(x, t, reduction)
    assert emulated[-1] == f"cross_entropy_forward_{SFX[dtype]}"
    want_loss, want_probs = ref.cross_entropy_forward(x, t, reduction)
    _close(probs, want_probs, dtype, "probs")
    _close(loss, want_loss, dtype, "loss")
    assert np.asarray(loss).shape == () and np.asarray(loss).dtype == dtype

    scale = 1.0 / 37 if reduction == "mean" else 1.0
    dx = cuda_kernels.cross_entropy_backward(probs, t, scale)
    assert emulated[-1] == f"cross_entropy_backward_{SFX[dtype]}"
    assert_same(dx, ref.cross_entropy_backward(probs, t, scale), "dx")

    # what the kernels don't take runs the reference: no launch for an array scale or float labels
    launches = len(emulated)
    dx2 = cuda_kernels.cross_entropy_backward(probs, t, np.array(scale, dtype=dtype))
    assert len(emulated) == launches
    assert_same(dx2, ref.cross_entropy_backward(probs, t, np.array(scale, dtype=dtype)), "dx (reference)")
    loss2, _ = cuda_kernels.cross_entropy_forward(x, t.astype(dtype), reduction)  # float labels
    assert len(emulated) == launches
    assert_same(loss2, ref.cross_entropy_forward(x, t.astype(dtype), reduction)[0], "loss (reference)")
