"""minicnn beside its PyTorch twin for one report experiment measured by ``benchmarks/cpu_reports.sh``.

    python -m benchmarks.report_table OUT [OUT ...]

reads OUT/minicnn-seed*/<task>/<run>/results.json (minicnn) and OUT/torch_<task>.json
(the twin) of each OUT (several: the seeds of one experiment measured into different
folders, e.g. ``threeblock-base`` (seed 0) and ``threeblock-base-seeds12``) and prints,
per run, the test accuracy of every seed and their mean on both sides, the difference
of the means, and the training wall time (sum of the epochs' training seconds, mean over
the seeds) and whole-run wall time of each side; then where the twin's dropout masks
came from (``torch_reports --masks``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _add(runs: dict, r: dict, where: Path, side: str) -> None:
    if any(other["seed"] == r["seed"] for other in runs.get(r["run"], [])):
        raise SystemExit(f"{where}: {side} run {r['run']!r} seed {r['seed']} is also in another folder given; "
                         "give each seed once")
    runs.setdefault(r["run"], []).append(r)


def minicnn_runs(outs: list) -> dict:
    """{run: [results.json of each seed]} from OUT/minicnn-seed*/<task>/<run>/results.json of each OUT."""
    runs: dict = {}
    for out in outs:
        for path in sorted(out.glob("minicnn-seed*/*/*/results.json")):
            _add(runs, json.loads(path.read_text()), path, "minicnn")
    return runs


def torch_runs(outs: list) -> dict:
    runs: dict = {}
    for out in outs:
        for path in sorted(out.glob("torch_*.json")):
            for r in json.loads(path.read_text()):
                _add(runs, r, path, "PyTorch")
    return runs


#: a twin run's ``masks`` (runs from before the option drew PyTorch's own)
MASKS = {"minicnn": "minicnn's (the same units dropped)", "torch": "PyTorch's own"}


def pct(xs) -> str:
    return " / ".join(f"{100 * x:.2f}" for x in xs)


def table(outs) -> str:
    """The Markdown table of one folder (a Path) or several (a list of Paths, seeds merged)."""
    outs = [outs] if isinstance(outs, Path) else list(outs)
    mine, theirs = minicnn_runs(outs), torch_runs(outs)
    if not mine:
        where = ", ".join(f"{o}/minicnn-seed*/" for o in outs)
        raise SystemExit(f"no minicnn results under {where}: run benchmarks/cpu_reports.sh first")
    lines = ["| run | seeds | minicnn test acc. (%) | mean | PyTorch test acc. (%) | mean | diff (points) "
             "| best epoch minicnn / PyTorch | training s minicnn / PyTorch | run s minicnn / PyTorch |",
             "|---|---|---|---:|---|---:|---:|---|---:|---:|"]
    for name, rs in mine.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        ts = sorted(theirs.get(name, []), key=lambda r: r["seed"])
        a = [r["test_accuracy"] for r in rs]
        train_s = np.mean([sum(r["wall_time_per_epoch_s"]) for r in rs])
        run_s = np.mean([r["total_wall_time_s"] for r in rs])
        best = ", ".join(str(r["best"]["epoch"]) for r in rs)
        if ts:
            b = [r["test_accuracy"] for r in ts]
            tb = ", ".join(str(r["best"]["epoch"]) for r in ts)
            t_train = np.mean([sum(r["epoch_seconds"]) for r in ts])
            t_run = np.mean([r["wall_s"] for r in ts])
            row = (f"{pct(b)} | {100 * np.mean(b):.2f} | {100 * (np.mean(a) - np.mean(b)):+.2f} | {best} / {tb} "
                   f"| {train_s:.0f} / {t_train:.0f} | {run_s:.0f} / {t_run:.0f}")
        else:
            row = f"not run | | | {best} / | {train_s:.0f} / | {run_s:.0f} / "
        seeds = ", ".join(str(r["seed"]) for r in rs)
        lines.append(f"| {rs[0]['label']} | {seeds} | {pct(a)} | {100 * np.mean(a):.2f} | {row} |")
    masks = sorted({MASKS[r.get("masks", "torch")] for rs in theirs.values() for r in rs})
    if masks:
        lines.append(f"\nThe twin's dropout masks: {' and '.join(masks)}.")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, nargs="+", help="folders of benchmarks/cpu_reports.sh (seeds merged)")
    print(table(ap.parse_args(argv).out))


if __name__ == "__main__":
    main()
