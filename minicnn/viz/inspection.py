"""Seeing inside a trained network (:mod:`minicnn.inspect`): feature maps, deconvnet
projections, attributions (saliency, guided backprop, Grad-CAM) and occlusion maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from minicnn.backend import to_numpy
from minicnn.viz._common import _hwc, _new, _save, _show, host, stretch


def _layer_maps(maps) -> list[tuple[str, np.ndarray]]:
    out = []
    for i, item in enumerate(maps):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"feature_maps: maps[{i}] should be a (layer_name, array) pair; got {type(item).__name__}")
        name, a = str(item[0]), host(item[1])
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]  # a batch of one
        if a.ndim != 3:
            raise ValueError(f"feature_maps: maps for layer {name!r} must be (C, H, W) for one input; "
                             f"got shape {a.shape}")
        out.append((name, a.astype(np.float64)))
    if not out:
        raise ValueError("feature_maps: maps is empty (expected a list of (layer_name, (C, H, W) array) pairs)")
    return out


def feature_maps(maps, path, title: str, image=None, max_channels: int = 16) -> Path:
    """One input's activations: per layer a block of rows (8 channels a row), each channel's map in
    grey with its own contrast stretch (a constant map is mid-grey and says so). At most
    ``max_channels`` channels per layer; the layer's heading says how many of how many.

    ``maps``: (layer_name, ``(C, H, W)``) pairs, in network order; ``image``: the input on the
    display scale (``(H, W, C)``, ``(C, H, W)`` or ``(H, W)``), drawn first when given.
    """
    layers = _layer_maps(maps)
    if max_channels < 1:
        raise ValueError(f"feature_maps: max_channels must be >= 1; got {max_channels}")
    per_row = min(8, max_channels, max(a.shape[0] for _, a in layers))
    rows = [-(-min(a.shape[0], max_channels) // per_row) for _, a in layers]
    heights = ([1.0] if image is not None else []) + [float(r) for r in rows]
    fig = _new(max(6.0, 1.25 * per_row), 1.45 * sum(heights) + 0.4 * len(heights) + 0.5)
    subs = list(np.atleast_1d(fig.subfigures(len(heights), 1, height_ratios=heights)))
    if image is not None:
        img = host(image)
        img = img[0] if img.ndim == 4 and img.shape[0] == 1 else img
        _show(subs.pop(0).subplots(1, 1), _hwc(img[None], "feature_maps: image")[0], "input image")
    for sub, (name, a), r in zip(subs, layers, rows):
        c = a.shape[0]
        shown = min(c, max_channels)
        which = f"{c} channels" if shown == c else f"first {shown} of {c} channels"
        sub.suptitle(f"{name}: {which}, {a.shape[1]} x {a.shape[2]}", fontsize=10)
        axes = sub.subplots(r, per_row, squeeze=False)
        for j, ax in enumerate(axes.flat):
            if j >= shown:
                ax.axis("off")
                continue
            lo, hi = float(a[j].min()), float(a[j].max())
            _show(ax, stretch(a[j]), f"ch {j}" + (f" (const {lo:.2g})" if hi - lo < 1e-12 else ""), fontsize=7)
    fig.suptitle(f"{title}\n(each map stretched to its own min..max: black = min, white = max)", fontsize=11)
    return _save(fig, path)


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
