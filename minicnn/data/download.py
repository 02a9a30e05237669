"""Downloading with a checksum, a progress bar and an atomic write; safe tar extraction.

:func:`download_url` streams a URL (``https://``, ``http://`` or ``file://``)
into a temporary file beside the destination, computes its MD5 on the way,
and renames it to the final name only when the transfer is complete and the
digest matches. An interrupted or corrupted download therefore never leaves
a file under the final name; the temporary file is removed on any failure.

:func:`extract_tar` unpacks an archive member by member, refusing absolute
paths, ``..``, links and anything outside the expected top folder, and moves
each file into place with an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from minicnn.atomic import atomic_write
from minicnn.data.errors import ChecksumError, DatasetError

_CHUNK = 1 << 20


def md5sum(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    """Hex MD5 digest of a file."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def check_md5(path: str | os.PathLike, md5: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has MD5 ``md5``."""
    got = md5sum(path)
    if got.lower() != md5.lower():
        raise ChecksumError(f"{path}: MD5 is {got}, expected {md5.lower()}; the file is corrupt or a different version")


def _progress_bar(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def download_url(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the MD5 when given.

    Returns ``dest`` as a Path. Raises :class:`ChecksumError` on a digest
    mismatch, :class:`DatasetError` when the URL cannot be fetched or the
    transfer ends early (shorter than the announced length). In every failure
    case ``dest`` is left untouched (not created if it did not exist).
    """
    dest = Path(dest)
    bar = None
    try:
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        with atomic_write(dest, suffix=".part") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = getattr(e, "reason", e)
                raise DatasetError(f"could not download {url}: {reason}") from e
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                bar = _progress_bar(total, dest.name, progress)
                try:
                    while True:
                        block = response.read(_CHUNK)
                        if not block:
                            break
                        out.write(block)
                        h.update(block)
                        size += len(block)
                        if bar is not None:
                            bar.update(len(block))
                except (OSError, urllib.error.URLError) as e:
                    raise DatasetError(f"download of {url} was interrupted after {size} bytes: {e}") from e
            if total is not None and size != total:
                raise DatasetError(
                    f"download of {url} is incomplete: got {size} of {total} bytes"
                )
            if md5 is not None:
                got = h.hexdigest()
                if got.lower() != md5.lower():
                    raise ChecksumError(
                        f"download of {url} has MD5 {got}, expected {md5.lower()} "
                        f"({size} bytes); the file was discarded, {dest} was not written"
                    )
    finally:
        if bar is not None:
            bar.close()
    return dest


def download_first(
    urls: Sequence[str], dest: str | os.PathLike, md5: str | None = None, *, progress: bool = True
) -> Path:
    """Try each mirror in ``urls`` in turn; raise with every failure listed if none works."""
    errors = []
    for url in urls:
        try:
            return download_url(url, dest, md5, progress=progress)
        except DatasetError as e:
            errors.append(str(e))
    raise DatasetError(f"could not download {Path(dest).name} from any mirror:\n  " + "\n  ".join(errors))


def _safe_member_path(member: tarfile.TarInfo, top: str | None, archive: Path) -> PurePosixPath | None:
    """The member's relative path, or None to skip it; raise on anything dangerous."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DatasetError(f"{archive}: refusing unsafe member path {member.name!r}")
    parts = [p for p in name.parts if p not in ("", ".")]
    if not parts:
        return None
    if member.issym() or member.islnk() or member.isdev() or member.isfifo():
        raise DatasetError(f"{archive}: refusing link or special file {member.name!r}")
    if top is not None and parts[0] != top:
        raise DatasetError(f"{archive}: unexpected member {member.name!r} outside '{top}/'")
    return PurePosixPath(*parts)


def extract_tar(
    archive: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    top: str | None = None,
    only: Iterable[str] | None = None,
) -> list[Path]:
    """Safely extract the regular files of a (gz/bz2/xz) tar archive into ``dest_dir``.

    ``top``: every member must lie under this first folder name. ``only``:
    if given, extract just the members whose base name is in it. Each file is
    written to a temporary name then renamed, so a failure midway never
    leaves a half-written file. A truncated or corrupt archive raises
    :class:`DatasetError` naming it. Returns the extracted paths.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    wanted = set(only) if only is not None else None
    written: list[Path] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                rel = _safe_member_path(member, top, archive)
                if rel is None or member.isdir():
                    continue
                if not member.isfile():
                    raise DatasetError(f"{archive}: refusing special member {member.name!r}")
                if wanted is not None and rel.name not in wanted:
                    continue
                target = dest_dir.joinpath(*rel.parts)
                src = tar.extractfile(member)
                with atomic_write(target, suffix=".part") as out, src:
                    shutil.copyfileobj(src, out, _CHUNK)
                    if out.tell() != member.size:
                        raise DatasetError(f"{archive}: member {member.name!r} is truncated")
                written.append(target)
    except DatasetError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError) and not archive.exists():
            raise DatasetError(f"{archive}: archive not found") from e
        raise DatasetError(
            f"{archive}: cannot extract ({type(e).__name__}: {e}); the archive is truncated "
            "or corrupt -- delete it and download it again"
        ) from e
    return written
