"""Activations: ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh.

Each keeps the least its backward needs: ReLU and LeakyReLU a boolean mask,
ELU, Sigmoid and Tanh their output, GELU its input. An ``inplace=`` argument
is accepted where PyTorch has one, and ignored: the input is never
overwritten, the result is always a new array.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.nn.module import Module


class ReLU(Module):
    """y = max(x, 0). Caches the mask x > 0.

    ``backward_mode`` selects the rule used by visualisation techniques:
    ``"normal"`` (the true gradient), ``"deconvnet"`` (pass max(dy, 0),
    ignoring the forward mask) or ``"guided"`` (both masks).
    """

    MODES = ("normal", "deconvnet", "guided")

    def __init__(self, inplace: bool = False, backward_mode: str = "normal"):
        super().__init__()
        if backward_mode not in self.MODES:
            raise ValueError(f"ReLU: backward_mode must be one of {self.MODES}, got {backward_mode!r}")
        self.backward_mode = backward_mode
        self._cache = None

    def forward(self, x):
        y, self._cache = backend.current().ops.relu_forward(x)
        return y

    def backward(self, grad_out):
        mask = self._need_cache(self._cache)
        ops = backend.current().ops
        if self.backward_mode == "normal":
            return ops.relu_backward(grad_out, mask)
        positive = ops.relu_forward(grad_out)[0]
        return positive if self.backward_mode == "deconvnet" else ops.relu_backward(positive, mask)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x. Caches the mask x > 0."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self._cache = None

    def forward(self, x):
        y, self._cache = backend.current().ops.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, grad_out):
        return backend.current().ops.leaky_relu_backward(grad_out, self._need_cache(self._cache),
                                                          self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """y = x if x > 0 else alpha * (exp(x) - 1). Caches y (dy/dx = y + alpha for x <= 0)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = float(alpha)
        self._cache = None

    def forward(self, x):
        y = backend.current().ops.elu_forward(x, self.alpha)
        self._cache = y
        return y

    def backward(self, grad_out):
        return backend.current().ops.elu_backward(grad_out, self._need_cache(self._cache), self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(Module):
    """y = x * Phi(x) (``approximate="none"``, erf) or the tanh approximation. Caches x."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._cache = None

    def forward(self, x):
        self._cache = x
        return backend.current().ops.gelu_forward(x, self.approximate)

    def backward(self, grad_out):
        return backend.current().ops.gelu_backward(grad_out, self._need_cache(self._cache), self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), computed stably. Caches y (dy/dx = y (1 - y))."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        xp = backend.current().xp
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._need_cache(self._cache)
        return grad_out * y * (1 - y)


class Tanh(Module):
    """y = tanh(x). Caches y (dy/dx = 1 - y^2)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y = backend.current().xp.tanh(x)
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._need_cache(self._cache)
        return grad_out * (1 - y * y)
