"""What the tasks share: the run folder, the data, training and the result files.

Every task takes the same core flags (``--backend``, ``--data-dir``,
``--epochs``, ``--batch-size``, ``--lr``, ``--seed``, ``--subset``, ``--out`` ...)
from :func:`base_parser` (``cli.py``), writes into ``OUT/<task>/`` while it
holds that folder's lock (:func:`run_folder`) and ends with a
``results.json`` holding every number it printed. Problems a user can meet
end the command with ``error: ...`` and what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import data, viz
from minicnn.backend import BackendError
from minicnn.atomic import write_text_atomic
from minicnn.train import (NonFiniteLossError, ResumeError, RunLock, RunLockedError, TrainConfig, Trainer,
                           evaluate, write_json)

from .cli import (base_parser, fraction, nonneg_float, nonneg_int, positive_int, probability, report_parser,
                  resume_settings, settings)

__all__ = ["NORM_MEAN", "NORM_STD", "base_parser", "report_parser", "fraction", "nonneg_float", "nonneg_int",
           "positive_int", "probability", "settings", "run_folder", "transform", "load_cifar", "load_mnist",
           "resolve_val_size", "normalized", "train", "fit", "results_if_complete", "test_evaluation",
           "report_cuda_graph", "epoch_summary", "per_class_report", "loaders_and_config", "standard_figures",
           "base_results"]

#: The tutorial's ``transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))``.
NORM_MEAN = (0.5, 0.5, 0.5)
NORM_STD = (0.5, 0.5, 0.5)


def fail(message: str):
    """End the command: ``error: message`` on stderr, exit status 1 (``SystemExit``)."""
    raise SystemExit(f"error: {message}")


@contextlib.contextmanager
def run_folder(args, task: str):
    """Select the backend, seed the generator, make ``OUT/task`` and hold its lock; yields that folder.

    A second run into the same folder is refused (the lock is released when the
    block ends, by an error or Ctrl-C too).
    """
    try:
        mc.set_backend(args.backend)
    except BackendError as e:
        fail(str(e))
    mc.manual_seed(args.seed)
    out = Path(args.out) / task
    for folder in (Path(args.out), out):
        if folder.exists() and not folder.is_dir():
            fail(f"--out {args.out}: {folder} is a file, not a folder; pass a folder (it is created if missing)")
    try:
        lock = RunLock(out, log=print).acquire()
    except RunLockedError as e:
        fail(str(e))
    try:
        print(f"[{task}] backend {args.backend}, seed {args.seed}, writing to {out}")
        yield out
    finally:
        lock.release()


def transform():
    """uint8 -> float in [0, 1] -> Normalize((0.5,)*3, (0.5,)*3), i.e. [-1, 1]."""
    return data.Compose([data.ToFloat(), data.Normalize(NORM_MEAN, NORM_STD)])


def _missing_data_message(e: data.DatasetNotFoundError, data_dir) -> str:
    """The library's message with its advice (written for ``CIFAR10(download=...)``) in command-line terms."""
    looked, _, _ = str(e).partition("\nTo get it:")
    root = data.resolve_data_dir(data_dir)
    return (f"{looked}\nTo get it: run the command again with network access (it downloads {data.CIFAR10_URL} "
            f"into {root} and checks its MD5), or put the official cifar-10-python.tar.gz (or its extracted "
            f"cifar-10-batches-py/ folder) into a folder and pass --data-dir DIR (or set $MINICNN_DATA). "
            f"Offline, on these machines: python ../shared/data/prepare_cifar10.py {root}")


def load_cifar(data_dir=None, subset: float | None = None, seed: int = 0, val_size: int = 0):
    """``(train, test)`` CIFAR-10 datasets, reduced to the fraction ``subset`` (stratified, seeded) when given.

    Ends the command with a clear error when the data is missing or damaged, when
    ``subset`` leaves a set empty, or when ``val_size`` would hold out every training image.
    """
    try:
        # Downloads the official archive (MD5-checked) when it is missing and a network exists.
        train = data.CIFAR10(data_dir, train=True, download=True)
        test = data.CIFAR10(data_dir, train=False, download=True)
    except data.DatasetNotFoundError as e:
        fail(_missing_data_message(e, data_dir))
    except data.DatasetError as e:
        fail(f"{e}\nThe CIFAR-10 files could not be used. Replace them (delete the file named above and run "
             f"again with network access, or prepare them afresh), or pass --data-dir for another copy.")
    train, test = _reduce(train, test, subset, seed)
    _check_val_size(val_size, len(train))
    print(f"CIFAR-10: {len(train)} training and {len(test)} test images from {train.source}")
    return train, test


def load_mnist(name: str = "mnist", data_dir=None, subset: float | None = None, seed: int = 0):
    """``(train, test)`` of MNIST (``name="mnist"``) or Fashion-MNIST (``"fashion-mnist"``), reduced
    like :func:`load_cifar`; a clear error when the four IDX files are missing or damaged."""
    cls = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST}[name]
    try:
        train = cls(data_dir, train=True, download=True)
        test = cls(data_dir, train=False, download=True)
    except data.DatasetNotFoundError as e:
        looked, _, _ = str(e).partition("\nTo get it:")
        fail(f"{looked}\nTo get it: run the command again with network access (it downloads the four IDX files "
             f"into {data.resolve_data_dir(data_dir) / name} and checks their MD5), or pass --data-dir DIR for a "
             f"folder holding them (or set $MINICNN_DATA). Offline, on these machines: --data-dir "
             f"../shared/data/{'mnist-5k' if name == 'mnist' else name}")
    except data.DatasetError as e:
        fail(f"{e}\nThe {cls.NAME} files could not be used: replace them, or pass --data-dir for another copy.")
    train, test = _reduce(train, test, subset, seed)
    print(f"{cls.NAME}: {len(train)} training and {len(test)} test images from {train.source}")
    return train, test


def _reduce(train, test, subset: float | None, seed: int):
    """Both sets reduced to the stratified fraction ``subset``; ends the command if one becomes empty."""
    n_train, n_test = len(train), len(test)
    if subset is not None and subset < 1.0:
        train = data.subset(train, subset, seed=seed)
        test = data.subset(test, subset, seed=seed)
        if len(train) == 0 or len(test) == 0:
            fail(f"--subset {subset:g} leaves {len(train)} of {n_train} training and {len(test)} of {n_test} "
                 f"test images; both sets need at least one (--subset {1 / min(n_train, n_test):.2g} or more)")
    return train, test


def _check_val_size(val_size: int, n_train: int) -> None:
    if val_size >= n_train:
        fail(f"--val-size {val_size} holds out every one of the {n_train} training images, leaving none to "
             f"train on; pass a --val-size below {n_train} (0: evaluate on the test set)")


def resolve_val_size(args, n_train: int) -> int:
    """``args.val_size``, or when it is None the report experiments' rule: 10 % of the
    ``n_train`` training images, at most 5,000 (60,000 -> 5,000; 50,000 -> 5,000; 4,000 -> 400).
    Stored back into ``args`` (so results and resume checks see the number); ends the
    command when it would leave no training image."""
    if args.val_size is None:
        args.val_size = min(5000, int(round(0.1 * n_train)))
    _check_val_size(args.val_size, n_train)
    return args.val_size


def normalized(images: np.ndarray):
    """uint8 host images ``(N, 3, H, W)`` -> the network's normalised input on the backend."""
    return mc.asarray(transform()(np.asarray(images)))


def train(args, model, objective, train_ds, test_ds, out: Path, run_info: dict, resume_flags=()) -> Trainer:
    """SGD(lr, momentum) + the shared :class:`~minicnn.train.Trainer`; returns the trainer after ``fit``.

    ``run_info`` (task, model, ...) goes into the checkpoints with the command-line
    settings; ``resume_flags`` names the task's own flags a resume must keep (e.g. ``("lam",)``).
    Exits with status 130 after Ctrl-C (checkpoint saved), 1 after a non-finite
    loss or an unreadable checkpoint, and 2 when ``--resume`` is refused.
    """
    tf = transform()
    opt = mc.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    train_loader, eval_loader, config = loaders_and_config(args, train_ds, test_ds, tf, tf)
    trainer = Trainer(model, opt, objective, train_loader, eval_loader, num_classes=len(train_ds.classes),
                      out_dir=out, config=config, run_info={**run_info, "settings": settings(args)},
                      resume_settings=resume_settings(args, resume_flags))
    return fit(trainer, args.resume)


def loaders_and_config(args, train_ds, test_ds, train_tf, eval_tf):
    """(train loader, evaluation loader, TrainConfig) from the command line: evaluation on
    the test set, or on ``--val-size`` images held out of the training set."""
    eval_ds, eval_name = test_ds, "test"
    if args.val_size:
        train_ds, eval_ds = data.train_val_split(train_ds, args.val_size, seed=args.seed)
        eval_name = "val"
        print(f"holding out {len(eval_ds)} training images for validation; training on {len(train_ds)}")
    train_loader = data.DataLoader(train_ds, args.batch_size, shuffle=True, seed=args.seed, transform=train_tf)
    eval_loader = data.DataLoader(eval_ds, args.eval_batch_size, shuffle=False, transform=eval_tf)
    config = TrainConfig(epochs=args.epochs, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
                         progress=not args.no_progress, eval_name=eval_name, cuda_graph=args.cuda_graph)
    return train_loader, eval_loader, config


def fit(trainer: Trainer, resume: bool) -> Trainer:
    """``trainer.fit(resume)``, ending the command as :func:`train` says when it cannot go on."""
    try:
        trainer.fit(resume=resume)
        report_cuda_graph(trainer)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except ResumeError as e:
        print(f"error: --resume refused: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except mc.CheckpointError as e:  # a damaged last.npz met by --resume
        fail(f"--resume: {e}. Start afresh without --resume, or into another --out.")
    return trainer


def results_if_complete(out: Path, trainer: Trainer) -> dict | None:
    """After a ``--resume`` of a run that had all its epochs already: its ``results.json``, when
    that file describes this very training (then nothing is done again); else None."""
    if not trainer.was_complete:
        return None
    path = out / "results.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and saved.get("loss_log") == trainer.history["log"] \
            and len(saved.get("epochs", ())) == len(trainer.history["epochs"]):
        print(f"nothing to do: {path} holds this run's results (test accuracy "
              f"{100 * saved.get('test_accuracy', float('nan')):.2f} %)")
        return saved
    print("training is complete; writing its results")
    return None


def test_evaluation(args, trainer: Trainer, test_ds, tf=None, reuse: bool = True) -> dict:
    """The model on the test set (the last epoch's evaluation when that was the test set and
    ``reuse``: pass False when the model holds other weights now, e.g. best.npz's);
    ``tf``: the test images' transform (default: :func:`transform`)."""
    last = trainer.history["epochs"][-1] if trainer.history["epochs"] else None
    if reuse and last is not None and trainer.config.eval_name == "test" and last.get("eval"):
        test_eval = last["eval"]  # already the final model on the test set
    else:
        loader = data.DataLoader(test_ds, args.eval_batch_size, shuffle=False, transform=tf or transform())
        test_eval = evaluate(trainer.model, trainer.objective, loader, trainer.num_classes)
    if not math.isfinite(test_eval["loss"]):
        print(f"error: the test loss is {test_eval['loss']}: the weights have diverged; "
              f"try a smaller --lr", file=sys.stderr)
        raise SystemExit(1)
    return test_eval


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


def standard_figures(name: str, test_eval: dict, classes, trainer, out: Path, loss_title: str) -> None:
    """The per-class table and the figures every classifier task draws: per-class
    accuracy bars, the confusion matrix and the loss curve."""
    acc = test_eval["accuracy"]
    per_class_report(classes, test_eval["per_class_accuracy"], test_eval["confusion_matrix"], out)
    viz.per_class_bars(test_eval["per_class_accuracy"], classes, out / "per_class_accuracy.png",
                       f"{name} per-class test accuracy (overall {100 * acc:.1f} %)")
    viz.confusion_matrix(test_eval["confusion_matrix"], classes, out / "confusion_matrix.png",
                         f"{name} confusion matrix ({test_eval['n']} test images)")
    viz.loss_curve(trainer.history, out / "loss_curve.png", loss_title, trainer.config.eval_name)


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
                        "minicnn": mc.__version__, "machine": platform.machine(),
                        **({"tf32": {"conv": mc.backend.tf32.conv, "matmul": mc.backend.tf32.matmul}}
                           if mc.backend.current().is_gpu else {})},
    }
