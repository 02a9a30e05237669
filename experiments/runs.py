"""The report experiments' machinery: one training run (:func:`train_run`) and a set of them compared (:func:`run_all`).

A report experiment (``mnist``, ``cifar_small``, ``threeblock``, ``dropout_study``)
trains a few networks on one split of one dataset, each described by a
:class:`Run`: its model, its optimiser settings (``hparams``), its transforms
and the seed report's number. Every run reuses the shared
:class:`~minicnn.train.Trainer` (validation split, ``best.npz``, early stopping,
a per-step lr schedule, resume) and writes its own folder::

    OUT/<task>/<run>/results.json   common.base_results + model, parameters, reference, figures, ...
    OUT/<task>/<run>/*.png          the figures of experiments/figures.py
    OUT/<task>/results.json         {"task", "runs": {run: folder}, "table": [...], "figures", ...}
    OUT/<task>/comparison.md        the table as Markdown; comparison.png the curves side by side

Every run starts from ``--seed``'s weights and batches, whatever the other runs
are, so ``--runs wd`` alone trains the same network as the pair does.
The PyTorch twins (``benchmarks/torch_reports.py``) read the same :class:`Run`
and :class:`Splits`, so they train on the very same batches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import minicnn as mc
from minicnn import data
from minicnn.models import MODELS
from minicnn.atomic import write_text_atomic
from minicnn.train import Classification, TrainConfig, Trainer, evaluate, save_model, write_json

from . import common, figures


@dataclass
class Splits:
    """The data every run of an experiment shares: ``val`` is None when the per-epoch evaluation
    is on the test set (``--val-size 0``); ``input_size`` is one image's (C, H, W)."""

    train: data.ArrayDataset
    val: data.ArrayDataset | None
    test: data.ArrayDataset
    dataset: str

    @property
    def classes(self) -> list:
        return list(self.train.classes)

    @property
    def eval_set(self) -> data.ArrayDataset:
        return self.test if self.val is None else self.val

    @property
    def eval_name(self) -> str:
        return "test" if self.val is None else "val"

    @property
    def input_size(self) -> tuple:
        return tuple(self.train.images.shape[1:])


@dataclass
class Run:
    """One network to train. ``hparams``: the optimiser (``optimizer`` "sgd" | "adam", ``lr``,
    ``momentum``, ``weight_decay``, ``schedule`` None | "cosine") plus what else defines the run
    (dropout p, augmentation ...): all recorded in results.json and checked on ``--resume``.
    ``model_key`` (a ``minicnn.models.MODELS`` key) and ``model_kwargs`` make the minicnn model
    (:meth:`build`; both saved in model.npz's meta, so ``experiments.visualize`` rebuilds the very
    network, GELU or BatchNorm included); ``torch_model`` (a ``benchmarks.torch_models.TORCH_MODELS``
    key, or a class there) and ``torch_kwargs`` make its PyTorch twin. ``reference``: the seed report's test accuracy
    for this run (a fraction) or None. ``patience``: early stopping (None: all epochs).
    ``test_weights``: "best" (best.npz) or "last". ``test_each_epoch``: also measure the test
    set after every epoch (history["test"]). ``note``: what to know about ``reference``."""

    name: str
    label: str
    model: str
    model_key: str
    torch_model: str
    hparams: dict
    train_tf: Callable
    eval_tf: Callable
    torch_kwargs: dict = field(default_factory=dict)
    reference: float | None = None
    patience: int | None = None
    test_weights: str = "last"
    test_each_epoch: bool = False
    note: str | None = None
    model_kwargs: dict = field(default_factory=dict)

    def build(self):
        """A new minicnn model of this run (from the current seed's weights)."""
        return MODELS[self.model_key](**self.model_kwargs)


def make_splits(args, train, test, dataset: str) -> Splits:
    """Hold ``--val-size`` training images out for validation (None: :func:`common.resolve_val_size`'s
    rule), a seeded random choice; 0 leaves the training set whole (evaluation on the test set)."""
    n = common.resolve_val_size(args, len(train))
    val = None
    if n:
        train, val = data.train_val_split(train, n, seed=args.seed)
        print(f"holding out {len(val)} training images for validation; training on {len(train)}")
    return Splits(train, val, test, dataset)


WEIGHT_DECAY_RUNS = ("no_wd", "wd")


def add_weight_decay_arguments(p, default: float = 1e-4) -> None:
    """``--runs no_wd wd`` and ``--weight-decay`` (the ``wd`` run's), for the with/without weight decay pairs."""
    g = p.add_argument_group("runs")
    g.add_argument("--runs", nargs="+", choices=WEIGHT_DECAY_RUNS, default=list(WEIGHT_DECAY_RUNS),
                   help="which runs to train, each into OUT/<task>/<run>/: no_wd (no weight decay) and wd "
                        "(--weight-decay) (default: both)")
    g.add_argument("--weight-decay", type=common.nonneg_float, default=default,
                   help="the wd run's L2 weight decay (added to the gradient, as PyTorch's weight_decay)")


def weight_decay_runs(args, hparams: dict, references: dict, **run) -> list[Run]:
    """The ``--runs`` of a with/without weight decay pair: ``hparams`` plus weight_decay 0 or
    ``--weight-decay``; ``references``: the report's number per run name (used only while
    ``--weight-decay`` is the report's 1e-4); ``run``: the other :class:`Run` fields."""
    out = []
    for name in dict.fromkeys(args.runs):
        wd = args.weight_decay if name == "wd" else 0.0
        label = "no weight decay" if name == "no_wd" else f"weight decay {wd:g}"
        ref = references.get(name) if name == "no_wd" or wd == 1e-4 else None
        out.append(Run(name=name, label=f"{run['model']}, {label}", hparams={**hparams, "weight_decay": wd},
                       reference=ref, **run))
    return out


def make_optimizer(params, hp: dict):
    """The minicnn optimiser ``hp`` describes."""
    if hp["optimizer"] == "adam":
        return mc.optim.Adam(params, lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))
    return mc.optim.SGD(params, lr=hp["lr"], momentum=hp.get("momentum", 0.0),
                        weight_decay=hp.get("weight_decay", 0.0))


def make_scheduler(opt, hp: dict, total_steps: int):
    """``hp["schedule"]`` over ``total_steps`` optimiser steps: None, or "cosine" (lr -> 0 at the end)."""
    if hp.get("schedule") is None:
        return None
    if hp["schedule"] != "cosine":
        raise ValueError(f"unknown schedule {hp['schedule']!r} (expected None or 'cosine')")
    return mc.optim.CosineAnnealingLR(opt, T_max=max(total_steps, 1))


def lr_per_step(hp: dict, total_steps: int) -> list[float] | None:
    """The lr of every optimiser step (the schedule's closed form, on a throwaway optimiser), or None."""
    opt = mc.optim.SGD([mc.nn.Parameter(mc.asarray([0.0]))], lr=hp["lr"])
    sched = make_scheduler(opt, hp, total_steps)
    return None if sched is None else mc.optim.lr_values(sched, total_steps)


class ReportTrainer(Trainer):
    """The shared Trainer (with its per-step lr schedule) plus, when given a ``test_loader``, the
    test set measured after every epoch into ``history["test"]``."""

    def __init__(self, *args, test_loader=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_loader = test_loader

    def _evaluate(self):
        ev, seconds = super()._evaluate()
        if self.test_loader is not None:
            t = evaluate(self.model, self.objective, self.test_loader, self.num_classes, should_stop=self._should_stop)
            self.history.setdefault("test", []).append({"epoch": self.epoch + 1, "loss": t["loss"],
                                                        "accuracy": t["accuracy"]})
            self._log(f"epoch {self.epoch + 1}: test loss {t['loss']:.3f}, test accuracy {100 * t['accuracy']:.2f} %")
        return ev, seconds


def loaders(args, run: Run, splits: Splits, backend: str | None = None):
    """(training loader, evaluation loader): ``--batch-size`` shuffled by ``--seed``; the evaluation in
    order. ``backend``: where the batches go (None: the active backend; the PyTorch twin: "numpy")."""
    train = data.DataLoader(splits.train, args.batch_size, shuffle=True, seed=args.seed, transform=run.train_tf,
                            backend=backend)
    evaluation = data.DataLoader(splits.eval_set, args.eval_batch_size, shuffle=False, transform=run.eval_tf,
                                 backend=backend)
    return train, evaluation


def resume_settings(args, run: Run) -> dict:
    """What a resume of this run must share with it: the data flags and the run's own settings."""
    keep = {"--" + k.replace("_", "-"): getattr(args, k)
            for k in ("batch_size", "seed", "subset", "val_size", "dataset") if hasattr(args, k)}
    keep.update(run.hparams)
    keep["patience"] = run.patience
    if run.hparams.get("schedule"):
        keep["--epochs"] = args.epochs  # a schedule's length is part of the run
    return keep


def normalisation_meta(tf) -> dict:
    """``{"normalize_mean", "normalize_std"}`` of the ``data.Normalize`` in ``tf`` (a transform or a
    ``data.Compose``), for the checkpoint's meta (``experiments.visualize`` shows images with them); {} without one."""
    for t in getattr(tf, "transforms", [tf]):
        if isinstance(t, data.Normalize):
            return {"normalize_mean": list(t.mean), "normalize_std": list(t.std)}
    return {}


def train_run(args, task: str, run: Run, splits: Splits, out: Path, more_figures=None) -> tuple[dict, bool]:
    """Train ``run`` into ``out``, test it, draw its figures and write its results.json;
    ``(results, True)``. A ``--resume`` of a finished run does nothing again: ``(its results, False)``.
    ``more_figures(model, run, splits, out) -> {name: file}`` draws a task's own figures."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    print(f"\n[{task}/{run.name}] {run.label}")
    mc.manual_seed(args.seed)  # each run's weights depend on --seed alone, not on the runs before it
    model = run.build()
    table = mc.summary(model, splits.input_size)
    print(table)
    opt = make_optimizer(model.parameters(), run.hparams)
    train_loader, eval_loader = loaders(args, run, splits)
    test_loader = (data.DataLoader(splits.test, args.eval_batch_size, transform=run.eval_tf)
                   if run.test_each_epoch and splits.val is not None else None)
    config = TrainConfig(epochs=args.epochs, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
                         progress=not args.no_progress, eval_name=splits.eval_name, cuda_graph=args.cuda_graph,
                         patience=run.patience)
    run_info = {"task": task, "run": run.name, "model": run.model, "hparams": run.hparams,
                "settings": common.settings(args)}
    trainer = ReportTrainer(model, opt, Classification(), train_loader, eval_loader,
                            num_classes=len(splits.classes), out_dir=out, config=config, run_info=run_info,
                            resume_settings=resume_settings(args, run),
                            scheduler=make_scheduler(opt, run.hparams, args.epochs * len(train_loader)),
                            test_loader=test_loader)
    common.fit(trainer, args.resume)
    done = common.results_if_complete(out, trainer)
    if done is not None:
        return done, False
    tested = run.test_weights
    if tested == "best" and trainer.load_best() is None:
        tested = "last"
    test_eval = common.test_evaluation(args, trainer, splits.test, run.eval_tf, reuse=tested == "last")
    acc = test_eval["accuracy"]
    print(f"[{task}/{run.name}] test accuracy ({tested} weights): {100 * acc:.2f} % on {test_eval['n']} images"
          + ("" if run.reference is None else f"; the report: {100 * run.reference:.2f} %"))
    figs = {}
    if args.figures:
        figs = figures.report_figures(model, trainer, run, splits, test_eval, out, tested)
        if more_figures is not None:
            figs.update(more_figures(model, run, splits, out))
    save_model(out / "model.npz", model, {"model": run.model, "model_key": run.model_key,
                                          "model_kwargs": run.model_kwargs, "dataset": splits.dataset,
                                          **normalisation_meta(run.eval_tf), "run": run.name,
                                          "hparams": run.hparams, "test_accuracy": acc,
                                          "settings": common.settings(args)})
    res = common.base_results(task, args, trainer, test_eval, splits.classes, started)
    res["n_val"] = 0 if splits.val is None else len(splits.val)
    if "test" in trainer.history:
        for row, t in zip(res["epochs"], trainer.history["test"]):
            row["test_loss"], row["test_accuracy"] = t["loss"], t["accuracy"]
    res.update({"run": run.name, "label": run.label, "model": run.model, "parameters": table.total_params,
                "hparams": run.hparams, "patience": run.patience, "tested_weights": tested,
                "reference": run.reference, "reference_note": run.note, "figures": figs})
    write_json(out / "results.json", res)
    return res, True


def run_all(args, task: str, todo: list[Run], splits: Splits, out: Path, extra: dict | None = None,
            more_figures=None) -> dict:
    """:func:`train_run` for each run into ``out/<run>/``, then the comparison: ``out/results.json``
    (``extra`` merged in), ``comparison.md`` and ``comparison.png``. A ``--resume`` of a finished
    set rewrites nothing."""
    results, fresh = {}, False
    for run in todo:
        results[run.name], new = train_run(args, task, run, splits, out / run.name, more_figures)
        fresh = fresh or new
    rows = [table_row(r) for r in results.values()]
    md = comparison_markdown(rows, splits.eval_name)
    print("\n" + md)
    write_if_changed(out / "comparison.md", md + "\n")
    if args.figures and (fresh or not (out / "comparison.png").is_file()):
        figures.comparison(results, out / "comparison.png",
                           f"{task}: {splits.eval_name} accuracy per epoch and test accuracy of each run",
                           splits.eval_name)
    top = {"task": task, "runs": {name: name for name in results}, "table": rows, "table_file": "comparison.md",
           "figures": {"comparison": "comparison.png"} if args.figures else {}, "dataset": splits.dataset,
           "eval_split": splits.eval_name, **(extra or {})}
    write_if_changed(out / "results.json", json_text(top))
    print(f"results: {out / 'results.json'}")
    return top


def table_row(res: dict) -> dict:
    best = res.get("best") or {}
    return {"run": res["run"], "label": res["label"], "test_accuracy": res["test_accuracy"],
            "best_epoch": best.get("epoch"), "best_eval_accuracy": best.get("accuracy"),
            "epochs_trained": len(res["epochs"]), "tested_weights": res["tested_weights"],
            "parameters": res["parameters"], "reference": res["reference"]}


def comparison_markdown(rows: list[dict], eval_name: str) -> str:
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}"

    lines = [f"| run | test accuracy (%) | best epoch | best {eval_name} accuracy (%) | epochs | tested weights "
             f"| parameters | report (%) |", "|---|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {r['label']} | {pct(r['test_accuracy'])} | {r['best_epoch'] or 'n/a'} | "
              f"{pct(r['best_eval_accuracy'])} | {r['epochs_trained']} | {r['tested_weights']} | "
              f"{r['parameters']:,} | {pct(r['reference'])} |" for r in rows]
    return "\n".join(lines)


def json_text(obj) -> str:
    """Strict JSON text as :func:`minicnn.train.write_json` writes it."""
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already (a resume of a finished set touches nothing)."""
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    write_text_atomic(path, text)
