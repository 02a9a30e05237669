"""What the three tasks share: the command line, the data, training and the result files.

Every task takes the same core flags (``--backend``, ``--data-dir``,
``--epochs``, ``--batch-size``, ``--lr``, ``--seed``, ``--subset``, ``--out`` ...)
from :func:`base_parser`, writes into ``OUT/<task>/`` and ends with a
``results.json`` holding every number it printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import data
from minicnn.backend import AVAILABLE, BackendError
from minicnn.atomic import write_text_atomic
from minicnn.train import NonFiniteLossError, TrainConfig, Trainer, evaluate, write_json

#: The tutorial's ``transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))``.
NORM_MEAN = (0.5, 0.5, 0.5)
NORM_STD = (0.5, 0.5, 0.5)


def fraction(text: str) -> float:
    """argparse type for ``--subset``: a fraction in (0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.1, got {text!r}") from None
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"a fraction in (0, 1] is expected, got {v}")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def nonneg_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def base_parser(task: str, description: str) -> argparse.ArgumentParser:
    """The flags every task has (defaults: the PyTorch tutorial's settings)."""
    p = argparse.ArgumentParser(prog=f"python -m experiments.{task}", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--backend", choices=AVAILABLE, default=os.environ.get("MINICNN_BACKEND") or "numpy",
                   help="array backend (default: $MINICNN_BACKEND or numpy)")
    data.add_data_dir_argument(g)
    g.add_argument("--out", type=Path, default=Path("runs"), metavar="DIR",
                   help=f"output root; this task writes to DIR/{task}/")
    g.add_argument("--seed", type=nonneg_int, default=0, help="seed for weights, shuffling and --subset")
    g.add_argument("--subset", type=fraction, default=None, metavar="FRACTION",
                   help="use this stratified fraction of the training and test sets (e.g. 0.1); default all")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=nonneg_int, default=2)
    g.add_argument("--batch-size", type=positive_int, default=4)
    g.add_argument("--lr", type=float, default=0.001, help="SGD learning rate")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--val-size", type=nonneg_int, default=0, metavar="N",
                   help="hold out N training images for the per-epoch evaluation and best.npz; "
                        "0 evaluates on the test set each epoch (the reported numbers are always "
                        "the final model's on the test set)")
    g.add_argument("--eval-batch-size", type=positive_int, default=500)
    g.add_argument("--log-every", type=positive_int, default=2000, metavar="N",
                   help="print the tutorial's '[epoch, batch] loss' line every N mini-batches")
    g.add_argument("--checkpoint-every", type=nonneg_int, default=2000, metavar="N",
                   help="also save OUT/<task>/last.npz every N steps (0: at epoch ends only)")
    g.add_argument("--resume", action="store_true", help="continue from OUT/<task>/last.npz")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU backend, replay each training step from a CUDA graph (same results, "
                        "fewer launches; models with Dropout/BatchNorm run eagerly)")
    return p


def setup(args, task: str) -> Path:
    """Select the backend, seed the generator, make ``OUT/task``; returns that folder."""
    try:
        mc.set_backend(args.backend)
    except BackendError as e:
        raise SystemExit(f"error: {e}") from None
    mc.manual_seed(args.seed)
    out = Path(args.out) / task
    out.mkdir(parents=True, exist_ok=True)
    print(f"[{task}] backend {args.backend}, seed {args.seed}, writing to {out}")
    return out


def transform():
    """uint8 -> float in [0, 1] -> Normalize((0.5,)*3, (0.5,)*3), i.e. [-1, 1]."""
    return data.Compose([data.ToFloat(), data.Normalize(NORM_MEAN, NORM_STD)])


def load_cifar(data_dir=None, subset: float | None = None, seed: int = 0):
    """``(train, test)`` CIFAR-10 datasets, reduced to the fraction ``subset`` (stratified, seeded) when given."""
    try:
        # Downloads the official archive (MD5-checked) when it is missing and a network exists.
        train = data.CIFAR10(data_dir, train=True, download=True)
        test = data.CIFAR10(data_dir, train=False, download=True)
    except data.DatasetNotFoundError as e:
        raise SystemExit(f"error: {e}") from None
    if subset is not None and subset < 1.0:
        train = data.subset(train, subset, seed=seed)
        test = data.subset(test, subset, seed=seed)
    print(f"CIFAR-10: {len(train)} training and {len(test)} test images from {train.source}")
    return train, test


def normalized(images: np.ndarray):
    """uint8 host images ``(N, 3, H, W)`` -> the network's normalised input on the backend."""
    return mc.asarray(transform()(np.asarray(images)))


def settings(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def run_training(args, model, objective, train_ds, test_ds, out: Path, run_info: dict):
    """SGD(lr, momentum) + the shared :class:`~minicnn.train.Trainer`; returns ``(trainer, test_eval)``.

    ``run_info`` (task, model, ...) goes into the checkpoints with the command-line settings.
    Exits with status 130 after Ctrl-C (checkpoint saved) and 1 after a non-finite loss.
    """
    tf = transform()
    opt = mc.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    eval_ds, eval_name = test_ds, "test"
    if args.val_size:
        train_ds, eval_ds = data.train_val_split(train_ds, args.val_size, seed=args.seed)
        eval_name = "val"
        print(f"holding out {len(eval_ds)} training images for validation; training on {len(train_ds)}")
    train_loader = data.DataLoader(train_ds, args.batch_size, shuffle=True, seed=args.seed, transform=tf)
    eval_loader = data.DataLoader(eval_ds, args.eval_batch_size, shuffle=False, transform=tf)
    test_loader = data.DataLoader(test_ds, args.eval_batch_size, shuffle=False, transform=tf)
    config = TrainConfig(epochs=args.epochs, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
                         progress=not args.no_progress, eval_name=eval_name, cuda_graph=args.cuda_graph)
    trainer = Trainer(model, opt, objective, train_loader, eval_loader, num_classes=len(train_ds.classes),
                      out_dir=out, config=config, run_info={**run_info, "settings": settings(args)})
    try:
        trainer.fit(resume=args.resume)
        report_cuda_graph(trainer)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    last = trainer.history["epochs"][-1] if trainer.history["epochs"] else None
    if last is not None and eval_name == "test" and last.get("eval"):
        test_eval = last["eval"]  # already the final model on the test set
    else:
        test_eval = evaluate(model, objective, test_loader, len(train_ds.classes))
    return trainer, test_eval


def report_cuda_graph(trainer) -> None:
    """On a GPU backend: how many training steps were replayed from a CUDA graph, or why none was."""
    step = trainer.graphed_step
    if step is None:
        if mc.backend.current().is_gpu:
            print("training steps ran eagerly: --no-cuda-graph")
    elif step.replays or step.captures:
        print(f"training steps replayed from a CUDA graph: {step.replays} "
              f"(eager: the first {step.warmup} and any short last batch)")
    else:
        print(f"training steps ran eagerly: {step.reason}")


def epoch_summary(history: dict) -> list[dict]:
    """Per-epoch numbers for results.json (no confusion matrices)."""
    out = []
    for e in history["epochs"]:
        row = {k: v for k, v in e.items() if k not in ("eval", "timing")}
        row.update(e.get("timing", {}))
        for k, v in (e.get("eval") or {}).items():
            if not isinstance(v, list):
                row[f"eval_{k}"] = v
        out.append(row)
    return out


def per_class_report(classes, per_class, confusion, out: Path, stem: str = "per_class_accuracy") -> str:
    """Print the tutorial's per-class lines and write the table as CSV, JSON and Markdown."""
    counts = np.asarray(confusion).sum(axis=1)
    correct = np.diag(np.asarray(confusion))
    for name, acc in zip(classes, per_class):
        print(f"Accuracy for class: {name:5s} is " + ("n/a" if acc is None else f"{100 * acc:.1f} %"))
    rows = [{"class": c, "correct": int(k), "total": int(n), "accuracy": a}
            for c, k, n, a in zip(classes, correct, counts, per_class)]
    write_json(out / f"{stem}.json", rows)
    csv_lines = ["class,correct,total,accuracy"]
    md = ["| class | correct | total | accuracy (%) |", "|---|---:|---:|---:|"]
    for r in rows:
        acc = r["accuracy"]
        csv_lines.append(f"{r['class']},{r['correct']},{r['total']},{'' if acc is None else format(acc, '.4f')}")
        md.append(f"| {r['class']} | {r['correct']} | {r['total']} | "
                  f"{'n/a' if acc is None else format(100 * acc, '.1f')} |")
    write_text_atomic(out / f"{stem}.csv", "\n".join(csv_lines) + "\n")
    write_text_atomic(out / f"{stem}.md", "\n".join(md) + "\n")
    return "\n".join(md)


def base_results(task: str, args, trainer, test_eval, classes, started: float) -> dict:
    """The fields every training task reports."""
    hist = trainer.history
    return {
        "task": task,
        "backend": args.backend,
        "seed": args.seed,
        "settings": settings(args),
        "n_train": trainer.train_loader.num_samples,
        "n_test": test_eval["n"],
        "test_accuracy": test_eval["accuracy"],
        "test_loss": test_eval["loss"],
        "per_class_accuracy": dict(zip(classes, test_eval["per_class_accuracy"])),
        "confusion_matrix": test_eval["confusion_matrix"],
        "classes": list(classes),
        "epochs": epoch_summary(hist),
        "wall_time_per_epoch_s": [e.get("timing", {}).get("train_time_s") for e in hist["epochs"]],
        "loss_log": hist["log"],
        "best": trainer.best,
        "total_wall_time_s": time.perf_counter() - started,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "minicnn": mc.__version__, "machine": platform.machine()},
    }
