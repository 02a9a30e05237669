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

The file is streamed, header first: the declared size is checked against
what the file can hold before anything is allocated (a plain file: its
length; a gzip file: at most :data:`GZIP_MAX_RATIO` times its length), and
decompression stops at the first byte past the declared size. A 1 MB gzip
"bomb" of a gigabyte of zeros behind a small header is refused after
reading one byte too many, not after inflating the gigabyte.
"""

from __future__ import annotations

import gzip
import math
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


#: Deflate (gzip) cannot compress more than about 1032:1, so a gzip file of
#: ``n`` bytes can hold at most about ``1032 * n`` bytes of data.
GZIP_MAX_RATIO = 1032
_CHUNK = 1 << 20  # bytes decompressed per read


def _header(head: bytes, source: str, expected_magic: int | None):
    """The 4-byte magic number -> (dtype, ndim), checked."""
    if len(head) < 4:
        raise DatasetError(f"{source}: too short for an IDX file ({len(head)} bytes)")
    magic = int.from_bytes(head[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(
            f"{source}: wrong magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"(0x{expected_magic:08x}); this is not the expected IDX "
            f"{'image' if expected_magic == IMAGES_MAGIC else 'label'} file"
        )
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or head[3] == 0:
        raise DatasetError(f"{source}: not an IDX file (magic 0x{magic:08x})")
    return IDX_TYPES[head[2]], head[3]


def _shape(dims: bytes, ndim: int, source: str, have: int) -> tuple[int, ...]:
    """The ``ndim`` big-endian uint32 dimensions; ``have``: the bytes the file has, for the message."""
    if len(dims) < 4 * ndim:
        raise DatasetError(f"{source}: IDX header truncated or invalid ({ndim} dimensions, {have} bytes)")
    return tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))


def _size_error(source, shape, expected, got, more=False) -> DatasetError:
    what = "longer than its header says" if more or got > expected else "truncated"
    found = f"more than {expected}" if more else str(got)
    return DatasetError(
        f"{source}: IDX file {what}: header says shape {shape} ({expected} data bytes), "
        f"found {found} data bytes"
    )


def _native(arr: np.ndarray) -> np.ndarray:
    return arr.astype(arr.dtype.newbyteorder("="), copy=False) if arr.dtype.itemsize > 1 else arr


def parse_idx(data: bytes, *, source: str = "<bytes>", expected_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes already in memory into an array (native byte order), checking header and length."""
    dtype, ndim = _header(data[:4], source, expected_magic)
    shape = _shape(data[4: 4 + 4 * ndim], ndim, source, len(data))
    header = 4 + 4 * ndim
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(data) - header != expected:
        raise _size_error(source, shape, expected, len(data) - header)
    return _native(np.frombuffer(data, dtype=dtype, offset=header).reshape(shape))


def _read_payload(stream, source: str, shape, dtype, limit: int) -> np.ndarray:
    """Read exactly the data the header declares into a new array, then check nothing follows.

    ``limit``: the most data bytes the file can hold (a plain file: exactly
    its size; gzip: the ratio bound); a header declaring more is refused
    before anything is allocated.
    """
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if expected > limit:
        raise DatasetError(
            f"{source}: IDX header says shape {shape} ({expected} data bytes), but this file "
            f"can hold at most {limit} data bytes; it is truncated or corrupt"
        )
    out = np.empty(expected, dtype=np.uint8)
    view, pos = memoryview(out), 0
    while pos < expected:
        n = stream.readinto(view[pos: pos + _CHUNK])
        if not n:
            raise _size_error(source, shape, expected, pos)
        pos += n
    if stream.read(1):  # stop at one byte: never decompress more than the header promised
        raise _size_error(source, shape, expected, expected + 1, more=True)
    return _native(out.view(dtype).reshape(shape))


def _read_stream(stream, source: str, expected_magic, size: int, gz: bool) -> np.ndarray:
    """Header, then payload, from an open (possibly gunzipping) stream of a ``size``-byte file."""
    dtype, ndim = _header(stream.read(4), source, expected_magic)
    shape = _shape(stream.read(4 * ndim), ndim, source, size)
    if gz:
        return _read_payload(stream, source, shape, dtype, GZIP_MAX_RATIO * size)
    have = size - 4 - 4 * ndim  # a plain file: its payload size is known
    if math.prod(shape) * dtype.itemsize != have:
        raise _size_error(source, shape, math.prod(shape) * dtype.itemsize, have)
    return _read_payload(stream, source, shape, dtype, have)


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gz or raw) into a new writable array; errors name ``path``.

    The file is streamed: the header is read first, a declared size that the
    file cannot hold is refused before any allocation, and exactly the
    declared bytes are decompressed (a gzip bomb stops at the first extra
    byte), so memory stays at the size of the array.
    """
    source = os.fspath(path)
    try:
        f = open(source, "rb")
    except OSError as e:
        raise DatasetError(f"{source}: cannot read ({e})") from e
    with f:
        size = os.fstat(f.fileno()).st_size
        gz = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        try:
            stream = gzip.GzipFile(fileobj=f, mode="rb") if gz else f
            return _read_stream(stream, source, expected_magic, size, gz)
        except (EOFError, OSError, zlib.error) as e:
            what = "corrupt or truncated gzip data" if gz else "cannot read"
            raise DatasetError(
                f"{source}: {what} ({type(e).__name__}: {e}); delete it and fetch it again"
            ) from e


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
    return images.reshape(len(images), 1, *images.shape[1:]), labels
