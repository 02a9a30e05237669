#!/usr/bin/env python3
"""Time loading datasets into memory and one DataLoader epoch.

    python benchmarks/data_load.py [--data-dir DIR] [--repeat 3] [--prepare]

Measures, on the data root (``--data-dir``, ``$MINICNN_DATA`` or
``~/.cache/minicnn-data``):

* CIFAR-10 train (50,000) + test (10,000) from the python-format batches
  into ``uint8 (N, 3, 32, 32)`` arrays -- the target is well under 5 s;
* Fashion-MNIST train + test from the IDX .gz files, when found;
* one epoch of ``DataLoader(cifar_train, 128, shuffle=True)`` without and with
  the standard augmentation (crop + flip + normalise) on the active backend.

``--prepare`` runs ``../shared/data/prepare_cifar10.py`` into the data root
first if the CIFAR-10 batches are missing. The first repetition includes a
cold file cache only if the OS has not cached the files already; the table
shows every repetition and the best.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minicnn import backend, data  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def timed(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def report(name, times, extra=""):
    reps = ", ".join(f"{t:.3f}" for t in times)
    print(f"{name:<48} best {min(times):7.3f} s   (runs: {reps}){extra}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data.add_data_dir_argument(ap)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prepare", action="store_true", help="prepare CIFAR-10 from ../shared/data if missing")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--backend", default=None, help="numpy, numba or cupy (default: active backend)")
    args = ap.parse_args(argv)
    if args.backend:
        backend.set_backend(args.backend)
    root = data.resolve_data_dir(args.data_dir)
    print(f"data root: {root}   backend: {backend.backend_name()}")

    if args.prepare and (data.cifar.find_cifar10(root, True) is None or data.cifar.find_cifar10(root, False) is None):
        script = SHARED / "prepare_cifar10.py"
        print(f"preparing CIFAR-10 with {script} ...")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(script), str(root)], check=True)
        print(f"prepared in {time.perf_counter() - t0:.1f} s")

    try:
        (train, test), times = timed(lambda: (data.CIFAR10(args.data_dir, train=True),
                                              data.CIFAR10(args.data_dir, train=False)), args.repeat)
    except data.DatasetNotFoundError as e:
        print(f"CIFAR-10 skipped: {e}")
        train = None
    else:
        report("CIFAR-10 load, train 50k + test 10k", times,
               f"   {len(train)}+{len(test)} images, {train.images.nbytes / 2**20:.0f} MiB train")

    fashion_root = args.data_dir
    try:
        data.FashionMNIST(fashion_root, train=False)
    except data.DatasetNotFoundError:
        fashion_root = SHARED / "fashion-mnist" if (SHARED / "fashion-mnist").is_dir() else None
    if fashion_root is not None or args.data_dir is None:
        try:
            (ftr, fte), times = timed(lambda: (data.FashionMNIST(fashion_root, train=True),
                                               data.FashionMNIST(fashion_root, train=False)), args.repeat)
            report("Fashion-MNIST load, train 60k + test 10k", times, f"   from {ftr.root}")
        except data.DatasetNotFoundError as e:
            print(f"Fashion-MNIST skipped: {str(e).splitlines()[0]}")

    if train is not None:
        _, times = timed(lambda: train.stats(), 1)
        report("CIFAR-10 train channel mean/std", times)
        aug = data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(),
                            data.ToFloat(), data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)])
        for name, transform in (("plain", None), ("crop+flip+normalize", aug)):
            loader = data.DataLoader(train, args.batch_size, shuffle=True, seed=0, transform=transform)

            def epoch():
                n = 0
                for xb, yb in loader:
                    n += len(yb)
                if backend.current().is_gpu:
                    import cupy

                    cupy.cuda.Device().synchronize()
                return n

            _, times = timed(epoch, max(1, min(args.repeat, 2)))
            report(f"DataLoader epoch ({name}, bs {args.batch_size})", times,
                   f"   {len(train) / min(times):,.0f} img/s")


if __name__ == "__main__":
    main()
