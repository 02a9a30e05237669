"""Figures for the experiments, drawn with matplotlib's object API on the Agg canvas (no display needed).

Images come in as ``(N, C, H, W)`` or ``(N, H, W, C)`` arrays (NumPy or backend) already on
the ``[0, 1]`` display scale -- :func:`to_display` turns normalised network inputs and
outputs back into that scale. Every figure function writes one file (PNG unless the path's
suffix names another format) atomically and returns its path; bad inputs are ValueErrors
that say what was expected.

By topic:

* :mod:`._common`        -- canvas and atomic save, display scales (:func:`to_display`,
  :func:`stretch`, :func:`signed_display`), the right/wrong colours (:func:`verdict_colour`)
* :mod:`.images`         -- :func:`image_grid`, :func:`reconstructions`, :func:`channel_reconstructions`
* :mod:`.training`       -- :func:`loss_curve`, :func:`learning_curves`
* :mod:`.classification` -- :func:`predictions`, :func:`classified_grid`, :func:`softmax_table`,
  :func:`confusion_matrix`, :func:`per_class_bars`
* :mod:`.weights`        -- :func:`weight_histograms`, :func:`filters`
* :mod:`.inspection`     -- :func:`feature_maps`, :func:`deconv_projections`, :func:`attribution`,
  :func:`occlusion_maps`
"""

from minicnn.viz._common import (CORRECT_COLOUR, DPI, WRONG_COLOUR, signed_display, stretch, to_display,
                                 verdict_colour)
from minicnn.viz.classification import (classified_grid, confusion_matrix, per_class_bars, predictions,
                                        softmax_cell_colours, softmax_table)
from minicnn.viz.images import channel_reconstructions, image_grid, reconstructions
from minicnn.viz.inspection import attribution, deconv_projections, feature_maps, occlusion_maps
from minicnn.viz.training import learning_curves, loss_curve
from minicnn.viz.weights import MAX_FILTER_IMAGES, filters, weight_histograms

__all__ = [
    "CORRECT_COLOUR", "DPI", "MAX_FILTER_IMAGES", "WRONG_COLOUR",
    "attribution", "channel_reconstructions", "classified_grid", "confusion_matrix", "deconv_projections",
    "feature_maps", "filters", "image_grid", "learning_curves", "loss_curve", "occlusion_maps",
    "per_class_bars", "predictions", "reconstructions", "signed_display", "softmax_cell_colours",
    "softmax_table", "stretch", "to_display", "verdict_colour", "weight_histograms",
]
