"""``ImageFolder``: a user's own images laid out as ``root/<class>/*.png|jpg``.

Classes are the sub-folder names, sorted; label ``k`` is ``classes[k]``.
Files directly in ``root`` and files with other extensions are ignored.
Every image is decoded with Pillow, converted to ``mode`` (``"RGB"`` -> 3
channels, ``"L"`` -> 1) and either resized to ``size`` (``resize=True``) or
checked to have that size; with ``size=None`` all images must match the
first one. Any unreadable image or size mismatch raises
:class:`DatasetError` naming the file.

16-bit grayscale images (PNG, TIFF, PGM; Pillow mode ``"I;16"`` or ``"I"``)
are scaled to 8 bits (65535 -> 255) first: Pillow's own conversion clips
every value above 255, which would turn them almost white.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from minicnn.data.dataset import ArrayDataset
from minicnn.data.errors import DatasetError, DatasetNotFoundError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
_MODES = {"RGB": 3, "L": 1}
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16-bit grayscale as Pillow opens it


def _as_hw(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


class ImageFolder(ArrayDataset):
    """Images ``uint8 (N, C, H, W)`` (C = 3 for ``mode="RGB"``, 1 for ``"L"``), labels ``int64 (N,)``.

    ``size``: ``int`` or ``(height, width)``; ``resize``: resize every image
    to ``size`` (bilinear) instead of requiring it. ``extensions``: the file
    suffixes read (case-insensitive). Loading decodes in a small thread pool.
    """

    def __init__(self, root, size=None, resize: bool = False, mode: str = "RGB", *,
                 extensions=IMAGE_EXTENSIONS, workers: int | None = None):
        from PIL import Image  # noqa: F401 - fail early with the import error

        if mode not in _MODES:
            raise ValueError(f"ImageFolder: mode must be one of {sorted(_MODES)}, got {mode!r}")
        hw = _as_hw(size)
        if resize and hw is None:
            raise ValueError("ImageFolder: resize=True needs a size")
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise DatasetError(
                f"{root} is a file, not a folder; expected a folder laid out as "
                f"{root}/<class name>/<image>.png|jpg"
            )
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"image folder {root} does not exist; expected {root}/<class name>/<image>.png|jpg"
            )
        exts = tuple(e.lower() for e in extensions)
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise DatasetNotFoundError(
                f"{root}: no class sub-folders; expected {root}/<class name>/<image>.png|jpg"
            )
        files: list[Path] = []
        labels: list[int] = []
        for k, name in enumerate(classes):
            found = sorted(
                p for p in (root / name).iterdir()
                if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")
            )
            if not found:
                raise DatasetError(
                    f"{root / name}: class folder has no images with extensions {', '.join(exts)}"
                )
            files += found
            labels += [k] * len(found)

        if hw is None:
            hw = self._decode(files[0], mode, None, False).shape[1:]
        workers = workers or min(8, os.cpu_count() or 1)
        images = np.empty((len(files), _MODES[mode], *hw), dtype=np.uint8)

        def work(i):
            images[i] = self._decode(files[i], mode, hw, resize)

        if workers > 1 and len(files) > 64:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, range(len(files))))
        else:
            for i in range(len(files)):
                work(i)
        super().__init__(images, np.asarray(labels, dtype=np.int64), classes, source=str(root))
        self.root = root
        self.files = files

    @staticmethod
    def _decode(path: Path, mode: str, hw, resize: bool) -> np.ndarray:
        """One image file -> ``uint8 (C, H, W)``."""
        from PIL import Image

        try:
            with Image.open(path) as img:
                if img.mode in _WIDE_MODES:
                    img = _to_8bit(img, path)
                img = img.convert(mode)
                if hw is not None and (img.height, img.width) != tuple(hw):
                    if not resize:
                        raise DatasetError(
                            f"{path}: image is {img.height}x{img.width} (HxW), expected "
                            f"{hw[0]}x{hw[1]}; pass resize=True to resize, or fix the file"
                        )
                    img = img.resize((hw[1], hw[0]), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except DatasetError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # PIL.UnidentifiedImageError and "image file is truncated" are OSErrors
            raise DatasetError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _to_8bit(img, path: Path):
    """A 16-bit grayscale image -> an 8-bit ``"L"`` image, 0..65535 scaled to 0..255 (rounded)."""
    from PIL import Image

    a = np.asarray(img).astype(np.int64)  # "I;16" reads as uint16, "I" as int32
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise DatasetError(
            f"{path}: {img.mode} image with values {a.min()}..{a.max()}; expected 8-bit or "
            "16-bit (0..65535) pixel values"
        )
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8))
