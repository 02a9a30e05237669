"""``ArrayDataset``: a whole dataset held in memory as two arrays.

Layout (every dataset in :mod:`minicnn.data` uses it):

* ``images`` -- ``uint8`` array of shape ``(N, C, H, W)`` (NCHW, the layout
  the layers use; CIFAR-10 is ``(N, 3, 32, 32)``, MNIST ``(N, 1, 28, 28)``);
* ``labels`` -- ``int64`` array of shape ``(N,)`` with values in
  ``[0, len(classes))``;
* ``classes`` -- list of class names, ``classes[k]`` names label ``k``.

``to_float()`` gives ``float32`` ``(N, C, H, W)`` in ``[0, 1]``. Indexing
``ds[i]`` / ``ds[idx_array]`` returns ``(images[i], labels[i])`` (host NumPy
arrays); the :class:`~minicnn.data.loader.DataLoader` makes float backend
batches.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from minicnn.data.errors import DatasetError


class ArrayDataset:
    """Images ``uint8 (N, C, H, W)``, labels ``int64 (N,)`` and class names."""

    def __init__(self, images, labels, classes: Sequence[str] | None = None, *, source: str = "arrays"):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise DatasetError(f"{source}: images must have shape (N, C, H, W), got {images.shape}")
        if labels.ndim != 1:
            raise DatasetError(f"{source}: labels must have shape (N,), got {labels.shape}")
        if len(images) != len(labels):
            raise DatasetError(
                f"{source}: {len(images)} images but {len(labels)} labels; the counts must match"
            )
        if labels.dtype.kind not in "iu":
            raise DatasetError(f"{source}: labels must be integers, got dtype {labels.dtype}")
        labels = labels.astype(np.int64, copy=False)
        if classes is None:
            classes = [str(k) for k in range(int(labels.max()) + 1)] if len(labels) else []
        classes = [str(c) for c in classes]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DatasetError(
                f"{source}: labels must lie in [0, {len(classes)}), found values "
                f"{int(labels.min())}..{int(labels.max())}"
            )
        self.images = images
        self.labels = labels
        self.classes = classes
        self.source = source

    # -- array-like -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        """``(images[index], labels[index])`` for an int, slice or index array."""
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, image_shape={self.image_shape}, "
            f"dtype={self.images.dtype}, classes={len(self.classes)}, source={self.source!r})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` -- the raw arrays (no copy)."""
        return self.images, self.labels

    def to_float(self) -> np.ndarray:
        """All images as ``float32 (N, C, H, W)`` scaled to ``[0, 1]`` (a new array)."""
        from minicnn.data.transforms import to_float

        return to_float(self.images)

    def class_counts(self) -> np.ndarray:
        """``int64 (num_classes,)``: how many images each class has."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``(mean, std)`` of the images on the ``[0, 1]`` scale, each ``(C,)``."""
        from minicnn.data.stats import channel_stats

        return channel_stats(self.images)

    def subset(self, indices) -> "ArrayDataset":
        """A new ArrayDataset with the rows ``indices`` (copies those rows)."""
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        return ArrayDataset(self.images[indices], self.labels[indices], self.classes, source=self.source)


def as_dataset(data) -> ArrayDataset:
    """Accept an :class:`ArrayDataset` or an ``(images, labels)`` pair."""
    if isinstance(data, ArrayDataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return ArrayDataset(data[0], data[1])
    if hasattr(data, "images") and hasattr(data, "labels"):
        return ArrayDataset(data.images, data.labels, getattr(data, "classes", None))
    raise TypeError(
        f"expected an ArrayDataset or an (images, labels) pair, got {type(data).__name__}"
    )
