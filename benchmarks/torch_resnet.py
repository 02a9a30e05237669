"""PyTorch twin of ``python -m experiments.resnet``: the same recipe, data and batches, on PyTorch.

    python -m benchmarks.torch_resnet --schedule onecycle --epochs 15 --lr 0.2 --weight-decay 5e-4 \
        --threads 2 --data-dir DIR --out runs/torch-resnet20
    python -m benchmarks.torch_resnet --device cuda --schedule cosine --epochs 40 ...   # on a GPU

Same as the minicnn command with the same flags: He et al.'s ResNet (``TorchResNet``,
whose ``state_dict`` keys are minicnn's), SGD(lr, momentum, weight decay on every
parameter), the schedule stepped after every batch (``MultiStepLR`` at 50 %/75 % of the
steps, ``OneCycleLR`` with max_lr = ``--lr``, or ``LambdaLR`` over minicnn's
``warmup_cosine``, i.e. PyTorch's LinearLR then CosineAnnealingLR), and the very
mini-batches -- order, random crops and flips -- that minicnn's ``DataLoader`` yields
for the seed (``experiments.resnet.transforms()``), so the engine and the initial
weights (``torch.manual_seed(seed)``, PyTorch's default init) are all that differ.
Every epoch ends with an evaluation on the test set, as the minicnn command does
with ``--val-size 0``. PyTorch's own defaults stay on (on a GPU: cuDNN with TF32
convolutions, as a PyTorch user gets them).

Writes ``OUT/torch_resnet.json`` after every epoch (per-epoch train loss and
accuracy, test loss and accuracy, training seconds), so an interrupted run keeps
what it did. PyTorch is a benchmark oracle only; minicnn never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from minicnn.atomic import write_text_atomic


def make_scheduler(torch, opt, schedule: str, lr: float, total: int, steps_per_epoch: int, warmup_epochs: float):
    """The twin of ``experiments.resnet.make_scheduler`` with PyTorch's schedulers."""
    from minicnn.optim import warmup_cosine

    sched = torch.optim.lr_scheduler
    if schedule == "step":
        return sched.MultiStepLR(opt, milestones=[total // 2, (3 * total) // 4], gamma=0.1)
    if schedule == "onecycle":
        return sched.OneCycleLR(opt, max_lr=lr, total_steps=total)
    return sched.LambdaLR(opt, warmup_cosine(round(warmup_epochs * steps_per_epoch), total, start_factor=0.1))


def evaluate(torch, net, loader, device):
    import torch.nn.functional as F

    net.eval()
    correct, loss, n = 0, 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            logits = net(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    net.train()
    return {"loss": loss / n, "accuracy": correct / n, "n": n}


def run(a) -> dict:
    import torch
    import torch.nn.functional as F

    from benchmarks.torch_models import TorchResNet
    from experiments.common import load_cifar
    from experiments.resnet import transforms
    from minicnn import data

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    net = TorchResNet(a.depth, 10, a.shortcut).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    train_ds, test_ds = load_cifar(a.data_dir, a.subset, a.seed)
    train_tf, eval_tf = transforms()
    loader = data.DataLoader(train_ds, a.batch_size, shuffle=True, seed=a.seed, transform=train_tf,
                             backend="numpy")
    test_loader = data.DataLoader(test_ds, a.eval_batch_size, shuffle=False, transform=eval_tf, backend="numpy")
    total = a.epochs * len(loader)
    scheduler = make_scheduler(torch, opt, a.schedule, a.lr, total, len(loader), a.warmup_epochs)
    res = {"model": f"ResNet-{a.depth}", "engine": "pytorch", "torch": torch.__version__, "device": str(device),
           "threads": a.threads, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
           "n_train": len(train_ds), "n_test": len(test_ds), "epochs": [],
           "machine": platform.machine()}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
        res["tf32_conv"] = torch.backends.cudnn.allow_tf32
        res["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    out = Path(a.out) / "torch_resnet.json"
    started = time.perf_counter()
    net.train()
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for x, y in loader:
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        train_loss, train_acc = float(loss_sum) / seen, int(correct) / seen  # one sync per epoch
        train_s = time.perf_counter() - t0
        ev = evaluate(torch, net, test_loader, device)
        res["epochs"].append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                              "test_loss": ev["loss"], "test_accuracy": ev["accuracy"], "train_time_s": train_s,
                              "lr_next": scheduler.get_last_lr()[0]})
        res["test_accuracy"] = ev["accuracy"]
        res["total_wall_time_s"] = time.perf_counter() - started
        write_text_atomic(out, json.dumps(res, indent=2))
        print(f"epoch {epoch}/{a.epochs}: train loss {train_loss:.4f} acc {100 * train_acc:.2f} %, "
              f"test loss {ev['loss']:.4f} acc {100 * ev['accuracy']:.2f} %, {train_s:.1f} s", flush=True)
    if device.type == "cuda":
        res["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        write_text_atomic(out, json.dumps(res, indent=2))
    return res


def build_parser():
    ap = argparse.ArgumentParser(description="PyTorch twin of python -m experiments.resnet (same recipe and batches)")
    ap.add_argument("--depth", type=int, choices=(20, 32, 56), default=20)
    ap.add_argument("--shortcut", choices=("A", "B"), default="A")
    ap.add_argument("--schedule", choices=("step", "cosine", "onecycle"), default="step")
    ap.add_argument("--epochs", type=int, default=164)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--eval-batch-size", type=int, default=500)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subset", type=float, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    res = run(a)
    print(f"PyTorch ResNet-{a.depth}: test accuracy {100 * res['test_accuracy']:.2f} % after {a.epochs} epochs, "
          f"{res['total_wall_time_s']:.0f} s; {Path(a.out) / 'torch_resnet.json'}")


if __name__ == "__main__":
    main()
