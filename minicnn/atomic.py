"""Atomic file writes: the one place minicnn writes a file that must not be
left half-written (checkpoints, histories, downloads, extracted archives).

``with atomic_write(path) as f: ...`` writes to a temporary file beside
``path``; when the block ends normally the file is flushed, fsynced, given the
usual permissions (0666 & ~umask, as ``open`` would) and renamed over
``path``. When the block raises, the temporary file is removed and ``path`` is
untouched (not created if it did not exist).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)  # read the process umask (os.umask sets and returns the old one)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, suffix: str = ".tmp", encoding: str | None = None,
                 newline: str | None = None):
    """Yield a file object open on a temporary file next to ``path`` (see the module doc).

    mode: ``"wb"`` or ``"w"`` (text: ``encoding`` defaults to UTF-8).
    suffix: of the temporary file (``.part`` for downloads); its name starts
    with ``.`` + path's name, so a leftover is easy to recognise.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_write(path, "w", newline="") as f:
        f.write(text)
    return Path(path)
