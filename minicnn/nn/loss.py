"""Losses: CrossEntropyLoss and MSELoss, each with ``backward()``.

``loss = criterion(pred, target)`` returns a 0-d backend array (``float(loss)``
reads it); ``criterion.backward()`` returns d loss / d pred, scaled by an
optional upstream gradient (e.g. the weight of this term in a sum of losses).
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
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        logp = shifted - xp.log(total)
        picked = xp.take_along_axis(logp, target.reshape(-1, 1).astype(xp.int64), axis=1)[:, 0]
        loss = -picked.sum()
        if self.reduction == "mean":
            loss = loss / n
        self._cache = (e / total, target)  # softmax, reusing exp(shifted)
        return loss

    def backward(self, grad=1.0):
        xp = backend.current().xp
        probs, target = self._need_cache(self._cache)
        n = probs.shape[0]
        d = probs.copy()
        d[xp.arange(n), target] -= 1
        scale = grad / n if self.reduction == "mean" else grad
        return (d * scale).astype(probs.dtype, copy=False)


class MSELoss(_Loss):
    """Mean (or sum) of squared differences; any matching shapes. Caches pred - target."""

    def forward(self, pred, target):
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"MSELoss: prediction shape {tuple(pred.shape)} and target shape "
                             f"{tuple(target.shape)} must be equal")
        backend.check_same_module("MSELoss", pred, target)
        diff = pred - target
        sq = (diff * diff).sum()
        self._cache = diff
        return sq / diff.size if self.reduction == "mean" else sq

    def backward(self, grad=1.0):
        diff = self._need_cache(self._cache)
        scale = 2.0 * grad / diff.size if self.reduction == "mean" else 2.0 * grad
        return (diff * scale).astype(diff.dtype, copy=False)
