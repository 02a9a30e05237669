"""What every figure shares: the canvas, the atomic PNG write, display scales and input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minicnn.atomic import atomic_write
from minicnn.backend import to_numpy

DPI = 100
CORRECT_COLOUR = "#1a8f3a"  # green: prediction == true label
WRONG_COLOUR = "#d62728"    # red: prediction != true label


def verdict_colour(pred, true) -> str:
    """The colour of a prediction's caption or cell: green when it equals the true label, red otherwise."""
    return CORRECT_COLOUR if pred == true else WRONG_COLOUR


def host(a) -> np.ndarray:
    """Any array-like (NumPy, CuPy via ``.get()``, a minicnn ``Parameter`` via ``.data``) as a NumPy array."""
    if not isinstance(a, np.ndarray) and hasattr(a, "requires_grad") and hasattr(a, "data"):
        a = a.data  # a Parameter
    if not isinstance(a, np.ndarray) and callable(getattr(a, "get", None)):
        a = a.get()  # CuPy (device -> host)
    return np.asarray(to_numpy(a))


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


def signed_display(g: np.ndarray) -> np.ndarray:
    """A signed array (e.g. a gradient or a filter, (H, W, C)) on a display scale:
    0 -> mid-grey, the largest |g| -> 0 or 1."""
    m = float(np.abs(g).max())
    return np.full_like(g, 0.5) if m < 1e-30 else 0.5 + 0.5 * g / m


def _hwc(images, where: str = "images") -> np.ndarray:
    """A batch of images -> ``(N, H, W, C)`` floats in [0, 1], C in (1, 3).

    Accepts ``(N, C, H, W)`` and ``(N, H, W, C)`` with C 1 or 3, and ``(N, H, W)`` (grayscale);
    uint8 is scaled by 1/255. An empty batch (``N == 0``, any shape) becomes ``(0, 1, 1, 1)``.
    """
    a = host(images)
    if a.ndim >= 1 and len(a) == 0:
        return np.zeros((0, 1, 1, 1))
    if a.dtype.kind in "ui":
        a = a.astype(np.float64) / 255.0
    if a.ndim == 3:
        a = a[..., None]
    elif a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(0, 2, 3, 1)
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise ValueError(f"{where}: expected images of shape (N, 3, H, W), (N, H, W, 3), (N, 1, H, W) or "
                         f"(N, H, W) (grayscale); got shape {a.shape}")
    return np.clip(a.astype(np.float64, copy=False), 0.0, 1.0)


def check_len(where: str, n: int, **seqs) -> None:
    """Raise a ValueError naming each sequence whose length is not ``n``."""
    bad = [f"{k} has {len(v)}" for k, v in seqs.items() if len(v) != n]
    if bad:
        raise ValueError(f"{where}: expected {n} entries (one per image), but {', '.join(bad)}")


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
    img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
    ax.imshow(img, interpolation="nearest", cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize, color=color)


def _grid(fig, n: int, ncols: int):
    """``n`` image axes in rows of ``ncols``; the unused ones switched off."""
    ncols = max(1, min(ncols, n))
    axes = fig.subplots(-(-n // ncols), ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return axes.flat[:n]
