"""The PDF: A4 page layout (:class:`Pages`: wrapped text and rows of scaled figures) and
writing the report's pages (:func:`write_pdf`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .figures import caption, figures_of
from .runs import Run, leaves, warn
from .tables import (DAGGER, LEGEND, NUMBERS_HEADER, RUN_HEADER, environment_lines, multi_table, notes,
                     numbers_rows, run_row, settings_text, text_table)

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



def read_image(path: Path):
    import matplotlib.image as mpimg

    try:
        return mpimg.imread(path)
    except Exception as e:  # a damaged PNG: the rest of the report still stands
        warn(f"figure {path} cannot be read ({e}); left out")
        return None



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
