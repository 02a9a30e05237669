"""``minicnn.save`` / ``minicnn.load``: nested dicts of arrays as ``.npz``, no pickle.

A checkpoint is a (possibly nested) dict whose leaves are arrays, numbers,
booleans or strings -- a model's ``state_dict()``, an optimiser's, a history.
Nested keys are flattened with ``/`` (``"optimizer/state/0/exp_avg"``);
``load`` rebuilds the nesting. Files are read with ``allow_pickle=False``, so
loading an untrusted checkpoint cannot run code, and written to a temporary
file that is renamed into place, so an interrupted save never leaves a file
that looks complete.

``load`` reads the zip members itself rather than through ``np.load``: each
``.npy`` header is checked against the entry's size and against a memory
budget (twice the file size, at least 64 MiB) *before* the array is
allocated, and the data is streamed into it, so a 1 MB file of compressed
zeros cannot make it allocate a gigabyte. Errors name the file, the entry
and what was expected.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from minicnn.atomic import atomic_write
from minicnn.backend import to_numpy

_SEP = "/"
_NONE = "__none__"


def _flatten(obj, prefix: str, out: dict) -> None:
    if isinstance(obj, dict):
        if not obj and prefix:
            out[prefix + _SEP + "__empty__"] = np.zeros(0)
        for k, v in obj.items():
            k = str(k)
            if not k or _SEP in k:
                raise ValueError(f"minicnn.save: key {k!r} must be a non-empty string without '{_SEP}'")
            _flatten(v, f"{prefix}{_SEP}{k}" if prefix else k, out)
    elif isinstance(obj, (list, tuple)):
        out[prefix + _SEP + "__list__"] = np.asarray(len(obj))
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}{_SEP}{i}", out)
    elif obj is None:
        out[prefix + _SEP + _NONE] = np.zeros(0)
    elif isinstance(obj, (str, bool, int, float, np.generic)):
        out[prefix] = np.asarray(obj)
    elif hasattr(obj, "shape") and hasattr(obj, "dtype"):
        arr = to_numpy(obj)
        if arr.dtype == object:
            raise TypeError(f"minicnn.save: {prefix!r} is an object array; only numeric/str arrays are saved")
        out[prefix] = arr
    else:
        raise TypeError(
            f"minicnn.save: cannot store {prefix!r} of type {type(obj).__name__}; "
            "expected dict, list, array, number, bool, str or None"
        )


def save(obj: dict, path) -> Path:
    """Write a nested dict of arrays/scalars to ``path`` (.npz) atomically."""
    if not isinstance(obj, dict):
        raise TypeError(f"minicnn.save: expected a dict (e.g. model.state_dict()), got {type(obj).__name__}")
    flat: dict = {}
    _flatten(obj, "", flat)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    with atomic_write(path) as f:
        np.savez(f, **flat)
    return path


# --- reading -------------------------------------------------------------

#: Most array bytes a checkpoint may hold, as a multiple of its file size (a
#: file written by ``save`` is uncompressed: its arrays are smaller than the
#: file), with :data:`LOAD_FLOOR` allowed in any case.
LOAD_RATIO = 2
LOAD_FLOOR = 64 << 20
#: Deepest key nesting read back (``save`` writes a few levels).
MAX_KEY_DEPTH = 64
_CHUNK = 1 << 20
_MISSING = object()


class CheckpointError(ValueError):
    """A refused or unreadable checkpoint (a ``ValueError``; the message names the file)."""


def _npy_header(f, where: str):
    """(shape, fortran_order, dtype) of the ``.npy`` member open as ``f``, checked."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if dtype.hasobject:
        raise CheckpointError(f"{where} holds pickled objects (dtype {dtype}), which are refused: "
                              "a checkpoint only holds numeric, bool and str arrays")
    if any(d < 0 for d in shape):
        raise CheckpointError(f"{where}: negative dimension in shape {shape}")
    return shape, fortran, dtype


def _read_data(f, nbytes: int, where: str) -> np.ndarray:
    """Exactly ``nbytes`` from ``f`` into a new uint8 array; fewer or more is an error."""
    out = np.empty(nbytes, dtype=np.uint8)
    view, pos = memoryview(out), 0
    while pos < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - pos))
        if not chunk:
            raise CheckpointError(f"{where}: truncated: expected {nbytes} data bytes, found {pos}")
        view[pos: pos + len(chunk)] = chunk
        pos += len(chunk)
    if f.read(1):
        raise CheckpointError(f"{where}: more data than its header's {nbytes} bytes")
    return out


def _read_member(zf, info, where: str, budget: int) -> tuple[np.ndarray, int]:
    """One ``.npy`` member -> (array, bytes used). The header's size is checked
    against the zip entry's and against ``budget`` before anything is allocated."""
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, where)
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        stored = info.file_size - f.tell()
        if nbytes != stored:
            raise CheckpointError(f"{where}: header says shape {shape} {dtype} ({nbytes} bytes) but "
                                  f"the zip entry holds {stored} data bytes")
        if nbytes > budget:
            raise CheckpointError(f"{where}: {nbytes} bytes of array data would exceed what this "
                                  f"file can legitimately hold (budget left: {budget} bytes, twice "
                                  "the file size or 64 MiB); a small file that inflates this much "
                                  "is a decompression bomb")
        if dtype.itemsize == 0:
            return np.empty(shape, dtype), 0
        flat = _read_data(f, nbytes, where).view(dtype)
    arr = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return arr, nbytes


def _read_npz(path: Path) -> list[tuple[str, np.ndarray]]:
    """The (key, array) entries of an ``.npz`` file, read without pickle and within a memory budget."""
    budget = max(LOAD_RATIO * path.stat().st_size, LOAD_FLOOR)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"minicnn.load: {path} is not a readable .npz checkpoint ({e})") from e
    entries = []
    with zf:
        for info in zf.infolist():
            where = f"minicnn.load: {path}: entry {info.filename!r}"
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{where} is not a .npy array; a checkpoint holds only .npy entries")
            try:
                arr, used = _read_member(zf, info, where, budget)
            except CheckpointError:
                raise
            except (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error,
                    NotImplementedError) as e:  # RuntimeError: an encrypted entry
                raise CheckpointError(f"{where} is not a readable .npy array ({type(e).__name__}: {e})") from e
            budget -= used
            entries.append((info.filename[:-4], arr))
    return entries


def _conflict(path, key: str, other: str, name: str) -> CheckpointError:
    return CheckpointError(
        f"minicnn.load: {path}: entry {key!r} conflicts with entry {other!r}: {name!r} cannot be "
        "both a value and a group of entries; the file was not written by minicnn.save"
    )


def _insert(root: dict, key: str, value, path) -> None:
    """Put ``value`` at ``key``'s ``/``-separated place in ``root``."""
    parts = key.split(_SEP)
    if len(parts) > MAX_KEY_DEPTH or not all(parts):
        raise CheckpointError(f"minicnn.load: {path}: entry {key[:80]!r} must be 1 to {MAX_KEY_DEPTH} "
                              f"non-empty names separated by '{_SEP}'")
    d = root
    for i, p in enumerate(parts[:-1]):
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            prefix = _SEP.join(parts[: i + 1])
            raise _conflict(path, key, prefix, prefix)
    old = d.get(parts[-1], _MISSING)
    if isinstance(old, dict):
        raise _conflict(path, key, f"{key}{_SEP}{next(iter(old))}", key)
    if old is not _MISSING:
        raise CheckpointError(f"minicnn.load: {path}: entry {key!r} appears twice; the file was "
                              "not written by minicnn.save")
    d[parts[-1]] = value


def _rebuild_list(d: dict, where: str, path):
    n = d.pop("__list__")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise CheckpointError(f"minicnn.load: {path}: {where}/__list__ must be a list length, found {n!r}")
    wanted = {str(i) for i in range(n)}
    if set(d) != wanted:
        missing = sorted(wanted - set(d), key=int)[:5]
        extra = sorted(set(d) - wanted)[:5]
        raise CheckpointError(f"minicnn.load: {path}: list {where!r} declares {n} items; "
                              f"missing {missing}, unexpected {extra}")
    return [_rebuild(d[str(i)], f"{where}/{i}", path) for i in range(n)]


def _rebuild(d, where: str, path):
    """Turn the nested dicts of entries back into dicts, lists and None."""
    if not isinstance(d, dict):
        return d
    if _NONE in d:
        if len(d) > 1:
            other = f"{where}/{sorted(k for k in d if k != _NONE)[0]}"
            raise CheckpointError(f"minicnn.load: {path}: entry {where}/{_NONE} (None) conflicts with "
                                  f"entry {other}; the file was not written by minicnn.save")
        return None
    if "__list__" in d:
        return _rebuild_list(d, where, path)
    d.pop("__empty__", None)
    return {k: _rebuild(v, f"{where}/{k}" if where else k, path) for k, v in d.items()}


def _leaf(a: np.ndarray):
    """0-d arrays come back as Python scalars (str, bool, int, float)."""
    return a.item() if a.ndim == 0 else a


def load(path) -> dict:
    """Read a checkpoint written by ``save``; arrays come back as NumPy arrays.

    0-d arrays (numbers, strings, booleans) come back as Python scalars.
    Refused, with a :class:`CheckpointError` (a ``ValueError``) naming the
    file and the entry: object
    (pickled) arrays; an entry whose ``.npy`` header disagrees with its size;
    array data beyond ``LOAD_RATIO`` times the file size (at least
    ``LOAD_FLOOR``), checked before anything is allocated, so a small
    compressed file cannot inflate into gigabytes; names that clash (``a`` and
    ``a/b``) or malformed lists.
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        raise FileNotFoundError(f"minicnn.load: no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"minicnn.load: {path} is a folder, not a .npz checkpoint file")
    root: dict = {}
    for k, v in _read_npz(path):
        _insert(root, k, _leaf(v), path)
    if "__list__" in root or _NONE in root:
        raise CheckpointError(f"minicnn.load: {path}: the top level is a list or None; a checkpoint "
                              "written by minicnn.save is a dict")
    return _rebuild(root, "", path)
