"""Reference kernels: plain array code, the readable definition of every kernel.

These run on NumPy (the ``numpy`` backend) and, being written against the
array module of their input, on CuPy too wherever a CUDA kernel is missing.
The Numba and CUDA kernels must produce the same numbers (tests compare them).

Shapes (all NCHW, C-contiguous results):

=====================  ======================================================
im2col                 x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW)
col2im                 cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W), summing
                       overlapping taps (the adjoint of im2col)
                       (both take an optional ``out=``: a C-contiguous array
                       of the result's shape and dtype to write into)
maxpool2d_forward      x (N, C, H, W) -> out, idx (N, C, OH, OW); idx is the
                       flat offset h*W + w of the max inside its (H, W) plane
                       (PyTorch's convention); padding counts as -inf; ties
                       take the first maximum in row-major window order
maxpool2d_backward     dout, idx (N, C, OH, OW), H, W [, kh, kw, sh, sw, ph, pw]
                       -> dx (N, C, H, W), summing when overlapping windows
                       share a maximum
maxunpool2d_forward    x, idx (N, C, H, W) -> out (N, C, OH, OW), zeros except
                       out.flat-in-plane[idx] = x
maxunpool2d_backward   dout (N, C, OH, OW), idx (N, C, H, W) -> dx (N, C, H, W)
relu_forward           x -> (y, mask) with mask = x > 0 (bool)
relu_backward          dy, mask -> dx
leaky_relu_forward     x, slope -> (y, mask);  leaky_relu_backward(dy, mask, slope)
elu_forward            x, alpha -> y;  elu_backward(dy, y, alpha) (uses the output)
gelu_forward           x, approximate ('none' | 'tanh') -> y
gelu_backward          dy, x, approximate -> dx
dropout_forward        x, u, p -> (y, mask): u holds uniform [0, 1) draws of
                       the mask's shape (x's, or (N, C, 1, ...) for channel
                       dropout); mask = (u >= p) / (1 - p) in x's dtype,
                       y = x * mask (broadcast); backward is dy * mask
batchnorm_forward      x (N, C, *), gamma, beta (C,) or None, eps -> (y, mean,
                       var, xhat, inv_std): training mode, statistics over
                       every axis but 1, var biased; mean, var, inv_std (C,)
batchnorm_backward     dy, xhat (N, C, *), inv_std, gamma (C,) or None
                       -> (dx, dgamma, dbeta)
sgd_update             in place: param, grad, buf, lr, momentum, dampening,
                       nesterov, weight_decay, first (bool: buf not yet set)
adam_update            in place: param, grad, exp_avg, exp_avg_sq, step (>=1),
                       lr, beta1, beta2, eps, weight_decay
=====================  ======================================================

The optimiser updates follow PyTorch's single-tensor code path exactly.

Output sizes: OH = (H + 2*ph - kh) // sh + 1, likewise OW (``conv_out_size``; a
transposed convolution's is ``deconv_out_size``).
"""

from __future__ import annotations

import numpy as np


def is_cupy(a) -> bool:
    """Whether ``a`` is a CuPy array (judged by its type's module: CuPy need not be importable)."""
    return type(a).__module__.startswith("cupy")


def array_module(x):
    """``cupy`` for a CuPy array, else ``numpy`` (Chainer's ``get_array_module``)."""
    if is_cupy(x):
        import cupy

        return cupy
    return np


_xp = array_module


def conv_out_size(size: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution/pooling window sweep (floor mode):
    ``(size + 2p - k) // s + 1``."""
    return (size + 2 * p - k) // s + 1


def deconv_out_size(size: int, k: int, s: int, p: int, output_padding: int = 0) -> int:
    """Output length of a transposed convolution (and MaxUnpool2d's default):
    ``(size - 1) * s - 2p + k + output_padding``, the inverse of ``conv_out_size``."""
    return (size - 1) * s - 2 * p + k + output_padding


def _windows(xpad, kh, kw, sh, sw, oh, ow):
    """View (N, C, OH, OW, kh, kw) of the padded input; no copy."""
    xp = _xp(xpad)
    n, c, _, _ = xpad.shape
    s0, s1, s2, s3 = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, c, oh, ow, kh, kw), strides=(s0, s1, s2 * sh, s3 * sw, s2, s3)
    )


def check_out(name, out, shape, dtype, like=None, source=None):
    """Raise ValueError unless ``out`` is a writeable C-contiguous array of
    ``shape`` and ``dtype`` -- of the same array library as ``like`` (NumPy or
    CuPy) when given, and sharing no memory with ``source`` when given."""
    flags = getattr(out, "flags", None)
    if (tuple(getattr(out, "shape", ())) != tuple(shape) or getattr(out, "dtype", None) != dtype
            or flags is None or not flags.c_contiguous):
        got = f"{type(out).__name__} {getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}"
        if flags is not None and not flags.c_contiguous:
            got += " (not C-contiguous)"
        raise ValueError(f"{name}: out must be a C-contiguous array of shape {tuple(shape)} and dtype "
                         f"{np.dtype(dtype)}, got {got}")
    if not getattr(flags, "writeable", True):
        raise ValueError(f"{name}: out is read-only; pass a writeable array")
    if like is not None and _library(out) != _library(like):
        raise ValueError(f"{name}: out must be a {_library(like)} array like the input, got a "
                         f"{_library(out)} {type(out).__name__}")
    if source is not None and _library(out) == _library(source) == "numpy" and np.may_share_memory(out, source):
        raise ValueError(f"{name}: out overlaps the input; pass a separate array")
    return out


def _library(a) -> str:
    """'numpy', 'cupy', ... : the top-level module of an array's type."""
    return type(a).__module__.split(".")[0]


def _into(name, out, result):
    """``result``, or ``result`` copied into the checked ``out``."""
    if out is None:
        return result
    check_out(name, out, result.shape, result.dtype, like=result)
    out[...] = result
    return out


def check_geometry(name, kh, kw, sh, sw, ph, pw, h, w):
    """(OH, OW) of a kh x kw window with stride (sh, sw) and zero padding
    (ph, pw) over an h x w image; ValueError for a kernel or stride below 1, a
    negative padding, or a padded image smaller than the kernel (what every
    backend's im2col/col2im checks, so they agree on what they accept)."""
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: kernel and stride must be >= 1 and padding >= 0, got kernel ({kh}, {kw}), "
                         f"stride ({sh}, {sw}), padding ({ph}, {pw})")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{name}: the padded image ({h + 2 * ph}, {w + 2 * pw}) is smaller than the kernel "
                         f"({kh}, {kw})")
    return conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)


def check_cols_size(cols, n, c, kh, kw, oh, ow):
    """ValueError unless ``cols`` has the N*C*kh*kw*OH*OW elements col2im expects."""
    if cols.size != n * c * kh * kw * oh * ow:
        raise ValueError(f"col2im: cols has {cols.size} elements; (n, c) = {(n, c)} with a ({kh}, {kw}) "
                         f"window and a ({oh}, {ow}) output gives {n * c * kh * kw * oh * ow}")


def im2col(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); row index is (c, i, j)."""
    xp = _xp(x)
    n, c, h, w = x.shape
    oh, ow = check_geometry("im2col", kh, kw, sh, sw, ph, pw, h, w)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else xp.ascontiguousarray(x)
    win = _windows(xpad, kh, kw, sh, sw, oh, ow)  # (N, C, OH, OW, kh, kw)
    cols = xp.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * kh * kw, oh * ow)
    return _into("im2col", out, cols)


def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """Adjoint of im2col: cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W).

    Loops over the kh*kw kernel taps and adds each tap's (N, C, OH, OW) slab
    into a strided slice of the padded image (Chainer's CPU col2im): no
    ``np.add.at``, and the order of summation is fixed.
    """
    xp = _xp(cols)
    oh, ow = check_geometry("col2im", kh, kw, sh, sw, ph, pw, h, w)
    check_cols_size(cols, n, c, kh, kw, oh, ow)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    img = xp.zeros((n, c, h + 2 * ph + sh - 1, w + 2 * pw + sw - 1), dtype=cols.dtype)
    for i in range(kh):
        i_end = i + sh * oh
        for j in range(kw):
            j_end = j + sw * ow
            img[:, :, i:i_end:sh, j:j_end:sw] += cols[:, :, i, j]
    return _into("col2im", out, xp.ascontiguousarray(img[:, :, ph : ph + h, pw : pw + w]))


def maxpool2d_forward(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) -> (out, idx), both (N, C, OH, OW); idx int64 = h*W + w."""
    xp = _xp(x)
    n, c, h, w = x.shape
    if sh < 1 or sw < 1:
        raise ValueError(f"maxpool2d_forward: strides must be positive, got ({sh}, {sw})")
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    if ph or pw:
        xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)
    else:
        xpad = xp.ascontiguousarray(x)
    win = _windows(xpad, kh, kw, sh, sw, oh, ow).reshape(n, c, oh, ow, kh * kw)
    a = win.argmax(axis=-1)  # first maximum (NaN counts as maximum, as in PyTorch)
    out = xp.take_along_axis(win, a[..., None], axis=-1)[..., 0]
    rows = xp.arange(oh).reshape(oh, 1) * sh - ph + a // kw
    cols = xp.arange(ow).reshape(1, ow) * sw - pw + a % kw
    idx = (rows * w + cols).astype(xp.int64)
    return xp.ascontiguousarray(out), idx


def _plane(a) -> int:
    """Elements per (n, c) plane of a 4-D array (explicit: reshape's -1 fails on an empty batch)."""
    return int(a.shape[2]) * int(a.shape[3])


def maxpool2d_backward(dout, idx, h, w, kh=None, kw=None, sh=None, sw=None, ph=0, pw=0):
    """Route dout (N, C, OH, OW) to the argmax positions idx -> dx (N, C, H, W).

    The window geometry (as given to the forward) is optional; the CUDA kernel
    uses it to run as a gather over input pixels, this scatter ignores it.
    """
    xp = _xp(dout)
    n, c = dout.shape[:2]
    plane = h * w
    flat = (idx.reshape(n * c, _plane(idx)) + (xp.arange(n * c) * plane)[:, None]).ravel()
    dx = xp.bincount(flat, weights=dout.ravel(), minlength=n * c * plane)
    return dx.astype(dout.dtype, copy=False).reshape(n, c, h, w)


def maxunpool2d_forward(x, idx, oh, ow):
    """Place x (N, C, H, W) at idx inside zero planes -> out (N, C, OH, OW)."""
    xp = _xp(x)
    n, c = x.shape[:2]
    out = xp.zeros((n * c, oh * ow), dtype=x.dtype)
    rows = xp.arange(n * c)[:, None]
    out[rows, idx.reshape(n * c, _plane(idx))] = x.reshape(n * c, _plane(x))
    return out.reshape(n, c, oh, ow)


def maxunpool2d_backward(dout, idx):
    """Gather dout (N, C, OH, OW) at idx (N, C, H, W) -> dx (N, C, H, W)."""
    xp = _xp(dout)
    n, c = dout.shape[:2]
    g = xp.take_along_axis(dout.reshape(n * c, _plane(dout)), idx.reshape(n * c, _plane(idx)), axis=1)
    return g.reshape(idx.shape)


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


def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on one tensor, in place (PyTorch's ``_single_tensor_sgd``).

    g = grad + wd * param;  buf = g (first step) or momentum*buf + (1-dampening)*g;
    g = g + momentum*buf (nesterov) or buf;  param -= lr * g.
    ``buf`` may be None when momentum == 0.
    """
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on one tensor, in place (PyTorch's ``_single_tensor_adam``).

    g = grad + wd*param; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    param -= (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
    """
    xp = _xp(param)
    g = grad + weight_decay * param if weight_decay else grad
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    param -= step_size * (exp_avg / denom)


def sgd_update_multi(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first):
    """``sgd_update`` on every tensor of a list (same hyper-parameters and
    ``first``); ``bufs`` may be None when momentum == 0. The CUDA backend does
    it in one launch."""
    bufs = [None] * len(params) if bufs is None else bufs
    for param, grad, buf in zip(params, grads, bufs, strict=True):
        sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """``adam_update`` on every tensor of a list (same hyper-parameters and
    step count). The CUDA backend does it in one launch."""
    for param, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
        adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)


def matmul(a, b, out=None):
    """``a @ b`` (NumPy's ``matmul``: 2-D or batched (B, m, k) @ (B, k, n), 2-D operands
    broadcast), into ``out`` when given. A table entry so that a backend can route the
    products (the CUDA one records them into CUDA graphs)."""
    return _xp(a).matmul(a, b, out=out)


TABLE = {
    "matmul": matmul,
    "im2col": im2col,
    "col2im": col2im,
    "maxpool2d_forward": maxpool2d_forward,
    "maxpool2d_backward": maxpool2d_backward,
    "maxunpool2d_forward": maxunpool2d_forward,
    "maxunpool2d_backward": maxunpool2d_backward,
    "relu_forward": relu_forward,
    "relu_backward": relu_backward,
    "leaky_relu_forward": leaky_relu_forward,
    "leaky_relu_backward": leaky_relu_backward,
    "elu_forward": elu_forward,
    "elu_backward": elu_backward,
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
    "dropout_forward": dropout_forward,
    "batchnorm_forward": batchnorm_forward,
    "batchnorm_backward": batchnorm_backward,
    "sgd_update": sgd_update,
    "adam_update": adam_update,
    "sgd_update_multi": sgd_update_multi,
    "adam_update_multi": adam_update_multi,
}
