"""Text and number formatting, and the tables and notes shared by the PDF and the Markdown:
the runs table (:func:`run_row`), a run's numbers (:func:`numbers_rows`), its settings,
notes, a multi-run folder's own table, and the environment lines."""

from __future__ import annotations

import datetime
import math
import platform

import numpy as np

from .runs import Run, _is_number
from .sources import SEED_NOTES, seed_number

DASH = "—"

#: Settings left out of the report (logging and bookkeeping flags that do not change the results).
QUIET_SETTINGS = ("log_every", "checkpoint_every", "no_progress", "resume", "eval_batch_size")

RUN_HEADER = ["task", "model", "backend", "epochs", "test accuracy", "seed report", "PyTorch", "wall time"]
NUMBERS_HEADER = ["", "minicnn", "seed report", "PyTorch"]
LEGEND = ("Test accuracy: on the test set, of the weights each run tested. Seed report: the course report's published "
          "number (He et al.'s for ResNets); PyTorch: the PyTorch twin of the same run (--torch). "
          f"{DASH}: none published or measured.")
DAGGER = "† task3 trains nothing: the test accuracy of the task2 weights whose latent channels it decodes."


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



def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
