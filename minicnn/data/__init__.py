"""Datasets, transforms and the mini-batch loader.

Arrays everywhere: a dataset holds ``images`` ``uint8 (N, C, H, W)``,
``labels`` ``int64 (N,)`` and ``classes`` (names); the loader yields
``(x float32 (B, C, H, W), y int64 (B,))`` on the active backend::

    from minicnn import data
    train = data.CIFAR10(root=None, train=True, download=False)   # root: --data-dir / $MINICNN_DATA / cache
    train, val = data.train_val_split(train, 5000, seed=0)
    aug = data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(),
                        data.ToFloat(), data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)])
    for x, y in data.DataLoader(train, 128, shuffle=True, seed=0, transform=aug):
        ...

Bad files raise :class:`DatasetError` (a ``ValueError``) naming the file and
the problem; missing data raises :class:`DatasetNotFoundError` listing what
was looked for where and how to get it.
"""

from minicnn.data.cifar import CIFAR10, CIFAR10_MD5, CIFAR10_URL
from minicnn.data.dataset import ArrayDataset, as_dataset
from minicnn.data.download import check_md5, download_url, extract_tar, md5sum
from minicnn.data.errors import ChecksumError, DatasetError, DatasetNotFoundError, UnsafePickleError
from minicnn.data.folder import ImageFolder
from minicnn.data.idx import read_idx
from minicnn.data.loader import DataLoader
from minicnn.data.mnist import MNIST, FashionMNIST
from minicnn.data.paths import add_data_dir_argument, default_data_dir, resolve_data_dir
from minicnn.data.safe_pickle import safe_load, safe_loads
from minicnn.data.split import subset, train_val_split
from minicnn.data.stats import channel_stats
from minicnn.data.transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToFloat,
    ToTensor,
    Transform,
    to_float,
)

__all__ = [
    "ArrayDataset", "CIFAR10", "CIFAR10_MD5", "CIFAR10_URL", "CIFAR10_MEAN", "CIFAR10_STD",
    "ChecksumError", "Compose", "DataLoader", "DatasetError", "DatasetNotFoundError",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "FashionMNIST", "ImageFolder", "MNIST",
    "MNIST_MEAN", "MNIST_STD", "Normalize", "RandomCrop", "RandomHorizontalFlip", "ToFloat",
    "ToTensor", "Transform", "UnsafePickleError", "add_data_dir_argument", "as_dataset",
    "channel_stats", "check_md5", "default_data_dir", "download_url", "extract_tar", "md5sum",
    "read_idx", "resolve_data_dir", "safe_load", "safe_loads", "subset", "to_float",
    "train_val_split",
]
