"""Conv2d (im2col + GEMM) and ConvTranspose2d (GEMM + col2im).

One pair of kernels serves both layers: Conv2d's backward-data is a
transposed convolution (col2im), and ConvTranspose2d's forward is exactly
that, while its backward-data is a convolution (im2col).

Notation: x (N, C, H, W); weight (O, C, kh, kw) for Conv2d and
(C_in, C_out, kh, kw) for ConvTranspose2d; K = C*kh*kw, L = OH*OW.
"""

from __future__ import annotations

from minicnn import backend
from minicnn.kernels.reference import conv_out_size
from minicnn.nn import init
from minicnn.nn._checks import check_input, pair
from minicnn.nn.module import Module, Parameter

# The (N, K, L) column matrix is kept for backward when it has at most
# limits["keep"] bytes. A larger one is built a batch chunk of about limits["chunk"] at a
# time, used while it is still in cache, dropped, and rebuilt chunk by chunk in
# backward: on the CPU that is faster for large batches (im2col + GEMM run out of
# cache instead of memory) and bounds the memory a conv layer holds. The GPU
# keeps the whole matrix unless it is huge.
CPU_LIMITS = {"keep": 8 * 2**20, "chunk": 2 * 2**20}
GPU_LIMITS = {"keep": 512 * 2**20, "chunk": 512 * 2**20}


def _batch_chunks(n: int, bytes_per_sample: int, gpu: bool):
    """[(start, stop)] batch ranges; one range means: build and keep the whole matrix."""
    limits = GPU_LIMITS if gpu else CPU_LIMITS
    if n * bytes_per_sample <= limits["keep"]:
        return [(0, n)]
    per = max(1, limits["chunk"] // max(1, bytes_per_sample))
    return [(i, min(n, i + per)) for i in range(0, n, per)]


# --- Conv2d ------------------------------------------------------------------

def conv2d_forward(x, w, b, stride, padding):
    """out (N, O, OH, OW) = W (O, K) @ im2col(x) (N, K, L) + b.

    cache: (x, cols or None, w, b is not None, stride, padding); ``cols`` is
    kept unless it is larger than CPU_LIMITS / GPU_LIMITS["keep"] allow.
    """
    be = backend.current()
    xp, ops = be.xp, be.ops
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(wd, kw, sw, pw)
    w2 = w.reshape(o, -1)
    chunks = _batch_chunks(n, c * kh * kw * oh * ow * x.itemsize, be.is_gpu)
    if len(chunks) == 1:
        cols = ops.im2col(x, kh, kw, sh, sw, ph, pw)  # (N, K, L)
        out = xp.matmul(w2, cols)  # (N, O, L)
    else:
        cols = None
        out = xp.empty((n, o, oh * ow), dtype=x.dtype)
        for i, j in chunks:
            out[i:j] = xp.matmul(w2, ops.im2col(x[i:j], kh, kw, sh, sw, ph, pw))
    if b is not None:
        out += b.reshape(1, o, 1)
    return out.reshape(n, o, oh, ow), (x, cols, w, b is not None, stride, padding)


def conv2d_backward(dout, cache, need_dx=True):
    """dW = sum_n dout_n (O, L) @ cols_n^T;  db = sum dout;  dx = col2im(W^T @ dout).

    Returns (dx, dw, db); db is None when the layer has no bias, dx is None
    when ``need_dx`` is False.
    """
    be = backend.current()
    xp, ops = be.xp, be.ops
    x, cols, w, has_bias, (sh, sw), (ph, pw) = cache
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    d = dout.reshape(n, o, -1)  # (N, O, L)
    w2 = w.reshape(o, -1)
    db = d.sum(axis=(0, 2)) if has_bias else None
    if cols is not None:
        dw = xp.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0)  # sum_n (O, L) @ (L, K) -> (O, K)
        dx = ops.col2im(xp.matmul(w2.T, d), n, c, h, wd, kh, kw, sh, sw, ph, pw) if need_dx else None
    else:
        dw = xp.zeros(w2.shape, dtype=w.dtype)
        dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
        for i, j in _batch_chunks(n, c * kh * kw * d.shape[2] * x.itemsize, be.is_gpu):
            cols_ij = ops.im2col(x[i:j], kh, kw, sh, sw, ph, pw)
            dw += xp.matmul(d[i:j], cols_ij.transpose(0, 2, 1)).sum(axis=0)
            if need_dx:
                dx[i:j] = ops.col2im(xp.matmul(w2.T, d[i:j]), j - i, c, h, wd, kh, kw, sh, sw, ph, pw)
    return dx, dw.reshape(w.shape), db


class Conv2d(Module):
    """2-D convolution, PyTorch's ``nn.Conv2d`` (dilation 1, groups 1).

    x (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2p - k) // s + 1.
    weight (C_out, C_in, kh, kw), bias (C_out,). Caches the im2col matrix.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(shape, dtype=dtype))
        self.bias = Parameter(init.default_bias(self.out_channels, shape, dtype=dtype)) if bias else None
        self.needs_input_grad = True  # see Module.requires_input_grad_
        self._cache = None

    def forward(self, x):
        check_input(self, x, (4,), self.in_channels)
        kh, kw = self.kernel_size
        (ph, pw) = self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} (padded by {self.padding}) "
                             f"is smaller than the kernel {self.kernel_size}")
        b = self.bias.data if self.bias is not None else None
        out, self._cache = conv2d_forward(x, self.weight.data, b, self.stride, self.padding)
        return out

    def backward(self, grad_out):
        """Returns dx (None if ``needs_input_grad`` is False); adds into weight.grad, bias.grad."""
        dx, dw, db = conv2d_backward(grad_out, self._need_cache(self._cache), self.needs_input_grad)
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


# --- ConvTranspose2d ---------------------------------------------------------

def conv_transpose2d_out_size(size, k, s, p, op):
    """(H - 1) * stride - 2 * padding + kernel + output_padding."""
    return (size - 1) * s - 2 * p + k + op


def conv_transpose2d_forward(x, w, b, stride, padding, output_padding):
    """out = col2im(W (C_in, C_out*kh*kw)^T @ x (N, C_in, H*W)) + b.

    cache: (x, w, b is not None, stride, padding, out shape).
    """
    be = backend.current()
    xp, ops = be.xp, be.ops
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    oh = conv_transpose2d_out_size(h, kh, sh, ph, oph)
    ow = conv_transpose2d_out_size(wd, kw, sw, pw, opw)
    cols = xp.matmul(w.reshape(cin, -1).T, x.reshape(n, cin, h * wd))  # (N, C_out*kh*kw, H*W)
    out = ops.col2im(cols, n, cout, oh, ow, kh, kw, sh, sw, ph, pw)
    if b is not None:
        out += b.reshape(1, cout, 1, 1)
    return out, (x, w, b is not None, stride, padding)


def conv_transpose2d_backward(dout, cache):
    """dcols = im2col(dout);  dx = W @ dcols;  dW = sum_n x_n @ dcols_n^T;  db = sum dout."""
    be = backend.current()
    xp, ops = be.xp, be.ops
    x, w, has_bias, (sh, sw), (ph, pw) = cache
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    dcols = ops.im2col(dout, kh, kw, sh, sw, ph, pw)  # (N, C_out*kh*kw, H*W)
    w2 = w.reshape(cin, -1)
    dx = xp.matmul(w2, dcols).reshape(x.shape)
    dw = xp.matmul(x.reshape(n, cin, -1), dcols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


class ConvTranspose2d(Module):
    """Transposed convolution, PyTorch's ``nn.ConvTranspose2d`` (dilation 1, groups 1).

    x (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H - 1) * stride - 2 * padding + kernel + output_padding.
    weight (C_in, C_out, kh, kw), bias (C_out,); fan_in for init = C_out*kh*kw.
    ``forward(x, output_size=...)`` picks output_padding like PyTorch.
    Caches x (its backward is a convolution of the output gradient).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.output_padding = pair(output_padding, "output_padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"ConvTranspose2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        self._check_output_padding(self.output_padding)
        shape = (self.in_channels, self.out_channels, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(shape, dtype=dtype))
        self.bias = Parameter(init.default_bias(self.out_channels, shape, dtype=dtype)) if bias else None
        self._cache = None

    def _check_output_padding(self, op):
        if any(o < 0 or o >= s for o, s in zip(op, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {op} must be >= 0 and smaller than stride "
                             f"{self.stride}")

    def output_padding_for(self, x_hw, output_size):
        """The output_padding that makes the output spatial size ``output_size``."""
        size = tuple(output_size)[-2:]
        op = []
        for d in range(2):
            base = conv_transpose2d_out_size(x_hw[d], self.kernel_size[d], self.stride[d], self.padding[d], 0)
            op.append(size[d] - base)
        if any(o < 0 or o >= s for o, s in zip(op, self.stride)):
            raise ValueError(f"{self._describe()}: requested output size {size} is not reachable from input "
                             f"size {tuple(x_hw)}; valid sizes differ from the base by 0..stride-1")
        return tuple(op)

    def forward(self, x, output_size=None):
        check_input(self, x, (4,), self.in_channels)
        op = self.output_padding if output_size is None else self.output_padding_for(x.shape[2:], output_size)
        oh = conv_transpose2d_out_size(x.shape[2], self.kernel_size[0], self.stride[0], self.padding[0], op[0])
        ow = conv_transpose2d_out_size(x.shape[3], self.kernel_size[1], self.stride[1], self.padding[1], op[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"{self._describe()}: input {tuple(x.shape)} gives a non-positive output size "
                             f"({oh}, {ow})")
        b = self.bias.data if self.bias is not None else None
        out, self._cache = conv_transpose2d_forward(x, self.weight.data, b, self.stride, self.padding, op)
        return out

    def backward(self, grad_out):
        dx, dw, db = conv_transpose2d_backward(grad_out, self._need_cache(self._cache))
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
