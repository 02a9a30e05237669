"""Reading the runs: a run folder's results.json (:class:`Run`), multi-run folders, output
roots (:func:`collect_runs`), and the small helpers every part of the report uses
(:func:`fail`, :func:`warn`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sources import TorchResult

TASK_ORDER = ("task1", "task2", "task3")
TASK_MODELS = {"task1": "TutorialNet", "task2": "DeconvNet", "task3": "DeconvNet"}


def fail(message: str):
    """End the command: ``error: message`` on stderr, exit status 1."""
    raise SystemExit(f"error: {message}")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _norm(name) -> str:
    return "".join(c for c in str(name or "").lower() if c.isalnum() or c == ".")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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
    # the dataset in the label when it is not the task's own (mnist on Fashion-MNIST)
    ds = run.setting("dataset") or (parent.setting("dataset") if parent else None)
    shown = f"{task} ({ds})" if isinstance(ds, str) and ds not in (task, "cifar10") else task
    run.label = f"{shown}/{run_name}" if run_name else shown
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
