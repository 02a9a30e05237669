"""The command line: its options (:func:`build_parser`), the ``--out`` check, and :func:`main`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from minicnn.atomic import atomic_write, write_text_atomic

from .markdown import markdown
from .pdf import write_pdf
from .runs import collect_runs, fail, leaves
from .sources import load_torch, match_torch


def build_parser():
    p = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
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
