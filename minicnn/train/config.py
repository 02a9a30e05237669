"""How the training loop runs: :class:`TrainConfig` (what it trains is the Trainer's model, optimiser and objective)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """How the loop runs (what it trains is the Trainer's model, optimiser and objective).

    ``epochs``: train until this many epochs are finished (a resumed run may
    extend a finished one). ``log_every``: batches per tutorial log line (the
    mean loss over them). ``progress``: show a progress bar, refreshed every
    ``progress_every`` batches. ``checkpoint_every``: steps between mid-epoch
    ``last.npz`` saves (0: epoch ends only). ``eval_name``: what the
    evaluation set is called in logs and files (``"test"``, ``"val"``).
    ``cuda_graph``: on a GPU backend, replay each step's forward + zero_grad +
    backward from a CUDA graph (same results, far fewer launches; models with
    Dropout, or BatchNorm with ``momentum=None``, in training run eagerly).
    ``patience``: early stopping -- end the run once this many epochs in a row
    have not beaten the best evaluation accuracy (None: train all ``epochs``);
    the best epoch's weights are in ``best.npz`` (``Trainer.load_best()``).
    """

    epochs: int
    log_every: int = 2000
    progress_every: int = 50
    checkpoint_every: int = 0
    progress: bool = True
    eval_name: str = "test"
    cuda_graph: bool = True
    patience: int | None = None

    def __post_init__(self):
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig: patience must be None or >= 1, got {self.patience}")
        if self.epochs < 0 or self.log_every < 1 or self.progress_every < 1 or self.checkpoint_every < 0:
            raise ValueError("TrainConfig: epochs >= 0, log_every >= 1, progress_every >= 1, checkpoint_every >= 0")
