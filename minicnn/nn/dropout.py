"""Dropout and Dropout2d (inverted dropout: scale kept units by 1 / (1 - p)).

x (N, C, ...) -> y of the same shape. The uniform draws come from minicnn's
generator; ``ops.dropout_forward`` turns them into the mask and applies it in
one pass (kernels/reference/regularization.py; Numba kernel in kernels/cpu/activations.py).
Cached for backward: the scaled mask, (N, C, ...) or (N, C, 1, 1) for Dropout2d.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.random import default_generator, device_generator
from minicnn.nn.module import Module


def uniform_draws(shape):
    """float32 uniform [0, 1) draws of ``shape`` from minicnn's seeded
    generator (on the device for ``cupy``): the same draws on every CPU
    backend, so the numpy and numba backends drop the same units."""
    be = backend.current()
    gen = device_generator() if be.is_gpu else default_generator()
    return gen.random(shape, dtype=be.xp.float32)


def dropout_forward(x, p, mask_shape):
    """Training-mode inverted dropout: y = x * mask, mask = (u >= p) / (1 - p) for
    uniform draws u of ``mask_shape`` (x's shape, or (N, C, 1, 1) to drop whole
    channels); cache: the scaled mask."""
    if p == 1.0:
        return x * 0, 0.0
    return backend.current().ops.dropout_forward(x, uniform_draws(mask_shape), p)


def dropout_backward(dout, mask):
    """dx = dout * mask (a dropped unit passes no gradient, a kept one is scaled like its output)."""
    return dout * mask


class _DropoutBase(Module):
    """``inplace`` is accepted for PyTorch compatibility and ignored: the input is never overwritten."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability must be in [0, 1], got {p}")
        self.p = float(p)
        self._cache = None

    def _mask_shape(self, x):
        raise NotImplementedError

    def forward(self, x):
        if not self.training or self.p == 0.0:  # the identity
            self._cache = 1.0
            return x
        y, self._cache = dropout_forward(x, self.p, self._mask_shape(x))
        return y

    def backward(self, dout):
        return dropout_backward(dout, self._need_cache(self._cache))

    def cuda_graph_blocker(self):
        if self.training and 0.0 < self.p < 1.0:
            return "draws a new random mask every training step (a replay would repeat the recorded mask)"
        return None

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutBase):
    """Zero each element with probability p during training. Caches the scaled mask."""

    def _mask_shape(self, x):
        return x.shape


class Dropout2d(_DropoutBase):
    """Zero whole channels of (N, C, H, W) (or (C, H, W)) with probability p. Caches the (N, C, 1, 1) mask."""

    def _mask_shape(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"{self._describe()}: expected input (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
        return x.shape[:-2] + (1, 1)
