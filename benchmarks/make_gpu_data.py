"""Write a small CIFAR-10 copy in the official python format for the GPU check.

The device machine has no network and only the working tree travels (64 MiB
at most), so ``benchmarks/gpu_check.sh`` reads this reduced copy:

    python -m benchmarks.make_gpu_data [--data-dir DIR] [--out .gpu-data] [--per-batch 1000] [--test 1000]

writes ``OUT/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``
(the first ``--per-batch`` images of each training batch, the first ``--test``
test images; about 18 MB with the defaults). ``.gpu-data/`` is git-ignored;
name it in the device call's ``carry``.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from minicnn.atomic import atomic_write
from minicnn.data import CIFAR10


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, label: str) -> None:
    d = {b"batch_label": label.encode(), b"labels": [int(v) for v in labels],
         b"data": np.ascontiguousarray(images.reshape(len(images), -1)),
         b"filenames": [f"{i}.png".encode() for i in range(len(images))]}
    with atomic_write(path) as f:
        pickle.dump(d, f, protocol=2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="where the full CIFAR-10 is (default: minicnn's data dir)")
    ap.add_argument("--out", default=".gpu-data")
    ap.add_argument("--per-batch", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    a = ap.parse_args(argv)
    train, test = CIFAR10(a.data_dir, train=True), CIFAR10(a.data_dir, train=False)
    folder = Path(a.out) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(5):
        lo = b * 10000
        _write_batch(folder / f"data_batch_{b + 1}", train.images[lo:lo + a.per_batch],
                     train.labels[lo:lo + a.per_batch], f"training batch {b + 1} of 5 (subset)")
    _write_batch(folder / "test_batch", test.images[:a.test], test.labels[:a.test], "testing batch 1 of 1 (subset)")
    meta = {b"label_names": [c.encode() for c in train.classes], b"num_cases_per_batch": a.per_batch,
            b"num_vis": 3072}
    with atomic_write(folder / "batches.meta") as f:
        pickle.dump(meta, f, protocol=2)
    print(f"wrote {5 * a.per_batch} training and {a.test} test images to {folder}")


if __name__ == "__main__":
    main()
