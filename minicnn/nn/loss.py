"""Losses: CrossEntropyLoss and MSELoss, each with ``backward()``.

``loss = criterion(pred, target)`` returns a 0-d backend array (``float(loss)``
reads it); ``criterion.backward()`` returns d loss / d pred, scaled by an
optional upstream gradient ``dout`` (e.g. the weight of this term in a sum of
losses). The math is the ``*_forward`` / ``*_backward`` pairs.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.nn.module import Module

_REDUCTIONS = ("mean", "sum")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self._cache = None

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


def cross_entropy_forward(logits, target, reduction="mean"):
    """loss = -mean_n log softmax(logits_n)[target_n] (or the sum).

    logits (N, C), target (N,) integer labels. log-softmax subtracts each
    row's maximum first (exp never overflows). One kernel-table entry
    (``ops.cross_entropy_forward``; the math in ``kernels/reference/loss.py``),
    so a backend can run it as one pass. cache: (softmax probabilities, target, reduction).
    """
    loss, probs = backend.current().ops.cross_entropy_forward(logits, target, reduction)
    return loss, (probs, target, reduction)


def cross_entropy_backward(dout, cache):
    """d loss / d logits = (softmax(logits) - onehot(target)) * dout / N (``mean``)."""
    probs, target, reduction = cache
    scale = dout / probs.shape[0] if reduction == "mean" else dout
    return backend.current().ops.cross_entropy_backward(probs, target, scale)


def mse_forward(pred, target, reduction="mean"):
    """loss = mean (or sum) of (pred - target)^2 over every element; cache: (pred - target, reduction)."""
    diff = pred - target
    sq = (diff * diff).sum()
    return (sq / diff.size if reduction == "mean" else sq), (diff, reduction)


def mse_backward(dout, cache):
    """d loss / d pred = 2 * (pred - target) * dout / size (``mean``)."""
    diff, reduction = cache
    scale = 2.0 * dout / diff.size if reduction == "mean" else 2.0 * dout
    return (diff * scale).astype(diff.dtype, copy=False)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy over logits (N, C) and integer labels (N,) in [0, C).

    Uses log-softmax with the max subtracted (stable for large logits).
    backward: (softmax(logits) - onehot(labels)) / N for ``mean``.
    Caches the softmax probabilities and the labels.
    """

    def forward(self, logits, target):
        xp = backend.current().xp
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss: expected logits (N, C), got shape {tuple(logits.shape)}")
        target = xp.asarray(target)
        if target.ndim != 1 or target.shape[0] != logits.shape[0]:
            raise ValueError(f"CrossEntropyLoss: expected integer labels of shape ({logits.shape[0]},), "
                             f"got shape {tuple(target.shape)}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss: labels must be integers (class indices), got dtype {target.dtype}")
        n, c = logits.shape
        if n and not backend.current().is_gpu:
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= c:
                raise ValueError(f"CrossEntropyLoss: labels must lie in [0, {c}), got range [{lo}, {hi}]")
        loss, self._cache = cross_entropy_forward(logits, target, self.reduction)
        return loss

    def backward(self, dout=1.0):
        """d loss / d logits, times ``dout`` (this loss's weight in a sum of losses)."""
        return cross_entropy_backward(dout, self._need_cache(self._cache))


class MSELoss(_Loss):
    """Mean (or sum) of squared differences; any matching shapes. Caches pred - target."""

    def forward(self, pred, target):
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"MSELoss: prediction shape {tuple(pred.shape)} and target shape "
                             f"{tuple(target.shape)} must be equal")
        backend.check_same_module("MSELoss", pred, target)
        loss, self._cache = mse_forward(pred, target, self.reduction)
        return loss

    def backward(self, dout=1.0):
        """d loss / d pred, times ``dout`` (this loss's weight in a sum of losses)."""
        return mse_backward(dout, self._need_cache(self._cache))
