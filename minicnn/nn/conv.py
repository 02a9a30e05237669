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
# keeps the whole matrix unless it is huge. CPU sizes: with the chunks split over
# 2 threads, alternating limits within one process (5 rounds, random order) put
# keep 2 MiB / chunk 1 MiB at or near the best of keep 0.5-8 MiB x chunk 0.5-4 MiB
# for Net2 b4/b64 and the tutorial net b64 (Net2 b64 step 184 -> 175 ms against
# keep 8 / chunk 2; the others within 3 %).
CPU_LIMITS = {"keep": 2 * 2**20, "chunk": 1 * 2**20}
GPU_LIMITS = {"keep": 512 * 2**20, "chunk": 512 * 2**20}


def _batch_chunks(n: int, bytes_per_sample: int, gpu: bool):
    """[(start, stop)] batch ranges; one range means: build and keep the whole matrix."""
    limits = GPU_LIMITS if gpu else CPU_LIMITS
    if n * bytes_per_sample <= limits["keep"]:
        return [(0, n)]
    per = max(1, limits["chunk"] // max(1, bytes_per_sample))
    return [(i, min(n, i + per)) for i in range(0, n, per)]


# A kept matrix is still split into up to KEPT_SPLIT batch ranges where the
# backend runs shares in parallel (CPU threads), so the GEMMs of a small batch
# use every core too -- when the layer has at least SPLIT_MIN_MACS multiply-adds:
# below that (~0.1 ms of one core) handing work to a thread costs more than it saves.
KEPT_SPLIT = 8
SPLIT_MIN_MACS = 1 << 22


def _work_items(ops, n: int, chunks, macs: int):
    """The batch ranges a layer hands to ``run_split`` (see ``_run_split``)."""
    if len(chunks) > 1 or not hasattr(ops, "run_split") or macs < SPLIT_MIN_MACS:
        return chunks
    per = -(-n // KEPT_SPLIT)
    return [(i, min(n, i + per)) for i in range(0, n, per)]


def _run_split(ops):
    """How a layer runs its independent batch ranges: ``ops.run_split`` where the
    backend has it (numba: the ranges are dealt to one thread per core, see
    ``kernels/cpu/threads.py``), else one share with every range, in order."""
    return getattr(ops, "run_split", None) or _serial_split


def _serial_split(fn, items):
    return [fn(list(items))]


def _sum_shares(parts):
    """Sum per-share partial results in share order (independent of thread timing)."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


# Above this many bytes, the CPU does not materialise the (n, O, K) stack of
# per-sample weight-gradient products but adds one sample's product at a time.
STACK_LIMIT = 1 * 2**20


def _add_weight_grad(dw, d, cols, gpu: bool, matmul):
    """dw (O, K) += sum_n d_n (O, L) @ cols_n^T (L, K) for a chunk d (n, O, L), cols (n, K, L).

    One batched product and its sum (one call each, what the GPU always
    does), unless on the CPU the (n, O, K) stack of products would exceed
    STACK_LIMIT: then one sample's product at a time (no large temporary).
    """
    if gpu or d.shape[0] * dw.size * dw.itemsize <= STACK_LIMIT:
        dw += matmul(d, cols.transpose(0, 2, 1)).sum(axis=0)
        return
    for k in range(d.shape[0]):
        dw += matmul(d[k], cols[k].T)


# --- Conv2d ------------------------------------------------------------------

def conv2d_forward(x, w, b, stride, padding):
    """out (N, O, OH, OW) = W (O, K) @ im2col(x) (N, K, L) + b.

    cache: (x, cols or None, w, b is not None, stride, padding); ``cols`` is
    kept unless it is larger than CPU_LIMITS / GPU_LIMITS["keep"] allow, in
    which case it is built (and in backward rebuilt) a batch chunk at a time.
    """
    be = backend.current()
    xp, ops = be.xp, be.ops
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(wd, kw, sw, pw)
    w2 = w.reshape(o, -1)
    chunks = _batch_chunks(n, c * kh * kw * oh * ow * x.itemsize, be.is_gpu)
    cols = ops.im2col(x, kh, kw, sh, sw, ph, pw) if len(chunks) == 1 else None  # (N, K, L)
    out = xp.empty((n, o, oh * ow), dtype=xp.result_type(x, w))  # what W @ cols would give

    def fill(share):  # the output rows of one share of batch ranges
        for i, j in share:
            cols_ij = cols[i:j] if cols is not None else ops.im2col(x[i:j], kh, kw, sh, sw, ph, pw)
            ops.matmul(w2, cols_ij, out=out[i:j])
            if b is not None:
                out[i:j] += b.reshape(1, o, 1)

    _run_split(ops)(fill, _work_items(ops, n, chunks, n * o * w2.shape[1] * oh * ow))
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
    d = dout.reshape(n, o, dout.shape[2] * dout.shape[3])  # (N, O, L); no -1: n may be 0
    w2 = w.reshape(o, -1)
    db = d.sum(axis=(0, 2)) if has_bias else None
    dx = xp.empty(x.shape, dtype=xp.result_type(w, dout)) if need_dx else None  # what W^T @ dout gives
    chunks = [(0, n)] if cols is not None else _batch_chunks(n, c * kh * kw * d.shape[2] * x.itemsize, be.is_gpu)

    def grads(share):  # dx rows of one share of batch ranges; returns their part of dW
        dw_share = xp.zeros(w2.shape, dtype=w.dtype)
        for i, j in share:
            cols_ij = cols[i:j] if cols is not None else ops.im2col(x[i:j], kh, kw, sh, sw, ph, pw)
            _add_weight_grad(dw_share, d[i:j], cols_ij, be.is_gpu, ops.matmul)
            if need_dx:
                dcols = ops.matmul(w2.T, d[i:j])  # (j - i, K, L)
                ops.col2im(dcols, j - i, c, h, wd, kh, kw, sh, sw, ph, pw, out=dx[i:j])
        return dw_share

    dw = _sum_shares(_run_split(ops)(grads, _work_items(ops, n, chunks, n * w2.size * d.shape[2])))
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

    The column matrix is never kept: it is built a batch range at a time.
    cache: (x, w, b is not None, stride, padding).
    """
    be = backend.current()
    xp, ops = be.xp, be.ops
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    oh = conv_transpose2d_out_size(h, kh, sh, ph, oph)
    ow = conv_transpose2d_out_size(wd, kw, sw, pw, opw)
    wt = w.reshape(cin, -1).T  # (C_out*kh*kw, C_in)
    x3 = x.reshape(n, cin, h * wd)
    out = xp.empty((n, cout, oh, ow), dtype=xp.result_type(w, x))

    def fill(share):
        for i, j in share:
            ops.col2im(ops.matmul(wt, x3[i:j]), j - i, cout, oh, ow, kh, kw, sh, sw, ph, pw, out=out[i:j])
            if b is not None:
                out[i:j] += b.reshape(1, cout, 1, 1)

    chunks = _batch_chunks(n, wt.shape[0] * h * wd * x.itemsize, be.is_gpu)
    _run_split(ops)(fill, _work_items(ops, n, chunks, n * wt.size * h * wd))
    return out, (x, w, b is not None, stride, padding)


def conv_transpose2d_backward(dout, cache):
    """dcols = im2col(dout);  dx = W @ dcols;  dW = sum_n x_n @ dcols_n^T;  db = sum dout."""
    be = backend.current()
    xp, ops = be.xp, be.ops
    x, w, has_bias, (sh, sw), (ph, pw) = cache
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    w2 = w.reshape(cin, -1)
    x3 = x.reshape(n, cin, h * wd)
    dx = xp.empty(x3.shape, dtype=xp.result_type(w, dout))

    def grads(share):
        dw_share = xp.zeros(w2.shape, dtype=w.dtype)
        for i, j in share:
            dcols = ops.im2col(dout[i:j], kh, kw, sh, sw, ph, pw)  # (n, C_out*kh*kw, H*W)
            ops.matmul(w2, dcols, out=dx[i:j])
            _add_weight_grad(dw_share, x3[i:j], dcols, be.is_gpu, ops.matmul)
        return dw_share

    chunks = _batch_chunks(n, w2.shape[1] * h * wd * x.itemsize, be.is_gpu)
    dw = _sum_shares(_run_split(ops)(grads, _work_items(ops, n, chunks, n * w2.size * h * wd)))
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx.reshape(x.shape), dw.reshape(w.shape), db


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
