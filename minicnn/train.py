"""The training loop the experiments share: progress, logs, evaluation, checkpoints, resume.

The loop knows nothing about a particular model. What one batch means is an
:class:`Objective` -- ``forward(model, x, y) -> (loss, logits, parts)`` and
``backward(model)`` -- so the single-output classifier (:class:`Classification`)
and the two-output DeconvNet (:class:`ClassificationReconstruction`,
CE + lambda * MSE) run through the same :class:`Trainer`.

What a run writes to ``out_dir``:

* ``last.npz``    -- the resume checkpoint: model, optimiser, position
  (epoch, batch in the epoch, global step), the ``minicnn.random`` generator
  state, the running sums of the unfinished epoch and the history. Written
  at every epoch end, every ``checkpoint_every`` steps, on Ctrl-C and at the
  end; never after a non-finite loss (the last good one stays).
* ``best.npz``    -- the weights with the best evaluation accuracy so far.
* ``history.json``, ``epochs.csv``, ``log.csv``, ``train_log.txt`` -- the
  history: the tutorial-style ``[epoch, batch] loss`` windows and one record
  per epoch (train loss/accuracy, evaluation loss, accuracy, per-class
  accuracy, confusion matrix). Wall-clock numbers live under ``"timing"``.

A fresh run (no resume) starts by writing its step-0 state to ``last.npz``
and removing a ``best.npz`` left by an older run in the same folder.
Resuming (``fit(resume=True)``) continues from the exact batch where the run
stopped: the loader's order depends only on ``(seed, epoch)``, so the run
gives bitwise the same history and weights as one that never stopped.

Ctrl-C: the first press asks the loop to stop after the current step (the
state is then consistent and is saved); a second press aborts at once.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from minicnn import backend, nn
from minicnn.atomic import write_text_atomic
from minicnn.cuda_graph import GraphedTrainStep
from minicnn.random import default_generator
from minicnn.serialization import load, save

CHECKPOINT_FORMAT = "minicnn-train-1"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


# --- what one batch means ----------------------------------------------------

class Objective:
    """Turns a batch into a loss (forward) and parameter gradients (backward).

    ``forward(model, x, y)`` returns ``(loss, logits, parts)``: the scalar to
    minimise (a 0-d backend array), the class scores used for accuracy, and a
    dict of named 0-d loss terms that are logged as well (may be empty).
    ``backward(model)`` fills the parameters' ``.grad`` from the last forward.
    """

    part_names: tuple[str, ...] = ()

    def forward(self, model, x, y):
        raise NotImplementedError

    def backward(self, model) -> None:
        raise NotImplementedError


class Classification(Objective):
    """``loss = CrossEntropy(model(x), y)`` for a single-output classifier."""

    def __init__(self):
        self.ce = nn.CrossEntropyLoss()

    def forward(self, model, x, y):
        logits = model(x)
        return self.ce(logits, y), logits, {}

    def backward(self, model) -> None:
        model.backward(self.ce.backward())


class ClassificationReconstruction(Objective):
    """``loss = CE(logits, y) + lam * MSE(x_hat, x)`` for a model returning ``(logits, x_hat)``."""

    part_names = ("ce", "mse")

    def __init__(self, lam: float = 1.0):
        if not math.isfinite(lam) or lam < 0:
            raise ValueError(f"ClassificationReconstruction: lam must be a finite number >= 0, got {lam}")
        self.lam = float(lam)
        self.ce = nn.CrossEntropyLoss()
        self.mse = nn.MSELoss()

    def forward(self, model, x, y):
        logits, x_hat = model(x)
        ce = self.ce(logits, y)
        mse = self.mse(x_hat, x)
        return ce + self.lam * mse, logits, {"ce": ce, "mse": mse}

    def backward(self, model) -> None:
        model.backward(self.ce.backward(), self.mse.backward(self.lam))


# --- evaluation --------------------------------------------------------------

def evaluate(model, objective: Objective, loader, num_classes: int, should_stop=None) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix over one pass of ``loader``.

    Losses are per-sample means (each batch's mean weighted by its size).
    ``confusion_matrix[t][p]`` counts images of true class ``t`` predicted as
    ``p``; a class with no images has per-class accuracy ``None``.
    """
    was_training = model.training
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    loss_sum, n = 0.0, 0
    parts_sum = {k: 0.0 for k in objective.part_names}
    try:
        for x, y in loader.iter_epoch(0):
            loss, logits, parts = objective.forward(model, x, y)
            b = int(y.shape[0])
            loss_sum += float(loss) * b
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * b
            pred = backend.to_numpy(logits.argmax(axis=1))
            cm += np.bincount(backend.to_numpy(y) * num_classes + pred,
                              minlength=num_classes * num_classes).reshape(num_classes, num_classes)
            n += b
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    counts = cm.sum(axis=1)
    per_class = [float(cm[k, k] / counts[k]) if counts[k] else None for k in range(num_classes)]
    out = {"n": n, "loss": loss_sum / n, "accuracy": float(np.trace(cm) / n)}
    out.update({k: v / n for k, v in parts_sum.items()})
    out["per_class_accuracy"] = per_class
    out["confusion_matrix"] = cm.tolist()
    return out


# --- small file helpers (atomic writes: minicnn.atomic) --------------------------

def write_json(path, obj) -> Path:
    """Strict JSON (no NaN), indented, written atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _csv_text(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def strip_timing(history: dict) -> dict:
    """The history without its wall-clock fields (what two identical runs share)."""
    return {**history, "epochs": [{k: v for k, v in e.items() if k != "timing"} for e in history["epochs"]]}


def save_model(path, model, meta: dict | None = None) -> Path:
    """Weights plus JSON metadata, ``{"model": state_dict, "meta": json}``."""
    return save({"model": model.state_dict(), "meta": json.dumps(meta or {}, allow_nan=False)}, path)


def load_model(path, model):
    """Load weights saved by :func:`save_model` or a trainer checkpoint into ``model``; returns the meta dict."""
    ck = load(path)
    sd = ck["model"] if isinstance(ck.get("model"), dict) else ck
    model.load_state_dict(sd)
    meta = ck.get("meta")
    return json.loads(meta) if isinstance(meta, str) else {}


def tutorial_line(epoch: int, batch: int, loss: float) -> str:
    """The PyTorch tutorial's log line: ``[%d, %5d] loss: %.3f``."""
    return "[%d, %5d] loss: %.3f" % (epoch, batch, loss)


# --- the loop ------------------------------------------------------------------

class Trainer:
    """Runs ``epochs`` epochs of ``objective`` on ``train_loader``, evaluating on ``eval_loader``.

    ``log_every``: batches per tutorial log line (average loss over them).
    ``progress_every``: batches between progress-bar refreshes.
    ``checkpoint_every``: steps between mid-epoch ``last.npz`` saves (0: epoch ends only).
    ``callbacks``: ``f(trainer)`` called after every optimiser step (may raise
    ``KeyboardInterrupt`` to simulate Ctrl-C). ``config``: JSON-able settings
    stored in the checkpoints. ``cuda_graph``: on a GPU backend, replay each
    step's forward + loss + backward from a CUDA graph
    (:class:`minicnn.cuda_graph.GraphedTrainStep`; same results, far fewer
    launches; models with Dropout or BatchNorm in training run eagerly).
    """

    def __init__(self, model, optimizer, objective: Objective, train_loader, eval_loader=None, *,
                 num_classes: int, out_dir, epochs: int, log_every: int = 2000, progress_every: int = 50,
                 checkpoint_every: int = 0, progress: bool = True, callbacks=(), config: dict | None = None,
                 eval_name: str = "test", log=None, cuda_graph: bool = True):
        if epochs < 0 or log_every < 1 or progress_every < 1 or checkpoint_every < 0:
            raise ValueError("Trainer: epochs >= 0, log_every >= 1, progress_every >= 1, checkpoint_every >= 0")
        self.model, self.optimizer, self.objective = model, optimizer, objective
        model.requires_input_grad_(False)  # training never uses d loss / d image
        self.train_loader, self.eval_loader = train_loader, eval_loader
        # forward + loss + backward of one batch; sets (not accumulates) the gradients of the
        # model's and the optimiser's parameters; a CUDA-graph replay on GPU backends
        self.train_step = GraphedTrainStep(
            model, objective, enabled=cuda_graph,
            params=[*model.parameters(), *(p for g in optimizer.param_groups for p in g["params"])])
        self.num_classes = int(num_classes)
        self.out_dir = Path(out_dir)
        self.epochs = int(epochs)
        self.log_every, self.progress_every, self.checkpoint_every = log_every, progress_every, checkpoint_every
        self.progress = progress
        self.callbacks = list(callbacks)
        self.config = dict(config or {})
        self.eval_name = eval_name
        self._log = log or tqdm.write
        self.last_path = self.out_dir / "last.npz"
        self.best_path = self.out_dir / "best.npz"
        # position and history
        self.epoch = 0          # epochs fully finished (0-based index of the current one)
        self.batch = 0          # batches finished in the current epoch
        self.step = 0           # optimiser steps overall
        self.last_loss = float("nan")
        self.history = {"log": [], "epochs": []}
        self.best = None        # {"epoch": int, "accuracy": float}
        self.status = "new"
        self._stop_requested = False
        self._updating = False  # True while parameters and counters may disagree
        self._reset_meters()

    # -- bookkeeping -------------------------------------------------------
    def _reset_meters(self):
        xp = backend.current().xp
        self.m_loss_sum = 0.0          # sum of per-batch mean losses (host floats, read each step)
        self.m_window_sum, self.m_window_n = 0.0, 0
        self.m_samples = 0
        self.m_correct = xp.zeros((), dtype=xp.int64)            # on the device: no per-step sync
        self.m_parts = {k: xp.zeros((), dtype=xp.float64) for k in self.objective.part_names}
        self.m_time = 0.0

    def _meters_state(self) -> dict:
        return {"loss_sum": self.m_loss_sum, "window_sum": self.m_window_sum, "window_n": self.m_window_n,
                "samples": self.m_samples, "correct": int(self.m_correct),
                "parts": {k: float(v) for k, v in self.m_parts.items()}, "time_s": self.m_time}

    def _load_meters(self, st: dict):
        xp = backend.current().xp
        self.m_loss_sum = float(st["loss_sum"])
        self.m_window_sum, self.m_window_n = float(st["window_sum"]), int(st["window_n"])
        self.m_samples = int(st["samples"])
        self.m_correct = xp.asarray(int(st["correct"]), dtype=xp.int64)
        self.m_parts = {k: xp.asarray(float(st["parts"].get(k, 0.0)), dtype=xp.float64)
                        for k in self.objective.part_names}
        self.m_time = float(st["time_s"])

    def _fingerprint(self) -> dict:
        """What must agree between a checkpoint and the run resuming it."""
        ld = self.train_loader
        return {"model": type(self.model).__name__, "batch_size": ld.batch_size, "num_samples": ld.num_samples,
                "shuffle": ld.shuffle, "loader_seed": ld.seed, "drop_last": ld.drop_last}

    # -- checkpoints ---------------------------------------------------------
    def checkpoint(self) -> dict:
        rng = default_generator().bit_generator.state
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": json.dumps(rng),
            "meters": self._meters_state(),
            "history": json.dumps(self.history, allow_nan=False),
            "best": json.dumps(self.best),
            "fingerprint": json.dumps(self._fingerprint()),
            "config": json.dumps(self.config, allow_nan=False),
            "status": self.status,
        }

    def save_checkpoint(self, path=None) -> Path:
        return save(self.checkpoint(), path or self.last_path)

    def load_checkpoint(self, path=None) -> None:
        path = Path(path or self.last_path)
        ck = load(path)
        if ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a training checkpoint (format {ck.get('format')!r}, "
                             f"expected {CHECKPOINT_FORMAT!r})")
        theirs, mine = json.loads(ck["fingerprint"]), self._fingerprint()
        diff = [f"{k}: checkpoint {theirs.get(k)!r} vs now {mine[k]!r}" for k in mine if theirs.get(k) != mine[k]]
        if diff:
            raise ValueError(f"{path}: cannot resume, the run's settings differ: " + "; ".join(diff) +
                             ". Resume with the same --batch-size/--seed/--subset, or start afresh without --resume.")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        pos = ck["position"]
        self.epoch, self.batch, self.step = int(pos["epoch"]), int(pos["batch"]), int(pos["step"])
        default_generator().bit_generator.state = json.loads(ck["rng"])
        self._load_meters(ck["meters"])
        self.history = json.loads(ck["history"])
        self.best = json.loads(ck["best"])
        self.status = "resumed"

    def _save_best(self, record: dict) -> None:
        acc = record["eval"]["accuracy"]
        if self.best is None or acc > self.best["accuracy"]:
            self.best = {"epoch": record["epoch"], "accuracy": acc}
            save({"model": self.model.state_dict(),
                  "meta": json.dumps({"epoch": record["epoch"], "step": self.step, "eval_split": self.eval_name,
                                      "eval": record["eval"], "config": self.config}, allow_nan=False)},
                 self.best_path)

    def write_history(self) -> None:
        write_json(self.out_dir / "history.json", {**self.history, "status": self.status, "best": self.best})
        write_text_atomic(self.out_dir / "log.csv", _csv_text(self.history["log"]) if self.history["log"] else
                          "epoch,batch,step,loss\n")
        rows = []
        for e in self.history["epochs"]:
            row = {k: v for k, v in e.items() if k not in ("eval", "timing")}
            for k, v in (e.get("eval") or {}).items():
                if not isinstance(v, list):
                    row[f"{self.eval_name}_{k}"] = v
            row.update({f"{k}": v for k, v in e.get("timing", {}).items()})
            rows.append(row)
        write_text_atomic(self.out_dir / "epochs.csv", _csv_text(rows) if rows else "epoch\n")
        write_text_atomic(self.out_dir / "train_log.txt",
                          "".join(tutorial_line(r["epoch"], r["batch"], r["loss"]) + "\n" for r in self.history["log"]))

    # -- Ctrl-C ----------------------------------------------------------------
    def _on_sigint(self, signum, frame):
        if self._stop_requested:
            raise KeyboardInterrupt  # second press: abort now
        self._stop_requested = True
        self._log("Ctrl-C: stopping after this step and saving a checkpoint (press again to abort at once)")

    def _should_stop(self) -> bool:
        return self._stop_requested

    # -- the loop --------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        """Train to ``self.epochs``; returns the history. Resumes from ``last.npz`` when asked and present."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            if self.last_path.exists():
                self.load_checkpoint()
                self._log(f"resuming from {self.last_path}: epoch {self.epoch + 1}, batch {self.batch}, "
                          f"step {self.step}")
            else:
                self._log(f"--resume: no checkpoint at {self.last_path}; starting from scratch")
        if self.status == "new":  # a fresh run: its own step-0 checkpoint, no stale best from an older run
            self.best_path.unlink(missing_ok=True)
            self.status = "running"
            self.save_checkpoint()
        self._stop_requested = False
        old_handler = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            while self.epoch < self.epochs:
                self._train_epoch()
                self._finish_epoch()
        except KeyboardInterrupt:
            if self._updating:
                self._log(f"interrupted while updating parameters; {self.last_path} was left as it was "
                          "(it holds the last consistent state)")
            else:
                self.status = "interrupted"
                self.save_checkpoint()
                self.write_history()
                self._log(f"interrupted at epoch {self.epoch + 1}, batch {self.batch} (step {self.step}); "
                          f"checkpoint saved to {self.last_path}; continue with --resume")
            raise
        except NonFiniteLossError:
            self.status = "diverged"
            self.write_history()
            raise
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        self.status = "finished"
        self.save_checkpoint()
        self.write_history()
        return self.history

    def _train_epoch(self) -> None:
        loader, model, opt = self.train_loader, self.model, self.optimizer
        n_batches = len(loader)
        model.train()
        bar = tqdm(total=n_batches, initial=self.batch, desc=f"epoch {self.epoch + 1}/{self.epochs}",
                   unit="batch", disable=not self.progress, dynamic_ncols=True, leave=False)
        t0, samples0, shown = time.perf_counter(), self.m_samples, self.batch
        try:
            for x, y in loader.iter_epoch(self.epoch, start_batch=self.batch):
                # forward, loss and backward (p.grad set, not accumulated); a graph replay on the GPU
                loss, logits, parts = self.train_step(x, y)
                loss_value = float(loss)  # the one host sync per step (the log needs it)
                if not math.isfinite(loss_value):
                    raise NonFiniteLossError(
                        f"loss is {loss_value} at epoch {self.epoch + 1}, batch {self.batch + 1} "
                        f"(step {self.step + 1}); training stopped. The last good checkpoint is "
                        f"{self.last_path if self.last_path.exists() else '(none written yet)'}"
                        + (f" (best: {self.best_path})" if self.best_path.exists() else "")
                        + ". Try a smaller --lr.")
                self._updating = True
                opt.step()
                self.batch += 1
                self.step += 1
                self.last_loss = loss_value
                self.m_loss_sum += loss_value
                self.m_window_sum += loss_value
                self.m_window_n += 1
                self.m_samples += int(y.shape[0])
                self.m_correct += (logits.argmax(axis=1) == y).sum()
                for k, v in parts.items():
                    self.m_parts[k] += v
                self._updating = False

                if self.batch % self.log_every == 0:
                    rec = {"epoch": self.epoch + 1, "batch": self.batch, "step": self.step,
                           "loss": self.m_window_sum / self.m_window_n}
                    self.history["log"].append(rec)
                    self._log(tutorial_line(rec["epoch"], rec["batch"], rec["loss"]))
                    self.m_window_sum, self.m_window_n = 0.0, 0
                if self.progress and self.batch % self.progress_every == 0:
                    dt = time.perf_counter() - t0
                    bar.update(self.batch - shown)
                    shown = self.batch
                    bar.set_postfix_str(f"loss {self.m_loss_sum / self.batch:.3f}, "
                                        f"{(self.m_samples - samples0) / max(dt, 1e-9):.0f} img/s", refresh=False)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.m_time += time.perf_counter() - t0
                    t0, samples0 = time.perf_counter(), self.m_samples
                    self.save_checkpoint()
                for cb in self.callbacks:
                    cb(self)
                if self._stop_requested:
                    raise KeyboardInterrupt
        finally:
            self.m_time += time.perf_counter() - t0
            bar.update(self.batch - shown)
            bar.close()

    def _finish_epoch(self) -> None:
        n = self.batch
        rec = {"epoch": self.epoch + 1, "steps": n, "samples": self.m_samples,
               "train_loss": self.m_loss_sum / n if n else None,
               "train_accuracy": int(self.m_correct) / self.m_samples if self.m_samples else None}
        for k, v in self.m_parts.items():
            rec[f"train_{k}"] = float(v) / n if n else None
        timing = {"train_time_s": self.m_time,
                  "images_per_s": self.m_samples / self.m_time if self.m_time > 0 else None}
        if self.eval_loader is not None:
            t = time.perf_counter()
            rec["eval"] = evaluate(self.model, self.objective, self.eval_loader, self.num_classes,
                                   should_stop=self._should_stop)
            timing["eval_time_s"] = time.perf_counter() - t
            ev = rec["eval"]
            extra = "".join(f", {k} {ev[k]:.4f}" for k in self.objective.part_names)
            self._log(f"epoch {rec['epoch']}: train loss {rec['train_loss']:.3f}, {self.eval_name} loss "
                      f"{ev['loss']:.3f}{extra}, {self.eval_name} accuracy {100 * ev['accuracy']:.2f} % "
                      f"({self.m_time:.1f} s, {timing['images_per_s'] or 0:.0f} img/s)")
        rec["timing"] = timing
        self.history["epochs"].append(rec)
        self.epoch += 1
        self.batch = 0
        self._reset_meters()
        if "eval" in rec:
            self._save_best(rec)
        self.status = "running"
        self.save_checkpoint()
        self.write_history()
