"""Inverted dropout with given draws, and batch norm (training mode, and the evaluation-mode forward)."""

from __future__ import annotations

from .arrays import _xp


def dropout_forward(x, u, p):
    """Inverted dropout with given draws: mask = (u >= p) / (1 - p), y = x * mask.

    u: uniform [0, 1) draws in the mask's shape, x's shape or one that
    broadcasts to it along trailing axes ((N, C, 1, 1) for Dropout2d); 0 < p < 1.
    ``u >= p`` compares in u's dtype (p is a weak Python scalar, NEP 50).
    Returns (y in x's dtype, mask in x's dtype and u's shape); backward is
    ``dy * mask``.
    """
    mask = ((u >= p) * (1.0 / (1.0 - p))).astype(x.dtype, copy=False)
    return x * mask, mask


def _bn_axes(x):
    """The reduction axes of batch norm (all but 1) and the (1, C, 1, ...) shape of per-channel values."""
    return (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batchnorm_forward(x, gamma, beta, eps):
    """Training-mode batch norm: y = gamma * xhat + beta, xhat = (x - mean) * inv_std.

    x (N, C, *): statistics over every axis but 1; var is the biased variance,
    inv_std = 1 / sqrt(var + eps). gamma, beta: (C,) or both None (no affine).
    Returns (y in x's dtype, mean, var, xhat, inv_std), mean/var/inv_std of
    shape (C,); xhat and inv_std are what ``batchnorm_backward`` needs.
    """
    xp = _xp(x)
    axes, shape = _bn_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat = xc * inv_std
    y = xhat * gamma.reshape(shape) + beta.reshape(shape) if gamma is not None else xhat
    return y.astype(x.dtype, copy=False), mean.reshape(-1), var.reshape(-1), xhat, inv_std.reshape(-1)


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    """Evaluation-mode batch norm with fixed statistics: xhat = (x - mean) * inv_std,
    inv_std = 1 / sqrt(var + eps), y = xhat * gamma + beta (y is xhat without affine).

    x (N, C, *); gamma, beta (C,) or both None; mean, var (C,) (the running
    statistics). Returns (y, inv_std (C,)). Backward needs xhat only for dgamma =
    sum(dy * xhat), so it is not returned: the layer keeps x and forms xhat again
    with the same operations (``minicnn.nn.norm.batchnorm_backward``).
    """
    _, shape = _bn_axes(x)
    inv_std = 1.0 / _xp(var).sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    y = xhat * gamma.reshape(shape) + beta.reshape(shape) if gamma is not None else xhat
    return y, inv_std


def batchnorm_backward(dy, xhat, inv_std, gamma):
    """(dx, dgamma, dbeta) of the training-mode forward; with m values per channel::

        dxhat = dy * gamma
        dx    = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
        dgamma = sum(dy * xhat);   dbeta = sum(dy)          (sums per channel)
    """
    axes, shape = _bn_axes(dy)
    m = xhat.size // inv_std.size if inv_std.size else 0
    dgamma = (dy * xhat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    dxhat = dy * gamma.reshape(shape) if gamma is not None else dy
    sum_dxhat = dxhat.sum(axis=axes, keepdims=True)
    sum_dxhat_xhat = (dxhat * xhat).sum(axis=axes, keepdims=True)
    dx = (inv_std.reshape(shape) / m) * (m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
    return dx, dgamma, dbeta
