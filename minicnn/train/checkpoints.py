"""The Trainer's files on disk that a run continues from: ``last.npz`` and ``best.npz``.

:class:`Checkpoints` is a mixin of :class:`~minicnn.train.trainer.Trainer` (it
uses the trainer's model, optimiser, position, meters, history and paths);
the trainer's docstring says what each file holds and when it is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from minicnn.random import default_generator
from minicnn.serialization import load, save

from .meters import EpochMeters
from .resume import ResumeError, fingerprint, resume_differences

CHECKPOINT_FORMAT = "minicnn-train-1"


class Checkpoints:
    """``last.npz`` (everything a resume needs) and ``best.npz`` (the best evaluated weights)."""

    def checkpoint(self) -> dict:
        """Everything a resumed run needs, as a dict for :func:`minicnn.save` (JSON strings for the rest)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": json.dumps(default_generator().bit_generator.state),
            "meters": self.meters.state(),
            "history": json.dumps(self.history, allow_nan=False),
            "best": json.dumps(self.best),
            "fingerprint": json.dumps(self._fingerprint()),
            "config": json.dumps(self.run_info, allow_nan=False),
            "status": self.status,
        }

    def save_checkpoint(self, path=None) -> Path:
        return save(self.checkpoint(), path or self.last_path)

    def load_checkpoint(self, path=None) -> None:
        path = Path(path or self.last_path)
        ck = load(path)
        self._check_resumable(ck, path)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        pos = ck["position"]
        self.epoch, self.batch, self.step = int(pos["epoch"]), int(pos["batch"]), int(pos["step"])
        default_generator().bit_generator.state = json.loads(ck["rng"])
        self.meters = EpochMeters.from_state(ck["meters"], self.objective.part_names)
        self.history = json.loads(ck["history"])
        self.best = json.loads(ck["best"])
        self.status = "resumed"

    def _check_resumable(self, ck: dict, path: Path) -> None:
        if ck.get("format") != CHECKPOINT_FORMAT:
            raise ResumeError(f"{path}: not a training checkpoint (format {ck.get('format')!r}, "
                              f"expected {CHECKPOINT_FORMAT!r})")
        diff = resume_differences(json.loads(ck["fingerprint"]), self._fingerprint())
        if diff:
            raise ResumeError(f"{path}: cannot resume: this run's settings differ from the run it would continue: "
                              + "; ".join(diff) + ". Resume with the run's own settings (only the number of "
                              "epochs may change), or start afresh without --resume, or into another folder.")

    def _fingerprint(self) -> dict:
        return fingerprint(self.model, self.train_loader, self.resume_settings)

    def _save_best(self, record: dict) -> None:
        acc = record["eval"]["accuracy"]
        if not (self.best is None or acc > self.best["accuracy"]):
            return
        self.best = {"epoch": record["epoch"], "accuracy": acc}
        meta = {"epoch": record["epoch"], "step": self.step, "eval_split": self.config.eval_name,
                "eval": record["eval"], "config": self.run_info}
        save({"model": self.model.state_dict(), "meta": json.dumps(meta, allow_nan=False)}, self.best_path)

    def load_best(self) -> dict | None:
        """Put the weights of the best evaluated epoch (``best.npz``) into the model, e.g. to
        test what early stopping kept; returns ``self.best`` ({"epoch", "accuracy"}), or None
        (model untouched) when no epoch was evaluated. ``last.npz`` is not changed."""
        if self.best is None or not self.best_path.exists():
            return None
        self.model.load_state_dict(load(self.best_path)["model"])
        return self.best

