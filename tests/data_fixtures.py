"""Small synthetic datasets for the tests: files written in the official formats (for
tests/test_data*.py and the experiments' in-process runs), and in-memory CIFAR-shaped arrays.

Every writer returns the arrays it wrote so the tests can compare what the
loaders read back. Nothing here is imported by the library.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def md5_of(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def cifar_batch(n: int, seed: int):
    """(data uint8 (n, 3072), labels list[int]) with every class present when n >= 10."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [(i + seed) % 10 for i in range(n)]
    return data, labels


def cifar_arrays(n: int, seed: int):
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) in memory: random pixels, labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), (np.arange(n) % 10).astype(np.int64)


def write_cifar_folder(root, n_per_batch: int = 12, n_test: int = 10, protocol: int = 2,
                       folder: str = "cifar-10-batches-py"):
    """Write data_batch_1..5, test_batch and batches.meta under root/folder.

    Returns {"train": (images (N,3,32,32), labels (N,)), "test": (...), "dir": Path}.
    """
    out = Path(root) / folder if folder else Path(root)
    out.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i, name in enumerate(CIFAR_TRAIN):
        data, labels = cifar_batch(n_per_batch, seed=i + 1)
        with open(out / name, "wb") as f:
            pickle.dump({b"batch_label": f"training batch {i + 1} of 5".encode(), b"labels": labels,
                         b"data": data, b"filenames": [b"x.png"] * n_per_batch}, f, protocol=protocol)
        xs.append(data)
        ys += labels
    data, labels = cifar_batch(n_test, seed=99)
    with open(out / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
                     b"filenames": [b"y.png"] * n_test}, f, protocol=protocol)
    with open(out / "batches.meta", "wb") as f:
        pickle.dump({b"num_cases_per_batch": n_per_batch, b"num_vis": 3072,
                     b"label_names": [c.encode() for c in CIFAR_CLASSES]}, f, protocol=protocol)
    train = (np.concatenate(xs).reshape(-1, 3, 32, 32), np.asarray(ys, dtype=np.int64))
    test = (data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64))
    return {"train": train, "test": test, "dir": out}


def write_cifar_tar_gz(work_dir, archive_path=None, **kw):
    """Build a cifar-10-python.tar.gz like the official one. Returns (path, md5, arrays)."""
    work_dir = Path(work_dir)
    arrays = write_cifar_folder(work_dir / "src", **kw)
    archive_path = Path(archive_path or work_dir / "cifar-10-python.tar.gz")
    with tarfile.open(archive_path, "w:gz") as tar:
        tar.add(arrays["dir"], arcname="cifar-10-batches-py")
    return archive_path, md5_of(archive_path), arrays


class _Evil:
    """Unpickling this calls os.mkdir(marker): proof of code execution if it happens."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def evil_pickle_bytes(marker, protocol: int = 2, wrap_in_batch: bool = True) -> bytes:
    """A pickle that would create directory ``marker`` via os.mkdir when loaded unsafely."""
    payload = _Evil(marker)
    if wrap_in_batch:
        payload = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"batch_label": payload}
    return pickle.dumps(payload, protocol=protocol)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 0x0000080N, big-endian dims)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_idx(path, array, gz: bool = True) -> Path:
    path = Path(path)
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz") if not path.name.endswith(".gz") else path
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def mnist_arrays(n: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def write_mnist_folder(folder, n_train: int = 30, n_test: int = 20, gz: bool = True):
    """The four IDX files in ``folder``. Returns {"train": (imgs, labels), "test": ...}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images, labels = mnist_arrays(n, seed=1 if split == "train" else 2)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


def write_image_folder(root, classes=("cats", "dogs"), n_per_class: int = 3, size=(8, 6),
                       fmt: str = "png", seed: int = 0):
    """root/<class>/img_k.<fmt> RGB images of ``size`` = (height, width). Returns {path: array HWC}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = {}
    for cls in classes:
        d = Path(root) / cls
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            arr = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
            p = d / f"img_{k}.{fmt}"
            Image.fromarray(arr).save(p)
            written[p] = arr
    return written


def png_bytes(height: int, width: int, color=(1, 2, 3)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()
