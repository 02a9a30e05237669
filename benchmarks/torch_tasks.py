"""PyTorch baseline for experiments task1/task2: same data, same batches, same settings.

    python -m benchmarks.torch_tasks --task task1 --seeds 0 1 2 [--data-dir DIR] [--epochs 2]

Trains PyTorch's version of the tutorial net (task1) or the deconvolution model
(task2: CE + lam * MSE) with SGD(lr 0.001, momentum 0.9), batch 4, on the
mini-batches minicnn's ``DataLoader`` yields for the same seed (so only the
engine differs; initial weights come from ``torch.manual_seed(seed)``), and
prints/writes test accuracy, reconstruction MSE and wall seconds per epoch.
PyTorch is a benchmark oracle only; minicnn never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from minicnn.atomic import write_text_atomic


def build(task: str):
    from benchmarks.torch_models import TorchDeconvNet, TorchTutorialNet

    return TorchTutorialNet() if task == "task1" else TorchDeconvNet()


def run(task, seed, data_dir, epochs, batch_size, lr, momentum, lam, subset, threads):
    import torch
    import torch.nn.functional as F

    from minicnn import data
    from experiments.common import load_cifar, transform

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build(task)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    train, test = load_cifar(data_dir, subset, seed)
    tf = transform()
    loader = data.DataLoader(train, batch_size, shuffle=True, seed=seed, transform=tf, backend="numpy")
    epoch_s = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in loader:
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            opt.zero_grad()
            if task == "task1":
                loss = F.cross_entropy(net(x), y)
            else:
                logits, xhat = net(x)
                loss = F.cross_entropy(logits, y) + lam * F.mse_loss(xhat, x)
            loss.backward()
            opt.step()
        epoch_s.append(time.perf_counter() - t0)
    correct, sq, n = 0, 0.0, 0
    with torch.no_grad():
        for x, y in data.DataLoader(test, 500, transform=tf, backend="numpy"):
            x = torch.from_numpy(x)
            out = net(x)
            logits = out if task == "task1" else out[0]
            correct += int((logits.argmax(1).numpy() == y).sum())
            if task == "task2":
                sq += float(((out[1] - x) ** 2).mean()) * len(y)
            n += len(y)
    res = {"task": task, "seed": seed, "test_accuracy": correct / n, "epoch_seconds": epoch_s,
           "torch": torch.__version__, "threads": threads}
    if task == "task2":
        res["test_mse"] = sq / n
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch baseline for experiments task1/task2")
    ap.add_argument("--task", choices=["task1", "task2"], default="task1")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--subset", type=float, default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    a = ap.parse_args(argv)
    results = []
    for s in a.seeds:
        r = run(a.task, s, a.data_dir, a.epochs, a.batch_size, a.lr, a.momentum, a.lam, a.subset, a.threads)
        print(json.dumps(r))
        results.append(r)
    accs = [r["test_accuracy"] for r in results]
    print(f"{a.task}: PyTorch test accuracy mean {100 * np.mean(accs):.2f}% over seeds {a.seeds}: "
          + ", ".join(f"{100 * x:.2f}" for x in accs))
    write_text_atomic(Path(a.out) / f"torch_{a.task}.json", json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
