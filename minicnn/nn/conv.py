"""Conv2d (im2col + GEMM) and ConvTranspose2d (GEMM + col2im).

Notation: x (N, C, H, W); Conv2d's weight (O, C, kh, kw) seen as a matrix W
(O, K) with K = C*kh*kw; L = OH*OW output pixels. ``im2col(x)`` (N, K, L)
holds, for every output pixel, the K input values its window covers, so a
convolution is one matrix product per sample: ``out_n = W @ cols_n + b``.

The backward follows from that product (for each sample n):

    dW  = sum_n dout_n (O, L) @ cols_n^T (L, K)      (how W moved every output)
    db  = sum of dout over N, OH, OW
    dx  = col2im(W^T (K, O) @ dout_n (O, L))         (col2im: im2col's adjoint,
                                                      adding overlapping taps)

One pair of kernels serves both layers: Conv2d's backward-data (GEMM, then
col2im) is exactly ConvTranspose2d's forward, and ConvTranspose2d's
backward-data is a convolution (im2col, then GEMM).

The functions below are that math on the whole batch (what the ``numpy``
backend runs). The ``numba`` and ``cupy`` backends run the same products in
batch chunks and thread shares (their table entries of the same names,
``kernels/conv_schedule.py``), with the same caches.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.kernels.reference import conv_out_size, deconv_out_size
from minicnn.nn import init
from minicnn.nn._checks import check_input, pair
from minicnn.nn.module import Module, Parameter


# --- Conv2d ------------------------------------------------------------------

def conv2d_forward(x, w, b, stride, padding):
    """out (N, O, OH, OW) = W (O, K) @ im2col(x) (N, K, L) + b.

    cache: (x, cols, w, has_bias, stride, padding).
    """
    ops = backend.current().ops
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    cols = ops.im2col(x, kh, kw, sh, sw, ph, pw)  # (N, K, L)
    out = ops.matmul(w.reshape(o, -1), cols)      # (N, O, L)
    if b is not None:
        out += b.reshape(1, o, 1)
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(wd, kw, sw, pw)
    return out.reshape(n, o, oh, ow), (x, cols, w, b is not None, stride, padding)


def conv2d_backward(dout, cache, need_dx=True):
    """dW = sum_n dout_n @ cols_n^T;  db = sum dout;  dx = col2im(W^T @ dout).

    dout (N, O, OH, OW). Returns (dx (N, C, H, W) or None when ``need_dx`` is
    False, dW (O, C, kh, kw), db (O,) or None without a bias).
    """
    ops = backend.current().ops
    x, cols, w, has_bias, (sh, sw), (ph, pw) = cache
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    d = dout.reshape(n, o, dout.shape[2] * dout.shape[3])  # (N, O, L); no -1: N may be 0
    dw = ops.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0)  # (O, K)
    db = d.sum(axis=(0, 2)) if has_bias else None
    dx = None
    if need_dx:
        dcols = ops.matmul(w.reshape(o, -1).T, d)  # (N, K, L)
        dx = ops.col2im(dcols, n, c, h, wd, kh, kw, sh, sw, ph, pw)
    return dx, dw.reshape(w.shape), db


# --- ConvTranspose2d ---------------------------------------------------------

def conv_transpose2d_forward(x, w, b, stride, padding, output_padding):
    """out (N, C_out, OH, OW) = col2im(W^T (C_out*kh*kw, C_in) @ x_n (C_in, H*W)) + b.

    weight (C_in, C_out, kh, kw). cache: (x, w, has_bias, stride, padding);
    the column matrix is not kept (backward rebuilds what it needs from dout).
    """
    ops = backend.current().ops
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    oh, ow = deconv_out_size(h, kh, sh, ph, oph), deconv_out_size(wd, kw, sw, pw, opw)
    cols = ops.matmul(w.reshape(cin, -1).T, x.reshape(n, cin, h * wd))  # (N, C_out*kh*kw, H*W)
    out = ops.col2im(cols, n, cout, oh, ow, kh, kw, sh, sw, ph, pw)
    if b is not None:
        out += b.reshape(1, cout, 1, 1)
    return out, (x, w, b is not None, stride, padding)


def conv_transpose2d_backward(dout, cache, need_dx=True):
    """dcols = im2col(dout);  dx = W @ dcols;  dW = sum_n x_n @ dcols_n^T;  db = sum dout.

    dout (N, C_out, OH, OW). Returns (dx (N, C_in, H, W) or None, dW, db or None).
    """
    ops = backend.current().ops
    x, w, has_bias, (sh, sw), (ph, pw) = cache
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    dcols = ops.im2col(dout, kh, kw, sh, sw, ph, pw)  # (N, C_out*kh*kw, H*W)
    x3 = x.reshape(n, cin, h * wd)
    dw = ops.matmul(x3, dcols.transpose(0, 2, 1)).sum(axis=0)  # (C_in, C_out*kh*kw)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    dx = ops.matmul(w.reshape(cin, -1), dcols).reshape(x.shape) if need_dx else None
    return dx, dw.reshape(w.shape), db


def _scheduled(name, plain):
    """The backend's batch schedule of these products (its table entry ``name``,
    kernels/conv_schedule.py) when it has one, else the whole-batch function."""
    return getattr(backend.current().ops, name, plain)


# --- the modules -------------------------------------------------------------

class _ConvNd(Module):
    """What both convolutions hold and check: channels, kernel, stride, padding,
    a PyTorch-initialised weight of ``weight_shape`` and an optional bias (C_out,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, dtype, weight_shape):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0, "
                             f"got {self.kernel_size}, {self.stride}, {self.padding}")
        shape = weight_shape(self.in_channels, self.out_channels, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(shape, dtype=dtype))
        self.bias = Parameter(init.default_bias(self.out_channels, shape, dtype=dtype)) if bias else None
        self._cache = None

    def _bias_data(self):
        return self.bias.data if self.bias is not None else None

    def _accumulate(self, dw, db) -> None:
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution, PyTorch's ``nn.Conv2d`` (dilation 1, groups 1).

    x (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2p - k) // s + 1.
    weight (C_out, C_in, kh, kw), bias (C_out,). Caches x and the im2col matrix.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype,
                         weight_shape=lambda cin, cout, kh, kw: (cout, cin, kh, kw))

    def forward(self, x):
        check_input(self, x, (4,), self.in_channels)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} (padded by {self.padding}) "
                             f"is smaller than the kernel {self.kernel_size}")
        out, self._cache = _scheduled("conv2d_forward", conv2d_forward)(
            x, self.weight.data, self._bias_data(), self.stride, self.padding)
        return out

    def backward(self, dout):
        """Returns dx (None if ``needs_input_grad`` is False); adds into weight.grad, bias.grad."""
        dx, dw, db = _scheduled("conv2d_backward", conv2d_backward)(
            dout, self._need_cache(self._cache), self.needs_input_grad)
        self._accumulate(dw, db)
        return dx


class ConvTranspose2d(_ConvNd):
    """Transposed convolution, PyTorch's ``nn.ConvTranspose2d`` (dilation 1, groups 1).

    x (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H - 1) * stride - 2 * padding + kernel + output_padding.
    weight (C_in, C_out, kh, kw), bias (C_out,); fan_in for init = C_out*kh*kw.
    ``forward(x, output_size=...)`` picks output_padding like PyTorch.
    Caches x (its backward is a convolution of the output gradient).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype,
                         weight_shape=lambda cin, cout, kh, kw: (cin, cout, kh, kw))
        self.output_padding = pair(output_padding, "output_padding")
        self._check_output_padding(self.output_padding)

    def _check_output_padding(self, op):
        if any(o < 0 or o >= s for o, s in zip(op, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {op} must be >= 0 and smaller than stride "
                             f"{self.stride}")

    def output_padding_for(self, x_hw, output_size):
        """The output_padding that makes the output spatial size ``output_size``."""
        size = tuple(output_size)[-2:]
        op = tuple(size[d] - deconv_out_size(x_hw[d], self.kernel_size[d], self.stride[d], self.padding[d])
                   for d in range(2))
        if any(o < 0 or o >= s for o, s in zip(op, self.stride)):
            raise ValueError(f"{self._describe()}: requested output size {size} is not reachable from input "
                             f"size {tuple(x_hw)}; valid sizes differ from the base by 0..stride-1")
        return op

    def forward(self, x, output_size=None):
        check_input(self, x, (4,), self.in_channels)
        op = self.output_padding if output_size is None else self.output_padding_for(x.shape[2:], output_size)
        oh, ow = (deconv_out_size(x.shape[2 + d], self.kernel_size[d], self.stride[d], self.padding[d], op[d])
                  for d in range(2))
        if oh < 1 or ow < 1:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} gives a non-positive output size "
                             f"({oh}, {ow})")
        out, self._cache = _scheduled("conv_transpose2d_forward", conv_transpose2d_forward)(
            x, self.weight.data, self._bias_data(), self.stride, self.padding, op)
        return out

    def backward(self, dout):
        """Returns dx (None if ``needs_input_grad`` is False); adds into weight.grad, bias.grad."""
        dx, dw, db = _scheduled("conv_transpose2d_backward", conv_transpose2d_backward)(
            dout, self._need_cache(self._cache), self.needs_input_grad)
        self._accumulate(dw, db)
        return dx
