"""MaxPool2d (keeps its switches), MaxUnpool2d (places values back at them),
AvgPool2d and AdaptiveAvgPool2d.

Switch indices follow PyTorch: for each output pixel, the flat offset
``h * W + w`` of the chosen maximum inside its own (H, W) input plane, as
int64, shape (N, C, OH, OW). Ties go to the first maximum in row-major
window order; NaN counts as a maximum. Padding counts as -inf.

Average pooling is linear, so its backward is its adjoint (transpose):

* AvgPool2d: ``out = mean of each window`` = the im2col columns averaged over
  the kh*kw taps; backward spreads ``dout / divisor`` back over every tap of
  its window and adds the overlaps (col2im, im2col's adjoint).
* AdaptiveAvgPool2d: ``out = P_h @ x @ P_w^T`` with P_h (OH, H) holding
  1/len(bin) on output row i's bin of input rows (PyTorch's bins:
  start = floor(i * H / OH), end = ceil((i + 1) * H / OH)), and P_w alike;
  backward ``dx = P_h^T @ dout @ P_w``. Output size 1 is the global average
  pool: P_h = ones(1, H) / H.
"""

from __future__ import annotations

import functools

import numpy as np

from minicnn import backend
from minicnn.kernels.reference import conv_out_size, deconv_out_size
from minicnn.nn._checks import check_input, pair
from minicnn.nn.module import Module


def maxpool2d_forward(x, kernel_size, stride, padding):
    """out (N, C, OH, OW), the maximum of each window; cache: (idx, H, W, window
    geometry), idx (N, C, OH, OW) the switches (where each maximum came from)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out, idx = backend.current().ops.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    return out, (idx, x.shape[2], x.shape[3], (kh, kw, sh, sw, ph, pw))


def maxpool2d_backward(dout, cache):
    """dx (N, C, H, W): each dout pixel is added at its switch position (the
    maximum is the only input its output depends on)."""
    idx, h, w, window = cache
    return backend.current().ops.maxpool2d_backward(dout, idx, h, w, *window)


class MaxPool2d(Module):
    """Max pooling, PyTorch's ``nn.MaxPool2d`` (floor mode, dilation 1).

    x (N, C, H, W) -> (N, C, OH, OW) [and indices when ``return_indices``],
    OH = (H + 2p - k) // s + 1; ``stride`` defaults to ``kernel_size``.
    Caches only the switch indices. ``self.indices`` holds the last ones.
    """

    def __init__(self, kernel_size, stride=None, padding=0, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        self.return_indices = bool(return_indices)
        if ceil_mode:
            raise ValueError("MaxPool2d: ceil_mode=True is not supported (floor mode only)")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"MaxPool2d: kernel_size and stride must be >= 1, got {self.kernel_size}, {self.stride}")
        if any(p < 0 or 2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be between 0 and half the kernel "
                             f"{self.kernel_size}")
        self.indices = None
        self._cache = None

    def forward(self, x):
        check_input(self, x, (4,))
        kh, kw = self.kernel_size
        if x.shape[2] + 2 * self.padding[0] < kh or x.shape[3] + 2 * self.padding[1] < kw:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} is smaller than the window")
        out, self._cache = maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        self.indices = self._cache[0]
        return (out, self.indices) if self.return_indices else out

    def backward(self, dout):
        return maxpool2d_backward(dout, self._need_cache(self._cache))

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        return s


def maxunpool2d_forward(x, indices, out_hw):
    """out (N, C, OH, OW): zeros except ``out[n, c].flat[indices[n, c]] = x[n, c]``;
    cache: the indices."""
    out = backend.current().ops.maxunpool2d_forward(x, indices, out_hw[0], out_hw[1])
    return out, indices


def maxunpool2d_backward(dout, indices):
    """dx (N, C, H, W) = dout gathered at the same indices."""
    return backend.current().ops.maxunpool2d_backward(dout, indices)


class MaxUnpool2d(Module):
    """Partial inverse of MaxPool2d, PyTorch's ``nn.MaxUnpool2d``.

    ``forward(x, indices, output_size=None)``: x and indices (N, C, H, W) ->
    (N, C, OH, OW) with OH = (H - 1) * stride - 2 * padding + kernel unless
    ``output_size`` ((OH, OW) or a full (N, C, OH, OW) shape) says otherwise.
    Caches the indices (they carry no gradient).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        self._cache = None

    def default_size(self, hw):
        """(OH, OW) = (H - 1) * stride - 2 * padding + kernel: the input size of the pool it inverts."""
        return tuple(deconv_out_size(hw[d], self.kernel_size[d], self.stride[d], self.padding[d]) for d in range(2))

    def forward(self, x, indices, output_size=None):
        check_input(self, x, (4,))
        if tuple(indices.shape) != tuple(x.shape):
            raise ValueError(f"{self._describe()}: indices shape {tuple(indices.shape)} must equal input shape "
                             f"{tuple(x.shape)}")
        if getattr(indices.dtype, "kind", "") not in "iu":
            raise TypeError(f"{self._describe()}: indices must be integers, got dtype {indices.dtype}")
        if type(indices) is not type(x):  # (the description is built only where they may differ)
            backend.check_same_module(self._describe(), x, indices)
        if output_size is None:
            out_hw = self.default_size(x.shape[2:])
        else:
            out_hw = tuple(int(s) for s in tuple(output_size)[-2:])
            base = self.default_size(x.shape[2:])
            if any(not (b - s <= o <= b + s) for o, b, s in zip(out_hw, base, self.stride)):
                raise ValueError(f"{self._describe()}: output_size {out_hw} must be within one stride of the "
                                 f"default size {base}")
        if indices.size and not backend.current().is_gpu:  # no host sync on the GPU
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= out_hw[0] * out_hw[1]:
                raise ValueError(f"{self._describe()}: indices range [{lo}, {hi}] does not fit an output plane "
                                 f"of {out_hw} ({out_hw[0] * out_hw[1]} positions)")
        out, self._cache = maxunpool2d_forward(x, indices, out_hw)
        return out

    def backward(self, dout):
        return maxunpool2d_backward(dout, self._need_cache(self._cache))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# --- average pooling -----------------------------------------------------------

def avgpool2d_forward(x, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    """out (N, C, OH, OW): the mean of each window, out = sum(window) / divisor.

    The windows are im2col's columns: cols (N, C*kh*kw, L) seen as (N, C, kh*kw, L).
    divisor: kh*kw (``count_include_pad``: the zero padding counts), the number
    of real input pixels under each window (otherwise), or ``divisor_override``.
    cache: (x shape, window geometry, divisor (a number or a (1, 1, 1, L) array)).
    """
    xp, ops = backend.current().xp, backend.current().ops
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    cols = ops.im2col(x, kh, kw, sh, sw, ph, pw)               # (N, C*kh*kw, L)
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    sums = cols.reshape(n, c, kh * kw, oh * ow).sum(axis=2, keepdims=True)  # (N, C, 1, L)
    if divisor_override is not None:
        divisor = float(divisor_override)
    elif count_include_pad or (ph == 0 and pw == 0):
        divisor = float(kh * kw)
    else:  # how many taps of each window fall on the image: im2col of a plane of ones
        ones = xp.ones((1, 1, h, w), dtype=x.dtype)
        divisor = ops.im2col(ones, kh, kw, sh, sw, ph, pw).sum(axis=1).reshape(1, 1, 1, oh * ow)
    out = (sums / divisor).astype(x.dtype, copy=False)
    return out.reshape(n, c, oh, ow), (x.shape, (kh, kw, sh, sw, ph, pw), divisor)


def avgpool2d_backward(dout, cache):
    """dx (N, C, H, W): every tap of a window gets dout / divisor, overlaps add up
    (col2im of the columns ``dout / divisor`` repeated kh*kw times)."""
    xp, ops = backend.current().xp, backend.current().ops
    (n, c, h, w), (kh, kw, sh, sw, ph, pw), divisor = cache
    L = dout.shape[2] * dout.shape[3]
    share = (dout.reshape(n, c, 1, L) / divisor).astype(dout.dtype, copy=False)  # (N, C, 1, L)
    dcols = xp.empty((n, c, kh * kw, L), dtype=dout.dtype)
    dcols[...] = share                                               # the same share for every tap
    return ops.col2im(dcols.reshape(n, c * kh * kw, L), n, c, h, w, kh, kw, sh, sw, ph, pw)


class AvgPool2d(Module):
    """Average pooling, PyTorch's ``nn.AvgPool2d`` (floor mode).

    x (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2p - k) // s + 1; ``stride``
    defaults to ``kernel_size``. ``count_include_pad=True`` (PyTorch's default)
    divides every window by kh*kw, zero padding included. Caches the input
    shape and the divisor (the backward needs no input values).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if ceil_mode:
            raise ValueError("AvgPool2d: ceil_mode=True is not supported (floor mode only)")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"AvgPool2d: kernel_size and stride must be >= 1, got {self.kernel_size}, {self.stride}")
        if any(p < 0 or 2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"AvgPool2d: padding {self.padding} must be between 0 and half the kernel "
                             f"{self.kernel_size}")
        if divisor_override is not None and int(divisor_override) == 0:
            raise ValueError("AvgPool2d: divisor_override must not be 0")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)
        self._cache = None

    def forward(self, x):
        check_input(self, x, (4,))
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} is smaller than the window")
        out, self._cache = avgpool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                             self.count_include_pad, self.divisor_override)
        return out

    def backward(self, dout):
        return avgpool2d_backward(dout, self._need_cache(self._cache))

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


def adaptive_pool_matrix(size_in: int, size_out: int, dtype):
    """P (size_out, size_in): row i averages input positions [start_i, end_i),
    start_i = floor(i * size_in / size_out), end_i = ceil((i + 1) * size_in / size_out)
    (PyTorch's bins: they cover the input and may overlap). Built on the host."""
    p = np.zeros((size_out, size_in), dtype=dtype)
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -((-(i + 1) * size_in) // size_out)  # ceil
        p[i, start:end] = 1.0 / (end - start)
    return p


@functools.lru_cache(maxsize=64)
def _pool_matrix_on(backend_name: str, size_in: int, size_out: int, dtype):
    """:func:`adaptive_pool_matrix` as an array of that backend, made once per size (so a
    training step copies nothing from the host; a CUDA graph could not record that copy)."""
    return backend.get(backend_name).asarray(adaptive_pool_matrix(size_in, size_out, dtype))


def adaptive_avgpool2d_forward(x, output_size):
    """out (N, C, OH, OW) = P_h (OH, H) @ x @ P_w^T (W, OW), every plane at once;
    cache: (P_h, P_w, x shape)."""
    be = backend.current()
    n, c, h, w = x.shape
    oh, ow = output_size
    p_h = _pool_matrix_on(be.name, h, oh, np.dtype(x.dtype))
    p_w = _pool_matrix_on(be.name, w, ow, np.dtype(x.dtype))
    rows = be.ops.matmul(x.reshape(n * c * h, w), p_w.T)             # (N*C*H, OW): average over W
    out = be.ops.matmul(p_h, rows.reshape(n * c, h, ow))              # (N*C, OH, OW): then over H
    return out.reshape(n, c, oh, ow), (p_h, p_w, x.shape)


def adaptive_avgpool2d_backward(dout, cache):
    """dx (N, C, H, W) = P_h^T @ dout @ P_w (the adjoint of the forward's two products)."""
    ops = backend.current().ops
    p_h, p_w, (n, c, h, w) = cache
    oh, ow = dout.shape[2], dout.shape[3]
    d_rows = ops.matmul(p_h.T, dout.reshape(n * c, oh, ow))           # (N*C, H, OW)
    dx = ops.matmul(d_rows.reshape(n * c * h, ow), p_w)               # (N*C*H, W)
    return dx.reshape(n, c, h, w)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, PyTorch's ``nn.AdaptiveAvgPool2d``.

    x (N, C, H, W) -> (N, C, OH, OW) for ``output_size`` (OH, OW) (an int: square;
    None in a pair keeps that input size). ``AdaptiveAvgPool2d(1)`` is the
    global average pool of ResNet: (N, C, H, W) -> (N, C, 1, 1), each channel's mean.
    Caches the two pooling matrices (no input values).
    """

    def __init__(self, output_size):
        super().__init__()
        pair_in = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(pair_in) != 2:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got {output_size!r}")
        self.output_size = tuple(None if s is None else int(s) for s in pair_in)
        if any(s is not None and s < 1 for s in self.output_size):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be >= 1, got {output_size!r}")
        self._cache = None

    def forward(self, x):
        check_input(self, x, (4,))
        size = tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(self.output_size))
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} has an empty plane")
        out, self._cache = adaptive_avgpool2d_forward(x, size)
        return out

    def backward(self, dout):
        return adaptive_avgpool2d_backward(dout, self._need_cache(self._cache))

    def extra_repr(self):
        size = self.output_size
        return f"output_size={size[0] if size[0] == size[1] else size}"
