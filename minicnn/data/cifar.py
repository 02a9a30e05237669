"""CIFAR-10 from the official "python version" (pickled batches).

Layout looked for under the data root (first match wins):

* ``ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
  (what ``cifar-10-python.tar.gz`` unpacks to);
* the same files directly in ``ROOT`` (``root`` pointing at the batches folder);
* ``ROOT/cifar-10-python.tar.gz`` -- unpacked into ``ROOT/cifar-10-batches-py``;
* with ``download=True``: fetched from :data:`CIFAR10_URL`, MD5-checked against
  :data:`CIFAR10_MD5`, then unpacked.

Each batch is a pickled dict ``{b'data': uint8 (n, 3072) as R, G, B planes
of 32x32, b'labels': list of n ints, ...}``; ``batches.meta`` holds
``b'label_names'``. Batches are read with the restricted unpickler
(:mod:`minicnn.data.safe_pickle`) and checked (dtype, shape, label range,
count agreement) before use.

An archive already on disk is *not* compared with the official MD5 (it may be
a locally prepared copy whose checksum differs); it is only ever written
under its final name by a completed, verified download or by the user. Its
contents are validated batch by batch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from minicnn.data.dataset import ArrayDataset
from minicnn.data.download import download_url, extract_tar
from minicnn.data.errors import ChecksumError, DatasetError, DatasetNotFoundError
from minicnn.data.paths import describe_data_dir_choice, resolve_data_dir
from minicnn.data.safe_pickle import safe_load

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
ALL_FILES = TRAIN_FILES + TEST_FILES + (META_FILE,)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)


def _get(d: dict, key: str, path):
    """``d[b'key']`` or ``d['key']`` (Python 2 pickles read with bytes or latin-1 keys)."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    keys = sorted(repr(k[:40]) if isinstance(k, (bytes, str)) else type(k).__name__ for k in d)[:6]
    raise DatasetError(f"{path}: not a CIFAR-10 batch: the dict has no '{key}' entry (keys: {keys})")


def load_meta(path: str | os.PathLike) -> list[str]:
    """Class names from ``batches.meta`` (``b'label_names'``)."""
    meta = safe_load(path)
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 meta file: expected a dict, found {type(meta).__name__}")
    names = _get(meta, "label_names", path)
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DatasetError(f"{path}: 'label_names' must be a non-empty list of strings")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def load_batch(path: str | os.PathLike, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> ``(images uint8 (n, 3, 32, 32), labels int64 (n,))``."""
    batch = safe_load(path)
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 batch: expected a dict, found {type(batch).__name__}")
    data = _get(batch, "data", path)
    labels = _get(batch, "labels", path)
    if not isinstance(data, np.ndarray):
        raise DatasetError(f"{path}: 'data' must be a NumPy array, found {type(data).__name__}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"{path}: 'data' must be uint8 of shape (n, 3072), found {data.dtype} {data.shape}"
        )
    if isinstance(labels, np.ndarray):
        labels = labels.ravel()
    elif not isinstance(labels, (list, tuple)):
        raise DatasetError(f"{path}: 'labels' must be a list of ints, found {type(labels).__name__}")
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as e:
        raise DatasetError(f"{path}: 'labels' must be a list of ints ({e})") from e
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(f"{path}: 'labels' must be a flat list of ints, found dtype {labels.dtype} shape {labels.shape}")
    labels = labels.astype(np.int64)
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels; the counts must match")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{path}: labels must lie in [0, {num_classes}), found {int(labels.min())}..{int(labels.max())}"
        )
    return data.reshape(-1, *IMAGE_SHAPE), labels


def _complete(folder: Path, names) -> bool:
    return all((folder / n).is_file() for n in names)


def find_cifar10(root: Path, train: bool) -> Path | None:
    """The folder holding the batches needed for ``train``, or None."""
    needed = (TRAIN_FILES if train else TEST_FILES) + (META_FILE,)
    for folder in (root / FOLDER, root):
        if _complete(folder, needed):
            return folder
    return None


def _not_found_message(root: Path, root_arg, train: bool, extra: str = "", url: str = CIFAR10_URL) -> str:
    needed = (TRAIN_FILES if train else TEST_FILES) + (META_FILE,)
    folder = root / FOLDER
    missing = [n for n in needed if not (folder / n).is_file()]
    return (
        f"CIFAR-10 ({'train' if train else 'test'} split) not found. Looked for:\n"
        f"  {folder}/{{{', '.join(needed)}}}  (missing: {', '.join(missing)})\n"
        f"  {root}/{{{', '.join(needed)}}}\n"
        f"  {root / ARCHIVE}\n"
        f"Using {describe_data_dir_choice(root_arg)}.{extra}\n"
        f"To get it: {'pass download=True (needs network; fetches ' if not extra else 'retry download=True when online ('}"
        f"{url}, official MD5 {CIFAR10_MD5}), or download that file yourself and put it at "
        f"{root / ARCHIVE}, or, on these offline machines, run "
        f"`python ../shared/data/prepare_cifar10.py {root}`."
    )


def ensure_cifar10(
    root=None, *, train: bool = True, download: bool = False, url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5, progress: bool = True,
) -> Path:
    """Make sure the batches are on disk (extracting / downloading as allowed); return their folder."""
    root_arg = root
    root = resolve_data_dir(root)
    folder = find_cifar10(root, train)
    if folder is not None:
        return folder
    archive = root / ARCHIVE
    if not archive.is_file() and download:
        try:
            download_url(url, archive, md5, progress=progress)
        except ChecksumError:
            raise
        except DatasetError as e:
            raise DatasetNotFoundError(
                _not_found_message(root, root_arg, train, f"\nDownload failed: {e}", url)
            ) from e
    if archive.is_file():
        extract_tar(archive, root, top=FOLDER, only=ALL_FILES)
        folder = find_cifar10(root, train)
        if folder is None:
            raise DatasetError(
                f"{archive}: extracted, but {root / FOLDER} still lacks some of "
                f"{', '.join((TRAIN_FILES if train else TEST_FILES) + (META_FILE,))}; the archive is incomplete"
            )
        return folder
    raise DatasetNotFoundError(_not_found_message(root, root_arg, train, url=url))


class CIFAR10(ArrayDataset):
    """CIFAR-10: ``images uint8 (N, 3, 32, 32)``, ``labels int64 (N,)``, 10 ``classes``.

    ``N`` is 50,000 for ``train=True`` (``data_batch_1..5`` in order) and
    10,000 for the test split. ``root``: the data root (None ->
    ``$MINICNN_DATA`` or the cache folder, see :func:`resolve_data_dir`).
    ``url``/``md5`` can be replaced (tests, mirrors); ``md5=None`` skips the check.
    """

    def __init__(self, root=None, train: bool = True, download: bool = False, *,
                 url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5, progress: bool = True):
        folder = ensure_cifar10(root, train=train, download=download, url=url, md5=md5, progress=progress)
        classes = load_meta(folder / META_FILE)
        files = TRAIN_FILES if train else TEST_FILES
        parts = [load_batch(folder / name, num_classes=len(classes)) for name in files]
        if len(parts) == 1:
            images, labels = parts[0]
        else:
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
        super().__init__(images, labels, classes, source=str(folder))
        self.root = folder
        self.train = train
