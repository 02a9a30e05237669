"""Images as they are: a captioned grid, originals beside reconstructions, one latent's channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.viz._common import _grid, _hwc, _new, _save, _show


def image_grid(images, captions, path, title: str, ncols: int = 8) -> Path:
    """Images in a grid, each with its caption (e.g. the class name)."""
    imgs = _hwc(images, "image_grid")
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    fig = _new(1.3 * ncols, 1.45 * -(-n // ncols) + 0.5)
    for ax, img, caption in zip(_grid(fig, n, ncols), imgs, captions):
        _show(ax, img, caption)
    fig.suptitle(title)
    return _save(fig, path)


def reconstructions(originals, recons, captions, path, title: str, recon_captions=None) -> Path:
    """Rows of (original | reconstruction); ``captions[i]`` labels row i's original,
    ``recon_captions[i]`` (default "reconstruction") its reconstruction."""
    a, b = _hwc(originals, "reconstructions"), _hwc(recons, "reconstructions")
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
