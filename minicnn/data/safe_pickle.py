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
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import zlib

import numpy as np

from minicnn.data.errors import DatasetError, UnsafePickleError

# The actual callables, taken from NumPy's own pickling so the module path of
# this NumPy version does not matter.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.int64(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


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
    _ALLOWED[(_mod, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_mod, "scalar")] = _SCALAR
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _FROMBUFFER
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
_ALLOWED[("_codecs", "encode")] = _latin1_encode

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


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "bytes"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    ``encoding="bytes"`` keeps Python 2 ``str`` objects as ``bytes`` (the
    official CIFAR-10 batches were written by Python 2; their keys then read
    as ``b'data'``, ``b'labels'`` ...). Any failure -- a refused global, a
    truncated or corrupt stream -- raises :class:`DatasetError` naming ``source``.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError) as e:
        raise DatasetError(
            f"{source}: not a complete pickle ({type(e).__name__}: {e}); the file is "
            "truncated or corrupt -- delete it and fetch it again"
        ) from e
    except (ValueError, TypeError, AttributeError, KeyError, IndexError,
            OverflowError, MemoryError, zlib.error, UnicodeError) as e:
        raise DatasetError(
            f"{source}: malformed pickle ({type(e).__name__}: {e}); the file is "
            "corrupt or not in the expected format"
        ) from e


def safe_load(path: str | os.PathLike, *, encoding: str = "bytes"):
    """Read the file at ``path`` and unpickle it safely (see :func:`safe_loads`)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    return safe_loads(data, source=path, encoding=encoding)
