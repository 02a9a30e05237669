"""The real datasets from the offline copies beside the checkout (../shared/data).

Skipped, with the reason, when that folder is absent. CIFAR-10 is laid out
in the official python format by ``prepare_cifar10.py`` into the data root
(``$MINICNN_DATA`` or ``~/.cache/minicnn-data``, outside the checkout) the
first time (about 30 s) and reused afterwards.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import data

SHARED = Path(os.environ.get("MINICNN_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
FASHION = SHARED / "fashion-mnist"
PREPARE = SHARED / "prepare_cifar10.py"
CIFAR_JPEG = SHARED / "cifar10-jpeg.tar.xz"


@pytest.fixture(scope="module")
def cifar_root():
    if not (PREPARE.is_file() and CIFAR_JPEG.is_file()):
        pytest.skip(f"offline CIFAR-10 copy not found ({PREPARE} and {CIFAR_JPEG}); "
                    "set MINICNN_SHARED_DATA to the shared data folder to run this test")
    root = data.resolve_data_dir()
    checkout = Path(__file__).resolve().parents[1]
    if root.resolve().is_relative_to(checkout):
        pytest.skip(f"data root {root} is inside the checkout; datasets must not go there")
    if data.cifar.find_cifar10(root, train=True) is None or data.cifar.find_cifar10(root, train=False) is None:
        root.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, str(PREPARE), str(root)], capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"prepare_cifar10.py failed:\n{proc.stdout}\n{proc.stderr}"
    return root


@pytest.fixture(scope="module")
def cifar_train(cifar_root):
    return data.CIFAR10(root=cifar_root, train=True)


def test_fashion_mnist_offline_copy():
    if not FASHION.is_dir():
        pytest.skip(f"offline Fashion-MNIST copy not found at {FASHION}; set MINICNN_SHARED_DATA")
    train = data.FashionMNIST(root=FASHION, train=True)
    test = data.FashionMNIST(root=FASHION, train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert len(train.classes) == 10
    mean, std = train.stats()
    assert abs(mean[0] - 0.2860) < 0.001 and abs(std[0] - 0.3530) < 0.001
    # also found from the shared root through the fashion-mnist sub-folder
    assert len(data.FashionMNIST(root=SHARED, train=False)) == 10000


def test_cifar10_offline_copy(cifar_root, cifar_train):
    test = data.CIFAR10(root=cifar_root, train=False)
    assert cifar_train.images.shape == (50000, 3, 32, 32) and cifar_train.images.dtype == np.uint8
    assert test.images.shape == (10000, 3, 32, 32)
    assert cifar_train.classes == ["airplane", "automobile", "bird", "cat", "deer",
                                   "dog", "frog", "horse", "ship", "truck"]
    assert cifar_train.class_counts().tolist() == [5000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    mean, _ = cifar_train.stats()
    np.testing.assert_allclose(mean, (0.491, 0.482, 0.447), atol=0.01)


def test_cifar10_pipeline_on_real_data(cifar_train):
    train, val = data.train_val_split(cifar_train, 5000, seed=0)
    assert (len(train), len(val)) == (45000, 5000)
    small = data.subset(train, 0.1)
    assert small.class_counts().sum() == 4500 and small.class_counts().min() >= 440
    aug = data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(),
                        data.ToFloat(), data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)])
    loader = data.DataLoader(small, 128, shuffle=True, seed=0, transform=aug)
    n = 0
    for xb, yb in loader:
        assert xb.dtype == np.float32 and xb.shape[1:] == (3, 32, 32) and yb.dtype == np.int64
        n += len(yb)
    assert n == 4500 and len(loader) == 36
    assert abs(float(xb.mean())) < 0.5
