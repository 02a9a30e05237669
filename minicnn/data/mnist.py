"""MNIST and Fashion-MNIST from their four IDX files (gz or raw).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each either
gzip-compressed (``.gz``, as distributed) or plain.

Folders searched, in order (the first holding both files of the split wins):

* MNIST: ``ROOT/mnist``, ``ROOT/MNIST/raw`` (torchvision's layout), ``ROOT``;
* Fashion-MNIST: ``ROOT/fashion-mnist``, ``ROOT/FashionMNIST/raw``, ``ROOT``,
  then ``/usr/share/datasets/fashion-mnist`` (Debian package
  ``dataset-fashion-mnist``).

With ``download=True`` missing files are fetched into ``ROOT/mnist`` or
``ROOT/fashion-mnist`` from the first mirror that works, each checked against
its official MD5. Files already on disk are not compared with those digests
(repackaged copies, e.g. Debian's, are recompressed); their content is
validated instead (magic numbers, sizes, counts, label range).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from minicnn.data.dataset import ArrayDataset
from minicnn.data.download import download_first
from minicnn.data.errors import DatasetError, DatasetNotFoundError
from minicnn.data.idx import read_idx_pair
from minicnn.data.paths import DEBIAN_FASHION_MNIST, describe_data_dir_choice, resolve_data_dir

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


class _IDXDataset(ArrayDataset):
    """Shared loader; subclasses set the names, folders, mirrors and digests."""

    NAME = ""
    SUBDIRS: tuple[str, ...] = ()
    SYSTEM_DIRS: tuple[Path, ...] = ()
    MIRRORS: tuple[str, ...] = ()
    MD5: dict = {}
    CLASSES: tuple[str, ...] = ()
    HOW_TO_GET = ""

    def __init__(self, root=None, train: bool = True, download: bool = False, *,
                 mirrors: Sequence[str] | None = None, md5: dict | None = None, progress: bool = True):
        root_arg = root
        root = resolve_data_dir(root)
        names = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
        folders = [root.joinpath(*s.split("/")) for s in self.SUBDIRS] + [root] + list(self.SYSTEM_DIRS)
        found = self._search(folders, names)
        download_error = ""
        if found is None and download:
            target = root.joinpath(*self.SUBDIRS[0].split("/"))
            md5 = self.MD5 if md5 is None else md5
            mirrors = self.MIRRORS if mirrors is None else tuple(mirrors)
            try:
                for name in names:
                    if _find_file(target, name) is None:
                        fname = name + ".gz"
                        download_first([m.rstrip("/") + "/" + fname for m in mirrors], target / fname,
                                       md5.get(fname), progress=progress)
                found = self._search([target], names)
            except DatasetError as e:
                download_error = f"\nDownload failed: {e}"
        if found is None:
            raise DatasetNotFoundError(self._not_found(folders, names, root_arg, download_error))
        images, labels = read_idx_pair(*found, num_classes=len(self.CLASSES))
        super().__init__(images, labels, self.CLASSES, source=str(found[0].parent))
        self.root = found[0].parent
        self.train = train
        self.files = found

    @staticmethod
    def _search(folders, names):
        for folder in folders:
            paths = [_find_file(folder, n) for n in names]
            if all(paths):
                return tuple(paths)
        return None

    def _not_found(self, folders, names, root_arg, extra):
        lines = [f"{self.NAME} ({'train' if names[0].startswith('train') else 'test'} split) not found. "
                 f"Looked for {names[0]}[.gz] and {names[1]}[.gz] in:"]
        lines += [f"  {f}" for f in folders]
        lines.append(f"Using {describe_data_dir_choice(root_arg)}.{extra}")
        lines.append(
            f"To get it: pass download=True (needs network; mirrors {', '.join(self.MIRRORS)}), "
            f"or download the four .gz files yourself into {folders[0]}{self.HOW_TO_GET}."
        )
        return "\n".join(lines)


class MNIST(_IDXDataset):
    """MNIST digits: ``images uint8 (N, 1, 28, 28)``, ``labels int64 (N,)``, classes '0'..'9'.

    ``N`` = 60,000 (train) or 10,000 (test). ``mirrors``/``md5`` (file name
    -> digest) can be replaced for other servers or tests.
    """

    NAME = "MNIST"
    SUBDIRS = ("mnist", "MNIST/raw")
    MIRRORS = MNIST_MIRRORS
    MD5 = MNIST_MD5
    CLASSES = MNIST_CLASSES


class FashionMNIST(_IDXDataset):
    """Fashion-MNIST: ``images uint8 (N, 1, 28, 28)``, ``labels int64 (N,)``, 10 clothing classes.

    Same files and layout as :class:`MNIST`; also found in Debian's
    ``/usr/share/datasets/fashion-mnist``.
    """

    NAME = "Fashion-MNIST"
    SUBDIRS = ("fashion-mnist", "FashionMNIST/raw")
    SYSTEM_DIRS = (DEBIAN_FASHION_MNIST,)
    MIRRORS = FASHION_MIRRORS
    MD5 = FASHION_MD5
    CLASSES = FASHION_CLASSES
    HOW_TO_GET = ", or install Debian's package dataset-fashion-mnist (apt install dataset-fashion-mnist)"
