"""One writer per run folder: ``run.lock``, a lock file naming its owner.

Two runs writing into one folder would overwrite each other's checkpoints
and results (one deletes the other's ``best.npz``, the other's
``results.json`` then describes weights that are gone). So a run holds
``FOLDER/run.lock`` while it writes there, and a second one is refused with
:class:`RunLockedError`, naming the owner (pid, host, start time, command).

How "held" is decided:

* where ``fcntl`` exists (Linux, macOS), by an exclusive ``flock`` on the
  file: the kernel drops it when the owner ends, even on ``kill -9`` or a
  crash, so a lock file left behind by a dead run is stale by construction
  and is taken over (the message says whose it was);
* elsewhere (or on a file system without ``flock``), by the pid written in the
  file: a lock whose process is not alive on this host is stale and replaced;
  one from another host is honoured (its process cannot be checked from here).

The lock is re-entrant within a process (the experiments hold their folder
for the whole task, the Trainer takes it again inside ``fit``) and released
by :meth:`RunLock.release` or the ``with`` block's end, exceptions and
Ctrl-C included: the file is removed.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = "run.lock"

#: This process's locks: resolved lock path -> [RunLock holding the file, count].
_HELD: dict[str, list] = {}


class RunLockedError(RuntimeError):
    """Another live process is writing into the run folder."""


def _owner_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}


def _parse(text: str) -> dict:
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def pid_alive(pid) -> bool:
    """Whether a process with this id exists on this machine (one of another user's counts)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def describe_owner(info: dict) -> str:
    if not info.get("pid"):
        return "an unknown process"
    text = f"pid {info['pid']}"
    if info.get("host"):
        text += f" on {info['host']}"
    if info.get("started"):
        text += f", started {info['started']}"
    if info.get("command"):
        text += f": {info['command']}"
    return text


class RunLock:
    """``with RunLock(folder): ...`` -- hold ``folder/run.lock`` (the folder is created).

    ``log``: where the note about a replaced stale lock goes (default: stderr).
    Raises :class:`RunLockedError` when another live process holds it.
    """

    def __init__(self, folder, log=None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._log = log or (lambda s: print(s, file=sys.stderr))
        self._fd = None
        self._key = None

    # -- public --------------------------------------------------------------
    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        held = _HELD.get(key)
        if held is not None:  # this process holds it already: re-entrant
            held[1] += 1
            self._key = key
            return self
        stale = self._acquire_flock() if fcntl is not None else None
        if stale is None and self._fd is None:  # no fcntl, or a file system without flock
            stale = self._acquire_pid_file()
        if stale.get("pid") and stale.get("pid") != os.getpid():
            self._log(f"note: replacing a stale lock in {self.folder} left by {describe_owner(stale)} "
                      "(that run is no longer running)")
        self._key = key
        _HELD[key] = [self, 1]
        return self

    def release(self) -> None:
        if self._key is None:
            return
        held = _HELD.get(self._key)
        key, self._key = self._key, None
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        owner = held[0]
        try:
            if owner._fd is None or _same_file(owner.path, owner._fd):
                owner.path.unlink(missing_ok=True)
        finally:
            if owner._fd is not None:
                os.close(owner._fd)  # drops the flock
                owner._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- the two ways ----------------------------------------------------------
    def _acquire_flock(self) -> dict | None:
        """Lock by ``flock``; returns what the file said before (a stale owner), or None
        when this file system cannot ``flock`` (then the pid file decides)."""
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                info = _parse(_read_fd(fd))
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._locked(info) from None
                return None  # ENOLCK, EINVAL ...: no flock here
            if not _same_file(self.path, fd):  # released and removed by its owner meanwhile: again
                os.close(fd)
                continue
            previous = _parse(_read_fd(fd))
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(_owner_info()) + "\n").encode(), 0)
            self._fd = fd
            return previous
        raise RunLockedError(f"{self.path}: could not take the lock (it kept changing)")

    def _acquire_pid_file(self) -> dict:
        """Lock by creating the file exclusively; a file naming a dead process on this host is replaced."""
        stale = {}
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    info = _parse(self.path.read_text())
                except FileNotFoundError:
                    continue
                if info.get("host") not in (None, socket.gethostname()) or pid_alive(info.get("pid")):
                    raise self._locked(info) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                stale = info
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(_owner_info()) + "\n")
            return stale
        raise RunLockedError(f"{self.path}: could not take the lock (it kept changing)")

    def _locked(self, info: dict) -> RunLockedError:
        return RunLockedError(
            f"{self.folder} is in use by another run ({describe_owner(info)}); two runs writing into "
            f"one folder would overwrite each other's checkpoints and results. Wait for that run to end, "
            f"or write this one elsewhere (another --out). If no such run exists any more, delete {self.path}.")


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace")
    except OSError:
        return ""


def _same_file(path: Path, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
