"""resnet: He et al.'s CIFAR-10 ResNet (20, 32 or 56 layers) trained from scratch on minicnn.

The recipe of He et al. (2016), section 4.2: SGD with momentum 0.9 and weight
decay 1e-4 (on every parameter, BatchNorm's too: PyTorch's default, and
minicnn's SGD does the same), batch 128, random 32x32 crops of the image
padded by 4 pixels plus horizontal flips, per-channel normalisation with the
CIFAR-10 mean and std, and a learning-rate schedule stepped after every batch:

* ``step``     (default) -- lr 0.1, divided by 10 at 50 % and 75 % of the steps
  (the paper: 64k iterations, steps at 32k and 48k; 164 epochs of 50k images);
* ``cosine``   -- a linear warm-up from lr/10 over ``--warmup-epochs``, then a cosine decay to 0;
* ``onecycle`` -- PyTorch's OneCycleLR with ``--lr`` as its max_lr (its defaults: 30 % up
  from max_lr/25, then down to max_lr/25e4; momentum cycled 0.95 -> 0.85 -> 0.95,
  so ``--momentum`` is not used). Meant for short runs.

The schedule's step t sets the lr before optimiser step t, as a closed-form
function of t, so ``--resume`` continues it exactly; a run's length (``--epochs``)
is part of its schedule and cannot change on resume.

Writes to OUT/resnet/: train_images.png (augmented inputs of the first
batch), loss_curve.png, lr_schedule.png (lr per step beside the accuracy per
epoch), per-class accuracy (.csv/.json/.md/.png), confusion_matrix.png,
model.npz and results.json, plus the trainer's history and checkpoints.

    python -m experiments.resnet --backend numba                       # the paper's schedule
    python -m experiments.resnet --backend numba --schedule onecycle --epochs 15 --lr 0.2 --weight-decay 5e-4
    python -m experiments.resnet --epochs 1 --subset 0.01 --backend numba --out /tmp/r   # a quick check
"""

from __future__ import annotations

import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minicnn as mc
from minicnn import data, viz
from minicnn.atomic import atomic_write
from minicnn.train import Classification, Trainer, save_model, write_json

from . import common

TASK = "resnet"
SCHEDULES = ("step", "cosine", "onecycle")
N_GRID = 16


def build_parser():
    p = common.base_parser(TASK, "Train He et al.'s CIFAR-10 ResNet from scratch with minicnn.")
    g = p.add_argument_group("resnet")
    g.add_argument("--depth", type=int, choices=(20, 32, 56), default=20, help="6n + 2 layers")
    g.add_argument("--shortcut", choices=("A", "B"), default="A",
                   help="where a stage changes shape: A, zero-padded identity (the paper's CIFAR choice), "
                        "or B, 1x1 conv + BN")
    g.add_argument("--weight-decay", type=common.nonneg_float, default=1e-4,
                   help="L2 weight decay on every parameter (the paper: 1e-4; 5e-4 suits short schedules)")
    g.add_argument("--schedule", choices=SCHEDULES, default="step",
                   help="lr schedule, stepped every batch: step (/10 at 50 %% and 75 %%), cosine (linear "
                        "warm-up, then cosine to 0) or onecycle (PyTorch's OneCycleLR, max_lr = --lr)")
    g.add_argument("--warmup-epochs", type=common.nonneg_float, default=1.0, metavar="E",
                   help="cosine only: epochs of linear warm-up from lr/10 (may be fractional)")
    p.set_defaults(epochs=164, batch_size=128, lr=0.1, log_every=100)
    return p


def main(argv=None, callbacks=()) -> dict:
    """``callbacks``: ``f(trainer)`` after every optimiser step (tests use them to stop a run)."""
    args = build_parser().parse_args(argv)
    with common.run_folder(args, TASK) as out:
        return run(args, out, callbacks)


def transforms():
    """(training transform, evaluation transform): crop + flip, then per-channel normalisation."""
    norm = [data.ToFloat(), data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)]
    return data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(), *norm]), data.Compose(norm)


def make_scheduler(args, opt, total_steps: int, steps_per_epoch: int):
    """The ``--schedule`` as a minicnn.optim scheduler over ``total_steps`` optimiser steps."""
    total = max(total_steps, 1)
    if args.schedule == "step":
        return mc.optim.MultiStepLR(opt, milestones=[total // 2, (3 * total) // 4], gamma=0.1)
    if args.schedule == "onecycle":
        return mc.optim.OneCycleLR(opt, max_lr=args.lr, total_steps=total)
    warmup = round(args.warmup_epochs * steps_per_epoch)
    if warmup >= total:
        common.fail(f"--warmup-epochs {args.warmup_epochs:g} ({warmup} steps) leaves none of the run's {total} "
                    f"steps for the cosine decay; pass a smaller --warmup-epochs or more --epochs")
    return mc.optim.LambdaLR(opt, mc.optim.warmup_cosine(warmup, total, start_factor=0.1))


def lr_curve(args, total_steps: int, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step 0..total_steps-1: the schedule's closed form, run on
    a throwaway optimiser (nothing trained, the real optimiser untouched)."""
    opt = mc.optim.SGD([mc.nn.Parameter(np.zeros(1))], lr=args.lr, momentum=args.momentum)
    return mc.optim.lr_values(make_scheduler(args, opt, total_steps, steps_per_epoch), total_steps)


def schedule_figure(lrs, history, path, title: str, eval_name: str = "test"):
    """Left: the lr of every step. Right: training and evaluation accuracy per epoch."""
    fig = Figure(figsize=(10.0, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax, acc = fig.subplots(1, 2)
    ax.step(np.arange(len(lrs)), lrs, where="post", color="C2")  # each value holds for its whole step
    ax.set_xlabel("optimiser step (mini-batches)")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    epochs = history.get("epochs", [])
    ep = [e["epoch"] for e in epochs]
    acc.plot(ep, [100 * e["train_accuracy"] for e in epochs], marker="o", label="train (augmented)")
    ev = [(e["epoch"], 100 * e["eval"]["accuracy"]) for e in epochs if e.get("eval")]
    if ev:
        acc.plot(*zip(*ev), marker="s", label=eval_name)
    acc.set_xlabel("epoch")
    acc.set_ylabel("accuracy (%)")
    acc.grid(alpha=0.3)
    acc.legend()
    fig.suptitle(title)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, facecolor="white")
    return path


def train(args, model, train_ds, test_ds, out, callbacks=()):
    """SGD(lr, momentum, weight decay) under the schedule, on the augmented training set."""
    train_tf, eval_tf = transforms()
    opt = mc.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    train_loader, eval_loader, config = common.loaders_and_config(args, train_ds, test_ds, train_tf, eval_tf)
    total = args.epochs * len(train_loader)
    scheduler = make_scheduler(args, opt, total, len(train_loader))
    run_info = {"task": TASK, "model": f"ResNet-{args.depth}", "settings": common.settings(args)}
    flags = ("epochs", "depth", "shortcut", "weight_decay", "schedule", "warmup_epochs")
    trainer = Trainer(model, opt, Classification(), train_loader, eval_loader,
                      num_classes=len(train_ds.classes), out_dir=out, config=config, callbacks=callbacks,
                      run_info=run_info, resume_settings=common.resume_settings(args, flags), scheduler=scheduler)
    return common.fit(trainer, args.resume), eval_tf, lr_curve(args, total, len(train_loader))


def run(args, out, callbacks=()) -> dict:
    started = time.perf_counter()
    train_ds, test_ds = common.load_cifar(args.data_dir, args.subset, args.seed, args.val_size)
    classes = train_ds.classes
    name = f"ResNet-{args.depth}"

    model = mc.models.ResNet(args.depth, num_classes=len(classes), shortcut=args.shortcut)
    n_params = sum(int(p.data.size) for p in model.parameters())
    momentum = "cycled 0.95-0.85" if args.schedule == "onecycle" else f"{args.momentum:g}"
    print(f"{name} (shortcut {args.shortcut}): {n_params:,} parameters; SGD momentum {momentum}, weight decay "
          f"{args.weight_decay:g}, {args.schedule} schedule (lr {args.lr:g}), batch {args.batch_size}")

    # What the network sees first: epoch 1's first images, cropped and flipped, de-normalised for display.
    loader = data.DataLoader(train_ds, args.batch_size, shuffle=True, seed=args.seed)
    batch = loader.order(0)[:args.batch_size]
    first = batch[:N_GRID]
    shown = transforms()[0](train_ds.images[batch], loader.batch_rng(0, 0))[:N_GRID]
    viz.image_grid(viz.to_display(shown, data.CIFAR10_MEAN, data.CIFAR10_STD),
                   [classes[k] for k in train_ds.labels[first]], out / "train_images.png",
                   f"augmented training images (random crop of the 4-pixel padded image, flip; "
                   f"the first {len(first)} of epoch 1)")

    trainer, eval_tf, lrs = train(args, model, train_ds, test_ds, out, callbacks)
    done = common.results_if_complete(out, trainer)
    if done is not None:
        return done
    test_eval = common.test_evaluation(args, trainer, test_ds, eval_tf)
    acc = test_eval["accuracy"]
    print(f"Accuracy of {name} on the {test_eval['n']} test images: {100 * acc:.2f} %")
    common.standard_figures(name, test_eval, classes, trainer, out, f"{name} training loss")
    schedule_figure(lrs, trainer.history, out / "lr_schedule.png",
                    f"{name}: {args.schedule} schedule and accuracy per epoch", trainer.config.eval_name)
    save_model(out / "model.npz", model, {"model": name, "depth": args.depth, "shortcut": args.shortcut,
                                          "normalize_mean": data.CIFAR10_MEAN, "normalize_std": data.CIFAR10_STD,
                                          "test_accuracy": acc, "settings": common.settings(args)})

    results = common.base_results(TASK, args, trainer, test_eval, classes, started)
    steps_per_epoch = len(trainer.train_loader)
    results.update({"model": name, "depth": args.depth, "shortcut": args.shortcut, "parameters": n_params,
                    "weight_decay": args.weight_decay, "schedule": args.schedule,
                    "lr_at_epoch_start": lrs[::steps_per_epoch] if steps_per_epoch else [],
                    "final_lr": lrs[-1] if lrs else None})
    write_json(out / "results.json", results)
    print(f"results: {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
