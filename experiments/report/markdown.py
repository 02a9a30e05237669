"""The Markdown file beside the PDF: the same tables, and the figures linked by relative path."""

from __future__ import annotations

import os
from pathlib import Path

from .figures import caption, figures_of
from .runs import Run, leaves
from .tables import (DAGGER, LEGEND, NUMBERS_HEADER, RUN_HEADER, environment_lines, multi_table, notes,
                     numbers_rows, run_row, settings_text)


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
