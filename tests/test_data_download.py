"""download_url: atomic write, MD5, interruption; extract_tar safety; data dir resolution."""

import argparse
import io
import os
import tarfile
import urllib.request
from pathlib import Path

import pytest

from minicnn import data
from minicnn.data import download

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx


def test_download_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))  # several chunks
    dest = tmp_path / "out" / "dest.bin"
    data.download_url(src.as_uri(), dest, fx.md5_of(src), progress=True)
    assert dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["dest.bin"]


def test_md5_helpers(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert data.md5sum(p) == "900150983cd24fb0d6963f7d28e17f72"
    data.check_md5(p, "900150983CD24FB0D6963F7D28E17F72")
    with pytest.raises(data.ChecksumError, match="expected 0+"):
        data.check_md5(p, "0" * 32)


def test_existing_file_is_not_replaced_by_bad_download(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"new content")
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"old")
    with pytest.raises(data.ChecksumError):
        data.download_url(src.as_uri(), dest, "0" * 32, progress=False)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "src.bin"]


class _BrokenResponse(io.RawIOBase):
    """A response that delivers some bytes and then fails, like a dropped connection."""

    headers = {"Content-Length": "1000"}

    def __init__(self):
        self.sent = False

    def read(self, n=-1):
        if not self.sent:
            self.sent = True
            return b"x" * 100
        raise ConnectionResetError("connection reset by peer")

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _BrokenResponse())
    dest = tmp_path / "d" / "file.tar.gz"
    with pytest.raises(data.DatasetError, match="interrupted after 100 bytes"):
        data.download_url("https://example.invalid/file.tar.gz", dest, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_keyboard_interrupt_leaves_no_file(tmp_path, monkeypatch):
    class Stop(_BrokenResponse):
        def read(self, n=-1):
            if not self.sent:
                self.sent = True
                return b"y" * 10
            raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Stop())
    dest = tmp_path / "file.bin"
    with pytest.raises(KeyboardInterrupt):
        data.download_url("https://example.invalid/file.bin", dest, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_short_download_detected_by_length(tmp_path, monkeypatch):
    class Short(_BrokenResponse):
        def read(self, n=-1):
            if not self.sent:
                self.sent = True
                return b"z" * 10
            return b""

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Short())
    with pytest.raises(data.DatasetError, match="incomplete: got 10 of 1000"):
        data.download_url("https://example.invalid/f", tmp_path / "f", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url(tmp_path):
    with pytest.raises(data.DatasetError, match="could not download"):
        data.download_url((tmp_path / "missing").as_uri(), tmp_path / "x", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_extract_tar_only_and_top(tmp_path):
    d = tmp_path / "src" / "top"
    d.mkdir(parents=True)
    (d / "a").write_bytes(b"A")
    (d / "b").write_bytes(b"B")
    arc = tmp_path / "x.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(d, arcname="top")
    out = tmp_path / "out"
    written = download.extract_tar(arc, out, top="top", only=["a"])
    assert written == [out / "top" / "a"] and (out / "top" / "a").read_bytes() == b"A"
    with pytest.raises(data.DatasetError, match="outside 'other/'"):
        download.extract_tar(arc, out, top="other")


def test_extract_not_an_archive(tmp_path):
    p = tmp_path / "fake.tar.gz"
    p.write_bytes(b"hello")
    with pytest.raises(data.DatasetError, match="fake.tar.gz"):
        download.extract_tar(p, tmp_path / "out")


# -- data directory ---------------------------------------------------------

def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data.resolve_data_dir() == Path.home() / ".cache" / "minicnn-data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.resolve_data_dir() == tmp_path / "xdg" / "minicnn-data"
    assert data.default_data_dir() == tmp_path / "xdg" / "minicnn-data"
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    assert data.resolve_data_dir() == tmp_path / "env"
    assert data.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.resolve_data_dir("~/d") == Path.home() / "d"
    assert not (tmp_path / "env").exists(), "resolving must not create folders"


def test_data_dir_argument(monkeypatch, tmp_path):
    parser = data.add_data_dir_argument(argparse.ArgumentParser())
    assert parser.parse_args([]).data_dir is None
    args = parser.parse_args(["--data-dir", str(tmp_path)])
    assert data.resolve_data_dir(args.data_dir) == tmp_path
    assert "MINICNN_DATA" in parser.format_help()


def test_error_says_where_root_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "from-env"))
    with pytest.raises(data.DatasetNotFoundError, match=r"from \$MINICNN_DATA"):
        data.CIFAR10()
    with pytest.raises(data.DatasetNotFoundError, match="given as data_dir"):
        data.CIFAR10(root=tmp_path)
