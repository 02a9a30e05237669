"""Which of a run's PNG figures go into the report (:func:`figures_of`), and their captions."""

from __future__ import annotations

from pathlib import Path

from .runs import Run, warn

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
