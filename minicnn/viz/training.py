"""How training went: the loss by optimiser step, and loss and accuracy by epoch."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from minicnn.viz._common import _new, _save


def loss_curve(history: dict, path, title: str, eval_name: str = "test") -> Path:
    """Training loss per log window (by step) and, per epoch, the evaluation loss."""
    fig = _new(6.4, 4.0)
    ax = fig.add_subplot()
    log = history.get("log", [])
    if log:
        ax.plot([r["step"] for r in log], [r["loss"] for r in log], marker="o", ms=3, label="train (window mean)")
    steps, ev = 0, []
    for e in history.get("epochs", []):
        steps += e["steps"]
        if e.get("eval"):
            ev.append((steps, e["eval"]["loss"]))
        if e.get("train_loss") is not None and not log:
            ax.plot([steps], [e["train_loss"]], "o", color="C0")
    if ev:
        ax.plot(*zip(*ev), marker="s", color="C1", label=f"{eval_name} (epoch end)")
    ax.set_xlabel("optimiser step (mini-batches)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return _save(fig, path)


def _epoch_series(epochs: list) -> dict:
    """``{curve: ([epoch, ...], [value, ...])}`` for the four curves, skipping missing values
    (an epoch without evaluation, or a None train accuracy); accuracies in %."""
    out = {k: ([], []) for k in ("train_loss", "train_acc", "eval_loss", "eval_acc")}

    def add(key, epoch, value, scale=1.0):
        if value is not None:
            out[key][0].append(epoch)
            out[key][1].append(scale * float(value))

    for i, e in enumerate(epochs):
        n = e.get("epoch", i + 1)
        add("train_loss", n, e.get("train_loss"))
        add("train_acc", n, e.get("train_accuracy"), 100.0)
        ev = e.get("eval") or {}
        add("eval_loss", n, ev.get("loss"))
        add("eval_acc", n, ev.get("accuracy"), 100.0)
    return out


def learning_curves(history: dict, path, title: str, eval_name: str = "val", best_epoch=None) -> Path:
    """Two panels, loss and accuracy (%) per epoch, training and evaluation curves, from a
    :class:`~minicnn.train.Trainer` history (``history["epochs"]``: dicts with ``epoch``,
    ``train_loss``, ``train_accuracy`` and, when evaluated, ``eval`` {``loss``, ``accuracy``}).

    Epochs without evaluation just leave a gap in the evaluation curves. ``best_epoch`` (an
    epoch number, 1-based as in the history) draws a dashed vertical line on both panels and a
    star on the evaluation curve, labelled "best epoch k" in the legend.
    """
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        raise ValueError("learning_curves: expected a trainer history, a dict with an 'epochs' list; "
                         f"got {type(history).__name__}" + (f" with keys {sorted(history)}"
                                                            if isinstance(history, dict) else ""))
    epochs = history["epochs"]
    if not epochs:
        raise ValueError("learning_curves: the history has no epochs yet (history['epochs'] is empty)")
    series = _epoch_series(epochs)
    numbers = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
    if best_epoch is not None and best_epoch not in numbers:
        raise ValueError(f"learning_curves: best_epoch={best_epoch!r} is not one of the history's epochs "
                         f"({numbers[0]}..{numbers[-1]})")
    fig = _new(10.0, 4.0)
    panels = fig.subplots(1, 2)
    for ax, kind, ylabel in zip(panels, ("loss", "acc"), ("loss", "accuracy (%)")):
        for who, label, colour in (("train", "train", "C0"), ("eval", eval_name, "C1")):
            xs, ys = series[f"{who}_{kind}"]
            if xs:
                ax.plot(xs, ys, marker="o", ms=4, color=colour, label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="C2", ls="--", lw=1)
            xs, ys = series[f"eval_{kind}"]
            y = ys[xs.index(best_epoch)] if best_epoch in xs else None
            # the marker carries the legend entry; with no evaluation there, a proxy line does
            ax.plot([best_epoch] if y is not None else [], [y] if y is not None else [], marker="*", ms=14,
                    color="C2", ls="--" if y is None else "none", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    panels[0].set_title("loss")
    panels[1].set_title("accuracy")
    fig.suptitle(title)
    return _save(fig, path)
