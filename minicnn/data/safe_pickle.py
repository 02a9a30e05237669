"""A restricted unpickler for the CIFAR-10 "python version" batches.

``pickle.load`` on an untrusted file can run arbitrary code: the file names a
global (``os.system``, ``builtins.eval`` ...) and calls it. The CIFAR batches
only need dicts, lists, bytes, str, ints and NumPy arrays. Dicts, lists,
tuples, bytes, str, ints, floats, None and booleans are built by pickle
opcodes without looking up any global; a NumPy array needs a handful of
NumPy internals (``_reconstruct``, ``ndarray``, ``dtype`` and, for other
protocols, ``scalar`` / ``_frombuffer`` / ``_codecs.encode``). Those, and only
those, are admitted; any other global is refused with
:class:`UnsafePickleError` *before* anything is called, so nothing executes.
Persistent ids (``persistent_load``) are refused too.

The names are accepted under both NumPy 1 (``numpy.core...``) and NumPy 2
(``numpy._core...``) spellings and are mapped to the objects of the NumPy
installed here, so the Python 2 pickles of the official download load as
well.

Plain data can be hostile too, so three more guards (issue 14):

* before anything is built, :func:`minicnn.data.pickle_scan.scan_pickle`
  reads the opcodes and refuses deep nesting (which crashes Python), too
  many objects, huge memo indices and opcodes a dataset never uses;
* the admitted callables are narrowed to what NumPy's own pickles do with
  them: ``numpy.ndarray`` is only a name that ``_reconstruct`` accepts, not a
  constructor (``ndarray(shape, dtype, buffer, offset, strides)`` would let
  one byte with zero strides pose as 300,000 images); ``_reconstruct`` only
  makes the empty placeholder array that the state then fills; ``dtype``
  always returns a fresh copy and never the object dtype; ``bytes`` only
  makes ``b""`` (how protocol 2 writes empty bytes, e.g. an empty array's);
* after loading, every array must be C-contiguous, hold no Python objects
  and lie inside the buffer it was read from (:func:`check_loaded`); any
  other type than dict, list, tuple, bytes, str, number, bool, None, NumPy
  array or scalar is refused.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import zlib

import numpy as np

from minicnn.data.errors import DatasetError, UnsafePickleError
from minicnn.data.pickle_scan import scan_pickle

# The actual callables, taken from NumPy's own pickling so the module path of
# this NumPy version does not matter.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.int64(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _refuse(what: str):
    raise UnsafePickleError(f"{what}; NumPy's own pickles never do that, so the file is corrupt or malicious")


class _NdarrayName:
    """What the global ``numpy.ndarray`` resolves to: a name for
    :func:`_reconstruct`, not a constructor (see the module docstring)."""

    def __call__(self, *args, **kwargs):
        _refuse(f"numpy.ndarray called as a constructor with {args!r:.80}: an array made "
                "this way can claim far more elements than the file holds")

    def __repr__(self):
        return "<numpy.ndarray (name only)>"


_NDARRAY = _NdarrayName()


def _reconstruct(cls, shape, dtype):
    """``_reconstruct(ndarray, (0,), b'b')``: the empty array that BUILD then fills."""
    if cls is not _NDARRAY or not isinstance(shape, tuple) or shape != (0,):
        _refuse(f"_reconstruct called with ({cls!r:.40}, {shape!r:.40}) instead of (ndarray, (0,))")
    return _RECONSTRUCT(np.ndarray, (0,), dtype)


def _dtype(spec, align=False, copy=True):
    """``numpy.dtype(spec, align, copy)``, always a copy (BUILD then sets its state), never object."""
    dt = np.dtype(spec, bool(align), True)
    if dt.hasobject:
        _refuse(f"dtype {dt} holds Python objects")
    return dt


def _scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar`` for NumPy scalars (np.int64(7) ...), not object ones."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        _refuse(f"scalar of dtype {dtype!r:.40}")
    return _SCALAR(dtype) if data is None else _SCALAR(dtype, data)


def _empty_bytes(*args):
    """``bytes()`` as protocol 2 writes ``b""``; ``bytes(10**9)`` would allocate a gigabyte."""
    if args:
        _refuse(f"bytes called with arguments {args!r:.60}")
    return b""


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles of bytes use it; only latin-1."""
    try:
        ok = isinstance(text, str) and codecs.lookup(encoding).name == "iso8859-1"
    except (LookupError, TypeError):
        ok = False
    if not ok:
        raise UnsafePickleError(
            f"_codecs.encode called with encoding {encoding!r}; only latin-1 "
            "(how pickle stores bytes) is allowed"
        )
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], object] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    _ALLOWED[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _FROMBUFFER
_ALLOWED[("numpy", "ndarray")] = _NDARRAY
_ALLOWED[("numpy", "dtype")] = _dtype
_ALLOWED[("_codecs", "encode")] = _latin1_encode
_ALLOWED[("__builtin__", "bytes")] = _empty_bytes  # Python 3's protocol 2 spelling
_ALLOWED[("builtins", "bytes")] = _empty_bytes

#: The (module, name) pairs a pickle may refer to.
ALLOWED_GLOBALS = frozenset(_ALLOWED)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file, *, source: str = "<pickle>", encoding: str = "bytes"):
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load the global '{module}.{name}'. "
                "A dataset pickle may only contain dicts, lists, bytes, str, numbers "
                "and NumPy arrays; this file asks for something else, so it is "
                "corrupt or malicious and was not loaded (nothing in it was run)."
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self._source}: refused a persistent id in the pickle ({pid!r:.60}); "
            "dataset pickles never use them"
        )


_PLAIN = (dict, list, tuple, bytes, bytearray, str, int, float, bool, type(None), np.ndarray, np.generic)


def _check_array(a: np.ndarray, source: str) -> None:
    """An array must be C-contiguous, hold no objects and fit in the memory it was read from."""
    if a.dtype.hasobject:
        raise DatasetError(f"{source}: refused an array of Python objects (dtype {a.dtype})")
    if not a.flags.c_contiguous:
        raise DatasetError(
            f"{source}: refused an array of shape {a.shape} with strides {a.strides}: arrays "
            "must be C-contiguous, each element stored once in the file"
        )
    owner = a
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    try:
        held = owner.nbytes if isinstance(owner, np.ndarray) else memoryview(owner).nbytes
    except TypeError:
        held = -1  # not a buffer at all
    if held < a.nbytes:
        raise DatasetError(
            f"{source}: refused an array of shape {a.shape} ({a.nbytes} bytes) backed by "
            f"only {held} bytes"
        )


def check_loaded(obj, *, source: str = "<pickle>") -> None:
    """Check everything ``obj`` holds (no recursion: an explicit stack, each object once).

    Types other than :data:`_PLAIN` are refused; arrays go through :func:`_check_array`.
    """
    seen: set[int] = set()
    todo = [obj]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if not isinstance(x, _PLAIN):
            raise UnsafePickleError(
                f"{source}: refused a {type(x).__name__} object; a dataset pickle only holds "
                "dicts, lists, tuples, bytes, str, numbers and NumPy arrays"
            )
        if isinstance(x, np.ndarray):
            _check_array(x, source)
        elif isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, (list, tuple)):
            todo.extend(x)


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "bytes"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    ``encoding="bytes"`` keeps Python 2 ``str`` objects as ``bytes`` (the
    official CIFAR-10 batches were written by Python 2; their keys then read
    as ``b'data'``, ``b'labels'`` ...). The opcodes are checked first
    (:func:`~minicnn.data.pickle_scan.scan_pickle`) and the result after
    (:func:`check_loaded`). Any failure -- a refused global or opcode, deep
    nesting, a strided array, a truncated or corrupt stream -- raises
    :class:`DatasetError` naming ``source``.
    """
    scan_pickle(data, source=source)
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except UnsafePickleError as e:
        if str(e).startswith(f"{source}:"):
            raise
        raise UnsafePickleError(f"{source}: refused to unpickle: {e}") from e  # name the file
    except (pickle.UnpicklingError, EOFError) as e:
        raise DatasetError(
            f"{source}: not a complete pickle ({type(e).__name__}: {e}); the file is "
            "truncated or corrupt -- delete it and fetch it again"
        ) from e
    except (ValueError, TypeError, AttributeError, KeyError, IndexError,
            OverflowError, MemoryError, RecursionError, zlib.error, UnicodeError) as e:
        raise DatasetError(
            f"{source}: malformed pickle ({type(e).__name__}: {e}); the file is "
            "corrupt or not in the expected format"
        ) from e
    check_loaded(obj, source=source)
    return obj


def safe_load(path: str | os.PathLike, *, encoding: str = "bytes"):
    """Read the file at ``path`` and unpickle it safely (see :func:`safe_loads`)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    return safe_loads(data, source=path, encoding=encoding)
