"""Fused operations: what a backend may run in one pass instead of two, defined as the
composition of the kernel table's entries that it replaces.

A fused kernel must give exactly these numbers (bit for bit; the tests compare the
numba kernels with these functions). Which backends fuse, and which runs of layers
they fuse, is ``minicnn.fusion``'s business; the layers never see it.

``relu_maxpool2d`` -- ``MaxPool2d(k)`` applied to ``ReLU()``'s output, for pools whose
windows tile the input (stride == kernel, no padding; the seed nets' 2x2 pools):

* forward: ``out, idx = maxpool2d_forward(relu(x))`` -- the pooled ReLU output and the
  switches, as the two layers give them (the first maximum of the ReLU'd window wins,
  so a window of negatives points at its first element, as PyTorch's would);
* backward: ``dx = relu_backward(maxpool2d_backward(dout, idx), x > 0)``. Since
  ``out = relu(x)[idx]``, ``x > 0`` at a switch is ``out > 0``, and each input pixel
  lies in one window at most, so it is also ``dx[idx] = dout where out > 0, else 0``:
  the fused backward needs ``out`` and ``idx`` (a quarter of x each for 2x2 pools)
  where the two layers keep the ReLU's mask (x's size) and the switches.

One pass over x instead of three (ReLU writes y and its mask, the pool reads y), and
no x-sized ReLU output or mask held for backward.

``add_relu`` -- ``ReLU()`` applied to a sum, the residual block's merge ``relu(main +
shortcut)``:

* forward: ``y, mask = relu_forward(a + b)``, one pass over a and b instead of two (the
  sum is never written); backward is the ReLU's own (``relu_backward(dout, mask)``).

``batchnorm_relu_eval`` -- ``ReLU()`` applied to an evaluation-mode batch norm (running
statistics), the residual block's ``relu1(bn1(.))`` and ResNet's stem at inference:

* forward: ``z, inv_std = batchnorm_forward_eval(x, ...)``; ``y, mask = relu_forward(z)``,
  one pass over x instead of two (z is never written); backward is the two layers' own
  (the ReLU's from its mask, the batch norm's from x, mean and inv_std).
"""

from __future__ import annotations

from . import reference as _ref

#: The kernel-table entries of the fused operations (a backend that has them fuses).
ENTRIES = ("relu_maxpool2d_forward", "relu_maxpool2d_backward", "add_relu_forward", "batchnorm_relu_forward_eval")


def relu_maxpool2d_tiles(kh: int, kw: int, sh: int, sw: int, ph: int, pw: int) -> bool:
    """Whether a max-pool window geometry is one ``relu_maxpool2d`` covers: windows that
    tile the input (stride == kernel, no padding)."""
    return (kh, kw) == (sh, sw) and ph == 0 and pw == 0


def relu_maxpool2d_forward(x, kh: int, kw: int):
    """x (N, C, H, W) -> (out, idx), both (N, C, H // kh, W // kw): max-pool (kh, kw),
    stride (kh, kw), of relu(x); idx int64 = h * W + w of each maximum."""
    y, _ = _ref.relu_forward(x)
    return _ref.maxpool2d_forward(y, kh, kw, kh, kw, 0, 0)


def relu_maxpool2d_backward(dout, out, idx, h: int, w: int, kh: int, kw: int):
    """dout (N, C, OH, OW) -> dx (N, C, h, w): dout at each switch where out > 0, else 0
    (``kh, kw``: the window, as given to the forward; the kernels that gather need it)."""
    xp = _ref.array_module(dout)
    return _ref.maxpool2d_backward(xp.where(out > 0, dout, 0).astype(dout.dtype, copy=False), idx, h, w)


def add_relu_forward(a, b):
    """a, b of one shape and dtype -> (y, mask): y = max(a + b, 0), mask = a + b > 0 (bool)."""
    return _ref.relu_forward(a + b)


def batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps):
    """x (N, C, *), gamma, beta (C,) or both None, mean, var (C,) -> (y, inv_std, mask): y =
    max(z, 0) and mask = z > 0 (bool) of z = ``batchnorm_forward_eval``'s y; inv_std (C,) its."""
    z, inv_std = _ref.batchnorm_forward_eval(x, gamma, beta, mean, var, eps)
    y, mask = _ref.relu_forward(z)
    return y, inv_std, mask
