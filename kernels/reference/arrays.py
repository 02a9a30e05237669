"""Helpers every reference kernel uses: the array module of an input (NumPy or CuPy),
output sizes of window sweeps, window views, and the checks of ``out=`` arguments and
window geometry that every backend shares."""

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


def check_direct(name, a, a_axis, w, w_axis, b=None, out_size=None, want=None):
    """ValueError unless the shapes agree (the kernels index with them and would read past
    an array that is too small): ``a``'s channel axis against the weight's, the bias, and
    the gradient's spatial size against the one the geometry gives."""
    if a.ndim != 4 or w.ndim != 4 or a.shape[a_axis] != w.shape[w_axis]:
        raise ValueError(f"{name}: input of shape {tuple(a.shape)} does not fit weight of shape {tuple(w.shape)} "
                         f"(expected {w.shape[w_axis] if w.ndim == 4 else '?'} channels on axis {a_axis})")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"{name}: bias of shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    if out_size is not None and out_size != want:
        raise ValueError(f"{name}: gradient of spatial size {out_size}, expected {want} from the geometry")


def check_cols_size(cols, n, c, kh, kw, oh, ow):
    """ValueError unless ``cols`` has the N*C*kh*kw*OH*OW elements col2im expects."""
    if cols.size != n * c * kh * kw * oh * ow:
        raise ValueError(f"col2im: cols has {cols.size} elements; (n, c) = {(n, c)} with a ({kh}, {kw}) "
                         f"window and a ({oh}, {ow}) output gives {n * c * kh * kw * oh * ow}")



def _plane(a) -> int:
    """Elements per (n, c) plane of a 4-D array (explicit: reshape's -1 fails on an empty batch)."""
    return int(a.shape[2]) * int(a.shape[3])
