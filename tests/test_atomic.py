"""minicnn.atomic: a write either lands whole or leaves the target as it was."""

from __future__ import annotations

import os
import stat

import pytest

from minicnn.atomic import atomic_write, write_text_atomic


def test_success_replaces_the_file_with_open_like_permissions(tmp_path):
    p = tmp_path / "sub" / "a.bin"
    with atomic_write(p) as f:
        f.write(b"new")
    assert p.read_bytes() == b"new"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert write_text_atomic(tmp_path / "t.txt", "x\r\ny") == tmp_path / "t.txt"
    assert (tmp_path / "t.txt").read_bytes() == b"x\r\ny"  # newlines as given
    assert sorted(q.name for q in tmp_path.iterdir()) == ["sub", "t.txt"]


@pytest.mark.parametrize("existed", [True, False])
def test_an_exception_leaves_the_target_untouched_and_no_temporary(tmp_path, existed):
    p = tmp_path / "a.npz"
    if existed:
        p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(p, suffix=".part") as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert (p.read_bytes() == b"old") if existed else not p.exists()
    assert [q.name for q in tmp_path.iterdir()] == (["a.npz"] if existed else [])


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
