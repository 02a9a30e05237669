"""What a classifier got right and wrong: captioned predictions, the confusion matrix,
per-class accuracy and a table of softmax probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

from minicnn.viz._common import _grid, _hwc, _new, _save, _show, check_len, host, verdict_colour


def predictions(images, true_names, pred_names, path, title: str) -> Path:
    """Images captioned "true: a / predicted: b"; wrong predictions in red."""
    imgs = _hwc(images, "predictions")
    n = len(imgs)
    fig = _new(2.0 * n, 2.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, img, t, p in zip(axes, imgs, true_names, pred_names):
        _show(ax, img, f"true: {t}\npredicted: {p}", fontsize=10, color="black" if t == p else "red")
    fig.suptitle(title)
    return _save(fig, path)


def classified_grid(images, true_names, pred_names, path, title: str, ncols: int = 8) -> Path:
    """Images in a grid captioned "true: X" / "pred: Y", caption and frame green when the
    prediction is right and red when it is wrong (:func:`verdict_colour`).

    ``images``: ``(N, 3, H, W)``, ``(N, H, W, 3)``, ``(N, 1, H, W)`` or ``(N, H, W)`` in [0, 1].
    No images (N == 0) draws a figure that says "none".
    """
    imgs = _hwc(images, "classified_grid")
    n = len(imgs)
    check_len("classified_grid", n, true_names=true_names, pred_names=pred_names)
    if n == 0:
        fig = _new(4.0, 2.0)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=16, color="grey", transform=ax.transAxes)
        ax.axis("off")
        fig.suptitle(title)
        return _save(fig, path)
    ncols = max(1, min(ncols, n))
    fig = _new(1.45 * ncols, 1.75 * -(-n // ncols) + 0.5)
    for ax, img, t, p in zip(_grid(fig, n, ncols), imgs, true_names, pred_names):
        colour = verdict_colour(p, t)
        _show(ax, img, f"true: {t}\npred: {p}", fontsize=8, color=colour)
        for spine in ax.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(3)
    fig.suptitle(title)
    return _save(fig, path)


def softmax_cell_colours(probs, labels) -> list[list[str | None]]:
    """Row i, class k: :func:`verdict_colour` for the predicted (arg-max) class's cell, None for the others."""
    probs = np.asarray(probs)
    out = []
    for p, label in zip(probs, labels):
        pred = int(np.argmax(p))
        out.append([verdict_colour(pred, int(label)) if k == pred else None for k in range(len(p))])
    return out


def _check_table(images, probs, labels, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    imgs = _hwc(images, "softmax_table")
    probs = host(probs).astype(np.float64)
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise ValueError(f"softmax_table: probs must be (N, K) with K = len(classes) = {k}; got shape {probs.shape}")
    labels = host(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise ValueError(f"softmax_table: labels must be a 1-D sequence of class indices; got "
                         f"shape {labels.shape}, dtype {labels.dtype}")
    check_len("softmax_table", len(imgs), probs=probs, labels=labels)
    if len(imgs) == 0:
        raise ValueError("softmax_table: no images (expected at least one row)")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"softmax_table: labels must be in [0, {k}) (one of {k} classes); got {labels.tolist()}")
    return imgs, probs, labels


def softmax_table(images, probs, labels, classes, path, title: str) -> Path:
    """One row per image: its thumbnail (true class underneath), then one cell per class with the
    softmax probability in %; the predicted class's cell is green when right and red when wrong
    (:func:`softmax_cell_colours`).

    ``images``: as for :func:`classified_grid`; ``probs``: ``(N, K)``; ``labels``: N class
    indices; ``classes``: the K class names (the column headings).
    """
    imgs, probs, labels = _check_table(images, probs, labels, classes)
    n, k = probs.shape
    colours = softmax_cell_colours(probs, labels)
    fig = _new(1.4 + 0.85 * k, 1.0 * n + 1.2)
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1.0, 0.85 * k]})
    for i in range(n):
        _show(axes[i, 0], imgs[i])
        axes[i, 0].set_xlabel(f"true: {classes[labels[i]]}", fontsize=8)
        ax = axes[i, 1]
        for c in range(k):
            fill = colours[i][c]
            ax.add_patch(Rectangle((c, 0), 1, 1, facecolor=fill or "white", edgecolor="0.7", lw=0.8))
            ax.text(c + 0.5, 0.5, f"{100 * probs[i, c]:.1f}%", ha="center", va="center", fontsize=8,
                    color="white" if fill else "black", fontweight="bold" if fill else "normal")
        ax.set_xlim(-0.01, k + 0.01)  # room for the outer cell edges
        ax.set_ylim(-0.02, 1.02)
        ax.set_yticks([])
        ax.set_xticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    top = axes[0, 1]
    top.xaxis.tick_top()
    top.xaxis.set_label_position("top")
    top.set_xticks(np.arange(k) + 0.5, classes, rotation=45, ha="left", fontsize=8)
    top.tick_params(axis="x", length=0)
    top.set_xlabel("softmax probability of each class (green / red: predicted class, right / wrong)", fontsize=9)
    axes[0, 0].set_title("image", fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(cm, classes, path, title: str) -> Path:
    """Row-normalised confusion matrix (true class by row) with the counts written in."""
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    k = len(classes)
    fig = _new(7.2, 6.2)
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    ax.set_title(title)
    return _save(fig, path)


def per_class_bars(per_class, classes, path, title: str) -> Path:
    """Per-class accuracy (%) as horizontal bars."""
    vals = [100.0 * v if v is not None else 0.0 for v in per_class]
    fig = _new(6.4, 4.2)
    ax = fig.add_subplot()
    ax.barh(range(len(classes)), vals, color="C0")
    ax.set_yticks(range(len(classes)), classes)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.axvline(100.0 / len(classes), color="grey", ls="--", lw=1, label="chance")
    ax.legend(loc="lower right", fontsize=8)
    for i, v in enumerate(vals):
        ax.text(min(v + 1, 88), i, f"{v:.1f}", va="center", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)
