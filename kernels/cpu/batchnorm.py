"""Training-mode batch norm as Numba kernels (same signatures as ``kernels.reference``).

x (N, C, *) is seen as (N, C, M), M = the product of the trailing axes (1 for
BatchNorm1d on (N, C)); every channel's N*M values are reduced by one thread
(the outer loop is over channels), so there are no races and the result does
not depend on the number of threads.

Forward, per channel: the mean, then the biased variance as the mean of
squared deviations (two passes, like the reference, not E[x^2] - mean^2,
which cancels), then xhat and y in a third pass. Backward: sum(dy) and
sum(dy * xhat) in one pass, dx in a second. The sums are formed in float64,
each row's sum vectorised (``fastmath={"reassoc"}`` on the three row helpers
only: partial sums in the SIMD lanes, a fixed order for a given machine; the
reference sums pairwise in the array's dtype), which makes the results equal
the reference to float rounding, not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange
from numba import uint64 as _u

from .. import reference as _ref
from . import threads
from ._jit import dual, serial

# x elements above which the parallel variant is used when parallel mode is on, and on
# Numba's threads otherwise (threads.element_wise)
BN_PAR_MIN = BN_TEAM_MIN = 1 << 16
_SUMS = {"reassoc"}


def _row_sum(f, base, m, shift):
    """sum(f[base:base+m] - shift) in float64."""
    s = 0.0
    for k in range(m):
        s += np.float64(f[_u(base + k)]) - shift
    return s


# _row_sq_dev and _row_dot repeat _row_sum's shape on purpose: one generic
# helper for both made the kernels ~2x slower (benchmarks/notes/history.md).


def _row_sq_dev(f, base, m, mu):
    """sum((f[base:base+m] - mu)**2) in float64."""
    s = 0.0
    for k in range(m):
        d = np.float64(f[_u(base + k)]) - mu
        s += d * d
    return s


def _row_dot(a, b, base, m):
    """sum(a[base:base+m] * b[base:base+m]) in float64."""
    s = 0.0
    for k in range(m):
        i = _u(base + k)
        s += np.float64(a[i]) * b[i]
    return s


# reassoc: the row sums may be reordered, so LLVM vectorises them (partial sums
# in SIMD lanes, added at the end); nothing else in the kernels is reordered.
_row_sum = serial(_row_sum, fastmath=_SUMS)
_row_sq_dev = serial(_row_sq_dev, fastmath=_SUMS)
_row_dot = serial(_row_dot, fastmath=_SUMS)


def _normalize_row(xf, hf, yf, base, m, mu, s, g, b):
    """xhat = (x - mu) * s and y = xhat * g + b over one row, in the scalars' type (float64:
    the training statistics)."""
    for k in range(m):
        j = _u(base + k)
        h = (xf[j] - mu) * s
        hf[j] = h
        yf[j] = h * g + b


_normalize_row = serial(_normalize_row)


def _bn_fwd_impl(x, gamma, beta, eps, affine, m, y, xhat, mean, var, inv_std):
    n = x.shape[0]
    c = x.shape[1]
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    hf = xhat.reshape(xhat.size)
    count = n * m
    for ch in prange(c):
        s = 0.0
        for i in range(n):
            s += _row_sum(xf, (i * c + ch) * m, m, 0.0)
        mu = s / count
        q = 0.0
        for i in range(n):
            q += _row_sq_dev(xf, (i * c + ch) * m, m, mu)
        v = q / count
        istd = 1.0 / math.sqrt(v + eps)
        g = np.float64(gamma[ch]) if affine else 1.0
        b = np.float64(beta[ch]) if affine else 0.0
        for i in range(n):
            _normalize_row(xf, hf, yf, (i * c + ch) * m, m, mu, istd, g, b)
        mean[ch] = mu
        var[ch] = v
        inv_std[ch] = istd
    return y, mean, var, xhat, inv_std


def _bn_bwd_impl(dy, xhat, inv_std, gamma, affine, m, dx, dgamma, dbeta):
    n = dy.shape[0]
    c = dy.shape[1]
    df = dy.reshape(dy.size)
    hf = xhat.reshape(xhat.size)
    of = dx.reshape(dx.size)
    count = n * m
    for ch in prange(c):
        sdy = 0.0
        sdyx = 0.0
        for i in range(n):
            base = (i * c + ch) * m
            sdy += _row_sum(df, base, m, 0.0)
            sdyx += _row_dot(df, hf, base, m)
        dgamma[ch] = sdyx
        dbeta[ch] = sdy
        g = np.float64(gamma[ch]) if affine else 1.0
        # dxhat = g * dy, so sum(dxhat) = g * sdy and sum(dxhat * xhat) = g * sdyx
        f = np.float64(inv_std[ch]) * g / count
        for i in range(n):
            base = (i * c + ch) * m
            for k in range(m):
                j = _u(base + k)
                of[j] = f * (count * np.float64(df[j]) - sdy - hf[j] * sdyx)
    return dx, dgamma, dbeta


def _bn_eval_impl(x, gamma, beta, affine, mean, inv_std, m, y):
    """y = xhat * gamma + beta (affine) or xhat, xhat = (x - mean) * inv_std, in x's dtype; one
    pass, xhat not written."""
    n = x.shape[0]
    c = x.shape[1]
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    for ch in prange(c):
        mu, s, g, b = mean[ch], inv_std[ch], gamma[ch], beta[ch]
        for i in range(n):
            base = (i * c + ch) * m
            for k in range(m):
                j = _u(base + k)
                h = (xf[j] - mu) * s
                yf[j] = h * g + b if affine else h
    return y


_bn_fwd_ser, _bn_fwd_par = dual(_bn_fwd_impl)
_bn_eval_ser, _bn_eval_par = dual(_bn_eval_impl)
_bn_bwd_ser, _bn_bwd_par = dual(_bn_bwd_impl)


def _same_float(*arrays) -> bool:
    """Whether every given array (None skipped) is float32, or every one float64."""
    dts = {np.asarray(a).dtype for a in arrays if a is not None}
    return len(dts) == 1 and dts <= {np.dtype(np.float32), np.dtype(np.float64)}


def _per_channel(v, c, dtype, name):
    if v is None:
        return np.zeros(c, dtype)  # unused (affine=False); a typed stand-in for the kernel
    v = np.ascontiguousarray(v).reshape(-1)
    if v.size != c:
        raise ValueError(f"batchnorm: {name} has {v.size} values, expected one per channel ({c})")
    return v


def batchnorm_forward(x, gamma, beta, eps):
    """Training mode: (y, mean, var, xhat, inv_std), see the reference.

    x (N, C, *); gamma, beta (C,) or both None. y and xhat in x's dtype;
    mean, var (biased) and inv_std (C,) in x's dtype, computed in float64.
    Mixed dtypes (e.g. float64 gamma with float32 x) and dtypes other than
    float32/float64 go to the reference.
    """
    x = np.ascontiguousarray(x)
    if x.ndim < 2:
        raise ValueError(f"batchnorm_forward: expected x of shape (N, C, ...), got {x.shape}")
    if (gamma is None) != (beta is None):
        raise ValueError("batchnorm_forward: gamma and beta must both be given (affine) or both be None")
    if not _same_float(x, gamma, beta):  # mixed or other dtypes: the reference's promotions
        return _ref.batchnorm_forward(x, gamma, beta, eps)
    n, c = x.shape[:2]
    m = x.size // (n * c) if n * c else 0
    affine = gamma is not None
    g = _per_channel(gamma, c, x.dtype, "gamma")
    b = _per_channel(beta if affine else None, c, x.dtype, "beta")
    stats = [np.empty(c, x.dtype) for _ in range(3)]
    return threads.element_wise(_bn_fwd_ser, _bn_fwd_par, x.size, BN_PAR_MIN, BN_TEAM_MIN,
                                x, g, b, float(eps), affine, m, np.empty_like(x), np.empty_like(x), *stats)


def batchnorm_backward(dy, xhat, inv_std, gamma):
    """(dx, dgamma, dbeta) of the training-mode forward, see the reference.

    dy, xhat (N, C, *); inv_std, gamma (C,) (gamma None: no affine). All
    results in dy's dtype; mixed dtypes go to the reference (its promotions).
    """
    dy = np.ascontiguousarray(dy)
    xhat = np.ascontiguousarray(xhat)
    if dy.shape != xhat.shape or dy.ndim < 2:
        raise ValueError(f"batchnorm_backward: dy {dy.shape} and xhat {xhat.shape} must be one (N, C, ...) shape")
    if not _same_float(dy, xhat, inv_std, gamma):  # mixed or other dtypes: the reference's promotions
        return _ref.batchnorm_backward(dy, xhat, inv_std, gamma)
    n, c = dy.shape[:2]
    m = dy.size // (n * c) if n * c else 0
    affine = gamma is not None
    g = _per_channel(gamma, c, dy.dtype, "gamma")
    s = _per_channel(inv_std, c, dy.dtype, "inv_std")
    return threads.element_wise(_bn_bwd_ser, _bn_bwd_par, dy.size, BN_PAR_MIN, BN_TEAM_MIN, dy, xhat, s, g, affine,
                                m, np.empty_like(dy), np.empty(c, dy.dtype), np.empty(c, dy.dtype))


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    """Evaluation mode: (y, inv_std), see the reference; one pass over x, y the only array
    written.

    x (N, C, *); gamma, beta (C,) or both None; mean, var (C,). Every value is
    formed by the reference's operations in x's dtype, in its order (no
    float64 here), so the results equal the reference's bit for bit. Mixed
    dtypes and dtypes other than float32/float64 go to the reference.
    """
    args = eval_arguments("batchnorm_forward_eval", x, gamma, beta, mean, var, eps)
    if args is None:
        return _ref.batchnorm_forward_eval(x, gamma, beta, mean, var, eps)
    x, inv_std = args[0], args[5]
    y = np.empty_like(x)
    threads.element_wise(_bn_eval_ser, _bn_eval_par, x.size, BN_PAR_MIN, BN_TEAM_MIN, *args, y)
    return y, inv_std


def eval_arguments(name, x, gamma, beta, mean, var, eps):
    """The evaluation kernels' arguments (x contiguous, gamma, beta, affine, mean, inv_std, m) after
    the checks (``name``: the caller, for the messages); None where a dtype is mixed or other than
    float32/float64 (the caller then runs its definition)."""
    x = np.ascontiguousarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected x of shape (N, C, ...), got {x.shape}")
    if (gamma is None) != (beta is None):
        raise ValueError(f"{name}: gamma and beta must both be given (affine) or both be None")
    if not _same_float(x, gamma, beta, mean, var):
        return None
    n, c = x.shape[:2]
    m = x.size // (n * c) if n * c else 0
    affine = gamma is not None
    mean = _per_channel(mean, c, x.dtype, "mean")
    inv_std = 1.0 / np.sqrt(_per_channel(var, c, x.dtype, "var") + eps)  # the reference's expression
    g = _per_channel(gamma, c, x.dtype, "gamma")
    b = _per_channel(beta if affine else None, c, x.dtype, "beta")
    return x, g, b, affine, mean, inv_std, m
