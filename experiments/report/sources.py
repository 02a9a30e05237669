"""The numbers a run is compared with: the course reports' published test accuracies
(:data:`SEED_REPORTS`, :func:`seed_number`) and the PyTorch twins' results read from the
``--torch`` files (:func:`load_torch`, :func:`match_torch`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .runs import Run, _is_number, _norm, fail, leaves, warn


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


#: Settings that must agree between a run and a PyTorch result when both record them
#: (``settings`` in the twin's entry: benchmarks/torch_reports.py writes it), so that the
#: twin of a Fashion-MNIST or a 20-epoch run is not taken for the digits' or the 5-epoch one's.
MATCH_SETTINGS = ("dataset", "epochs", "batch_size", "lr", "momentum", "weight_decay", "subset", "val_size")


def _settings_agree(run: Run, t: TorchResult) -> bool:
    theirs = t.entry.get("settings") if isinstance(t.entry.get("settings"), dict) else {}
    ours = run.results.get("settings") if isinstance(run.results.get("settings"), dict) else {}
    return all(theirs[k] == ours[k] for k in MATCH_SETTINGS if k in theirs and k in ours)


def torch_number(run: Run, results: list[TorchResult]) -> TorchResult | None:
    """The PyTorch result of the same task, run name and seed (a seed, model or one of
    :data:`MATCH_SETTINGS` only compared when both sides give one); None when there is none,
    or when several disagree."""
    found = [t for t in results
             if _norm(t.task) == _norm(run.task) and _norm(t.run) == _norm(run.run_name)
             and (t.seed is None or run.seed is None or t.seed == run.seed)
             and (run.task != "resnet" or t.model is None or run.model is None or _norm(t.model) == _norm(run.model))
             and _settings_agree(run, t)]
    if len({t.accuracy for t in found}) > 1:
        warn(f"{run.label}: {len(found)} PyTorch results match (seeds/runs not given); none is shown")
        return None
    return found[0] if found else None


def match_torch(runs: list[Run], results: list[TorchResult]) -> None:
    """Give each run with numbers its PyTorch result (``run.torch``)."""
    for run in leaves(runs):
        run.torch = torch_number(run, results)
