"""``minicnn.save`` / ``minicnn.load``: nested dicts of arrays as ``.npz``, no pickle.

A checkpoint is a (possibly nested) dict whose leaves are arrays, numbers,
booleans or strings -- a model's ``state_dict()``, an optimiser's, a history.
Nested keys are flattened with ``/`` (``"optimizer/state/0/exp_avg"``);
``load`` rebuilds the nesting. Files are read with ``allow_pickle=False``, so
loading an untrusted checkpoint cannot run code, and written to a temporary
file that is renamed into place, so an interrupted save never leaves a file
that looks complete.
"""

from __future__ import annotations

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


def _insert(root: dict, parts: list[str], value) -> None:
    d = root
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _rebuild(d):
    if not isinstance(d, dict):
        return d
    if _NONE in d:
        return None
    if "__list__" in d:
        n = int(d["__list__"])
        return [_rebuild(d[str(i)]) for i in range(n)]
    d.pop("__empty__", None)
    return {k: _rebuild(v) for k, v in d.items()}


def _leaf(a: np.ndarray):
    """0-d arrays come back as Python scalars (str, bool, int, float)."""
    return a.item() if a.ndim == 0 else a


def load(path) -> dict:
    """Read a checkpoint written by ``save``; arrays come back as NumPy arrays.

    0-d arrays (numbers, strings, booleans) come back as Python scalars.
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        raise FileNotFoundError(f"minicnn.load: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except ValueError as e:
        raise ValueError(f"minicnn.load: {path} holds pickled objects, which are refused ({e})") from e
    except Exception as e:
        raise ValueError(f"minicnn.load: {path} is not a readable .npz checkpoint ({e})") from e
    root: dict = {}
    for k, v in flat.items():
        _insert(root, k.split(_SEP), _leaf(v))
    return _rebuild(root)
