"""CIFAR-10 loader: official python layout, tar.gz, download from file://, bad files."""

import pickle

import numpy as np
import pytest

from minicnn import data

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx


def test_reads_official_folder_layout(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=12, n_test=10)
    train = data.CIFAR10(root=tmp_path, train=True)
    test = data.CIFAR10(root=tmp_path, train=False)
    assert train.images.shape == (60, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.labels.shape == (60,)
    np.testing.assert_array_equal(train.images, arrays["train"][0])
    np.testing.assert_array_equal(train.labels, arrays["train"][1])
    np.testing.assert_array_equal(test.images, arrays["test"][0])
    np.testing.assert_array_equal(test.labels, arrays["test"][1])
    assert train.classes == fx.CIFAR_CLASSES
    # R, G, B planes: channel 0 of image 0 is the first 1024 bytes of its row.
    raw = arrays["train"][0].reshape(-1, 3072)
    np.testing.assert_array_equal(train.images[0, 1].ravel(), raw[0, 1024:2048])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_protocols(tmp_path, protocol):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=3, n_test=3, protocol=protocol)
    ds = data.CIFAR10(root=tmp_path, train=False)
    np.testing.assert_array_equal(ds.images, arrays["test"][0])


def test_python2_numpy1_global_names_are_accepted(tmp_path):
    """Official batches name numpy.core.multiarray._reconstruct (NumPy 1 spelling)."""
    fx.write_cifar_folder(tmp_path, n_per_batch=3, n_test=4, protocol=2)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    raw = path.read_bytes()
    if b"numpy._core.multiarray" in raw:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(raw)
    assert b"numpy.core.multiarray" in raw
    ds = data.CIFAR10(root=tmp_path, train=False)
    assert len(ds) == 4


def test_root_may_point_at_batches_folder(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    ds = data.CIFAR10(root=arrays["dir"], train=False)
    assert len(ds) == 2


def test_env_var_root(tmp_path, monkeypatch):
    fx.write_cifar_folder(tmp_path / "envroot", n_per_batch=2, n_test=3)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "envroot"))
    assert len(data.CIFAR10(train=False)) == 3


def test_missing_data_error_lists_paths_and_remedies(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.CIFAR10(root=tmp_path / "nothing", train=True)
    msg = str(e.value)
    assert str(tmp_path / "nothing" / "cifar-10-batches-py") in msg
    assert "data_batch_1" in msg and "batches.meta" in msg
    assert str(tmp_path / "nothing" / "cifar-10-python.tar.gz") in msg
    assert "download=True" in msg and "prepare_cifar10.py" in msg
    assert isinstance(e.value, ValueError)


def test_partial_folder_names_missing_file(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    (arrays["dir"] / "data_batch_3").unlink()
    with pytest.raises(data.DatasetNotFoundError, match="missing: data_batch_3"):
        data.CIFAR10(root=tmp_path, train=True)
    assert len(data.CIFAR10(root=tmp_path, train=False)) == 2  # test split is complete


def test_local_archive_is_extracted(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    archive, _, arrays = fx.write_cifar_tar_gz(tmp_path, root / "cifar-10-python.tar.gz", n_per_batch=4)
    ds = data.CIFAR10(root=root, train=True)
    np.testing.assert_array_equal(ds.images, arrays["train"][0])
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    # no temporary files left behind
    assert not [p for p in root.rglob("*.part")]


def test_download_from_file_url_checks_md5_and_extracts(tmp_path):
    archive, md5, arrays = fx.write_cifar_tar_gz(tmp_path / "server", n_per_batch=5)
    root = tmp_path / "root"
    ds = data.CIFAR10(root=root, train=True, download=True, url=archive.as_uri(), md5=md5, progress=False)
    np.testing.assert_array_equal(ds.images, arrays["train"][0])
    np.testing.assert_array_equal(ds.labels, arrays["train"][1])
    assert fx.md5_of(root / "cifar-10-python.tar.gz") == md5
    # second construction uses the extracted folder, even with a bogus URL
    ds2 = data.CIFAR10(root=root, train=False, download=True, url="file:///nonexistent", md5=md5)
    np.testing.assert_array_equal(ds2.images, arrays["test"][0])


def test_download_wrong_checksum_leaves_nothing(tmp_path):
    archive, md5, _ = fx.write_cifar_tar_gz(tmp_path / "server", n_per_batch=2)
    root = tmp_path / "root"
    with pytest.raises(data.ChecksumError) as e:
        data.CIFAR10(root=root, download=True, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert md5 in str(e.value) and "0" * 32 in str(e.value)
    assert not (root / "cifar-10-python.tar.gz").exists()
    assert not list(root.glob("*")), "no partial or temporary file may remain"


def test_download_of_truncated_file_fails_checksum(tmp_path):
    archive, md5, _ = fx.write_cifar_tar_gz(tmp_path / "server", n_per_batch=2)
    truncated = tmp_path / "server" / "short.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:-100])
    root = tmp_path / "root"
    with pytest.raises(data.ChecksumError):
        data.CIFAR10(root=root, download=True, url=truncated.as_uri(), md5=md5, progress=False)
    assert not (root / "cifar-10-python.tar.gz").exists()


def test_download_without_network_says_what_to_do(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.CIFAR10(root=tmp_path, download=True, url="http://127.0.0.1:9/cifar-10-python.tar.gz",
                     progress=False)
    msg = str(e.value)
    assert "Download failed" in msg and "127.0.0.1:9" in msg and "prepare_cifar10.py" in msg
    assert not list(tmp_path.glob("*.part"))


def test_truncated_local_archive(tmp_path):
    archive, _, _ = fx.write_cifar_tar_gz(tmp_path / "src", n_per_batch=3)
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(data.DatasetError) as e:
        data.CIFAR10(root=root)
    assert "cifar-10-python.tar.gz" in str(e.value)
    assert "truncated or corrupt" in str(e.value)


def test_truncated_batch_file(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=4, n_test=4)
    p = arrays["dir"] / "data_batch_2"
    p.write_bytes(p.read_bytes()[:-500])
    with pytest.raises(data.DatasetError) as e:
        data.CIFAR10(root=tmp_path)
    assert "data_batch_2" in str(e.value) and "truncated" in str(e.value)


def test_garbage_batch_file(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=4, n_test=4)
    (arrays["dir"] / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(data.DatasetError, match="test_batch"):
        data.CIFAR10(root=tmp_path, train=False)


def _rewrite_test_batch(arrays, changes):
    d = {b"batch_label": b"t", b"labels": [0, 1], b"data": np.zeros((2, 3072), np.uint8)}
    d.update(changes)
    with open(arrays["dir"] / "test_batch", "wb") as f:
        pickle.dump(d, f, protocol=4)


@pytest.mark.parametrize("changes, needle", [
    ({b"labels": [0, 1, 2]}, "2 images but 3 labels"),
    ({b"data": np.zeros((2, 3000), np.uint8)}, "shape (n, 3072)"),
    ({b"data": np.zeros((2, 3072), np.float32)}, "uint8"),
    ({b"labels": [0, 10]}, "labels must lie in [0, 10)"),
    ({b"labels": [0, -1]}, "labels must lie in [0, 10)"),
    ({b"labels": ["a", "b"]}, "labels"),
    ({b"data": [1, 2, 3]}, "NumPy array"),
])
def test_malformed_batches(tmp_path, changes, needle):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    _rewrite_test_batch(arrays, changes)
    with pytest.raises(data.DatasetError) as e:
        data.CIFAR10(root=tmp_path, train=False)
    assert needle in str(e.value) and "test_batch" in str(e.value)


def test_batch_without_data_key(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    with open(arrays["dir"] / "test_batch", "wb") as f:
        pickle.dump({b"labels": [0]}, f)
    with pytest.raises(data.DatasetError, match="no 'data' entry"):
        data.CIFAR10(root=tmp_path, train=False)


def test_malicious_batch_is_refused_and_not_executed(tmp_path):
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    marker = tmp_path / "pwned"
    (arrays["dir"] / "test_batch").write_bytes(fx.evil_pickle_bytes(marker))
    with pytest.raises(data.UnsafePickleError) as e:
        data.CIFAR10(root=tmp_path, train=False)
    assert "posix.mkdir" in str(e.value) or "os.mkdir" in str(e.value)
    assert "test_batch" in str(e.value)
    assert not marker.exists()


def test_archive_with_path_traversal_is_refused(tmp_path):
    import io
    import tarfile

    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        payload = b"owned"
        info = tarfile.TarInfo("cifar-10-batches-py/../../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(data.DatasetError, match="unsafe member"):
        data.CIFAR10(root=root)
    assert not (tmp_path / "escaped.txt").exists()


def test_archive_with_symlink_is_refused(tmp_path):
    import tarfile

    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(data.DatasetError, match="link"):
        data.CIFAR10(root=root)


def test_dataset_helpers(tmp_path):
    fx.write_cifar_folder(tmp_path, n_per_batch=10, n_test=10)
    ds = data.CIFAR10(root=tmp_path)
    f = ds.to_float()
    assert f.dtype == np.float32 and f.shape == (50, 3, 32, 32)
    np.testing.assert_allclose(f, ds.images / 255.0, rtol=0, atol=1e-7)
    assert ds.class_counts().tolist() == [5] * 10
    assert ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    x, y = ds[np.array([3, 1])]
    np.testing.assert_array_equal(y, ds.labels[[3, 1]])
    mean, std = ds.stats()
    np.testing.assert_allclose(mean, (ds.images / 255.0).mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(std, (ds.images / 255.0).std(axis=(0, 2, 3)), atol=1e-12)
