"""Training: what a batch means, the loop, evaluation and the files a run writes.

One idea per module:

* ``objectives`` -- :class:`Objective` (a batch -> loss, and its backward),
  :class:`Classification`, :class:`ClassificationReconstruction`;
* ``trainer``    -- :class:`Trainer`: the loop, resume, early stopping, Ctrl-C
  (its docstring lists what a run writes); ``config`` -- its :class:`TrainConfig`;
  ``checkpoints`` -- its ``last.npz`` / ``best.npz`` (``Trainer.load_best()``);
* ``resume``     -- what a resume must share with its checkpoint (:class:`ResumeError`);
* ``lock``       -- :class:`RunLock`, one writer per run folder (:class:`RunLockedError`);
* ``progress``   -- the epoch's progress bar and the numba compile notice;
* ``meters``     -- :class:`EpochMeters`, the running sums of the unfinished epoch;
* ``evaluation`` -- :func:`evaluate`: loss, accuracy, per-class accuracy, confusion matrix;
* ``files``      -- strict JSON, CSV text, model files, the tutorial's log line.

A run::

    trainer = Trainer(model, optimizer, Classification(), train_loader, test_loader,
                      num_classes=10, out_dir="runs/x", config=TrainConfig(epochs=2))
    history = trainer.fit()          # fit(resume=True) continues from runs/x/last.npz
"""

from .config import TrainConfig
from .evaluation import evaluate
from .files import csv_text, load_model, save_model, strip_timing, tutorial_line, write_json
from .lock import RunLock, RunLockedError
from .meters import EpochMeters
from .objectives import Classification, ClassificationReconstruction, Objective
from .resume import ResumeError
from .trainer import CHECKPOINT_FORMAT, NonFiniteLossError, Trainer

__all__ = [
    "CHECKPOINT_FORMAT",
    "Classification",
    "ClassificationReconstruction",
    "EpochMeters",
    "NonFiniteLossError",
    "Objective",
    "ResumeError",
    "RunLock",
    "RunLockedError",
    "TrainConfig",
    "Trainer",
    "csv_text",
    "evaluate",
    "load_model",
    "save_model",
    "strip_timing",
    "tutorial_line",
    "write_json",
]
