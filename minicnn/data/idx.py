"""The IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a 4-byte magic number -- two zero bytes, a type code
(``0x08`` = uint8 ...) and the number of dimensions -- then one big-endian
``uint32`` per dimension, then the data in C order. Image files have magic
2051 (``0x00000803``: uint8, 3-D ``(n, rows, cols)``), label files 2049
(``0x00000801``: uint8, 1-D ``(n,)``).

:func:`read_idx` checks the magic number and that the payload is exactly as
long as the header says (a truncated file or trailing bytes are errors), and
raises :class:`DatasetError` naming the file for any problem. Compression is
detected from the content (gzip magic ``1f 8b``), not the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from minicnn.data.errors import DatasetError

#: IDX type code -> NumPy dtype (big-endian for multi-byte types).
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # 2051
LABELS_MAGIC = 0x00000801  # 2049


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's content, gunzipped if it is a gzip stream."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DatasetError(
            f"{path}: corrupt or truncated gzip data ({type(e).__name__}: {e}); delete it and fetch it again"
        ) from e


def parse_idx(data: bytes, *, source: str = "<bytes>", expected_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes into an array (native byte order), checking header and length."""
    if len(data) < 4:
        raise DatasetError(f"{source}: too short for an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(
            f"{source}: wrong magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"(0x{expected_magic:08x}); this is not the expected IDX "
            f"{'image' if expected_magic == IMAGES_MAGIC else 'label'} file"
        )
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DatasetError(f"{source}: not an IDX file (magic 0x{magic:08x})")
    dtype = IDX_TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetError(f"{source}: IDX header truncated or invalid ({ndim} dimensions, {len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise DatasetError(
            f"{source}: IDX file {what}: header says shape {shape} ({expected} data bytes), "
            f"found {got} data bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else arr


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gz or raw) into an array; errors name ``path``."""
    return parse_idx(read_bytes(path), source=os.fspath(path), expected_magic=expected_magic)


def read_idx_pair(images_path, labels_path, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An images file and its labels file -> ``(uint8 (n, 1, rows, cols), int64 (n,))``.

    Checks the magic numbers, that both files have the same count, and
    that labels lie in ``[0, num_classes)`` when given.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(
            f"count mismatch: {images_path} has {len(images)} images but {labels_path} "
            f"has {len(labels)} labels"
        )
    labels = labels.astype(np.int64)
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise DatasetError(f"{labels_path}: labels must lie in [0, {num_classes}), found max {int(labels.max())}")
    # frombuffer arrays are read-only views of the bytes; make them ordinary arrays.
    return images.reshape(len(images), 1, *images.shape[1:]).copy(), labels
