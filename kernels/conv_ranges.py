"""Batch ranges of a convolution's column matrices and partial results: the small moves and sums
the conv schedule (``conv_schedule.py``) and its direct paths (``conv_schedule_direct.py``) share."""

from __future__ import annotations


def kept_samples(cols, i, j, per_sample: int, wide: bool):
    """Samples i..j of a kept column matrix: (n, K, L) rows, or (K, n*L) columns when wide."""
    return cols[:, i * per_sample:j * per_sample] if wide else cols[i:j]


def to_wide(xp, a):
    """(n, R, L) -> (R, n*L), contiguous: the samples' blocks side by side (one copy)."""
    n, r, l = a.shape
    return xp.ascontiguousarray(a.transpose(1, 0, 2)).reshape(r, n * l)


def from_wide(xp, y, out, b) -> None:
    """out (n, R, L) = y (R, n*L) with the samples' blocks moved back (+ b (R,) per row): one pass."""
    n, r, l = out.shape
    blocks = y.reshape(r, n, l).transpose(1, 0, 2)
    if b is None:
        out[...] = blocks
    else:
        xp.add(blocks, b.reshape(1, r, 1), out=out)


def accumulate(acc, value):
    """acc += value, or value itself when there is no accumulator yet."""
    if acc is None:
        return value
    acc += value
    return acc


def sum_in_order(parts):
    """Sum per-share partial results in share order (independent of thread timing)."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total
