"""Activations: ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh.

Each is an element-wise y = f(x), so its backward is dx = dout * f'(x), and
each keeps the least that f' needs: ReLU and LeakyReLU a boolean mask,
ELU, Sigmoid and Tanh their output, GELU its input. The functions with a
kernel-table entry (``ops.relu_forward`` ...) run as one pass per backend.
An ``inplace=`` argument is accepted where PyTorch has one, and ignored: the
input is never overwritten, the result is always a new array.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.nn.module import Module

RELU_RULES = ("normal", "deconvnet", "guided")


def relu_forward(x):
    """y = max(x, 0); cache: the mask x > 0 (bool, x's shape)."""
    return backend.current().ops.relu_forward(x)


def relu_backward(dout, mask, rule="normal"):
    """dx = dout where x > 0, else 0 (``"normal"``: the true gradient; 0 at x == 0,
    as in PyTorch). The visualisation rules: ``"deconvnet"`` passes max(dout, 0)
    whatever x was, ``"guided"`` applies both masks."""
    ops = backend.current().ops
    if rule == "normal":
        return ops.relu_backward(dout, mask)
    positive = ops.relu_forward(dout)[0]
    return positive if rule == "deconvnet" else ops.relu_backward(positive, mask)


def leaky_relu_forward(x, slope):
    """y = x if x > 0 else slope * x; cache: the mask x > 0."""
    return backend.current().ops.leaky_relu_forward(x, slope)


def leaky_relu_backward(dout, mask, slope):
    """dx = dout if x > 0 else slope * dout (slope at x == 0, as in PyTorch)."""
    return backend.current().ops.leaky_relu_backward(dout, mask, slope)


def elu_forward(x, alpha):
    """y = x if x > 0 else alpha * (exp(x) - 1); cache: y."""
    y = backend.current().ops.elu_forward(x, alpha)
    return y, y


def elu_backward(dout, y, alpha):
    """dx = dout if x > 0 else dout * alpha * exp(x) = dout * (y + alpha)."""
    return backend.current().ops.elu_backward(dout, y, alpha)


def gelu_forward(x, approximate):
    """y = x * Phi(x) (Phi: the normal CDF; or PyTorch's tanh approximation); cache: x."""
    return backend.current().ops.gelu_forward(x, approximate), x


def gelu_backward(dout, x, approximate):
    """dx = dout * (Phi(x) + x * phi(x)) (phi: the normal density)."""
    return backend.current().ops.gelu_backward(dout, x, approximate)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed without overflow; cache: y."""
    xp = backend.current().xp
    e = xp.exp(-xp.abs(x))
    y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return y, y


def sigmoid_backward(dout, y):
    """dx = dout * y * (1 - y)."""
    return dout * y * (1 - y)


def tanh_forward(x):
    """y = tanh(x); cache: y."""
    y = backend.current().xp.tanh(x)
    return y, y


def tanh_backward(dout, y):
    """dx = dout * (1 - y^2)."""
    return dout * (1 - y * y)


class ReLU(Module):
    """y = max(x, 0). Caches the mask x > 0.

    ``backward_mode`` selects the rule used by visualisation techniques:
    ``"normal"`` (the true gradient), ``"deconvnet"`` (pass max(dy, 0),
    ignoring the forward mask) or ``"guided"`` (both masks).
    """

    MODES = RELU_RULES

    def __init__(self, inplace: bool = False, backward_mode: str = "normal"):
        super().__init__()
        if backward_mode not in self.MODES:
            raise ValueError(f"ReLU: backward_mode must be one of {self.MODES}, got {backward_mode!r}")
        self.backward_mode = backward_mode
        self._cache = None

    def forward(self, x):
        y, self._cache = relu_forward(x)
        return y

    def backward(self, dout):
        return relu_backward(dout, self._need_cache(self._cache), self.backward_mode)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x. Caches the mask x > 0."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self._cache = None

    def forward(self, x):
        y, self._cache = leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dout):
        return leaky_relu_backward(dout, self._need_cache(self._cache), self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """y = x if x > 0 else alpha * (exp(x) - 1). Caches y (dy/dx = y + alpha for x <= 0)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = float(alpha)
        self._cache = None

    def forward(self, x):
        y, self._cache = elu_forward(x, self.alpha)
        return y

    def backward(self, dout):
        return elu_backward(dout, self._need_cache(self._cache), self.alpha)

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
        y, self._cache = gelu_forward(x, self.approximate)
        return y

    def backward(self, dout):
        return gelu_backward(dout, self._need_cache(self._cache), self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), computed stably. Caches y (dy/dx = y (1 - y))."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = sigmoid_forward(x)
        return y

    def backward(self, dout):
        return sigmoid_backward(dout, self._need_cache(self._cache))


class Tanh(Module):
    """y = tanh(x). Caches y (dy/dx = 1 - y^2)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = tanh_forward(x)
        return y

    def backward(self, dout):
        return tanh_backward(dout, self._need_cache(self._cache))
