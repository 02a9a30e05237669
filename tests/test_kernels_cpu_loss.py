"""The numba backend's cross-entropy kernels (``kernels/cpu/loss.py``) against the reference:
probabilities and loss within a few ulps (class sums in class order, libm's exp), the backward
rounded as NumPy rounds it for each kind of scale, NaN rows, bad labels refused, and what the
kernels do not take handed to the reference."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels import reference as ref

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")


@pytest.fixture
def loss():
    from minicnn.kernels.cpu import loss

    return loss


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 4e-7), (np.float64, 1e-15)])
@pytest.mark.parametrize("shape", [(4, 10), (1, 1), (7, 3), (64, 100)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("label_dtype", [np.int64, np.uint8])
def test_forward_and_backward_match_the_reference(loss, dtype, rtol, shape, reduction, label_dtype):
    rng = np.random.default_rng(sum(shape))
    logits = (rng.standard_normal(shape) * 5).astype(dtype)
    target = rng.integers(0, shape[1], shape[0]).astype(label_dtype)
    got, probs = loss.cross_entropy_forward(logits, target, reduction)
    want, want_probs = ref.cross_entropy_forward(logits, target, reduction)
    assert got.dtype == want.dtype == dtype and got.shape == () and probs.dtype == dtype
    np.testing.assert_allclose(probs, want_probs, rtol=4 * rtol, atol=np.finfo(dtype).tiny)
    np.testing.assert_allclose(got, want, rtol=8 * rtol * np.sqrt(shape[1]))
    for scale in (1.0 / shape[0], np.float64(0.3), np.float32(0.7), 2, np.int64(3)):
        d = loss.cross_entropy_backward(want_probs, target, scale)
        want_d = ref.cross_entropy_backward(want_probs, target, scale)
        assert d.dtype == want_d.dtype == dtype
        assert np.array_equal(d, want_d), scale  # the same operations in the same types: the same bits


def test_a_nan_or_infinite_row(loss):
    logits = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [1.0, 2.0, 3.0]], np.float32)
    target = np.array([0, 1, 2])
    got, probs = loss.cross_entropy_forward(logits, target, "sum")
    with np.errstate(invalid="ignore"):  # inf - inf in the reference's shift
        want, want_probs = ref.cross_entropy_forward(logits, target, "sum")
    assert np.isnan(got) and np.isnan(want)
    np.testing.assert_array_equal(np.isnan(probs), np.isnan(want_probs))
    np.testing.assert_allclose(probs[2], want_probs[2], rtol=4e-7)


def test_a_label_outside_the_classes_is_refused_with_its_row(loss):
    logits = np.zeros((3, 4), np.float32)
    for bad in (4, -1):
        with pytest.raises(ValueError, match=rf"label {bad} of row 1 is outside \[0, 4\)"):
            loss.cross_entropy_forward(logits, np.array([0, bad, 2]))


def test_what_the_kernels_do_not_take_runs_the_reference(loss, monkeypatch):
    calls = []
    for name in ("cross_entropy_forward", "cross_entropy_backward"):
        real = getattr(ref, name)
        monkeypatch.setattr(loss._ref, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    x16 = np.zeros((2, 3), np.float16)
    loss.cross_entropy_forward(x16, np.array([0, 1]))  # float16
    with np.errstate(invalid="ignore"):  # the mean of nothing
        loss.cross_entropy_forward(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))  # an empty batch
    loss.cross_entropy_forward(np.zeros((2, 3), np.float32), np.array([0, 1], ">i8"))  # big-endian labels
    probs = np.full((2, 3), 1 / 3, np.float32)
    loss.cross_entropy_backward(probs, np.array([0, 1]), np.array([0.5, 0.5])[:, None])  # an array scale
    assert calls == ["cross_entropy_forward"] * 3 + ["cross_entropy_backward"]


def test_the_numba_backend_trains_with_them(restore_backend):
    """The layer on the numba backend goes through these kernels and agrees with the numpy backend."""
    from minicnn import nn

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 10)).astype(np.float32)
    target = rng.integers(0, 10, 5)
    out = {}
    for name in ("numpy", "numba"):
        mc.set_backend(name)
        ce = nn.CrossEntropyLoss()
        out[name] = (ce(mc.asarray(logits), mc.asarray(target)), ce.backward())
    np.testing.assert_allclose(out["numba"][0], out["numpy"][0], rtol=1e-6)
    np.testing.assert_allclose(out["numba"][1], out["numpy"][1], rtol=1e-6, atol=1e-9)
    from minicnn.kernels.cpu import TABLE, loss

    assert TABLE["cross_entropy_forward"] is loss.cross_entropy_forward
