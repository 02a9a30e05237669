"""report: finished runs assembled into one PDF, and a Markdown file beside it.

    python -m experiments.report runs/task1 runs/task2 runs/task3 --out report.pdf
    python -m experiments.report runs --torch benchmarks/results/torch_task1.json --out report.pdf
    python -m experiments.report runs/threeblock --figures all --out threeblock.pdf

A RUN_DIR is a task folder (``OUT/<task>/``: results.json and the run's PNG
figures), a multi-run folder (its results.json names each run's folder under
``"runs"`` and may hold a ``"table"`` of rows), or an output root ``OUT``, from
which every task folder holding a results.json is taken.

The PDF starts with a title page: one row per run (task, model, backend,
epochs, test accuracy, the seed report's number, PyTorch's, wall time) and the
environment. Then each run gets a page of settings and numbers (minicnn's
beside the seed report's and PyTorch's), followed by its figures, several per
page, scaled to fit and captioned with their file names. ``--figures main``
(the default) takes a short list per task, so tasks 1-3 fit the assignment's
8 pages; ``--figures all`` takes every PNG in the run folder. The Markdown file
(same stem, ``.md``) holds the same tables and links the figures by relative
path.

Where the numbers come from: the seed report's is the run's ``"reference"``
when its results.json has that key (a fraction, or null for none), otherwise
:data:`SEED_REPORTS`, the published numbers of the course reports (a task
whose report states none has no entry). PyTorch's come from the ``--torch``
files written by the twin scripts (``benchmarks/torch_tasks.py``,
``torch_resnet.py``, ``torch_reports.py``), matched by task, run name and
seed. A number nobody published or measured is shown as "—", never guessed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn.atomic import atomic_write, write_text_atomic

DASH = "—"
TASK_ORDER = ("task1", "task2", "task3")
TASK_MODELS = {"task1": "TutorialNet", "task2": "DeconvNet", "task3": "DeconvNet"}

#: ``--figures main``: the figures each task shows, in this order (file stems). Tasks 1-3
#: fit 8 pages with these; a task not named here shows up to :data:`DEFAULT_MAIN_COUNT` of
#: :data:`DEFAULT_MAIN`, or its first figures when it has none of them.
MAIN_FIGURES = {
    "task1": ("loss_curve", "per_class_accuracy", "confusion_matrix", "test_predictions"),
    "task2": ("loss_curve", "per_class_accuracy", "reconstructions", "confusion_matrix"),
    "task3": ("train_z1_channels", "test_z1_channels", "train_z2_channels", "test_z2_channels"),
    "resnet": ("lr_schedule", "loss_curve", "per_class_accuracy", "confusion_matrix"),
}
DEFAULT_MAIN = ("learning_curves", "loss_curve", "accuracy_curve", "lr_schedule", "per_class_accuracy",
                "confusion_matrix", "reconstructions")
DEFAULT_MAIN_COUNT = 4

#: Settings left out of the report (logging and bookkeeping flags that do not change the results).
QUIET_SETTINGS = ("log_every", "checkpoint_every", "no_progress", "resume", "eval_batch_size")


@dataclass(frozen=True)
class SeedNumber:
    """One published test accuracy. A run gets it when its run name or model is one of
    ``names`` (compared lower-case, letters, digits and dots only), else when every
    setting in ``when`` has the given value (a tuple key: alternative setting names)."""

    label: str
    accuracy: float  # a fraction
    source: str
    names: tuple = ()
    when: dict = field(default_factory=dict)


_MNIST = "report C (MNIST, full set, 5 epochs)"
_B = "report B (ThreeBlockNet)"
_D = "report D (dropout study)"
_HE = "He et al. (2016), CIFAR-10 table (64k iterations, about 164 epochs)"
_P = ("dropout", "p", "dropout_p")


def _p_names(p: str) -> tuple:
    return (f"p{p}", f"p{float(p)}", f"dropout{p}", f"dropout{float(p)}", f"drop{p}")


#: The course reports' published test accuracies, by task. Tasks 1-3's reports state none
#: (so they have no entry); report C (cifar_small) evaluated on its training set, so it has
#: no reliable test number (see :data:`SEED_NOTES`).
SEED_REPORTS: dict[str, tuple[SeedNumber, ...]] = {
    "mnist": (
        SeedNumber("no weight decay", 0.9656, _MNIST, ("no_wd", "nowd", "wd0", "base", "baseline"),
                   {("weight_decay",): 0.0}),
        SeedNumber("weight decay 1e-4", 0.9722, _MNIST, ("wd", "wd1e-4", "wd0.0001", "weight_decay"),
                   {("weight_decay",): 1e-4}),
    ),
    "threeblock": (
        SeedNumber("base", 0.734, _B, ("base", "report_b_base")),
        SeedNumber("net1 (BatchNorm)", 0.753, _B, ("net1", "report_b_net1")),
        SeedNumber("net2 (Dropout)", 0.761, _B, ("net2", "report_b_net2")),
        SeedNumber("tuned", 0.803, _B, ("tuned",)),
    ),
    "dropout_study": (
        SeedNumber("p = 0", 0.704, _D, _p_names("0") + ("nodropout", "no_dropout"), {_P: 0.0}),
        SeedNumber("p = 0.2", 0.707, _D, _p_names("0.2"), {_P: 0.2}),
        SeedNumber("p = 0.5", 0.740, _D, _p_names("0.5"), {_P: 0.5}),
        SeedNumber("p = 0.8", 0.667, _D, _p_names("0.8"), {_P: 0.8}),
        SeedNumber("tuned", 0.8015, _D, ("tuned",)),
    ),
    "resnet": (
        SeedNumber("ResNet-20", 0.9125, _HE, ("ResNet-20", "resnet20")),
        SeedNumber("ResNet-32", 0.9249, _HE, ("ResNet-32", "resnet32")),
        SeedNumber("ResNet-56", 0.9303, _HE, ("ResNet-56", "resnet56")),
    ),
}
SEED_NOTES = {
    "cifar_small": "Report C measured its 'test' accuracy on its training set: no reliable number to compare with.",
}


def fail(message: str):
    """End the command: ``error: message`` on stderr, exit status 1."""
    raise SystemExit(f"error: {message}")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _norm(name) -> str:
    return "".join(c for c in str(name or "").lower() if c.isalnum() or c == ".")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- reading the runs ---------------------------------------------------------------------

@dataclass
class Run:
    """One run folder and its results.json; a multi-run folder has ``subruns``."""

    folder: Path
    results: dict
    task: str
    run_name: str | None = None
    subruns: list = field(default_factory=list)
    label: str = ""
    torch: "TorchResult | None" = None  # set by :func:`match_torch`
    found_figures: list | None = None  # :func:`figures_of`'s search, done once

    def setting(self, *names):
        """The first of ``names`` found in results.json, then in its settings (None when absent)."""
        settings = self.results.get("settings") if isinstance(self.results.get("settings"), dict) else {}
        for n in names:
            if n in self.results and not isinstance(self.results[n], (dict, list)):
                return self.results[n]
            if n in settings:
                return settings[n]
        return None

    @property
    def meta(self) -> dict:
        m = self.results.get("checkpoint_meta")
        return m if isinstance(m, dict) else {}

    @property
    def model(self):
        m = self.results.get("model") or self.meta.get("model") or TASK_MODELS.get(self.task)
        return str(m) if m else None

    @property
    def seed(self):
        s = self.setting("seed")
        return s if _is_number(s) else None

    @property
    def backend(self):
        return self.setting("backend")

    @property
    def epochs(self):
        e = self.results.get("epochs")
        if isinstance(e, list):
            return len(e)
        if _is_number(e):
            return e
        e = self.setting("epochs")
        if e is None and isinstance(self.meta.get("settings"), dict):  # task3: the weights' training
            e = self.meta["settings"].get("epochs")
        return e

    @property
    def accuracy(self):
        """(test accuracy, True when it is the accuracy of the weights the run loaded (task3))."""
        a = self.results.get("test_accuracy")
        if _is_number(a):
            return a, False
        a = self.meta.get("test_accuracy")
        return (a, True) if _is_number(a) else (None, False)


def read_results(folder: Path) -> dict:
    path = folder / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{folder} has no results.json: it is not a finished run (pass a task folder such as "
             f"runs/task1, or the output root runs)")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read {path}: {e}")
    try:
        results = json.loads(text)
    except ValueError as e:
        fail(f"{path} is damaged (not valid JSON: {e}); the run may have been stopped while writing it: "
             f"run it again")
    if not isinstance(results, dict):
        fail(f"{path} is not a run's results (a JSON object was expected, found {type(results).__name__})")
    return results


def load_run(folder: Path, parent: Run | None = None, run_name: str | None = None) -> Run:
    results = read_results(folder)
    task = (parent.task if parent else None) or str(results.get("task") or folder.name)
    run = Run(folder, results, task, run_name)
    run.label = f"{task}/{run_name}" if run_name else task
    runs = results.get("runs")
    if runs is None:
        return run
    if not isinstance(runs, dict):
        fail(f"{folder / 'results.json'}: \"runs\" should map each run's name to its folder")
    for name, sub in runs.items():
        if isinstance(sub, dict):
            sub = sub.get("dir") or sub.get("folder") or sub.get("path")
        if not isinstance(sub, str) or not sub:
            fail(f"{folder / 'results.json'}: runs[{name!r}] should be the run's folder, got {sub!r}")
        path = Path(sub) if Path(sub).is_absolute() else folder / sub
        if not path.is_dir():
            fail(f"{folder / 'results.json'} names run {name!r} in {path}, which is not a folder")
        if path.resolve() in (folder.resolve(), *folder.resolve().parents):
            fail(f"{folder / 'results.json'} names run {name!r} in {path}, which holds the multi-run folder itself")
        run.subruns.append(load_run(path, run, str(name)))
    return run


def _task_key(run: Run):
    return (TASK_ORDER.index(run.task) if run.task in TASK_ORDER else len(TASK_ORDER), run.task, str(run.folder))


def collect_runs(paths) -> list[Run]:
    """Every run the command line names, in order; an output root gives its task folders
    (task1, task2, task3 first, then the others by name)."""
    runs = []
    for p in map(Path, paths):
        if not p.exists():
            fail(f"{p} does not exist")
        if not p.is_dir():
            fail(f"{p} is not a folder (pass a run folder such as runs/task1, or the output root runs)")
        if (p / "results.json").exists():
            runs.append(load_run(p))
            continue
        folders = sorted(d for d in p.iterdir() if d.is_dir())
        for d in folders:
            if not (d / "results.json").exists() and (d / "history.json").exists():
                warn(f"{d} has no results.json (a run not finished?): left out")
        found = sorted((load_run(d) for d in folders if (d / "results.json").exists()), key=_task_key)
        if not found:
            fail(f"{p} has no results.json, and none of its folders has one: pass a finished run's folder "
                 f"(OUT/<task>, holding results.json) or the output root OUT")
        runs += found
    seen: dict[str, int] = {}
    for r in runs:  # tell apart two runs of one task
        for x in [r, *r.subruns]:
            seen[x.label] = seen.get(x.label, 0) + 1
            if seen[x.label] > 1:
                x.label = f"{x.label} ({seen[x.label]})"
    return runs


def leaves(runs) -> list[Run]:
    """The runs that have numbers: each single run, and each run of a multi-run folder."""
    out = []
    for r in runs:
        out += leaves(r.subruns) if r.subruns else [r]
    return out


# --- the numbers to compare with ------------------------------------------------------------

def seed_number(run: Run):
    """``(fraction or None, where it comes from)`` for the run's seed-report comparison."""
    if "reference" in run.results:
        v = run.results["reference"]
        return (v, "results.json \"reference\"") if _is_number(v) else (None, None)
    refs = SEED_REPORTS.get(run.task, ())
    keys = {_norm(run.run_name), _norm(run.model), _norm(run.results.get("variant"))} - {""}
    for r in refs:
        if keys & {_norm(n) for n in r.names}:
            return r.accuracy, f"{r.source}: {r.label}"
    for r in refs:
        if r.when and all(_is_number(v := run.setting(*k)) and math.isclose(v, want, abs_tol=1e-12)
                          for k, want in r.when.items()):
            return r.accuracy, f"{r.source}: {r.label}"
    return None, None


@dataclass
class TorchResult:
    task: str
    accuracy: float
    source: str
    run: str | None = None
    seed: int | None = None
    model: str | None = None
    epochs: int | None = None
    subset: object = "unknown"  # the file's subset (None: all the data), "unknown" when it does not say
    entry: dict = field(default_factory=dict)


def load_torch(paths) -> list[TorchResult]:
    """The entries of the ``--torch`` files: a JSON list of results or one result, each with a
    ``test_accuracy`` and a task (``task`` or ``experiment``; a ResNet's ``model`` means task resnet)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            fail(f"--torch {p} is a folder, not a PyTorch results file (give the RUN_DIRs before --torch)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            fail(f"--torch {p}: no such file")
        except ValueError as e:
            fail(f"--torch {p} is damaged (not valid JSON: {e})")
        except OSError as e:
            fail(f"--torch {p}: cannot read it: {e}")
        items = data if isinstance(data, list) else [data]
        found = 0
        for it in items:
            if not isinstance(it, dict) or not _is_number(it.get("test_accuracy")):
                continue
            settings = it.get("settings") if isinstance(it.get("settings"), dict) else {}
            task, model = it.get("task") or it.get("experiment"), it.get("model")
            if not task and _norm(model).startswith("resnet"):
                task = "resnet"
            if not isinstance(task, str) or not task:
                continue
            task, _, run = task.partition("/")
            run = it.get("run") or it.get("variant") or run or None
            seed = it.get("seed", settings.get("seed"))
            epochs = it.get("epochs")
            epochs = len(epochs) if isinstance(epochs, list) else epochs if _is_number(epochs) else (
                len(it["epoch_seconds"]) if isinstance(it.get("epoch_seconds"), list) else settings.get("epochs"))
            out.append(TorchResult(task, it["test_accuracy"], p.name, str(run) if run else None,
                                   seed if _is_number(seed) else None, str(model) if model else None,
                                   epochs, it.get("subset", settings.get("subset", "unknown")), it))
            found += 1
        if not found:
            fail(f"--torch {p}: no result with a test_accuracy and a task name (the output of "
                 f"benchmarks/torch_tasks.py, torch_resnet.py or torch_reports.py is expected)")
    return out


def torch_number(run: Run, results: list[TorchResult]) -> TorchResult | None:
    """The PyTorch result of the same task, run name and seed (a seed or model only compared
    when both sides give one); None when there is none, or when several disagree."""
    found = [t for t in results
             if _norm(t.task) == _norm(run.task) and _norm(t.run) == _norm(run.run_name)
             and (t.seed is None or run.seed is None or t.seed == run.seed)
             and (run.task != "resnet" or t.model is None or run.model is None or _norm(t.model) == _norm(run.model))]
    if len({t.accuracy for t in found}) > 1:
        warn(f"{run.label}: {len(found)} PyTorch results match (seeds/runs not given); none is shown")
        return None
    return found[0] if found else None


def match_torch(runs: list[Run], results: list[TorchResult]) -> None:
    """Give each run with numbers its PyTorch result (``run.torch``)."""
    for run in leaves(runs):
        run.torch = torch_number(run, results)


# --- formatting -----------------------------------------------------------------------------

def pct(v, digits: int = 2) -> str:
    if not _is_number(v):
        return DASH
    return "nan" if not math.isfinite(v) else f"{100 * v:.{digits}f} %"


def pct_published(v) -> str:
    """A published number with the precision it was given (73.4 %, 80.15 %)."""
    return f"{round(100 * v, 2):g} %" if _is_number(v) and math.isfinite(v) else DASH


def seconds(v) -> str:
    if not _is_number(v) or not math.isfinite(v):
        return DASH
    if v < 10:
        return f"{v:.2f} s"
    if v < 60:
        return f"{v:.1f} s"
    if v < 3600:
        return f"{int(v // 60)} min {int(v % 60):02d} s"
    return f"{int(v // 3600)} h {int(v % 3600 // 60):02d} min"


def value(v, key: str = "") -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return str(v).lower()
    if _is_number(v):
        if any(w in key for w in ("ref", "report")) and isinstance(v, float) and 0 <= v <= 1:
            return pct_published(v)
        if "acc" in key and isinstance(v, float) and 0 <= v <= 1:
            return pct(v)
        if key.endswith("_s") or "time" in key:
            return seconds(v)
        return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(value(x, key) for x in v[:8]) + (", ..." if len(v) > 8 else "")
    return str(v)


def epoch_times(times) -> str:
    """Seconds per epoch: each of a few, else the median and the first (which holds compilation)."""
    times = [t for t in times if _is_number(t)] if isinstance(times, list) else []
    if len(times) <= 4:
        return ", ".join(map(seconds, times)) or DASH
    return f"median {seconds(float(np.median(times)))}, first {seconds(times[0])}"


def settings_text(run: Run) -> str:
    """The command line's settings, then (a report run's) the run's own: ``"k=v  k=v"`` lines."""
    s, hp = run.results.get("settings"), run.results.get("hparams")
    lines = []
    if isinstance(s, dict):
        lines.append("  ".join(f"{k}={value(v)}" for k, v in s.items() if k not in QUIET_SETTINGS))
    if isinstance(hp, dict):
        lines.append("this run: " + "  ".join(f"{k}={value(v)}" for k, v in hp.items()))
    return "\n".join(lines)


def run_row(run: Run) -> dict:
    acc, loaded = run.accuracy
    t = run.torch
    return {"task": run.label, "model": run.model or DASH, "backend": run.backend or DASH,
            "epochs": value(run.epochs), "test accuracy": pct(acc) + (" †" if loaded else ""),
            "seed report": pct_published(seed_number(run)[0]), "PyTorch": pct(t.accuracy) if t else DASH,
            "wall time": seconds(run.results.get("total_wall_time_s"))}


def numbers_rows(run: Run) -> list[list[str]]:
    """(what, minicnn, seed report, PyTorch) rows for the run's page."""
    r, t = run.results, run.torch
    te = t.entry if t else {}
    acc, loaded = run.accuracy
    rows = [["test accuracy" + (" (task2's weights)" if loaded else ""), pct(acc),
             pct_published(seed_number(run)[0]), pct(t.accuracy) if t else DASH]]
    if _is_number(r.get("test_loss")):
        rows.append(["test loss", f"{r['test_loss']:.4f}", DASH,
                     f"{te['test_loss']:.4f}" if _is_number(te.get("test_loss")) else DASH])
    if _is_number(r.get("test_mse")):
        rows.append(["test reconstruction MSE (normalised)", f"{r['test_mse']:.4f}", DASH,
                     f"{te['test_mse']:.4f}" if _is_number(te.get("test_mse")) else DASH])
    best = r.get("best")
    if isinstance(best, dict) and _is_number(best.get("accuracy")):
        on = "validation" if _is_number(run.setting("val_size")) and run.setting("val_size") > 0 else "test"
        rows.append([f"best epoch's {on} accuracy (epoch {best.get('epoch', '?')})", pct(best["accuracy"]),
                     DASH, DASH])
    if r.get("n_train") is not None or r.get("n_test") is not None:
        rows.append(["training / test images", f"{value(r.get('n_train'))} / {value(r.get('n_test'))}", DASH,
                     f"{value(te.get('n_train'))} / {value(te.get('n_test'))}" if "n_test" in te else DASH])
    rows.append(["epochs", value(run.epochs), DASH, value(t.epochs) if t else DASH])
    per_epoch = r.get("wall_time_per_epoch_s")
    if isinstance(per_epoch, list) and per_epoch:
        eps = te.get("epochs") if isinstance(te.get("epochs"), list) else []
        torch_epoch = te.get("epoch_seconds") or [e.get("train_time_s") for e in eps if isinstance(e, dict)]
        rows.append(["training time per epoch", epoch_times(per_epoch), DASH, epoch_times(torch_epoch)])
    rows.append(["whole run (wall time)", seconds(r.get("total_wall_time_s")), DASH,
                 seconds(te.get("total_wall_time_s"))])
    if _is_number(r.get("parameters")):
        rows.append(["parameters", f"{r['parameters']:,}", DASH, DASH])
    return rows


KNOWN_FIELDS = {"task", "backend", "seed", "settings", "n_train", "n_test", "test_accuracy", "test_loss",
                "per_class_accuracy", "confusion_matrix", "classes", "epochs", "wall_time_per_epoch_s", "loss_log",
                "best", "total_wall_time_s", "environment", "model", "parameters", "reference", "figures", "runs",
                "table", "test_mse", "checkpoint_meta", "train_grid_indices", "activation_stats", "run", "label",
                "hparams", "reference_note"}


def notes(run: Run) -> list[str]:
    """Lines under the numbers: where the comparisons come from, and what else results.json says."""
    r, lines = run.results, []
    ref, src = seed_number(run)
    if src:
        lines.append(f"seed report: {src}")
    if isinstance(r.get("reference_note"), str) and r["reference_note"]:
        lines.append(f"about the seed report: {r['reference_note']}")
    if run.task in SEED_NOTES:
        lines.append(SEED_NOTES[run.task])
    t = run.torch
    if t:
        what = ", ".join(x for x in (f"seed {t.seed}" if t.seed is not None else "",
                                     f"{t.epochs} epochs" if t.epochs is not None else "",
                                     f"subset {t.subset:g}" if _is_number(t.subset) else "") if x)
        lines.append(f"PyTorch: {t.source}" + (f" ({what})" if what else ""))
        other_epochs = t.epochs is not None and run.epochs is not None and t.epochs != run.epochs
        other_subset = t.subset != "unknown" and t.subset != run.setting("subset")
        if other_epochs or other_subset:
            lines.append(f"  note: PyTorch's run differs (epochs {value(t.epochs)}, subset {value(t.subset)}; "
                         f"this run: epochs {value(run.epochs)}, subset {value(run.setting('subset'))})")
    if _is_number(run.accuracy[0]) and run.accuracy[1]:
        lines.append(f"test accuracy: of the weights this run decodes, {r.get('checkpoint', 'its checkpoint')} "
                     f"(trained by task2; lambda {value(run.meta.get('lam'))})")
    per_class = r.get("per_class_accuracy")
    if isinstance(per_class, dict) and per_class:
        lines.append("per-class test accuracy (%): " + ", ".join(
            f"{k} {DASH if not _is_number(v) else format(100 * v, '.1f')}" for k, v in per_class.items()))
    images = r.get("images")
    if isinstance(images, dict) and images:
        lines.append("images: " + "; ".join(
            f"{split} #{d.get('index')} ({d.get('class')}, predicted {d.get('predicted')})"
            for split, d in images.items() if isinstance(d, dict)))
    other = {k: v for k, v in r.items() if k not in KNOWN_FIELDS and not isinstance(v, dict)
             and not (isinstance(v, list) and len(v) > 16)}
    if other:
        lines.append("also in results.json: " + ", ".join(f"{k} {value(v, k)}" for k, v in other.items()))
    env = r.get("environment")
    if isinstance(env, dict) and env:
        lines.append("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    return lines


def multi_table(run: Run) -> tuple[list[str], list[list[str]]]:
    """A multi-run folder's own ``"table"`` (a list of row objects) as (header, rows)."""
    table = run.results.get("table")
    if not isinstance(table, list) or not table:
        return [], []
    rows = [row for row in table if isinstance(row, dict)]
    header = list(dict.fromkeys(k for row in rows for k in row))
    return header, [[value(row.get(k), k) for k in header] for row in rows]


def environment_lines(runs: list[Run]) -> list[str]:
    import matplotlib

    lines = []
    envs = {}
    for r in runs:
        env = r.results.get("environment")
        if isinstance(env, dict) and env:
            key = ", ".join(f"{k} {v}" for k, v in env.items())
            envs.setdefault(key, []).append(r.label)
    for key, labels in envs.items():
        lines.append(f"runs ({', '.join(labels)}): {key}")
    backends = sorted({str(r.backend) for r in runs if r.backend})
    if backends:
        lines.append(f"backends: {', '.join(backends)}")
    lines.append(f"this report: python {platform.python_version()}, numpy {np.__version__}, matplotlib "
                 f"{matplotlib.__version__}, {platform.platform()}, "
                 f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return lines


# --- figures --------------------------------------------------------------------------------

def _listed_figures(obj):
    if isinstance(obj, str):
        if obj.lower().endswith(".png"):
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _listed_figures(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _listed_figures(v)


def figures_of(run: Run, which: str) -> list[Path]:
    """The run's PNGs: those results.json lists under ``"figures"`` and those in its folder;
    ``which == "main"`` keeps the task's short list (:data:`MAIN_FIGURES`)."""
    if run.found_figures is None:
        found: dict[Path, Path] = {}
        for s in _listed_figures(run.results.get("figures")):
            p = Path(s)
            for cand in ((p,) if p.is_absolute() else (run.folder / p, Path.cwd() / p)) + (run.folder / p.name,):
                if cand.is_file():
                    found.setdefault(cand.resolve(), cand)
                    break
            else:
                warn(f"{run.label}: figure {s} named in {run.folder / 'results.json'} is missing")
        for p in sorted(run.folder.glob("*.png")):
            found.setdefault(p.resolve(), p)
        run.found_figures = list(found.values())
    figs = run.found_figures
    if run.subruns:  # a multi-run folder's own figures compare its runs: all of them
        return figs
    main = MAIN_FIGURES.get(run.task)
    chosen = [f for stem in (main or DEFAULT_MAIN) for f in figs if f.stem == stem]
    if which == "all":
        return chosen + [f for f in figs if f not in chosen]
    if main is None:
        chosen = chosen[:DEFAULT_MAIN_COUNT] or figs[:DEFAULT_MAIN_COUNT]
    return chosen


def caption(run: Run, path: Path) -> str:
    try:
        name = path.relative_to(run.folder).as_posix()
    except ValueError:
        name = path.name
    return f"{path.stem.replace('_', ' ')} ({name})"


# --- the PDF --------------------------------------------------------------------------------

PAGE = (8.27, 11.69)  # A4, inches
MARGIN = 0.6
WIDTH = PAGE[0] - 2 * MARGIN
LINE = 1.3  # line height / font size
CAPTION_H = 0.22
GAP = 0.18
MAX_ROW_H = 3.2
ROW_ASPECT = 3.4  # a row holds figures whose width/height ratios add up to this at most,
ROW_ASPECT_WIDE = 4.4  # or to this when all are wide (two of task3's z2 figures side by side)


class Pages:
    """A top-to-bottom flow of text blocks and rows of images over A4 pages of a PdfPages."""

    def __init__(self, pdf, footer: str):
        self.pdf, self.footer, self.fig, self.y = pdf, footer, None, 0.0

    def new_page(self):
        from matplotlib.figure import Figure

        self.flush()
        self.fig, self.y = Figure(figsize=PAGE), MARGIN

    def flush(self):
        if self.fig is not None:
            self.fig.text(0.5, 0.3 / PAGE[1], f"{self.footer} · page {self.pdf.get_pagecount() + 1}",
                          ha="center", va="bottom", size=7, color="0.45")
            self.pdf.savefig(self.fig)
            self.fig = None

    def room(self) -> float:
        return PAGE[1] - MARGIN - self.y if self.fig is not None else 0.0

    def text(self, s: str, size: float = 9, mono: bool = False, weight: str = "normal", gap: float = 0.1):
        """``s`` from the left margin down, wrapped (a ``mono`` table is shrunk to the width instead),
        continued on new pages as needed."""
        lines = s.split("\n")
        if mono:
            size = min(size, WIDTH * 72 / (0.61 * max(map(len, lines), default=1)))
        else:
            per_line = int(WIDTH * 72 / (0.55 * size))
            lines = [w for line in lines for w in (textwrap.wrap(line, per_line, subsequent_indent="  ") or [""])]
        line_h = size * LINE / 72
        i = 0
        while i < len(lines):
            if self.room() < line_h:
                self.new_page()
            chunk = lines[i:i + max(1, int(self.room() // line_h))]
            self.fig.text(MARGIN / PAGE[0], 1 - self.y / PAGE[1], "\n".join(chunk), va="top", ha="left",
                          size=size, weight=weight, linespacing=LINE,
                          family="monospace" if mono else "sans-serif")
            self.y += len(chunk) * line_h
            i += len(chunk)
        self.y += gap

    def images(self, items):
        """``items``: (image array, caption) pairs, placed in rows, each scaled to fit."""
        row = []
        for img, cap in items:
            aspect = img.shape[1] / img.shape[0]
            aspects = [a for _, a, _ in row] + [aspect]
            if row and sum(aspects) > (ROW_ASPECT_WIDE if min(aspects) >= 2 else ROW_ASPECT):
                self._row(row)
                row = []
            row.append((img, aspect, cap))
        if row:
            self._row(row)

    def _row(self, row):
        aspects = sum(a for _, a, _ in row)
        h = min((WIDTH - GAP * (len(row) - 1)) / aspects, MAX_ROW_H)
        full = PAGE[1] - 2 * MARGIN - CAPTION_H - GAP
        h = min(h, full)
        if self.room() < h + CAPTION_H:
            if self.room() - CAPTION_H >= 0.75 * h:  # a little smaller still fits here
                h = self.room() - CAPTION_H
            else:
                self.new_page()
        x = MARGIN + (WIDTH - (h * aspects + GAP * (len(row) - 1))) / 2
        for img, aspect, cap in row:
            w = h * aspect
            ax = self.fig.add_axes([x / PAGE[0], 1 - (self.y + h) / PAGE[1], w / PAGE[0], h / PAGE[1]])
            gray = {"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}  # not a colour map
            ax.imshow(img, interpolation="none", aspect="auto", **gray)
            ax.set_axis_off()
            self.fig.text((x + w / 2) / PAGE[0], 1 - (self.y + h + 0.04) / PAGE[1], cap, ha="center", va="top",
                          size=7)
            x += w + GAP
        self.y += h + CAPTION_H + GAP


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def read_image(path: Path):
    import matplotlib.image as mpimg

    try:
        return mpimg.imread(path)
    except Exception as e:  # a damaged PNG: the rest of the report still stands
        warn(f"figure {path} cannot be read ({e}); left out")
        return None


RUN_HEADER = ["task", "model", "backend", "epochs", "test accuracy", "seed report", "PyTorch", "wall time"]
NUMBERS_HEADER = ["", "minicnn", "seed report", "PyTorch"]
LEGEND = ("Test accuracy: on the test set, of the weights each run tested. Seed report: the course report's published "
          "number (He et al.'s for ResNets); PyTorch: the PyTorch twin of the same run (--torch). "
          f"{DASH}: none published or measured.")
DAGGER = "† task3 trains nothing: the test accuracy of the task2 weights whose latent channels it decodes."


def write_pdf(f, title: str, runs: list[Run], which: str) -> int:
    from matplotlib.backends.backend_pdf import PdfPages

    all_leaves = leaves(runs)
    rows = [run_row(r) for r in all_leaves]
    with PdfPages(f, metadata={"Title": title, "Creator": "minicnn experiments.report"}) as pdf:
        pages = Pages(pdf, title)
        pages.new_page()
        pages.text(title, size=18, weight="bold", gap=0.15)
        pages.text(f"{len(all_leaves)} run(s): " + ", ".join(str(r.folder) for r in runs), size=8, gap=0.25)
        pages.text(text_table(RUN_HEADER, [list(r.values()) for r in rows]), size=8.5, mono=True, gap=0.12)
        footnotes = [LEGEND]
        if any("†" in r["test accuracy"] for r in rows):
            footnotes.append(DAGGER)
        pages.text("\n".join(footnotes), size=7.5, gap=0.3)
        pages.text("Environment", size=12, weight="bold")
        pages.text("\n".join(environment_lines(all_leaves)), size=8)
        for run in runs:
            write_run_pages(pages, run, which)
        pages.flush()
        return pdf.get_pagecount()


def write_run_pages(pages: Pages, run: Run, which: str):
    pages.new_page()
    kind = f" (multi-run folder: {len(run.subruns)} runs)" if run.subruns else ""
    pages.text(f"{run.label}{kind}" + (f" · {run.model}" if run.model and not run.subruns else ""), size=14,
               weight="bold", gap=0.05)
    pages.text(" · ".join(x for x in (run.results.get("label"), str(run.folder)) if isinstance(x, str)), size=8,
               gap=0.15)
    if settings_text(run):
        pages.text("Settings", size=10, weight="bold", gap=0.04)
        pages.text(settings_text(run), size=8, gap=0.15)
    if run.subruns:
        header, rows = multi_table(run)
        if rows:
            pages.text("Table (results.json)", size=10, weight="bold", gap=0.04)
            pages.text(text_table(header, rows), size=8, mono=True, gap=0.15)
        pages.text("Runs", size=10, weight="bold", gap=0.04)
        pages.text(text_table(RUN_HEADER, [list(run_row(r).values()) for r in leaves([run])]), size=8,
                   mono=True, gap=0.15)
    else:
        pages.text("Numbers", size=10, weight="bold", gap=0.04)
        pages.text(text_table(NUMBERS_HEADER, numbers_rows(run)), size=8.5, mono=True, gap=0.12)
    notes_ = notes(run)
    if notes_:
        pages.text("\n".join(notes_), size=7.5, gap=0.2)
    items = [(img, caption(run, p)) for p in figures_of(run, which) if (img := read_image(p)) is not None]
    pages.images(items)
    for sub in run.subruns:
        write_run_pages(pages, sub, which)


# --- the Markdown ---------------------------------------------------------------------------

def md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(header, rows) -> list[str]:
    return ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]


def md_link(path: Path, md_dir: Path) -> str:
    rel = Path(os.path.relpath(path.resolve(), md_dir.resolve())).as_posix()
    return f"<{rel}>" if any(c in rel for c in " ()<>") else rel


def markdown(title: str, runs: list[Run], which: str, md_dir: Path, pdf_name: str) -> str:
    all_leaves = leaves(runs)
    rows = [run_row(r) for r in all_leaves]
    out = [f"# {title}", "", f"The same report as [{pdf_name}]({md_link(md_dir / pdf_name, md_dir)}), "
           f"from {len(all_leaves)} run(s).", "", *md_table(RUN_HEADER, [list(r.values()) for r in rows]), "",
           LEGEND]
    if any("†" in r["test accuracy"] for r in rows):
        out += ["", DAGGER]
    out += ["", "## Environment", ""] + [f"- {line}" for line in environment_lines(all_leaves)]

    def section(run: Run, level: int):
        kind = f" (multi-run folder: {len(run.subruns)} runs)" if run.subruns else ""
        label = run.results.get("label")
        out.extend(["", f"{'#' * level} {run.label}{kind}", "",
                    (f"{label}; " if isinstance(label, str) else "") + f"folder `{run.folder}`"
                    + (f"; model {run.model}" if run.model and not run.subruns else ""), ""])
        if settings_text(run):
            for line in settings_text(run).split("\n"):  # a Markdown line break after each
                head, sep, rest = line.partition("this run: ")
                out.append(f"This run: `{rest}`  " if sep and not head else f"Settings: `{line}`  ")
            out.append("")
        if run.subruns:
            header, rows_ = multi_table(run)
            if rows_:
                out.extend(md_table(header, rows_) + [""])
            out.extend(md_table(RUN_HEADER, [list(run_row(r).values()) for r in leaves([run])]))
        else:
            out.extend(md_table(["what", *NUMBERS_HEADER[1:]], numbers_rows(run)))
        n = notes(run)
        if n:
            out.extend([""] + [f"- {line.strip()}" for line in n])
        figs = figures_of(run, which)
        if figs:
            out.append("")
            out.extend(f"![{caption(run, p)}]({md_link(p, md_dir)})" for p in figs)
        for sub in run.subruns:
            section(sub, level + 1)

    for run in runs:
        section(run, 2)
    return "\n".join(out) + "\n"


# --- command line ---------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(
        prog=f"python -m {__package__}.report",
        description="Assemble finished runs into one PDF report and a Markdown file beside it (same stem, .md).",
        epilog="examples:\n  python -m experiments.report runs --out report.pdf\n"
               "  python -m experiments.report runs/task1 runs/task2 --out r.pdf --torch torch_task1.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="a run folder (OUT/<task>, holding results.json), a multi-run folder, or an output root "
                        "OUT (every task folder in it with a results.json)")
    p.add_argument("--out", type=Path, default=Path("report.pdf"), metavar="PDF",
                   help="the PDF to write; the Markdown goes beside it with the suffix .md (default: report.pdf)")
    p.add_argument("--torch", type=Path, nargs="+", default=[], metavar="FILE",
                   help="JSON results of the PyTorch twin scripts (benchmarks/torch_tasks.py, torch_resnet.py, "
                        "torch_reports.py), matched to the runs by task, run name and seed; give the RUN_DIRs "
                        "first")
    p.add_argument("--figures", choices=("main", "all"), default="main",
                   help="main (default): a short list per task (tasks 1-3 fit in 8 pages); all: every PNG of "
                        "each run")
    p.add_argument("--title", default="minicnn: experiment report",
                   help="the report's title (default: %(default)s)")
    return p


def check_out(out: Path) -> Path:
    """The Markdown path beside ``out``; ends the command when ``out`` cannot be written."""
    if out.suffix.lower() != ".pdf":
        fail(f"--out {out}: name the PDF file, e.g. report.pdf (the Markdown is written beside it as .md)")
    if out.is_dir():
        fail(f"--out {out} is a folder; name the PDF file, e.g. {out / 'report.pdf'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"--out {out}: cannot create its folder {out.parent}: {e}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        fail(f"--out {out}: {out.parent} is not writable; pass another --out")
    return out.with_suffix(".md")


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    md_path = check_out(args.out)
    runs = collect_runs(args.run_dirs)
    match_torch(runs, load_torch(args.torch))
    text = markdown(args.title, runs, args.figures, md_path.parent, args.out.name)
    try:
        with atomic_write(args.out, "wb") as f:
            n_pages = write_pdf(f, args.title, runs, args.figures)
        write_text_atomic(md_path, text)
    except OSError as e:
        fail(f"cannot write the report to {args.out}: {e}")
    print(f"wrote {args.out} ({n_pages} pages) and {md_path} ({len(leaves(runs))} run(s))")
    return {"pdf": args.out, "markdown": md_path, "pages": n_pages, "runs": [r.label for r in leaves(runs)]}


if __name__ == "__main__":
    main()
