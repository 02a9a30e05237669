"""Element-wise activations, forward and backward: ReLU, LeakyReLU, ELU, GELU."""

from __future__ import annotations

import numpy as np

from .arrays import _xp


def relu_forward(x):
    """y = max(x, 0); keeps only the boolean mask for backward."""
    xp = _xp(x)
    mask = x > 0
    return xp.maximum(x, 0), mask


def relu_backward(dy, mask):
    xp = _xp(dy)
    return xp.where(mask, dy, 0).astype(dy.dtype, copy=False)


def leaky_relu_forward(x, slope):
    """y = x if x > 0 else slope * x; keeps the mask x > 0."""
    xp = _xp(x)
    mask = x > 0
    return xp.where(mask, x, x * slope).astype(x.dtype, copy=False), mask


def leaky_relu_backward(dy, mask, slope):
    xp = _xp(dy)
    return xp.where(mask, dy, dy * slope).astype(dy.dtype, copy=False)


def elu_forward(x, alpha):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    xp = _xp(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)


def elu_backward(dy, y, alpha):
    """dy/dx = 1 for x > 0, alpha * exp(x) = y + alpha otherwise (y > 0 iff x > 0)."""
    xp = _xp(dy)
    return xp.where(y > 0, dy, dy * (y + alpha)).astype(dy.dtype, copy=False)


_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _erf(x):
    xp = _xp(x)
    if xp is np:
        import math

        return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype, copy=False)
    from cupyx.scipy.special import erf

    return erf(x)


def gelu_forward(x, approximate="none"):
    """GELU: x * Phi(x) (exact, erf) or PyTorch's tanh approximation."""
    xp = _xp(x)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        return (0.5 * x * (1 + xp.tanh(inner))).astype(x.dtype, copy=False)
    return (0.5 * x * (1 + _erf(x * _INV_SQRT_2))).astype(x.dtype, copy=False)


def gelu_backward(dy, x, approximate="none"):
    """d/dx x*Phi(x) = Phi(x) + x*phi(x); the tanh form differentiated directly."""
    xp = _xp(x)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = xp.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        grad = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner
    else:
        cdf = 0.5 * (1 + _erf(x * _INV_SQRT_2))
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        grad = cdf + x * pdf
    return (dy * grad).astype(dy.dtype, copy=False)
