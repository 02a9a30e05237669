"""The training loop the experiments share: progress, logs, evaluation, checkpoints, resume.

One step is the loop every PyTorch tutorial writes (:meth:`Trainer.train_step`)::

    loss, logits, parts = objective.forward(model, x, y)
    model.zero_grad(); optimizer.zero_grad()     # gradients set to None: this step's alone
    objective.backward(model)
    check that the loss is finite                # else NonFiniteLossError, before any update
    optimizer.step()

On a GPU backend (with ``TrainConfig.cuda_graph``) the first three lines are
replayed from a CUDA graph instead (:class:`minicnn.cuda_graph.GraphedTrainStep`):
the same results with one launch instead of hundreds; so is the evaluation's
forward pass (:class:`~minicnn.cuda_graph.GraphedEvalStep`).

What a run writes to ``out_dir``:

* ``last.npz``    -- the resume checkpoint: model, optimiser, position
  (epoch, batch in the epoch, global step), the ``minicnn.random`` generator
  state, the running sums of the unfinished epoch and the history. Written
  at every epoch end, every ``checkpoint_every`` steps, on Ctrl-C and at the
  end; never after a non-finite loss (the last good one stays).
* ``best.npz``    -- the weights with the best evaluation accuracy so far
  (:meth:`Trainer.load_best` puts them into the model).
* ``history.json``, ``epochs.csv``, ``log.csv``, ``train_log.txt`` -- the
  history: the tutorial-style ``[epoch, batch] loss`` windows and one record
  per epoch (train loss/accuracy, evaluation loss, accuracy, per-class
  accuracy, confusion matrix). Wall-clock numbers live under ``"timing"``.

* ``run.lock``    -- while ``fit`` runs: the folder's lock (``lock.py``); a
  second run into the same folder is refused (:class:`RunLockedError`).

A fresh run (no resume) starts by writing its step-0 state to ``last.npz``
and removing a ``best.npz`` left by an older run in the same folder.
Resuming (``fit(resume=True)``) continues from the exact batch where the run
stopped: the loader's order depends only on ``(seed, epoch)``, so the run
gives bitwise the same history and weights as one that never stopped. So a
resume must train what the run trained: the loader's settings and the
Trainer's ``resume_settings`` must equal the checkpoint's, else
:class:`ResumeError` names each difference and nothing is touched; only
``config.epochs`` may grow (to extend a run). A resume of a run that has
already trained ``config.epochs`` epochs trains nothing, writes nothing and
sets ``was_complete``.

A non-finite loss, in a training step or in the evaluation at an epoch's
end, stops the run (:class:`NonFiniteLossError`, status ``"diverged"``):
the history is written and ``last.npz`` keeps the last good state.

Ctrl-C (``interrupt.py``): the first press asks the loop to stop after the
current step (the state is then consistent and is saved); a second press
aborts at once.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from tqdm.auto import tqdm

from minicnn import backend
from minicnn.atomic import write_text_atomic
from minicnn.cuda_graph import GraphedEvalStep, GraphedTrainStep

from .checkpoints import CHECKPOINT_FORMAT, Checkpoints
from .config import TrainConfig
from .evaluation import evaluate
from .files import history_files, tutorial_line
from .interrupt import CtrlC
from .lock import RunLock
from .meters import EpochMeters
from .objectives import Objective
from .progress import EpochBar, FirstStepNotice
from .resume import ResumeError

__all__ = ["CHECKPOINT_FORMAT", "NonFiniteLossError", "Trainer"]


class NonFiniteLossError(RuntimeError):
    """The loss (training or evaluation) became NaN or infinite; the run stopped and kept its last good checkpoint."""


class Trainer(Checkpoints):
    """Trains ``model`` with ``optimizer`` on ``objective`` over ``train_loader``, evaluating on ``eval_loader``.

    ``config``: a :class:`TrainConfig` (epochs, logging, checkpoints).
    ``callbacks``: ``f(trainer)`` called after every optimiser step (may raise
    ``KeyboardInterrupt`` to simulate Ctrl-C). ``run_info``: JSON-able facts
    about the run (task, model, command-line settings), stored in the
    checkpoints and ``best.npz`` under ``"config"``. ``resume_settings``:
    JSON-able settings (name -> value, e.g. ``{"--lr": 0.001}``) that a resume
    must share with the run it continues, besides the loader's (batch size,
    sample count, shuffle, seed, drop_last) that are always checked.
    ``scheduler``: a per-step lr schedule (``minicnn.optim`` scheduler): before optimiser step t
    (counted over the whole run) it is moved to t, a closed form of t, so a run resumed from any
    checkpoint continues it exactly; None keeps the optimiser's lr.
    ``log``: where messages go (default ``tqdm.write``). The backend active
    when the Trainer is made decides whether steps are replayed from a CUDA graph.

    Position: ``epoch`` (epochs finished), ``batch`` (batches finished in the
    current epoch), ``step`` (optimiser steps overall); ``last_loss`` is the
    last step's loss and ``meters`` the running sums of the current epoch.
    """

    def __init__(self, model, optimizer, objective: Objective, train_loader, eval_loader=None, *,
                 num_classes: int, out_dir, config: TrainConfig, callbacks=(), run_info: dict | None = None,
                 resume_settings: dict | None = None, scheduler=None, log=None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: config must be a TrainConfig, got {type(config).__name__}")
        self.model, self.optimizer, self.objective = model, optimizer, objective
        model.requires_input_grad_(False)  # training never uses d loss / d image
        self.train_loader, self.eval_loader = train_loader, eval_loader
        self.num_classes, self.out_dir, self.config = int(num_classes), Path(out_dir), config
        self.callbacks, self.run_info = list(callbacks), dict(run_info or {})
        self.resume_settings = dict(resume_settings or {})
        self.scheduler = scheduler
        self._log = log or tqdm.write
        self.last_path, self.best_path = self.out_dir / "last.npz", self.out_dir / "best.npz"
        self.graphed_step = self._make_graphed_step()  # None: each step runs in plain sight
        self.graphed_eval = (GraphedEvalStep(model, objective)  # the evaluation's forward, likewise
                             if self.graphed_step is not None and eval_loader is not None else None)
        self.epoch = self.batch = self.step = 0
        self.last_loss = float("nan")
        self.meters = EpochMeters(objective.part_names)
        self.history = {"log": [], "epochs": []}
        self.best = None        # {"epoch": int, "accuracy": float}
        self.status = "new"
        self.was_complete = False  # fit(resume=True) found the run already trained to config.epochs
        self._ctrl_c = CtrlC(self._log)
        self._updating = False  # True while the parameters are ahead of the position and meters
        self._first_step = False  # True until fit() has run its first step (FirstStepNotice)

    def _make_graphed_step(self) -> GraphedTrainStep | None:
        if not (self.config.cuda_graph and backend.current().is_gpu):
            return None
        # it sets the gradients of every parameter a step updates, the objective's own ones too
        params = [*self.model.parameters(), *(p for g in self.optimizer.param_groups for p in g["params"])]
        return GraphedTrainStep(self.model, self.objective, params=params)

    # -- the loop --------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        """Train to ``config.epochs``; returns the history. Resumes from ``last.npz`` when asked and present.

        Holds ``out_dir/run.lock`` meanwhile (:class:`RunLockedError` if another run holds it).
        """
        with RunLock(self.out_dir, log=self._log):
            if not self._start_or_resume(resume):
                return self.history  # already complete: nothing to train, nothing written
            self._first_step = True
            try:
                with self._ctrl_c:
                    while self.epoch < self.config.epochs and not self.stopped_early():
                        self._train_epoch()
                        self._finish_epoch()
            except KeyboardInterrupt:
                self._save_interrupted()
                raise
            except NonFiniteLossError:
                self.status = "diverged"
                self.write_history()
                raise
            self.status = "finished"
            self.save_checkpoint()
            self.write_history()
        return self.history

    def _train_epoch(self) -> None:
        """The rest of epoch ``self.epoch``, from batch ``self.batch`` on."""
        self.model.train()
        bar = EpochBar(len(self.train_loader), self.batch, f"epoch {self.epoch + 1}/{self.config.epochs}",
                       self.config.progress)
        self._start_clock()
        try:
            for x, y in self.train_loader.iter_epoch(self.epoch, start_batch=self.batch):
                if self._first_step:  # this fit's first: a notice if it is slow (numba compiling)
                    with FirstStepNotice(self._log) as notice:
                        self.train_step(x, y)
                    self._first_step = False
                    if notice.fired:  # the compile time stays out of the bar's rate and ETA
                        bar.restart_clock()
                else:
                    self.train_step(x, y)
                self._log_window()
                self._show_progress(bar)
                self._periodic_checkpoint()
                self._run_callbacks()
        finally:
            self._stop_clock()
            bar.close(self.batch)

    def train_step(self, x, y) -> float:
        """One optimiser step on the batch ``x`` (N, C, H, W), ``y`` (N,); returns the loss.

        Each ``p.grad`` ends up holding this step's gradient alone (set, not
        accumulated); a non-finite loss raises before the optimiser moves anything.
        """
        if self.scheduler is not None:
            self.scheduler.jump_to(self.step)  # lr (and momentum, for OneCycleLR) of this step
        if self.graphed_step is not None:  # GPU: the four lines below, replayed from a CUDA graph
            loss, logits, parts = self.graphed_step(x, y)
        else:
            loss, logits, parts = self.objective.forward(self.model, x, y)
            self.model.zero_grad()      # set to None, so backward's grad += g starts afresh
            self.optimizer.zero_grad()  # parameters outside the model too (an objective's own)
            self.objective.backward(self.model)
        loss_value = float(loss)  # the one host sync per step (the NaN check and the log need it)
        self._check_finite(loss_value)
        self._updating = True  # until the position catches up, a Ctrl-C must not save this state
        self.optimizer.step()
        self._advance(loss_value, logits, y, parts)
        self._updating = False
        return loss_value

    def _check_finite(self, loss: float) -> None:
        if math.isfinite(loss):
            return
        raise NonFiniteLossError(
            f"loss is {loss} at epoch {self.epoch + 1}, batch {self.batch + 1} (step {self.step + 1}); "
            f"training stopped. {self._good_checkpoints()}. Try a smaller --lr.")

    def _good_checkpoints(self) -> str:
        best = f" (best: {self.best_path})" if self.best_path.exists() else ""
        last = self.last_path if self.last_path.exists() else "(none written yet)"
        return f"The last good checkpoint is {last}{best}"

    def _advance(self, loss: float, logits, y, parts: dict) -> None:
        """Position and running sums after a step (the parameters have moved already)."""
        self.batch += 1
        self.step += 1
        self.last_loss = loss
        self.meters.add(loss, logits, y, parts)

    def _log_window(self) -> None:
        """Every ``log_every`` batches: the tutorial's ``[epoch, batch] loss`` line (the window's mean)."""
        if self.batch % self.config.log_every:
            return
        rec = {"epoch": self.epoch + 1, "batch": self.batch, "step": self.step, "loss": self.meters.take_window()}
        self.history["log"].append(rec)
        label = f"  ({self.objective.loss_label})" if self.objective.loss_label else ""
        self._log(tutorial_line(rec["epoch"], rec["batch"], rec["loss"]) + label)

    def _show_progress(self, bar: EpochBar) -> None:
        if not self.config.progress or self.batch % self.config.progress_every:
            return
        seconds = max(time.perf_counter() - self._t0, 1e-9)
        rate = (self.meters.samples - self._samples0) / seconds
        bar.show(self.batch, f"loss {self.meters.loss_sum / self.batch:.3f}, {rate:.0f} img/s")

    def _periodic_checkpoint(self) -> None:
        if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
            self._stop_clock()  # so that the checkpoint holds the training time so far
            self._start_clock()
            self.save_checkpoint()

    def _run_callbacks(self) -> None:
        for cb in self.callbacks:
            cb(self)
        if self._ctrl_c.requested:
            raise KeyboardInterrupt

    def _start_clock(self) -> None:
        """Start timing training (and the progress bar's img/s) from now."""
        self._t0, self._samples0 = time.perf_counter(), self.meters.samples

    def _stop_clock(self) -> None:
        self.meters.time_s += time.perf_counter() - self._t0

    def _finish_epoch(self) -> None:
        """The epoch's record (training numbers, evaluation, timing) into the history; then
        the next epoch's position, ``best.npz``, ``last.npz`` and the history files."""
        rec = {"epoch": self.epoch + 1, "steps": self.batch, "samples": self.meters.samples,
               **self.meters.record(self.batch)}
        timing = self.meters.timing()
        if self.eval_loader is not None:
            rec["eval"], timing["eval_time_s"] = self._evaluate()
            self._check_finite_eval(rec)
            self._log_epoch(rec, timing)
        rec["timing"] = timing
        self.history["epochs"].append(rec)
        self.epoch, self.batch = self.epoch + 1, 0
        self.meters = EpochMeters(self.objective.part_names)
        if "eval" in rec:
            self._save_best(rec)
        if self.stopped_early():
            self._log(f"early stopping: no better {self.config.eval_name} accuracy than epoch "
                      f"{self.best['epoch']}'s ({100 * self.best['accuracy']:.2f} %) for {self.config.patience} "
                      f"epochs; the best weights are in {self.best_path}")
        self.status = "running"
        self.save_checkpoint()
        self.write_history()

    def _evaluate(self) -> tuple[dict, float]:
        """:func:`evaluate` on ``eval_loader`` (Ctrl-C stops it too) and the seconds it took."""
        t = time.perf_counter()
        ev = evaluate(self.model, self.objective, self.eval_loader, self.num_classes, should_stop=self._should_stop,
                      step=self.graphed_eval)
        return ev, time.perf_counter() - t

    def _check_finite_eval(self, rec: dict) -> None:
        """A NaN or infinite evaluation loss stops the run like a non-finite training loss
        (before this epoch's state is saved: ``last.npz`` keeps the last good one)."""
        ev = rec["eval"]
        bad = {k: ev[k] for k in ("loss", *self.objective.part_names) if not math.isfinite(ev[k])}
        if not bad:
            return
        what = ", ".join(f"{k} {v}" for k, v in bad.items())
        train = rec.get("train_loss")
        raise NonFiniteLossError(
            f"{self.config.eval_name} {what} after epoch {rec['epoch']} (step {self.step}; train loss "
            f"{'n/a' if train is None else format(train, '.4g')}): the weights have diverged; training stopped. "
            f"{self._good_checkpoints()}. Try a smaller --lr.")

    def _log_epoch(self, rec: dict, timing: dict) -> None:
        ev, name = rec["eval"], self.config.eval_name
        extra = "".join(f", {k} {ev[k]:.4f}" for k in self.objective.part_names)
        label = f" ({self.objective.loss_label})" if self.objective.loss_label else ""
        self._log(f"epoch {rec['epoch']}: train loss{label} {rec['train_loss']:.3f}, {name} loss "
                  f"{ev['loss']:.3f}{extra}, {name} accuracy {100 * ev['accuracy']:.2f} % "
                  f"({timing['train_time_s']:.1f} s, {timing['images_per_s'] or 0:.0f} img/s)")

    # -- starting, resuming, Ctrl-C ----------------------------------------------
    def _start_or_resume(self, resume: bool) -> bool:
        """Load the checkpoint (resume) or start afresh; False when the resumed run is already complete."""
        if resume:
            if self.last_path.exists():
                self.load_checkpoint()
                if self._already_complete():
                    return False
                self._log(f"resuming from {self.last_path}: epoch {self.epoch + 1} of {self.config.epochs}, "
                          f"batch {self.batch}, step {self.step}")
            else:
                self._log(f"--resume: no checkpoint at {self.last_path}; starting from scratch")
        if self.status == "new":  # a fresh run: its own step-0 checkpoint, no stale best from an older run
            self.best_path.unlink(missing_ok=True)
            self.status = "running"
            self.save_checkpoint()
        return True

    def stopped_early(self) -> bool:
        """Early stopping (``config.patience``): True once ``patience`` epochs in a row have
        passed without a better evaluation accuracy than the best epoch's. Depends only on
        the history, so a resumed run stops where the uninterrupted one did."""
        p = self.config.patience
        return bool(p) and self.best is not None and self.batch == 0 and self.epoch - self.best["epoch"] >= p

    def _already_complete(self) -> bool:
        """After loading: has the run trained ``config.epochs`` epochs already, or stopped early? (Then say so.)"""
        if self.stopped_early():
            self.was_complete = True
            self.status = "finished"
            self._log(f"the run in {self.out_dir} stopped early after epoch {self.epoch} (no better "
                      f"{self.config.eval_name} accuracy than epoch {self.best['epoch']}'s for "
                      f"{self.config.patience} epochs); nothing to train.")
            return True
        if self.epoch < self.config.epochs:
            return False
        if self.batch:  # stopped inside an epoch beyond the ones asked for
            raise ResumeError(
                f"{self.last_path}: the run stopped in epoch {self.epoch + 1} (batch {self.batch}), beyond the "
                f"{self.config.epochs} epoch(s) asked for: resume with at least {self.epoch + 1} epochs "
                f"(--epochs {self.epoch + 1}) to finish that epoch.")
        self.was_complete = True
        self.status = "finished"
        self._log(f"the run in {self.out_dir} is already complete: {self.epoch} epoch(s) trained "
                  f"({self.config.epochs} asked for); nothing to train. Ask for more epochs (--epochs) to "
                  f"extend it, or start afresh without --resume.")
        return True

    def _should_stop(self) -> bool:
        return self._ctrl_c.requested

    def _save_interrupted(self) -> None:
        """After a KeyboardInterrupt: save the position, unless it came in the middle of an update."""
        if self._updating:
            self._log(f"interrupted while updating parameters; {self.last_path} was left as it was "
                      "(it holds the last consistent state)")
            return
        self.status = "interrupted"
        self.save_checkpoint()
        self.write_history()
        self._log(f"interrupted at epoch {self.epoch + 1}, batch {self.batch} (step {self.step}); "
                  f"checkpoint saved to {self.last_path}; continue with --resume")

    # -- history files -------------------------------------------------------------
    def write_history(self) -> None:
        """``history.json``, ``log.csv``, ``epochs.csv`` and ``train_log.txt`` from ``self.history``."""
        for name, text in history_files(self.history, self.status, self.best, self.config.eval_name).items():
            write_text_atomic(self.out_dir / name, text)
