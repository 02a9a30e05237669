"""IDX reader, MNIST and Fashion-MNIST: formats, search folders, download, bad files."""

import gzip
import struct

import numpy as np
import pytest

from minicnn import data
from minicnn.data import idx, mnist

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx


_ORIGINAL_SYSTEM_DIRS = data.FashionMNIST.SYSTEM_DIRS


@pytest.fixture(autouse=True)
def _no_system_fashion_dir(monkeypatch):
    """Tests must not depend on whether Debian's package is installed here."""
    monkeypatch.setattr(data.FashionMNIST, "SYSTEM_DIRS", ())
    monkeypatch.delenv("MINICNN_DATA", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_roundtrip(tmp_path, gz):
    arrays = fx.write_mnist_folder(tmp_path / "mnist", n_train=30, n_test=20, gz=gz)
    train = data.MNIST(root=tmp_path, train=True)
    test = data.MNIST(root=tmp_path, train=False)
    assert train.images.shape == (30, 1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(train.labels, arrays["train"][1])
    np.testing.assert_array_equal(test.images[:, 0], arrays["test"][0])
    assert train.classes == [str(d) for d in range(10)]
    assert train.images.flags.writeable


def test_fashion_layouts(tmp_path):
    fx.write_mnist_folder(tmp_path / "a" / "fashion-mnist", n_train=10, n_test=10)
    fx.write_mnist_folder(tmp_path / "b" / "FashionMNIST" / "raw", n_train=11, n_test=10)
    fx.write_mnist_folder(tmp_path / "c", n_train=12, n_test=10)
    assert len(data.FashionMNIST(root=tmp_path / "a")) == 10
    assert len(data.FashionMNIST(root=tmp_path / "b")) == 11
    assert len(data.FashionMNIST(root=tmp_path / "c")) == 12
    ds = data.FashionMNIST(root=tmp_path / "a", train=False)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_fashion_system_dir_is_searched(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    fx.write_mnist_folder(system, n_train=13, n_test=10)
    monkeypatch.setattr(data.FashionMNIST, "SYSTEM_DIRS", (system,))
    assert len(data.FashionMNIST(root=tmp_path / "empty")) == 13


def test_debian_dir_is_the_default_system_dir():
    assert [p.as_posix() for p in _ORIGINAL_SYSTEM_DIRS] == ["/usr/share/datasets/fashion-mnist"]
    assert mnist.MNIST.SYSTEM_DIRS == ()
    assert "dataset-fashion-mnist" in mnist.FashionMNIST.HOW_TO_GET


def test_missing_files_message(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.MNIST(root=tmp_path / "r", train=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte[.gz]" in msg and "t10k-labels-idx1-ubyte[.gz]" in msg
    for folder in (tmp_path / "r" / "mnist", tmp_path / "r" / "MNIST" / "raw", tmp_path / "r"):
        assert str(folder) in msg
    assert "download=True" in msg


def test_download_from_file_mirror_with_md5(tmp_path):
    server = tmp_path / "server"
    arrays = fx.write_mnist_folder(server, n_train=15, n_test=10)
    md5 = {p.name: fx.md5_of(p) for p in server.iterdir()}
    mirrors = ["file:///nonexistent-mirror/", server.as_uri() + "/"]
    ds = data.MNIST(root=tmp_path / "root", train=True, download=True, mirrors=mirrors, md5=md5, progress=False)
    np.testing.assert_array_equal(ds.labels, arrays["train"][1])
    assert (tmp_path / "root" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert not (tmp_path / "root" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()  # only the split asked for


def test_download_wrong_md5(tmp_path):
    server = tmp_path / "server"
    fx.write_mnist_folder(server, n_train=15, n_test=10)
    md5 = {p.name: "f" * 32 for p in server.iterdir()}
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.FashionMNIST(root=tmp_path / "root", download=True, mirrors=[server.as_uri()], md5=md5,
                          progress=False)
    assert "MD5" in str(e.value) and "f" * 32 in str(e.value)
    leftovers = list((tmp_path / "root").rglob("*"))
    assert all(p.is_dir() for p in leftovers), leftovers


def test_wrong_magic_names_file(tmp_path):
    folder = tmp_path / "mnist"
    fx.write_mnist_folder(folder, n_train=10, n_test=10)
    # swap: a labels file where the images file should be
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(data.DatasetError) as e:
        data.MNIST(root=tmp_path, train=False)
    assert "t10k-images-idx3-ubyte.gz" in str(e.value) and "magic" in str(e.value)


def test_not_idx_at_all(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(data.DatasetError, match="wrong magic"):
        idx.read_idx(p, idx.IMAGES_MAGIC)
    with pytest.raises(data.DatasetError, match="not an IDX file"):
        idx.read_idx(p)
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(data.DatasetError, match="too short"):
        idx.read_idx(tmp_path / "tiny")


def test_count_mismatch(tmp_path):
    folder = tmp_path / "mnist"
    fx.write_mnist_folder(folder, n_train=10, n_test=10)
    fx.write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(data.DatasetError) as e:
        data.MNIST(root=tmp_path, train=False)
    msg = str(e.value)
    assert "10 images" in msg and "9 labels" in msg and "t10k-labels-idx1-ubyte.gz" in msg


def test_truncated_and_overlong_payload(tmp_path):
    good = fx.idx_bytes(np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes(good[:-7])
    with pytest.raises(data.DatasetError, match="truncated") as e:
        idx.read_idx(tmp_path / "short", idx.IMAGES_MAGIC)
    assert "short" in str(e.value)
    (tmp_path / "long").write_bytes(good + b"\0")
    with pytest.raises(data.DatasetError, match="longer than its header"):
        idx.read_idx(tmp_path / "long", idx.IMAGES_MAGIC)
    (tmp_path / "hdr").write_bytes(good[:10])
    with pytest.raises(data.DatasetError, match="header truncated"):
        idx.read_idx(tmp_path / "hdr")


def test_truncated_gzip(tmp_path):
    folder = tmp_path / "mnist"
    fx.write_mnist_folder(folder, n_train=50, n_test=10)
    p = folder / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(data.DatasetError) as e:
        data.MNIST(root=tmp_path, train=True)
    assert "train-images-idx3-ubyte.gz" in str(e.value) and "gzip" in str(e.value)


def test_label_out_of_range(tmp_path):
    folder = tmp_path / "mnist"
    fx.write_mnist_folder(folder, n_train=10, n_test=10)
    fx.write_idx(folder / "t10k-labels-idx1-ubyte", np.full(10, 12, np.uint8))
    with pytest.raises(data.DatasetError, match=r"\[0, 10\)"):
        data.MNIST(root=tmp_path, train=False)


def test_other_idx_types():
    arr = np.arange(12, dtype=">i4").reshape(3, 4)
    raw = bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 3, 4) + arr.tobytes()
    out = idx.parse_idx(raw)
    np.testing.assert_array_equal(out, np.arange(12).reshape(3, 4))
    assert out.dtype.isnative
    out = idx.parse_idx(gzip.decompress(gzip.compress(raw)))
    assert out.shape == (3, 4)


def test_dimensions_whose_product_overflows_name_the_file(tmp_path):
    """(2**32-1)**3 overflows int64: the error must still name the file and the sizes."""
    dims = struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    for gz in (False, True):
        raw = bytes([0, 0, 8, 3]) + dims + b"\0" * 16
        path = tmp_path / ("huge.gz" if gz else "huge")
        path.write_bytes(gzip.compress(raw) if gz else raw)
        with pytest.raises(data.DatasetError) as e:
            idx.read_idx(path, idx.IMAGES_MAGIC)
        msg = str(e.value)
        assert str(path) in msg and "(4294967295, 4294967295, 4294967295)" in msg
        assert str((2**32 - 1) ** 3) in msg  # the exact byte count, not a wrapped one
    with pytest.raises(data.DatasetError, match=str((2**32 - 1) ** 3)):
        idx.parse_idx(bytes([0, 0, 8, 3]) + dims, source="mem")
