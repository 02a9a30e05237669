"""Per-channel mean and standard deviation of an image array.

For ``uint8`` images the sums of ``x`` and ``x**2`` are accumulated exactly
in integers, chunk by chunk -- no float copy of the whole dataset (CIFAR-10
train would be 1.2 GB in float64). Other dtypes are reduced in chunks with
float64 accumulators (two passes: mean, then squared deviations).
"""

from __future__ import annotations

import numpy as np

from minicnn.data.errors import DatasetError


def channel_stats(images, *, channel_axis: int = 1, scale: float | None = None, chunk: int = 4096):
    """Per-channel ``(mean, std)`` (population std, ``float64 (C,)`` each).

    ``images``: ``(N, C, H, W)`` by default (``channel_axis=1``); use
    ``channel_axis=-1`` for NHWC. ``scale``: values are divided by it before
    the statistics; the default is 255 for ``uint8`` input (so the result is
    on the ``[0, 1]`` scale used after ``ToFloat``) and 1 otherwise.
    """
    x = np.asarray(images)
    if x.ndim < 2:
        raise DatasetError(f"channel_stats: expected an image batch with a channel axis, got shape {x.shape}")
    if x.size == 0:
        raise DatasetError("channel_stats: empty image array")
    x = np.moveaxis(x, channel_axis, 1)
    c = x.shape[1]
    if scale is None:
        scale = 255.0 if x.dtype == np.uint8 else 1.0
    if x.dtype == np.uint8:
        # Exact integer sums of x and x**2 per channel (x**2 <= 65025 fits uint16).
        axes = (0,) + tuple(range(2, x.ndim))
        s1 = np.zeros(c, dtype=np.int64)
        s2 = np.zeros(c, dtype=np.int64)
        for start in range(0, len(x), chunk):
            part = x[start:start + chunk]
            s1 += part.sum(axis=axes, dtype=np.int64)
            sq = part.astype(np.uint16)
            sq *= sq
            s2 += sq.sum(axis=axes, dtype=np.int64)
        n = x.size // c
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
    else:
        mean = np.empty(c)
        var = np.empty(c)
        for k in range(c):
            n, s = 0, 0.0
            for start in range(0, len(x), chunk):
                part = x[start:start + chunk, k].astype(np.float64)
                n += part.size
                s += part.sum()
            m = s / n
            s2 = 0.0
            for start in range(0, len(x), chunk):
                part = x[start:start + chunk, k].astype(np.float64)
                s2 += ((part - m) ** 2).sum()
            mean[k], var[k] = m, s2 / n
    return mean / scale, np.sqrt(var) / scale
