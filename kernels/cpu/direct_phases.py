"""The input gradient of a strided float32 Conv2d without a column matrix, one phase at a time,
on the positions-in-lanes forward of ``direct_blocked.py`` (moved here from there when that file
passed 400 lines).

The zero-padded input's pixel (sh*u + a, sw*v + b) took only the taps (sh*m + a, sw*k + b) of
the kernel, so phase (a, b) of dx is the stride-1 input gradient of the sub-kernel w[:, :,
a::sh, b::sw]: ``_forward_impl`` reading that sub-kernel flipped, in place, its outputs written
straight to the phase's rows and columns of dx (its ``grid`` argument).
"""

from __future__ import annotations

import numpy as np

from . import direct_tiles
from .direct_blocked import Launch, _forward_impl, bounds_of
from .direct_tiles import _positions_consts, _row_vectors
from .plans import Plans, ranges_key


_PLANS = Plans()


def input_grad_phases(dy, w, ph, pw, dx, stride, ranges=None):
    """dx (N, C, H, W) of a Conv2d with stride (sh, sw) > 1 from dy (N, O, OH, OW) and w (O, C,
    kh, kw), float32 C-contiguous, no column matrix; returns dx, or None where a phase would need
    a negative padding of dy (a padding past the kernel: the caller's fallback; dx is then
    untouched).

    The zero-padded input's pixel (sh*u + a, sw*v + b) took only the taps (sh*m + a, sw*k + b) of
    the kernel, so phase (a, b) of dx is the stride-1 input gradient of the sub-kernel w[:, :,
    a::sh, b::sw] (``_forward_impl`` reading that sub-kernel flipped, in place): one call per
    phase, written straight to its rows and columns of dx (every sh-th row from the first with
    (row + ph) % sh == a). A phase that takes no tap (sh > kh) is zero. The phases are worked out
    once per shape (``_phases_plan``)."""
    key = (dy.shape, w.shape, dx.shape, ph, pw, tuple(stride), ranges_key(ranges), direct_tiles.ROW_VECTORS)
    plan = _PLANS.get(key, _phases_plan, dy.shape, w.shape, dx.shape, ph, pw, stride, ranges)
    if plan is None:
        return None
    zero, calls = plan
    sh, sw = stride
    for r0, c0 in zero:
        dx[:, :, r0::sh, c0::sw] = 0
    wf = w.reshape(-1)
    c, kh, kw = w.shape[1:]
    for launch, w0, top, left, grid in calls:
        launch(dy, wf, w0, kh * kw, c * kh * kw, wf[:c], False, top, left, dx, grid)
    return dx


def _phases_plan(dy_shape, w_shape, dx_shape, ph, pw, stride, ranges):
    """(zero, calls) of ``input_grad_phases``: the phases (first row, first column) that take no
    tap, and for each other phase (Launch, w0, top, left, grid); None where a phase would need a
    negative padding of dy."""
    n, c, h, wd = dx_shape
    o, _, kh, kw = w_shape
    sh, sw = stride
    bounds = bounds_of(ranges, n)
    zero, calls = [], []
    for a in range(sh):
        r0, ka = (a - ph) % sh, -(-(kh - a) // sh)  # first row of the phase, its taps
        rows, top = -(-(h - r0) // sh), ka - 1 - (r0 + ph - a) // sh  # its rows, dy's zero rows above
        for b_ in range(sw):
            c0, kb = (b_ - pw) % sw, -(-(kw - b_) // sw)
            cols, left = -(-(wd - c0) // sw), kb - 1 - (c0 + pw - b_) // sw
            if rows <= 0 or cols <= 0:
                continue
            if ka <= 0 or kb <= 0:
                zero.append((r0, c0))
                continue
            if top < 0 or left < 0:
                return None
            w0 = (sh * (ka - 1) + a) * kw + sw * (kb - 1) + b_  # the sub-kernel's last tap: read backwards
            rv = _row_vectors(rows, cols, dy_shape[3] + 2 * left, kb, 1)
            launch = Launch(_forward_impl, _positions_consts(ka, kb, -1, sh * kw, sw, 1, 1, rv), bounds)
            calls.append((launch, w0, top, left, np.array([rows, cols, r0, c0, sh, sw], np.int64)))
    return zero, calls
