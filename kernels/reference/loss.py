"""Softmax cross-entropy, forward and backward (what ``nn.CrossEntropyLoss`` runs)."""

from __future__ import annotations

from .arrays import _xp


def cross_entropy_forward(logits, target, reduction="mean"):
    """logits (N, C), integer labels target (N,) -> (loss, probs).

    loss = -sum_n log softmax(logits_n)[target_n], divided by N for ``"mean"``
    (a 0-d array of logits' dtype); probs = softmax(logits) (N, C), what the
    backward needs. The log-softmax subtracts each row's maximum first, so
    exp never overflows; probs reuse those exponentials.
    """
    xp = _xp(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = xp.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    logp = shifted - xp.log(total)
    picked = xp.take_along_axis(logp, target.reshape(-1, 1).astype(xp.int64), axis=1)[:, 0]
    loss = -picked.sum()
    if reduction == "mean":
        loss = loss / logits.shape[0]
    return loss, e / total


def cross_entropy_backward(probs, target, scale):
    """d loss / d logits = (probs - onehot(target)) * scale, probs (N, C), target (N,);
    scale = dout / N for ``"mean"``, dout for ``"sum"``."""
    xp = _xp(probs)
    n = probs.shape[0]
    d = probs.copy()
    d[xp.arange(n), target] -= 1
    return (d * scale).astype(probs.dtype, copy=False)
