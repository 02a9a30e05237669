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
what it did, and ``OUT/torch_resnet_last.pt`` (weights, optimiser, scheduler,
epochs done; written to a temporary file, then renamed). ``--resume`` goes on
from that checkpoint with the epoch after it, so a run longer than one sitting
(the 164 epochs of He et al. on a GPU lent 15 minutes at a time) is done in
parts: the loader's batches depend only on (seed, epoch), so the parts train
what one run would. A resume must keep every setting but ``--threads`` and
``--out``, else it is refused with the differences named. PyTorch is a benchmark
oracle only; minicnn never imports it.
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


def run(a, launched: float | None = None) -> dict:
    """Train as the module doc says; ``launched``: the ``perf_counter()`` --time-budget counts from."""
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
    out, ckpt = Path(a.out) / "torch_resnet.json", Path(a.out) / CHECKPOINT
    out.parent.mkdir(parents=True, exist_ok=True)
    first, earlier_s = 1, 0.0
    if a.resume:
        first, earlier_s = resume(torch, a, ckpt, net, opt, scheduler, res)
    started = time.perf_counter()
    net.train()
    for epoch in range(first, a.epochs + 1):
        if part_ends(a, epoch - first, time.perf_counter() - started,
                     time.perf_counter() - (launched if launched is not None else started)):
            print(f"part ends before epoch {epoch} (--stop-after-epochs / --time-budget); --resume goes on")
            break
        loader.set_epoch(epoch - 1)  # minicnn's loader numbers epochs from 0
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
        res["total_wall_time_s"] = earlier_s + time.perf_counter() - started
        save_checkpoint(torch, ckpt, net, opt, scheduler, epoch, res)
        write_text_atomic(out, json.dumps(res, indent=2))
        print(f"epoch {epoch}/{a.epochs}: train loss {train_loss:.4f} acc {100 * train_acc:.2f} %, "
              f"test loss {ev['loss']:.4f} acc {100 * ev['accuracy']:.2f} %, {train_s:.1f} s", flush=True)
    if device.type == "cuda":
        res["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        write_text_atomic(out, json.dumps(res, indent=2))
    return res


CHECKPOINT = "torch_resnet_last.pt"
_FREE_SETTINGS = ("threads", "out", "resume", "stop_after_epochs", "time_budget")  # free between parts


def part_ends(a, done: int, training_s: float, since_start_s: float) -> bool:
    """Whether this part stops before its next epoch: ``done`` epochs trained in it already, in
    ``training_s`` seconds (training and evaluation), ``since_start_s`` seconds since the command
    started; with ``--time-budget`` it stops when one more epoch, as long as the mean of this
    part's, would end past the budget."""
    if a.stop_after_epochs is not None and done >= a.stop_after_epochs:
        return True
    if a.time_budget is not None and done:
        return since_start_s + training_s / done > a.time_budget
    return False


def save_checkpoint(torch, path: Path, net, opt, scheduler, epoch: int, res: dict) -> None:
    """Everything a resume needs after ``epoch`` epochs, written to a temporary file, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"epoch": epoch, "net": net.state_dict(), "opt": opt.state_dict(),
                "scheduler": scheduler.state_dict(), "res": json.dumps(res)}, tmp)
    os.replace(tmp, path)


def resume(torch, a, path: Path, net, opt, scheduler, res: dict) -> tuple[int, float]:
    """Load ``path`` into the net, optimiser, scheduler and ``res``; returns (first epoch to train,
    seconds the earlier parts took). Ends the command when the checkpoint is missing or was
    written with other settings."""
    if not path.is_file():
        raise SystemExit(f"--resume: no checkpoint {path} (a run with --out {a.out} writes it after each epoch)")
    state = torch.load(path, weights_only=True)  # tensors, numbers and strings only: no pickled code
    old = json.loads(state["res"])
    now = res["settings"]
    differ = {k: (old["settings"].get(k), v) for k, v in now.items()
              if k not in _FREE_SETTINGS and old["settings"].get(k) != v}
    if differ:
        raise SystemExit("--resume refused: the checkpoint was written with other settings: "
                         + ", ".join(f"--{k.replace('_', '-')} {o!r} there, {n!r} now" for k, (o, n) in differ.items()))
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    scheduler.load_state_dict(state["scheduler"])
    res.update({k: old[k] for k in ("epochs", "test_accuracy", "total_wall_time_s") if k in old})
    part = {k: res[k] for k in ("device", "gpu", "threads", "torch") if k in res}  # this part's
    res["parts"] = old.get("parts", []) + [{"after_epoch": int(state["epoch"]), **part}]
    print(f"resumed after epoch {state['epoch']} from {path}")
    return int(state["epoch"]) + 1, float(old.get("total_wall_time_s", 0.0))


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
    ap.add_argument("--resume", action="store_true",
                    help=f"go on from OUT/{CHECKPOINT} (same settings; the epochs after it)")
    ap.add_argument("--stop-after-epochs", type=int, default=None, metavar="N",
                    help="end this part after N epochs (the schedule stays that of --epochs; --resume goes on)")
    ap.add_argument("--time-budget", type=float, default=None, metavar="S",
                    help="end this part before an epoch that would end more than S seconds after the command started")
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    res = run(a, time.perf_counter())
    print(f"PyTorch ResNet-{a.depth}: test accuracy {100 * res['test_accuracy']:.2f} % after "
          f"{len(res['epochs'])} of {a.epochs} epochs, {res['total_wall_time_s']:.0f} s; "
          f"{Path(a.out) / 'torch_resnet.json'}")


if __name__ == "__main__":
    main()
