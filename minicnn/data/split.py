"""Seeded train/validation splits and smaller subsets.

Both functions take an :class:`~minicnn.data.dataset.ArrayDataset` (or an
``(images, labels)`` pair) and return new ArrayDatasets whose rows keep
their original relative order. The choice of rows depends only on ``seed``
(a fixed default, so a split is the same on every run unless asked
otherwise). Sizes are generic: ``train_val_split(train, 5000)`` turns
Fashion-MNIST's 60,000 into 55,000/5,000.
"""

from __future__ import annotations

import numpy as np

from minicnn.data.dataset import ArrayDataset, as_dataset


def _count(n_total: int, size, name: str) -> int:
    """``size`` as a row count: an int is a count, a float in (0, 1) a fraction of ``n_total``."""
    if isinstance(size, (float, np.floating)):
        if not 0.0 < float(size) < 1.0:
            raise ValueError(f"{name}: a float size is a fraction in (0, 1), got {size}; pass an int for a count")
        return int(round(n_total * float(size)))
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise TypeError(f"{name}: size must be an int or a float fraction, got {size!r}")
    if not 0 <= size <= n_total:
        raise ValueError(f"{name}: size {size} is outside [0, {n_total}]")
    return int(size)


def _stratified_pick(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` indices with each class represented in proportion (largest remainder)."""
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (k / n)
    take = np.floor(exact).astype(np.int64)
    short = k - int(take.sum())
    if short:
        order = np.argsort(-(exact - take), kind="stable")
        take[order[:short]] += 1
    picked = []
    for cls, t in zip(classes, take):
        members = np.flatnonzero(labels == cls)
        picked.append(rng.choice(members, size=int(t), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def _pick(labels, k, seed, stratified) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if stratified:
        return _stratified_pick(labels, k, rng)
    return np.sort(rng.permutation(len(labels))[:k])


def train_val_split(data, val_size=5000, seed: int = 0, stratified: bool = False):
    """Split into ``(train, val)`` ArrayDatasets; ``val_size`` rows (int) or a fraction (float in (0, 1)).

    Seeded random choice of the validation rows (``stratified=True`` keeps the
    class proportions). The two parts are disjoint and cover every row.
    """
    ds = as_dataset(data)
    k = _count(len(ds), val_size, "train_val_split")
    val_idx = _pick(ds.labels, k, seed, stratified)
    mask = np.ones(len(ds), dtype=bool)
    mask[val_idx] = False
    return ds.subset(np.flatnonzero(mask)), ds.subset(val_idx)


def subset(data, fraction: float | None = 0.1, *, size: int | None = None, stratified: bool = True,
           seed: int = 0) -> ArrayDataset:
    """A smaller ArrayDataset: ``fraction`` of the rows (default a tenth), or exactly ``size`` rows.

    ``stratified=True`` keeps the class proportions (largest-remainder
    rounding); ``False`` takes a seeded random sample.
    """
    ds = as_dataset(data)
    if size is not None:
        k = _count(len(ds), size, "subset")
    else:
        if fraction is None or not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"subset: fraction must be in (0, 1], got {fraction}")
        k = int(round(len(ds) * float(fraction)))
    return ds.subset(_pick(ds.labels, k, seed, stratified))
