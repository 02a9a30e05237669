"""Fused kernels (extra table entries, CPU only) and their reference definitions.

On tiny batches a layer's time is mostly per-call overhead and passes over
memory, so fusing the bias add with the ReLU that follows a convolution or a
linear layer saves a temporary, two NumPy calls and a pass:

=========================  ===================================================
bias_relu_forward          x (N, C, ...), b (C,) -> (y, mask):
                           z = x + b (bias along axis 1); y = max(z, 0),
                           mask = z > 0  -- i.e. relu_forward(x + b)
relu_bias_backward         dy (N, C, ...), mask -> (dx, db):
                           dx = relu_backward(dy, mask),
                           db = dx.sum over every axis but 1 -- the ReLU's
                           backward and the bias gradient in one pass
=========================  ===================================================

``bias_relu_forward_reference`` / ``relu_bias_backward_reference`` are the
readable definitions (plain NumPy, built on ``kernels.reference``); the tests
compare the Numba kernels with them. ``db`` is summed in float64 and rounded
once (NumPy's pairwise float32 sum rounds differently: equal to float
rounding). Not in the reference TABLE: a backend without these entries has
``hasattr(ops, "bias_relu_forward") == False`` and layers take the unfused path.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import uint64 as _u

from .. import reference as _ref
from ._jit import dual

FUSED_PAR_MIN = 1 << 20  # elements (memory-bound; used when parallel mode is on)


def _bias_shape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


def bias_relu_forward_reference(x, b):
    """relu_forward(x + b) with b broadcast along axis 1; y keeps x's dtype."""
    z = (x + b.reshape(_bias_shape(x))).astype(x.dtype, copy=False)
    return _ref.relu_forward(z)


def relu_bias_backward_reference(dy, mask):
    """(relu_backward(dy, mask), that summed over every axis except 1)."""
    dx = _ref.relu_backward(dy, mask)
    axes = (0,) + tuple(range(2, dx.ndim))
    return dx, dx.sum(axis=axes, dtype=np.float64).astype(dy.dtype)


def _bias_relu_fwd_impl(x, b, y, mask):
    n = x.shape[0]
    c = x.shape[1]
    inner = x.size // (n * c) if n * c > 0 else 0
    x3 = x.reshape((n, c, inner))
    y3 = y.reshape((n, c, inner))
    m3 = mask.reshape((n, c, inner))
    for p in prange(n * c):
        ni = p // c
        ci = p - ni * c
        bc = b[ci]
        for k in range(inner):
            z = x3[ni, ci, k] + bc
            m3[ni, ci, k] = z > 0
            y3[ni, ci, k] = 0 if z < 0 else z
    return y, mask


def _relu_bias_bwd_impl(dy, mask, dx, db):
    n = dy.shape[0]
    c = dy.shape[1]
    inner = dy.size // (n * c) if n * c > 0 else 0
    df = dy.reshape(dy.size)
    mf = mask.reshape(mask.size)
    of = dx.reshape(dx.size)
    for ci in prange(c):
        # two passes per (n, c) row: the masked copy (vectorised select), then
        # the sum of the row just written (in L1) into four float64 partial
        # sums. One fused loop is ~7x slower: LLVM turns a select whose
        # condition is loaded from memory into a branch, which a random mask
        # mispredicts half the time, and one accumulator serialises the adds.
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for ni in range(n):
            base = (ni * c + ci) * inner
            for k in range(inner):
                i = _u(base + k)
                of[i] = df[i] if mf[i] else 0
            k = 0
            while k + 4 <= inner:
                i = _u(base + k)
                s0 += of[i]
                s1 += of[i + 1]
                s2 += of[i + 2]
                s3 += of[i + 3]
                k += 4
            while k < inner:
                s0 += of[_u(base + k)]
                k += 1
        db[ci] = (s0 + s1) + (s2 + s3)
    return dx, db


_bias_relu_fwd_ser, _bias_relu_fwd_par = dual(_bias_relu_fwd_impl)
_relu_bias_bwd_ser, _relu_bias_bwd_par = dual(_relu_bias_bwd_impl)


def bias_relu_forward(x, b):
    """relu_forward(x + b), b (C,) broadcast along axis 1 -> (y, mask)."""
    x = np.ascontiguousarray(x)
    b = np.ascontiguousarray(b, dtype=x.dtype).reshape(-1)
    f = _bias_relu_fwd_par if x.size >= FUSED_PAR_MIN else _bias_relu_fwd_ser
    return f(x, b, np.empty(x.shape, x.dtype), np.empty(x.shape, np.bool_))


def relu_bias_backward(dy, mask):
    """(dx, db): relu_backward(dy, mask) and its sum over every axis but 1."""
    dy = np.ascontiguousarray(dy)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    # parallel over channels: worth it only with several channels per thread
    f = _relu_bias_bwd_par if dy.size >= FUSED_PAR_MIN and dy.shape[1] >= 4 else _relu_bias_bwd_ser
    return f(dy, mask, np.empty(dy.shape, dy.dtype), np.empty(dy.shape[1], dy.dtype))
