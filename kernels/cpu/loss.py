"""Softmax cross-entropy as Numba kernels (same signatures as ``kernels.reference``): one pass
over the logits for the probabilities and each row's loss, one for the backward, where the
reference runs a dozen NumPy passes, each with its call overhead: at batch 4 the layer's
forward took longer than some of the tutorial net's conv kernels
(benchmarks/notes/cpu-overhead.md, "Cross-entropy").

Per row: m = max, e_j = exp(x_j - m), total = the sum of e_j in class order, probs_j = e_j /
total, loss = -((x_t - m) - log(total)); the losses are added by NumPy's ``sum`` as the
reference adds them, and divided by N for ``"mean"``. Each operation is the reference's in
the logits' dtype; the class sums run in class order where NumPy's ``sum`` runs its pairwise
blocks, and Numba's ``exp`` is libm's, so float32 results agree within a few ulps, not bit for
bit (as the GPU's, ``kernels/cuda/loss.py``). The backward, (probs - onehot) * scale, rounds
exactly as NumPy does for a Python or a NumPy scalar ``scale``.

The forward refuses a label outside [0, C) with the row it is in (``CrossEntropyLoss`` checks
first on the CPU; the kernel must not read past a row); the backward, which only compares
labels, subtracts no one-hot for such a row, as the GPU's does. Anything else the kernels don't take (dtypes
other than float32/float64, an array ``scale``, an empty batch) runs the reference.
"""

from __future__ import annotations

import numpy as np

from .. import reference as _ref
from ._jit import compiled_for, serial


def _ce_fwd_impl(x, t, zero, probs, nll):
    """probs (N, C) and nll (N,) from logits x (N, C) and labels t (N,); returns the first row
    whose label is outside [0, C), or -1."""
    n, c = x.shape
    for i in range(n):
        label = t[i]
        if label < 0 or label >= c:
            return i
        m = x[i, 0]
        for j in range(1, c):
            v = x[i, j]
            if v > m or v != v:  # np.max: a NaN wins
                m = v
        total = zero
        for j in range(c):
            e = np.exp(x[i, j] - m)
            probs[i, j] = e
            total += e
        nll[i] = -((x[i, label] - m) - np.log(total))
        for j in range(c):
            probs[i, j] = probs[i, j] / total
    return -1


def _ce_bwd_impl(probs, t, one, scale, dx):
    """dx (N, C) = (probs - onehot(t)) * scale, the difference in probs' dtype, the product in
    the type of (that dtype, scale), rounded to dx's dtype."""
    n, c = probs.shape
    for i in range(n):
        for j in range(c):
            p = probs[i, j]
            if j == t[i]:
                p = p - one
            dx[i, j] = p * scale


_ce_fwd = serial(_ce_fwd_impl)
_ce_bwd = serial(_ce_bwd_impl)


def _rows_ok(x, target) -> bool:
    """The kernels take float32/float64 (N, C) with N, C >= 1 and integer labels (N,)."""
    return (type(x) is np.ndarray and compiled_for(x) and x.ndim == 2 and x.shape[0] >= 1 and x.shape[1] >= 1
            and type(target) is np.ndarray and target.ndim == 1 and target.shape[0] == x.shape[0]
            and target.dtype.kind in "iu" and target.dtype.isnative)


def cross_entropy_forward(logits, target, reduction="mean"):
    """logits (N, C), integer labels target (N,) -> (loss, probs); see the reference."""
    if not _rows_ok(logits, target) or reduction not in ("mean", "sum"):
        return _ref.cross_entropy_forward(logits, target, reduction)
    x = np.ascontiguousarray(logits)
    labels = np.ascontiguousarray(target)
    n, c = x.shape
    probs = np.empty((n, c), x.dtype)
    nll = np.empty(n, x.dtype)
    bad = _ce_fwd(x, labels, x.dtype.type(0), probs, nll)
    if bad >= 0:
        raise ValueError(f"cross_entropy_forward: label {int(labels[bad])} of row {bad} is outside [0, {c})")
    loss = nll.sum()
    if reduction == "mean":
        loss = loss / n
    return loss, probs


def cross_entropy_backward(probs, target, scale):
    """probs (N, C), labels target (N,), a number scale -> (probs - onehot(target)) * scale."""
    if not _rows_ok(probs, target) or not isinstance(scale, (int, float, np.integer, np.floating)) \
            or isinstance(scale, bool):
        return _ref.cross_entropy_backward(probs, target, scale)
    p = np.ascontiguousarray(probs)
    labels = np.ascontiguousarray(target)
    kind = np.result_type(p.dtype, scale)  # NumPy's rule: a Python float takes p's dtype, np.float64 its own
    dx = np.empty(p.shape, p.dtype)
    _ce_bwd(p, labels, p.dtype.type(1), kind.type(scale), dx)
    return dx
