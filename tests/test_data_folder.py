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


def _write_16bit_png(path, values):
    """A 16-bit grayscale PNG of ``values`` (uint16 2-D); Pillow reads it as mode "I;16"."""
    from PIL import Image

    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    """16-bit values 0..65535 map to 0..255 (Pillow's convert would clip them all to 255)."""
    from PIL import Image

    (tmp_path / "a").mkdir()
    values = np.array([[0, 257, 32768, 65535], [255, 1000, 40000, 65000]], np.uint16)
    _write_16bit_png(tmp_path / "a" / "deep.png", values)
    assert Image.open(tmp_path / "a" / "deep.png").mode.startswith("I")  # the case in question
    want = np.round(values / 257.0).astype(np.uint8)
    gray = data.ImageFolder(tmp_path, mode="L")
    np.testing.assert_array_equal(gray.images[0, 0], want)
    assert want.tolist()[0] == [0, 1, 128, 255]
    rgb = data.ImageFolder(tmp_path, mode="RGB", size=(1, 2), resize=True)
    assert rgb.images.shape == (1, 3, 1, 2)
    rgb = data.ImageFolder(tmp_path)
    for c in range(3):
        np.testing.assert_array_equal(rgb.images[0, c], want)


def test_16bit_pgm_mode_i_is_scaled(tmp_path):
    """A 16-bit PGM opens as Pillow mode "I" (32-bit ints): scaled the same way."""
    (tmp_path / "a").mkdir()
    values = np.array([[0, 65535, 32768]], np.uint16)
    (tmp_path / "a" / "x.pgm").write_bytes(b"P5 3 1 65535\n" + values.astype(">u2").tobytes())
    ds = data.ImageFolder(tmp_path, mode="L")
    assert ds.images[0, 0].tolist() == [[0, 255, 128]]


def test_root_is_a_file(tmp_path):
    f = tmp_path / "photo.png"
    f.write_bytes(fx.png_bytes(4, 4))
    with pytest.raises(data.DatasetError) as e:
        data.ImageFolder(f)
    msg = str(e.value)
    assert "is a file, not a folder" in msg and "does not exist" not in msg
    assert "<class name>" in msg and str(f) in msg
