"""Batch transforms: each works on a whole ``(N, C, H, W)`` batch at once, vectorised.

A transform is called as ``t(x, rng=None)`` and returns a new batch; random
transforms draw their parameters (one per image) from ``rng`` (a NumPy
``Generator``; ``None`` -> :func:`minicnn.random.default_generator`). The
:class:`~minicnn.data.loader.DataLoader` passes a generator derived from its
seed and the epoch, so augmentation is reproducible. Transforms work on NumPy
and on CuPy arrays (the random parameters are drawn on the host).

Typical CIFAR-10 training pipeline::

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
             ToFloat(), Normalize(CIFAR10_MEAN, CIFAR10_STD)])

Crops and flips are cheap on ``uint8``; put ``ToFloat`` after them.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from minicnn.backend import array_module

#: Per-channel statistics of the CIFAR-10 training set on the [0, 1] scale
#: (official data; the offline JPEG copy matches the means to 1e-4).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)


def _rng(rng) -> np.random.Generator:
    if rng is None:
        from minicnn.random import default_generator

        return default_generator()
    return rng


def _check_batch(name: str, x) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of shape (N, C, H, W), got {tuple(x.shape)}")


def to_float(x, dtype=np.float32):
    """``uint8`` images -> ``float32`` in ``[0, 1]`` (same shape, new array; NumPy or CuPy).

    Floating input is only cast to ``dtype``; other integer types are divided by 255 too.
    """
    if x.dtype.kind in "ui":
        out = x.astype(dtype)
        out /= 255
        return out
    return x.astype(dtype, copy=False)


class Transform:
    """Base class: ``__call__(x, rng=None) -> x``."""

    random = False

    def __call__(self, x, rng=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order; passes the same ``rng`` to each."""

    def __init__(self, transforms: Iterable):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    @property
    def random(self) -> bool:
        return any(getattr(t, "random", True) for t in self.transforms)

    def __call__(self, x, rng=None):
        if rng is None and self.random:
            rng = _rng(None)
        for t in self.transforms:
            x = apply_transform(t, x, rng)
        return x

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


def apply_transform(t, x, rng):
    """Call ``t(x, rng)`` for a :class:`Transform`, ``t(x)`` for a plain callable."""
    return t(x, rng) if isinstance(t, Transform) else t(x)


class ToFloat(Transform):
    """``uint8 (N, C, H, W)`` -> ``float32`` in ``[0, 1]`` (like torchvision's ``ToTensor`` scaling)."""

    def __init__(self, dtype=np.float32):
        self.dtype = dtype

    def __call__(self, x, rng=None):
        return to_float(x, self.dtype)


ToTensor = ToFloat


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel, on a float batch ``(N, C, H, W)``.

    ``mean``/``std`` are on the scale of ``x`` (``[0, 1]`` after :class:`ToFloat`).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = tuple(float(m) for m in np.ravel(mean))
        self.std = tuple(float(s) for s in np.ravel(std))
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} must have the same non-zero length")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Normalize: std must be positive, got {self.std}")
        self._cache = {}

    def __call__(self, x, rng=None):
        _check_batch("Normalize", x)
        if x.dtype.kind not in "f":
            raise TypeError(
                f"Normalize: expected a float batch, got {x.dtype}; put ToFloat() before Normalize"
            )
        c = x.shape[1]
        if c != len(self.mean):
            raise ValueError(f"Normalize: batch has {c} channels but mean/std have {len(self.mean)}")
        xp = array_module(x)
        key = (xp.__name__, x.dtype.str)
        if key not in self._cache:
            m = xp.asarray(np.asarray(self.mean, dtype=x.dtype).reshape(1, c, 1, 1))
            inv = xp.asarray((1.0 / np.asarray(self.std, dtype=np.float64)).astype(x.dtype).reshape(1, c, 1, 1))
            self._cache[key] = (m, inv)
        m, inv = self._cache[key]
        out = x - m
        out *= inv
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (independently per image)."""

    random = True

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, x, rng=None):
        _check_batch("RandomHorizontalFlip", x)
        flip = _rng(rng).random(len(x)) < self.p
        xp = array_module(x)
        out = x.copy()
        idx = np.flatnonzero(flip)
        if len(idx):
            idx = xp.asarray(idx)
            out[idx] = x[idx, :, :, ::-1]
        return out


class RandomCrop(Transform):
    """Pad by ``padding`` on each side, then crop a random ``size`` window per image.

    ``size``: int or ``(h, w)``; ``None`` keeps the input size (the usual
    ``RandomCrop(32, padding=4)`` on CIFAR-10). ``fill``: the constant for
    ``padding_mode="constant"``; ``"reflect"`` and ``"edge"`` are also accepted.
    Vectorised: one ``pad`` of the batch and one gather with per-image offsets.
    """

    random = True

    def __init__(self, size=None, padding: int = 4, fill=0, padding_mode: str = "constant"):
        if size is not None:
            size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        if padding < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        if padding_mode not in ("constant", "reflect", "edge"):
            raise ValueError(f"RandomCrop: padding_mode must be constant, reflect or edge, got {padding_mode!r}")
        self.size = size
        self.padding = int(padding)
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, x, rng=None):
        _check_batch("RandomCrop", x)
        xp = array_module(x)
        n, c, h, w = x.shape
        p = self.padding
        th, tw = self.size if self.size is not None else (h, w)
        if p:
            pad = ((0, 0), (0, 0), (p, p), (p, p))
            if self.padding_mode == "constant":
                x = xp.pad(x, pad, mode="constant", constant_values=self.fill)
            else:
                x = xp.pad(x, pad, mode=self.padding_mode)
        ph, pw = h + 2 * p, w + 2 * p
        if th > ph or tw > pw:
            raise ValueError(f"RandomCrop: crop {th}x{tw} is larger than the padded image {ph}x{pw}")
        g = _rng(rng)
        oy = g.integers(0, ph - th + 1, size=n)
        ox = g.integers(0, pw - tw + 1, size=n)
        return crop_batch(x, oy, ox, th, tw)


def crop_batch(x, oy, ox, th: int, tw: int):
    """``out[i] = x[i, :, oy[i]:oy[i]+th, ox[i]:ox[i]+tw]`` for every ``i`` in one gather.

    ``x``: ``(N, C, H, W)`` NumPy or CuPy; ``oy``/``ox``: host int arrays ``(N,)``.
    Returns a new ``(N, C, th, tw)`` array.
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    swv = getattr(getattr(getattr(xp, "lib", None), "stride_tricks", None), "sliding_window_view", None)
    if swv is not None:
        # windows[i, c, y, x] is the (th, tw) window at (y, x); pick one per image.
        windows = swv(x, (th, tw), axis=(2, 3))
        return windows[xp.arange(n), :, xp.asarray(oy), xp.asarray(ox)]
    rows = xp.asarray(np.asarray(oy)[:, None] + np.arange(th))  # (N, th)
    cols = xp.asarray(np.asarray(ox)[:, None] + np.arange(tw))  # (N, tw)
    ni = xp.arange(n)[:, None, None, None]
    ci = xp.arange(c)[None, :, None, None]
    return x[ni, ci, rows[:, None, :, None], cols[:, None, None, :]]
