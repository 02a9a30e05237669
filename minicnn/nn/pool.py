"""MaxPool2d (keeps its switches) and MaxUnpool2d (places values back at them).

Switch indices follow PyTorch: for each output pixel, the flat offset
``h * W + w`` of the chosen maximum inside its own (H, W) input plane, as
int64, shape (N, C, OH, OW). Ties go to the first maximum in row-major
window order; NaN counts as a maximum. Padding counts as -inf.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.kernels.reference import deconv_out_size
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
