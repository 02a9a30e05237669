"""Softmax cross-entropy on the GPU (kernels in ``loss.cu``): one launch for the forward's
probabilities and per-row losses (plus CuPy's sum of those, and a division for ``"mean"``),
one launch for the backward, where the reference runs a dozen array passes.

Same signatures and results as ``minicnn.kernels.reference.cross_entropy_*`` (the sum
over classes runs in class order, so float32 results agree with NumPy's within a few
ulps, not bit for bit). Labels are not range-checked on the GPU (that would need a
synchronisation): a label outside [0, C) makes its row's loss NaN in the forward, and
the backward subtracts no one-hot for that row. (On the CPU, ``CrossEntropyLoss``
raises a ValueError for such labels before any kernel runs.) Anything the kernels don't
take (NumPy arrays, other dtypes, shapes, an array ``scale``) runs the reference.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import reference as _ref

from . import launch
from .launch import _i64, _launch, _scalar, _suffix


def _rows_ok(x, target) -> bool:
    """The kernels take float32/float64 (N, C) with N, C >= 1 and integer labels (N,) on the device."""
    return (
        launch._on_device(x, target)
        and _suffix(x.dtype) is not None
        and x.ndim == 2
        and x.shape[0] >= 1
        and x.shape[1] >= 1
        and target.ndim == 1
        and target.shape[0] == x.shape[0]
        and np.dtype(target.dtype).kind in "iu"
    )


def cross_entropy_forward(logits, target, reduction="mean"):
    """logits (N, C), target (N,) -> (loss 0-d, probs (N, C)); see the reference."""
    if not _rows_ok(logits, target) or reduction not in ("mean", "sum"):
        return _ref.cross_entropy_forward(logits, target, reduction)
    xp = launch._cupy()
    n, c = logits.shape
    logits = xp.ascontiguousarray(logits)
    labels = xp.ascontiguousarray(target, dtype=np.int64)
    probs = xp.empty((n, c), dtype=logits.dtype)
    nll = xp.empty((n,), dtype=logits.dtype)
    _launch("loss", f"cross_entropy_forward_{_suffix(logits.dtype)}", n,
            (logits, labels, probs, nll, _i64(n), _i64(c)))
    loss = nll.sum()
    if reduction == "mean":
        loss = loss / n
    return loss, probs


def cross_entropy_backward(probs, target, scale):
    """probs (N, C), target (N,), scale (a number) -> (probs - onehot(target)) * scale."""
    if not _rows_ok(probs, target) or not isinstance(scale, (int, float, np.integer, np.floating)):
        return _ref.cross_entropy_backward(probs, target, scale)
    xp = launch._cupy()
    n, c = probs.shape
    probs = xp.ascontiguousarray(probs)
    labels = xp.ascontiguousarray(target, dtype=np.int64)
    dx = xp.empty((n, c), dtype=probs.dtype)
    _launch("loss", f"cross_entropy_backward_{_suffix(probs.dtype)}", n * c,
            (probs, labels, _scalar(scale, probs.dtype), dx, _i64(n * c), _i64(c)))
    return dx
