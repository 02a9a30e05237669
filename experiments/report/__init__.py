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

# The command is split by topic into the modules below; every name the one-file module
# had is still importable from here (``from experiments.report import main, Run, ...``).
from .cli import build_parser, check_out, main
from .figures import DEFAULT_MAIN, DEFAULT_MAIN_COUNT, MAIN_FIGURES, caption, figures_of
from .markdown import markdown, md_cell, md_link, md_table
from .pdf import (CAPTION_H, GAP, LINE, MARGIN, MAX_ROW_H, PAGE, ROW_ASPECT, ROW_ASPECT_WIDE, WIDTH, Pages,
                  read_image, write_pdf, write_run_pages)
from .runs import TASK_MODELS, TASK_ORDER, Run, collect_runs, fail, leaves, load_run, read_results, warn
from .sources import (SEED_NOTES, SEED_REPORTS, SeedNumber, TorchResult, load_torch, match_torch, seed_number,
                      torch_number)
from .tables import (DAGGER, DASH, KNOWN_FIELDS, LEGEND, NUMBERS_HEADER, QUIET_SETTINGS, RUN_HEADER,
                     environment_lines, epoch_times, multi_table, notes, numbers_rows, pct, pct_published,
                     run_row, seconds, settings_text, text_table, value)

__all__ = [
    "build_parser", "check_out", "main",
    "DEFAULT_MAIN", "DEFAULT_MAIN_COUNT", "MAIN_FIGURES", "caption", "figures_of",
    "markdown", "md_cell", "md_link", "md_table",
    "CAPTION_H", "GAP", "LINE", "MARGIN", "MAX_ROW_H", "PAGE", "ROW_ASPECT", "ROW_ASPECT_WIDE", "WIDTH", "Pages",
    "read_image", "write_pdf", "write_run_pages",
    "TASK_MODELS", "TASK_ORDER", "Run", "collect_runs", "fail", "leaves", "load_run", "read_results", "warn",
    "SEED_NOTES", "SEED_REPORTS", "SeedNumber", "TorchResult", "load_torch", "match_torch", "seed_number",
    "torch_number",
    "DAGGER", "DASH", "KNOWN_FIELDS", "LEGEND", "NUMBERS_HEADER", "QUIET_SETTINGS", "RUN_HEADER",
    "environment_lines", "epoch_times", "multi_table", "notes", "numbers_rows", "pct", "pct_published", "run_row",
    "seconds", "settings_text", "text_table", "value",
]
