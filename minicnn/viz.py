"""Figures for the experiments, drawn with matplotlib's object API on the Agg canvas (no display needed).

Images come in as ``(N, C, H, W)`` arrays (NumPy or backend) already on the
``[0, 1]`` display scale -- :func:`to_display` turns normalised network inputs
and outputs back into that scale. Every function writes one PNG and returns
its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from minicnn.atomic import atomic_write
from minicnn.backend import to_numpy

DPI = 100


def to_display(x, mean, std) -> np.ndarray:
    """Undo ``Normalize(mean, std)`` and clip to ``[0, 1]``: ``(N, C, H, W)`` -> ``(N, H, W, C)`` float."""
    x = np.asarray(to_numpy(x), dtype=np.float64)
    c = x.shape[1]
    m = np.asarray(mean, dtype=np.float64).reshape(1, c, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(1, c, 1, 1)
    return np.clip(x * s + m, 0.0, 1.0).transpose(0, 2, 3, 1)


def stretch(img: np.ndarray) -> np.ndarray:
    """Min-max rescale one image to ``[0, 1]`` (a constant image becomes 0.5)."""
    lo, hi = float(img.min()), float(img.max())
    return np.full_like(img, 0.5) if hi - lo < 1e-12 else (img - lo) / (hi - lo)


def _hwc(images) -> np.ndarray:
    """``(N, C, H, W)`` or ``(N, H, W, C)`` in [0, 1] -> ``(N, H, W, C)``; uint8 is scaled by 1/255."""
    a = np.asarray(to_numpy(images))
    if a.dtype.kind in "ui":
        a = a.astype(np.float64) / 255.0
    if a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(0, 2, 3, 1)
    return np.clip(a, 0.0, 1.0)


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    """Save ``fig`` atomically, in the format named by the file's suffix (PNG when none)."""
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format=path.suffix[1:] or "png", dpi=DPI, facecolor="white")
    return path


def _show(ax, img, title=None, fontsize=9, color="black"):
    img = img[..., 0] if img.shape[-1] == 1 else img
    ax.imshow(img, interpolation="nearest", cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize, color=color)


def image_grid(images, captions, path, title: str, ncols: int = 8) -> Path:
    """Images in a grid, each with its caption (e.g. the class name)."""
    imgs = _hwc(images)
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _new(1.3 * ncols, 1.45 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, imgs[i], captions[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def predictions(images, true_names, pred_names, path, title: str) -> Path:
    """Images captioned "true: a / predicted: b"; wrong predictions in red."""
    imgs = _hwc(images)
    n = len(imgs)
    fig = _new(2.0 * n, 2.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, img, t, p in zip(axes, imgs, true_names, pred_names):
        _show(ax, img, f"true: {t}\npredicted: {p}", fontsize=10, color="black" if t == p else "red")
    fig.suptitle(title)
    return _save(fig, path)


def reconstructions(originals, recons, captions, path, title: str, recon_captions=None) -> Path:
    """Rows of (original | reconstruction); ``captions[i]`` labels row i's original,
    ``recon_captions[i]`` (default "reconstruction") its reconstruction."""
    a, b = _hwc(originals), _hwc(recons)
    n = len(a)
    fig = _new(4.4, 2.1 * n + 0.4)
    axes = fig.subplots(n, 2, squeeze=False)
    for i in range(n):
        _show(axes[i, 0], a[i], f"original: {captions[i]}")
        _show(axes[i, 1], b[i], recon_captions[i] if recon_captions else "reconstruction")
    fig.suptitle(title)
    return _save(fig, path)


def channel_reconstructions(original, full, recons, maps, labels, path, title: str, per_row: int = 8) -> Path:
    """One latent's channels: the original, the all-channel reconstruction, then one
    reconstruction per isolated channel, each above its channel's activation map.

    ``original``, ``full``: ``(H, W, C)`` in [0, 1]; ``recons``: list of those;
    ``maps``: list of 2-D activation maps (same order); ``labels``: channel captions.
    At most ``per_row`` channels side by side: more wrap into further pairs of rows
    (16 channels: two pairs of 8), so the figure stays readable.
    """
    k = len(recons)
    per_row = max(1, min(per_row, k)) if k else 1
    blocks = max(1, -(-k // per_row))
    ncols = per_row + 2
    fig = _new(1.55 * ncols, 3.6 * blocks)
    axes = fig.subplots(2 * blocks, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, caption in ((axes[0, 0], original, "original"), (axes[0, 1], full, "all channels")):
        ax.axis("on")
        _show(ax, img, caption)
    vmax = max(float(np.max(m)) for m in maps) if maps else 1.0
    im, map_axes = None, []
    for j in range(k):
        top, col = 2 * (j // per_row), 2 + j % per_row
        axes[top, col].axis("on")
        _show(axes[top, col], recons[j], labels[j])
        ax = axes[top + 1, col]
        ax.axis("on")
        im = ax.imshow(maps[j], cmap="viridis", vmin=0, vmax=max(vmax, 1e-12), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"max {float(np.max(maps[j])):.2f}", fontsize=8)
        map_axes.append(ax)
    axes[0, 0].set_ylabel("reconstruction", fontsize=9)
    axes[1, 1].text(1.0, 0.5, "activation map of\nthe kept channel \u2192", ha="right", va="center",
                    fontsize=9, transform=axes[1, 1].transAxes)
    if im is not None:
        fig.colorbar(im, ax=map_axes, shrink=0.8, label="activation")
    fig.suptitle(title)
    return _save(fig, path)


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


# --- seeing inside a trained network (minicnn.inspect) ------------------------------

def signed_display(g: np.ndarray) -> np.ndarray:
    """A signed gradient (H, W, C) on a display scale: 0 -> mid-grey, the largest |g| -> 0 or 1."""
    m = float(np.abs(g).max())
    return np.full_like(g, 0.5) if m < 1e-30 else 0.5 + 0.5 * g / m


def deconv_projections(projections, patches, captions, path, title: str) -> Path:
    """Zeiler & Fergus's layout: the top activations' projections to pixels (a 3x3 grid)
    beside the matching image patches (a 3x3 grid). Each item an (h, w, C) array in [0, 1]
    (crops of the receptive field; sizes may differ at the borders)."""
    n = len(projections)
    side = max(1, int(np.ceil(np.sqrt(n))))
    fig = _new(2 * 1.45 * side + 0.4, 1.6 * side + 0.8)
    for sub, items, heading in zip(fig.subfigures(1, 2), (projections, patches),
                                   ("projections to pixels (deconvnet)", "image patches (receptive field)")):
        axes = sub.subplots(side, side, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i < n:
                _show(ax, np.asarray(items[i]), captions[i], fontsize=7)
            else:
                ax.axis("off")
        sub.suptitle(heading, fontsize=10)
    fig.suptitle(title)
    return _save(fig, path)


def attribution(image, panels, path, title: str) -> Path:
    """The image, then one panel per ``(caption, array, kind)``: ``"image"`` an (H, W, C)
    array in [0, 1]; ``"heat"`` a 2-D map with a colour bar; ``"overlay"`` a 2-D map of the
    image's size laid over the image in grey."""
    fig = _new(2.5 * (len(panels) + 1), 3.0)
    axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
    _show(axes[0], np.asarray(image), "input image")
    grey = np.asarray(image).mean(axis=-1)
    for ax, (caption, arr, kind) in zip(axes[1:], panels):
        arr = np.asarray(to_numpy(arr), dtype=np.float64)
        if kind == "image":
            _show(ax, arr, caption)
            continue
        if kind == "overlay":
            ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        im = ax.imshow(arr, cmap="jet" if kind == "overlay" else "hot", alpha=0.5 if kind == "overlay" else 1.0,
                       interpolation="bilinear" if kind == "overlay" else "nearest",
                       extent=(-0.5, grey.shape[1] - 0.5, grey.shape[0] - 0.5, -0.5))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(caption, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.75)
    fig.suptitle(title)
    return _save(fig, path)


def occlusion_maps(image, p_true, top, p_top, classes, true_name: str, size: int, stride: int, path,
                   title: str) -> Path:
    """Zeiler & Fergus Fig. 7 (d, e): the image with one occluder drawn, the probability of
    the true class and the most probable class as functions of the occluder's position
    (map cell (i, j): the square's top-left corner at (i * stride, j * stride))."""
    p_true, top, p_top = (np.asarray(to_numpy(a)) for a in (p_true, top, p_top))
    fig = _new(13.0, 3.6)
    ax = fig.subplots(1, 4, squeeze=False)[0]
    _show(ax[0], np.asarray(image), f"true class: {true_name}\n(grey square: {size} px, stride {stride})")
    ax[0].add_patch(Rectangle((-0.5, -0.5), size, size, fill=True, color="grey", alpha=0.8))
    for a, m, cap, cmap in ((ax[1], p_true, f"p({true_name}) with the square there", "viridis"),
                            (ax[3], p_top, "p(most probable class)", "viridis")):
        im = a.imshow(m, cmap=cmap, interpolation="nearest")  # its own range: small changes stay visible
        fig.colorbar(im, ax=a, shrink=0.75, label="probability")
        a.set_title(cap, fontsize=9)
    present = sorted(set(int(k) for k in top.flat))
    cmap = "tab10" if len(classes) <= 10 else "tab20"
    ax[2].imshow(top, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
    ax[2].set_title("most probable class", fontsize=9)
    handles = [Rectangle((0, 0), 1, 1, color=colormaps[cmap]((k + 0.5) / len(classes))) for k in present]
    ax[2].legend(handles, [classes[k] for k in present], fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for a in ax[1:]:
        a.set_xlabel("square position (column)", fontsize=8)
        a.set_ylabel("square position (row)", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
