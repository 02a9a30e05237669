"""Element-wise activations on the GPU (kernels in ``activation.cu``).

Every array argument and result has one shape (any rank); the kernels see
them flat. float32 / float64 CuPy arrays run the kernels (the arrays named
``x`` in ``_SPECS`` must share the first one's dtype; masks are made bool);
anything else runs the reference function of the same name.

The nine wrappers differ only in their ``_SPECS`` row; ``_elementwise``
does the rest. ``add_relu_forward`` is the fused operation of ``kernels/fused.py``
(its definition is the fallback).
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import fused as _fused
from minicnn.kernels import reference as _ref

from . import launch
from .launch import _i32, _i64, _launch, _scalar, _suffix

# kernel -> (inputs, param, outputs). The kernel's arguments are
#   (*inputs, [param as T], *outputs, n, [param == "tanh" as int32])
# inputs:  one letter per array argument: "x" a float array (the first one sets the dtype and shape),
#          "m" a mask (passed as bool)
# param:   the reference's trailing argument: "" none, "T" a float scalar (slope, alpha),
#          "tanh" gelu's ``approximate``
# outputs: "y" a float array of the first input's dtype, "m" a bool mask; returned as a tuple when two
_SPECS = {
    "relu_forward": ("x", "", "ym"),
    "relu_backward": ("xm", "", "y"),
    "add_relu_forward": ("xx", "", "ym"),
    "leaky_relu_forward": ("x", "T", "ym"),
    "leaky_relu_backward": ("xm", "T", "y"),
    "elu_forward": ("x", "T", "y"),
    "elu_backward": ("xx", "T", "y"),
    "gelu_forward": ("x", "tanh", "y"),
    "gelu_backward": ("xx", "tanh", "y"),
}


def _elementwise(kernel: str, *args):
    """Run ``<kernel>_<f32|f64>`` on ``args`` (the reference's arguments, in its
    order) as its ``_SPECS`` row says, or the reference when the kernels don't apply."""
    inputs, param, outputs = _SPECS[kernel]
    arrays, rest = args[: len(inputs)], args[len(inputs):]
    first = arrays[0]
    ok = (
        launch._on_device(*arrays)
        and _suffix(first.dtype) is not None
        and all(tuple(a.shape) == tuple(first.shape) for a in arrays)
        and all(a.dtype == first.dtype for a, kind in zip(arrays, inputs) if kind == "x")
    )
    if not ok:
        return getattr(_ref if hasattr(_ref, kernel) else _fused, kernel)(*args)
    xp = launch._cupy()
    dt, n = first.dtype, first.size
    arrays = [xp.ascontiguousarray(a, dtype=np.bool_ if kind == "m" else None) for a, kind in zip(arrays, inputs)]
    outs = [xp.empty(first.shape, dtype=np.bool_ if kind == "m" else dt) for kind in outputs]
    before = (_scalar(rest[0], dt),) if param == "T" else ()
    after = (_i32(rest[0] == "tanh"),) if param == "tanh" else ()
    _launch("activation", f"{kernel}_{_suffix(dt)}", n, (*arrays, *before, *outs, _i64(n), *after))
    return tuple(outs) if len(outs) > 1 else outs[0]


def relu_forward(x):
    """x -> (y, mask): y = max(x, 0), mask = x > 0 (bool)."""
    return _elementwise("relu_forward", x)


def add_relu_forward(a, b):
    """(y, mask) of relu(a + b) in one pass (``kernels/fused.py``)."""
    return _elementwise("add_relu_forward", a, b)


def relu_backward(dy, mask):
    """dy, mask -> dx = dy where mask else 0."""
    return _elementwise("relu_backward", dy, mask)


def leaky_relu_forward(x, slope):
    """x -> (y, mask): y = x if x > 0 else slope * x, mask = x > 0 (bool)."""
    return _elementwise("leaky_relu_forward", x, slope)


def leaky_relu_backward(dy, mask, slope):
    """dy, mask -> dx = dy where mask else slope * dy."""
    return _elementwise("leaky_relu_backward", dy, mask, slope)


def elu_forward(x, alpha):
    """x -> y = x if x > 0 else alpha * (exp(x) - 1)."""
    return _elementwise("elu_forward", x, alpha)


def elu_backward(dy, y, alpha):
    """dy, y (the forward's output) -> dx = dy where y > 0 else dy * (y + alpha)."""
    return _elementwise("elu_backward", dy, y, alpha)


def gelu_forward(x, approximate="none"):
    """x -> y = x * Phi(x) (``approximate="tanh"``: PyTorch's tanh form)."""
    return _elementwise("gelu_forward", x, approximate)


def gelu_backward(dy, x, approximate="none"):
    """dy, x (the forward's input) -> dx = dy * d/dx gelu(x)."""
    return _elementwise("gelu_backward", dy, x, approximate)
