"""ImageFolder: root/<class>/*.png|jpg, sizes checked or resized, bad images named."""

import numpy as np
import pytest

from minicnn import data

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx


def test_reads_classes_and_pixels(tmp_path):
    written = fx.write_image_folder(tmp_path, classes=("dogs", "cats"), n_per_class=3, size=(8, 6))
    ds = data.ImageFolder(tmp_path)
    assert ds.classes == ["cats", "dogs"]
    assert ds.images.shape == (6, 3, 8, 6) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    for i, path in enumerate(ds.files):
        np.testing.assert_array_equal(ds.images[i], written[path].transpose(2, 0, 1))
        assert ds.classes[ds.labels[i]] == path.parent.name


def test_ignores_other_files(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a",), n_per_class=2, size=(4, 4))
    (tmp_path / "a" / "notes.txt").write_text("hi")
    (tmp_path / "stray.png").write_bytes(fx.png_bytes(4, 4))
    assert len(data.ImageFolder(tmp_path)) == 2


def test_jpg_and_grayscale(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a", "b"), n_per_class=2, size=(5, 7), fmt="jpg")
    ds = data.ImageFolder(tmp_path, mode="L")
    assert ds.images.shape == (4, 1, 5, 7)


def test_wrong_size_is_named(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a", "b"), n_per_class=2, size=(8, 8))
    odd = tmp_path / "b" / "odd.png"
    odd.write_bytes(fx.png_bytes(9, 8))
    with pytest.raises(data.DatasetError) as e:
        data.ImageFolder(tmp_path)
    assert "odd.png" in str(e.value) and "9x8" in str(e.value) and "8x8" in str(e.value)
    with pytest.raises(data.DatasetError, match="odd.png"):
        data.ImageFolder(tmp_path, size=8)


def test_resize(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a", "b"), n_per_class=2, size=(8, 8))
    (tmp_path / "b" / "odd.png").write_bytes(fx.png_bytes(20, 10, color=(10, 20, 30)))
    ds = data.ImageFolder(tmp_path, size=(4, 6), resize=True)
    assert ds.images.shape == (5, 3, 4, 6)
    i = [p.name for p in ds.files].index("odd.png")
    assert (ds.images[i] == np.array([10, 20, 30], np.uint8)[:, None, None]).all()


def test_many_images_threaded(tmp_path):
    written = fx.write_image_folder(tmp_path, classes=("a", "b", "c"), n_per_class=30, size=(4, 5))
    ds = data.ImageFolder(tmp_path, workers=4)
    assert len(ds) == 90
    for i, path in enumerate(ds.files):
        np.testing.assert_array_equal(ds.images[i], written[path].transpose(2, 0, 1))


def test_corrupt_image(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a",), n_per_class=2, size=(16, 16))
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(data.DatasetError, match="broken.png"):
        data.ImageFolder(tmp_path, size=16)
    (tmp_path / "a" / "broken.png").unlink()
    good = tmp_path / "a" / "img_0.png"
    raw = good.read_bytes()
    good.write_bytes(raw[: len(raw) // 2])  # truncated inside the pixel data
    with pytest.raises(data.DatasetError, match="img_0.png"):
        data.ImageFolder(tmp_path, size=16)


def test_empty_and_missing(tmp_path):
    with pytest.raises(data.DatasetNotFoundError, match="does not exist"):
        data.ImageFolder(tmp_path / "nope")
    with pytest.raises(data.DatasetNotFoundError, match="no class sub-folders"):
        data.ImageFolder(tmp_path)
    fx.write_image_folder(tmp_path, classes=("a",), n_per_class=1, size=(4, 4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetError, match="empty"):
        data.ImageFolder(tmp_path)


def test_bad_arguments(tmp_path):
    fx.write_image_folder(tmp_path, classes=("a",), n_per_class=1, size=(4, 4))
    with pytest.raises(ValueError, match="resize=True needs a size"):
        data.ImageFolder(tmp_path, resize=True)
    with pytest.raises(ValueError, match="mode"):
        data.ImageFolder(tmp_path, mode="CMYK")
