"""What a network learned: histograms of every parameter, and the first layer's filters as images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.viz._common import _grid, _new, _save, _show, host, signed_display

MAX_FILTER_IMAGES = 64  # grayscale (out, in) pairs drawn by filters() at most


def _named_arrays(named_params) -> list[tuple[str, np.ndarray]]:
    items = list(named_params.items() if isinstance(named_params, dict) else named_params)
    if not items:
        raise ValueError("weight_histograms: named_params is empty (expected a list of (name, array) pairs)")
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"weight_histograms: named_params[{i}] should be a (name, array) pair; "
                             f"got {type(item).__name__}")
        out.append((item[0], host(item[1])))
    return out


def weight_histograms(named_params, path, title: str, bins: int = 50) -> Path:
    """One histogram per parameter (e.g. ``model.named_parameters()``: weights and biases of every
    layer) in a grid, each titled with its name, shape, mean and standard deviation.

    ``named_params``: (name, array) pairs (a dict works too); arrays may be NumPy, CuPy or
    minicnn ``Parameter`` objects. Non-finite values are left out of the histogram and counted.
    """
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"weight_histograms: bins must be a positive integer; got {bins!r}")
    params = _named_arrays(named_params)
    n = len(params)
    ncols = min(4, n)
    fig = _new(3.3 * ncols, 2.6 * -(-n // ncols) + 0.5)
    for ax, (name, a) in zip(_grid(fig, n, ncols), params):
        v = a.astype(np.float64).ravel()
        finite = v[np.isfinite(v)]
        bad = v.size - finite.size
        if finite.size:
            ax.hist(finite, bins=int(bins), color="C0")
            stats = f"mean {finite.mean():.3g}, std {finite.std():.3g}"
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            stats = "mean n/a, std n/a"
        ax.set_title(f"{name} {tuple(a.shape)}\n{stats}" + (f", {bad} non-finite" if bad else ""), fontsize=8)
        ax.set_xlabel("value", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def filters(weight, path, title: str) -> Path:
    """A first convolution's weights ``(C_out, C_in, kh, kw)`` as images.

    With ``C_in == 3`` each filter is one RGB image; otherwise each (output, input) channel pair
    is a grayscale image, at most :data:`MAX_FILTER_IMAGES` of them (the title says how many
    were left out). Each image is scaled on its own, symmetrically around 0
    (:func:`signed_display`): grey is 0, the filter's largest |w| is black or white.
    """
    w = host(weight).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"filters: expected conv weights of shape (C_out, C_in, kh, kw); got shape {w.shape}")
    c_out, c_in = w.shape[:2]
    if c_in == 3:
        shown = min(c_out, MAX_FILTER_IMAGES)
        images = [signed_display(w[o].transpose(1, 2, 0)) for o in range(shown)]
        captions = [f"filter {o}" for o in range(shown)]
        note = "" if shown == c_out else f" (first {shown} of {c_out} filters)"
        ncols = 8
    else:
        ins = min(c_in, 8)
        outs = min(c_out, max(1, MAX_FILTER_IMAGES // ins))
        images = [signed_display(w[o, i]) for o in range(outs) for i in range(ins)]
        captions = [f"out {o}, in {i}" if c_in > 1 else f"filter {o}" for o in range(outs) for i in range(ins)]
        note = "" if (outs, ins) == (c_out, c_in) else \
            f" (first {outs} of {c_out} output x {ins} of {c_in} input channels)"
        ncols = ins if ins > 1 else 8
    n = len(images)
    ncols = max(1, min(ncols, n))
    fig = _new(max(4.0, 1.1 * ncols), 1.2 * -(-n // ncols) + 0.8)
    for ax, img, caption in zip(_grid(fig, n, ncols), images, captions):
        _show(ax, img, caption, fontsize=7)
    fig.suptitle(f"{title}{note}\n{c_out} x {c_in} x {w.shape[2]} x {w.shape[3]} weights, "
                 "each scaled on its own: grey = 0", fontsize=10)
    return _save(fig, path)
