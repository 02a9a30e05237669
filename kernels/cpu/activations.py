"""Element-wise activations as Numba kernels (same signatures as ``kernels.reference``).

One flat loop per kernel over the C-contiguous input. Scalars (``slope``,
``alpha``) are cast to the array's dtype in the wrapper, which is what NumPy
does with a Python float next to a float32 array (NEP 50), so float32 results
round like the reference's. ReLU keeps ``np.maximum``'s behaviour on NaN (the
NaN passes through, mask False). GELU is evaluated in float64 and rounded once
to the output dtype (the reference rounds float32 intermediates; the
difference is float rounding). No ``fastmath``: it would assume no NaN/inf; the one
exception here is float32 GELU's ``contract`` flag alone (FMAs, see where it is
compiled); batch norm's row sums take ``reassoc`` alone (``batchnorm.py``).

Exact GELU on float32 does not call libm's ``erf`` (a scalar call per element:
15.5 ms forward for a (64, 32, 32, 32) tensor at one thread, against PyTorch's
0.6 ms). ``_phi`` computes Phi(v) from Numerical Recipes' Chebyshev fit of erfc
(relative error below 1.2e-7, i.e. about one float32 ulp, in both tails) with a
branch-free exp, in float64 arithmetic the compiler can keep in vector
registers. In the far negative tail it is more accurate than 1 + erf(v / sqrt 2),
which cancels. float64 keeps ``math.erf``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from .. import reference as _ref
from . import threads
from ._jit import compiled_for, dual

# elements above which the parallel variant is used when parallel mode is on
# (see __init__). Memory-bound kernels gain nothing from threads until arrays
# are very large; a libm call per element (erf, expm1) pays early. ReLU also runs
# on Numba's threads from RELU_TEAM_MIN elements otherwise (threads.element_wise;
# from 2^16 instead of 2^20 ResNet-20's steps took 0.978-0.994x as long,
# benchmarks/cpu_results/aligned-intel-2026-12-07/relu_2e16_ab.txt).
CHEAP_PAR_MIN = 1 << 20  # relu, leaky relu, their backward, elu backward
RELU_TEAM_MIN = 1 << 16
COSTLY_PAR_MIN = 8_192  # elu forward, gelu

_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _relu_fwd_impl(x, y, mask):
    xf = x.reshape(x.size)
    yf = y.reshape(x.size)
    mf = mask.reshape(x.size)
    for i in prange(x.size):
        v = xf[i]
        mf[i] = v > 0
        # np.maximum(v, 0): +0.0 for v <= 0 (-0.0 included), NaN passes through
        yf[i] = 0 if v <= 0 else v
    return y, mask


def _relu_bwd_impl(dy, mask, dx):
    df = dy.reshape(dy.size)
    mf = mask.reshape(mask.size)
    of = dx.reshape(dy.size)
    for i in prange(dy.size):
        of[i] = df[i] if mf[i] else 0
    return dx


def _leaky_fwd_impl(x, slope, y, mask):
    xf = x.reshape(x.size)
    yf = y.reshape(x.size)
    mf = mask.reshape(x.size)
    for i in prange(x.size):
        v = xf[i]
        m = v > 0
        mf[i] = m
        yf[i] = v if m else v * slope
    return y, mask


def _leaky_bwd_impl(dy, mask, slope, dx):
    df = dy.reshape(dy.size)
    mf = mask.reshape(mask.size)
    of = dx.reshape(dy.size)
    for i in prange(dy.size):
        d = df[i]
        of[i] = d if mf[i] else d * slope
    return dx


def _elu_fwd_impl(x, alpha, y):
    xf = x.reshape(x.size)
    yf = y.reshape(x.size)
    for i in prange(x.size):
        v = xf[i]
        # v <= 0 or NaN here, so min(v, 0) == v (NaN propagates as in np.minimum)
        yf[i] = v if v > 0 else alpha * math.expm1(v)
    return y


def _elu_bwd_impl(dy, y, alpha, dx):
    df = dy.reshape(dy.size)
    yf = y.reshape(y.size)
    of = dx.reshape(dy.size)
    for i in prange(dy.size):
        d = df[i]
        u = yf[i]
        of[i] = d if u > 0 else d * (u + alpha)
    return dx


@njit(inline="always", error_model="numpy")
def _exp_nonpos(y):
    """exp(y) for -104 <= y <= ~0 without a libm call: exp(y / 128) ** 128, exp(u) for
    u in [-0.82, ~0] by its Taylor series to u**13 (truncation below 1e-12 relative, times
    128 after 7 squarings; as good for a tiny positive y). y is clamped at -104, where
    float32 has underflowed to 0 long before."""
    y = y if y > -104.0 else -104.0
    u = y * 0.0078125
    p = 1.0 / 6227020800.0  # 1/13!, then Horner down to 1/0!
    p = p * u + 1.0 / 479001600.0
    p = p * u + 1.0 / 39916800.0
    p = p * u + 1.0 / 3628800.0
    p = p * u + 1.0 / 362880.0
    p = p * u + 1.0 / 40320.0
    p = p * u + 1.0 / 5040.0
    p = p * u + 1.0 / 720.0
    p = p * u + 1.0 / 120.0
    p = p * u + 1.0 / 24.0
    p = p * u + 1.0 / 6.0
    p = p * u + 0.5
    p = p * u + 1.0
    p = p * u + 1.0
    for _ in range(7):
        p = p * p
    return p


@njit(inline="always", error_model="numpy")
def _phi(v):
    """(Phi(v), exp(-v*v/2)) for a float64 v: Phi(v) = erfc(-v / sqrt 2) / 2, erfc(z) for
    z >= 0 as t * exp(-z*z + q(t)), t = 1 / (1 + z/2) (Numerical Recipes' erfcc), and
    erfc(-z) = 2 - erfc(z). NaN propagates through t."""
    z = abs(v) * _INV_SQRT_2
    t = 1.0 / (1.0 + 0.5 * z)
    q = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    g = _exp_nonpos(-z * z)
    half_erfc = 0.5 * t * g * _exp_nonpos(q)  # q in [-1.27, 3e-8] for t in (0, 1]
    return (1.0 - half_erfc if v >= 0.0 else half_erfc), g


def _gelu32_fwd_impl(x, y):
    xf = x.reshape(x.size)
    yf = y.reshape(x.size)
    for i in prange(x.size):
        v = np.float64(xf[i])
        yf[i] = v * _phi(v)[0]
    return y


def _gelu32_bwd_impl(dy, x, dx):
    df = dy.reshape(dy.size)
    xf = x.reshape(x.size)
    of = dx.reshape(dy.size)
    for i in prange(dy.size):
        v = np.float64(xf[i])
        cdf, g = _phi(v)
        of[i] = df[i] * (cdf + v * _INV_SQRT_2PI * g)
    return dx


def _gelu_fwd_impl(x, tanh_form, y):
    xf = x.reshape(x.size)
    yf = y.reshape(x.size)
    for i in prange(x.size):
        v = np.float64(xf[i])
        if tanh_form:
            inner = _SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)
            yf[i] = 0.5 * v * (1.0 + math.tanh(inner))
        else:
            yf[i] = 0.5 * v * (1.0 + math.erf(v * _INV_SQRT_2))
    return y


def _gelu_bwd_impl(dy, x, tanh_form, dx):
    df = dy.reshape(dy.size)
    xf = x.reshape(x.size)
    of = dx.reshape(dy.size)
    for i in prange(dy.size):
        v = np.float64(xf[i])
        if tanh_form:
            inner = _SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)
            t = math.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v)
            grad = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * d_inner
        else:
            cdf = 0.5 * (1.0 + math.erf(v * _INV_SQRT_2))
            pdf = _INV_SQRT_2PI * math.exp(-0.5 * v * v)
            grad = cdf + v * pdf
        of[i] = df[i] * grad
    return dx


def _dropout_fwd_impl(x, u, p, scale, zero, y, mask):
    # x seen as (rows, inner): u (rows,) holds one draw per row, so inner is 1
    # for Dropout and H*W for Dropout2d's per-channel draws
    rows = u.size
    inner = x.size // rows if rows > 0 else 0
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    uf = u.reshape(rows)
    mf = mask.reshape(rows)
    if inner == 1:  # one draw per element (Dropout): a flat loop that vectorises
        for i in prange(rows):
            m = scale if uf[i] >= p else zero
            mf[i] = m
            yf[i] = xf[i] * m
        return y, mask
    for r in prange(rows):
        m = scale if uf[r] >= p else zero
        mf[r] = m
        base = r * inner
        for k in range(inner):
            yf[_u(base + k)] = xf[_u(base + k)] * m
    return y, mask


_relu_fwd_ser, _relu_fwd_par = dual(_relu_fwd_impl)
_relu_bwd_ser, _relu_bwd_par = dual(_relu_bwd_impl)
_leaky_fwd_ser, _leaky_fwd_par = dual(_leaky_fwd_impl)
_leaky_bwd_ser, _leaky_bwd_par = dual(_leaky_bwd_impl)
_elu_fwd_ser, _elu_fwd_par = dual(_elu_fwd_impl)
_elu_bwd_ser, _elu_bwd_par = dual(_elu_bwd_impl)
# float32 GELU only: multiply-adds contracted to FMAs (fastmath "contract", nothing else). Its
# float64 arithmetic is rounded to float32 at the end: not one of 4.4 M float32 results
# changed (linspace(-20, 20, 400001) and 4 M normal * 3, forward and backward; the tails
# test bounds the error either way). Quiet, one thread, (64, 32, 32, 32): forward 4.8 ->
# 2.9 ms, backward 4.9 -> 3.1 ms (README.md, the course reports' experiments)
_gelu32_fwd_ser, _gelu32_fwd_par = dual(_gelu32_fwd_impl, fastmath={"contract"})
_gelu32_bwd_ser, _gelu32_bwd_par = dual(_gelu32_bwd_impl, fastmath={"contract"})
_gelu_fwd_ser, _gelu_fwd_par = dual(_gelu_fwd_impl)
_gelu_bwd_ser, _gelu_bwd_par = dual(_gelu_bwd_impl)
_dropout_fwd_ser, _dropout_fwd_par = dual(_dropout_fwd_impl)

_asc = np.ascontiguousarray
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _new(like, dtype=None):
    """An uninitialised C-contiguous output of ``like``'s shape, allocated by
    NumPy, not inside the kernel: see ``kernels/cpu/__init__.py`` ("Outputs")."""
    return np.empty(like.shape, dtype=like.dtype if dtype is None else dtype)


def _mask(mask, shape):
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if mask.shape != shape:
        mask = np.ascontiguousarray(np.broadcast_to(mask, shape))
    return mask


def relu_forward(x):
    """y = max(x, 0); keeps only the boolean mask for backward."""
    if not compiled_for(x):  # float16 ...: the reference (see _jit)
        return _ref.relu_forward(x)
    x = _asc(x)
    return threads.element_wise(_relu_fwd_ser, _relu_fwd_par, x.size, CHEAP_PAR_MIN, RELU_TEAM_MIN,
                                x, _new(x), _new(x, np.bool_))


def relu_backward(dy, mask):
    if not compiled_for(dy):
        return _ref.relu_backward(dy, mask)
    dy = _asc(dy)
    mask = _mask(mask, dy.shape)
    return threads.element_wise(_relu_bwd_ser, _relu_bwd_par, dy.size, CHEAP_PAR_MIN, RELU_TEAM_MIN,
                                dy, mask, _new(dy))


def leaky_relu_forward(x, slope):
    """y = x if x > 0 else slope * x; keeps the mask x > 0."""
    if not compiled_for(x):
        return _ref.leaky_relu_forward(x, slope)
    x = _asc(x)
    f = _leaky_fwd_par if x.size >= CHEAP_PAR_MIN else _leaky_fwd_ser
    return f(x, x.dtype.type(slope), _new(x), _new(x, np.bool_))


def leaky_relu_backward(dy, mask, slope):
    if not compiled_for(dy):
        return _ref.leaky_relu_backward(dy, mask, slope)
    dy = _asc(dy)
    mask = _mask(mask, dy.shape)
    f = _leaky_bwd_par if dy.size >= CHEAP_PAR_MIN else _leaky_bwd_ser
    return f(dy, mask, dy.dtype.type(slope), _new(dy))


def elu_forward(x, alpha):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    if not compiled_for(x):
        return _ref.elu_forward(x, alpha)
    x = _asc(x)
    f = _elu_fwd_par if x.size >= COSTLY_PAR_MIN else _elu_fwd_ser
    return f(x, x.dtype.type(alpha), _new(x))


def elu_backward(dy, y, alpha):
    """dy/dx = 1 for x > 0, alpha * exp(x) = y + alpha otherwise."""
    if not compiled_for(dy, y):
        return _ref.elu_backward(dy, y, alpha)
    dy = _asc(dy)
    y = _asc(y)
    f = _elu_bwd_par if dy.size >= CHEAP_PAR_MIN else _elu_bwd_ser
    return f(dy, y, dy.dtype.type(alpha), _new(dy))


def gelu_forward(x, approximate="none"):
    """GELU: x * Phi(x) (exact, erf) or PyTorch's tanh approximation."""
    if not compiled_for(x):
        return _ref.gelu_forward(x, approximate)
    x = _asc(x)
    par = x.size >= COSTLY_PAR_MIN
    if approximate != "tanh" and x.dtype == np.float32:
        return (_gelu32_fwd_par if par else _gelu32_fwd_ser)(x, _new(x))
    return (_gelu_fwd_par if par else _gelu_fwd_ser)(x, approximate == "tanh", _new(x))


def gelu_backward(dy, x, approximate="none"):
    """d/dx x*Phi(x) = Phi(x) + x*phi(x); the tanh form differentiated directly."""
    if not compiled_for(dy, x):
        return _ref.gelu_backward(dy, x, approximate)
    dy = _asc(dy)
    x = _asc(x)
    par = dy.size >= COSTLY_PAR_MIN
    if approximate != "tanh" and dy.dtype == np.float32 and x.dtype == np.float32:
        return (_gelu32_bwd_par if par else _gelu32_bwd_ser)(dy, x, _new(dy))
    return (_gelu_bwd_par if par else _gelu_bwd_ser)(dy, x, approximate == "tanh", _new(dy))


def dropout_forward(x, u, p):
    """(y, mask): mask = (u >= p) / (1 - p) in x's dtype, y = x * mask (see the reference).

    u must have x's shape or x's leading axes followed by ones (Dropout2d's
    (N, C, 1, 1)); any other broadcast goes to the reference. ``u >= p``
    compares in u's dtype and the scale is rounded to x's dtype, as in the
    reference, so the results are bit-identical.
    """
    if np.ndim(x) == 0:  # ascontiguousarray would make it 1-d
        return _ref.dropout_forward(x, u, p)
    x = _asc(x)
    u = _asc(u)
    k = 0
    while k < u.ndim and k < x.ndim and u.shape[k] == x.shape[k]:
        k += 1
    if (u.ndim != x.ndim or any(d != 1 for d in u.shape[k:]) or not 0.0 < p < 1.0
            or x.dtype not in _FLOATS or u.dtype not in _FLOATS or np.result_type(u, p) != u.dtype):
        # other broadcasts, other dtypes, p outside (0, 1), or a p that NumPy would
        # not compare in u's dtype (a NumPy float64 scalar against float32 draws)
        return _ref.dropout_forward(x, u, p)
    scale = x.dtype.type(1.0 / (1.0 - p))  # what astype(x.dtype) makes of the float64 scale
    f = _dropout_fwd_par if x.size >= CHEAP_PAR_MIN else _dropout_fwd_ser
    return f(x, u, u.dtype.type(p), scale, x.dtype.type(0), _new(x), np.empty(u.shape, x.dtype))
