"""The command line the tasks share: argument types, the help layout and the core flags.

Every value is checked by argparse (a ``type=`` function per kind of value),
so a bad flag ends the command with a usage line and the reason before
anything is loaded, created or deleted.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from minicnn import data
from minicnn.backend import AVAILABLE

#: The command-line flags a resume must share with the run it continues (``--lam`` is task2's).
RESUME_FLAGS = ("lr", "momentum", "batch_size", "seed", "subset", "val_size")

RESUME_HELP = ("continue the run in OUT/<task>/ from its last.npz, to the exact batch. The run's training "
               "settings must be given again unchanged (--lr, --momentum, --batch-size, --seed, --subset, "
               "--val-size, task2's --lam): a resume with any other value is refused, naming each "
               "difference. --epochs may be raised to extend the run; --backend and the logging, "
               "progress and checkpoint flags may change. A run that has all its epochs already is not "
               "trained again.")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default once: appended as ``(default: X)`` unless the help text already
    speaks of its default, and left out where it says nothing (None, or off for a switch)."""

    def _get_help_string(self, action):
        # BooleanOptionalAction appends its own "(default: ...)" on Python < 3.12: one rule for all
        text = (action.help or "").replace(" (default: %(default)s)", "")
        if ("default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS))
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _argtype(name: str, convert, ok, expected: str):
    """An argparse ``type=`` function: ``convert(text)``, which must satisfy ``ok``;
    otherwise argparse reports ``expected ..., got '<text>'`` for the flag."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


fraction = _argtype("fraction", float, lambda v: 0.0 < v <= 1.0, "a fraction in (0, 1] such as 0.1")  # --subset
positive_int = _argtype("positive_int", int, lambda v: v >= 1, "a positive integer")
nonneg_int = _argtype("nonneg_int", int, lambda v: v >= 0, "an integer >= 0")
# learning rates, momentum, loss weights: no nan, no inf
nonneg_float = _argtype("nonneg_float", float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
probability = _argtype("probability", float, lambda v: 0.0 <= v < 1.0, "a probability in [0, 1) such as 0.5")


VAL_SIZE_HELP = ("hold out N training images for the per-epoch evaluation and best.npz; "
                 "0 evaluates on the test set each epoch (the reported numbers are always "
                 "the final model's on the test set)")


def base_parser(task: str, description: str, *, momentum: bool = True, zero_epochs: bool = True,
                val_size_help: str = VAL_SIZE_HELP, resume_help: str = RESUME_HELP) -> argparse.ArgumentParser:
    """The flags every task has (defaults: the PyTorch tutorial's settings).

    ``momentum=False``: no ``--momentum`` flag (an Adam task; ``args.momentum`` is None).
    ``zero_epochs=False``: ``--epochs 0`` is refused. ``val_size_help``, ``resume_help``: the
    task's meaning of ``--val-size`` and ``--resume``.
    """
    p = argparse.ArgumentParser(prog=f"python -m {__package__}.{task}", description=description,
                                formatter_class=HelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--backend", choices=AVAILABLE, default=os.environ.get("MINICNN_BACKEND") or "numpy",
                   help="array backend (default: $MINICNN_BACKEND if set, else numpy)")
    data.add_data_dir_argument(g)
    g.add_argument("--out", type=Path, default=Path("runs"), metavar="DIR",
                   help=f"output root; this task writes to DIR/{task}/ (one run at a time: the folder is "
                        "locked while a run writes there)")
    g.add_argument("--seed", type=nonneg_int, default=0, metavar="N",
                   help="seed for weights, shuffling and --subset")
    g.add_argument("--subset", type=fraction, default=None, metavar="FRACTION",
                   help="use this stratified fraction of the training and test sets (e.g. 0.1; default: all)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=nonneg_int if zero_epochs else positive_int, default=2, metavar="N",
                   help="passes over the training set")
    g.add_argument("--batch-size", type=positive_int, default=4, metavar="N", help="images per optimiser step")
    g.add_argument("--lr", type=nonneg_float, default=0.001,
                   help=("SGD" if momentum else "the optimiser's") + " learning rate (a finite number >= 0)")
    if momentum:
        g.add_argument("--momentum", type=nonneg_float, default=0.9, help="SGD momentum (a finite number >= 0)")
    else:
        p.set_defaults(momentum=None)
    g.add_argument("--val-size", type=nonneg_int, default=0, metavar="N", help=val_size_help)
    g.add_argument("--eval-batch-size", type=positive_int, default=500, metavar="N",
                   help="images per forward pass when evaluating (does not change the results)")
    g.add_argument("--log-every", type=positive_int, default=2000, metavar="N",
                   help="print the tutorial's '[epoch, batch] loss' line every N mini-batches")
    g.add_argument("--checkpoint-every", type=nonneg_int, default=2000, metavar="N",
                   help="also save OUT/<task>/last.npz every N steps (0: at epoch ends only)")
    g.add_argument("--resume", action="store_true", help=resume_help)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU backend, replay each training step from a CUDA graph (same results, "
                        "fewer launches; models with Dropout/BatchNorm run eagerly; default: on)")
    return p


REPORT_VAL_HELP = ("hold out N training images (a seeded random choice) for validation: the per-epoch "
                   "evaluation, best.npz and early stopping; 0: evaluate on the test set each epoch instead. "
                   "Default: {}")
DEFAULT_VAL_RULE = ("10 %% of the training images, at most 5,000 (MNIST 55,000/5,000, CIFAR-10 45,000/5,000, "
                    "mnist-5k 3,600/400)")
REPORT_RESUME_HELP = ("continue each unfinished run in OUT/<task>/<run>/ from its last.npz, to the exact batch; "
                      "runs already finished are not trained again. The training settings must be given again "
                      "unchanged: a resume with any other value is refused, naming each difference. --epochs may "
                      "be raised to extend runs without an lr schedule; --backend and the logging, progress and "
                      "checkpoint flags may change.")


def report_parser(task: str, description: str, *, momentum: bool = True, test_weights: str = "last",
                  val_size: int | None = None) -> argparse.ArgumentParser:
    """:func:`base_parser` for the report experiments (several runs compared, one folder each):
    ``--val-size`` defaults to ``val_size`` (None: 10 % of the training images, at most 5,000),
    ``--epochs`` must be >= 1, and ``--test-weights`` says which weights the test set measures."""
    rule = DEFAULT_VAL_RULE if val_size is None else str(val_size)
    p = base_parser(task, description, momentum=momentum, zero_epochs=False,
                    val_size_help=REPORT_VAL_HELP.format(rule), resume_help=REPORT_RESUME_HELP)
    p.set_defaults(val_size=val_size, log_every=100)
    g = p.add_argument_group("report")
    g.add_argument("--test-weights", choices=("best", "last"), default=test_weights,
                   help="the weights the test set measures: the best validation epoch's (best.npz) or the "
                        "last epoch's")
    g.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="draw each run's figures and the comparison figure (--no-figures: numbers only, "
                        "e.g. for quick checks; default: on)")
    return p


def settings(args) -> dict:
    """The parsed flags as JSON-able values (paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def resume_settings(args, extra=()) -> dict:
    """The flags a resume must share with its run, by their command-line names (``{"--lr": 0.001, ...}``)."""
    return {"--" + k.replace("_", "-"): getattr(args, k) for k in (*RESUME_FLAGS, *extra)}
