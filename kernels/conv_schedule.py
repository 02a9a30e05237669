"""How a backend runs a convolution layer's products over the batch.

``minicnn/nn/conv.py`` writes Conv2d and ConvTranspose2d as their math on the
whole batch (im2col, one GEMM, col2im; CS231n's ``conv_forward_im2col``). That
is what the ``numpy`` backend runs. The ``numba`` and ``cupy`` backends run the
*same products* through a :class:`ConvSchedule`, whose four methods are their
kernel-table entries ``conv2d_forward``, ``conv2d_backward``,
``conv_transpose2d_forward`` and ``conv_transpose2d_backward`` (same
signatures, same caches as the layer functions). A schedule only decides how
the batch is cut up:

* **keep** -- the (N, K, L) column matrix (K = C*kh*kw, L = OH*OW) is built
  whole and kept for backward when it has at most ``keep`` bytes;
* **chunks** -- a larger one is built ``chunk`` bytes' worth of samples at a
  time, used while it is still in cache, dropped, and rebuilt chunk by chunk
  in backward (faster on a CPU, and it bounds the memory a layer holds). With
  ``keep=0`` (the GPU's choice) no matrix is kept: a layer holds only its
  input for backward, as PyTorch's convolutions do, at the price of one more
  im2col per layer in backward;
* **shares** -- with a ``split`` function (the CPU's: one thread per core, or for
  a small batch BLAS's threads inside each product; ``kernels/cpu/split_chooser.py``),
  the batch ranges are dealt into shares; a kept matrix is cut into
  ``kept_split`` ranges for that, when the layer has at least
  ``split_min_macs`` multiply-adds (below that a thread costs more than it saves);
* **per-sample weight-gradient products** -- dW = sum_n d_n @ cols_n^T is one
  batched product and a sum, unless the (n, O, K) stack of products would
  exceed ``stack_limit`` bytes: then one sample's product at a time;
* **transposed weight gradient** -- with ``dw_transposed``, the same sum is
  formed as its transpose, dW^T (K, O) = sum_n cols_n (K, L) @ d_n^T (L, O),
  and transposed once at the end. It is the same sum of the same products;
  OpenBLAS runs this orientation up to 2x faster at the conv shapes of the
  nets here, most for few output channels, and no slower at any shape
  measured (benchmarks/notes/cpu-kernels.md, "Weight gradient as its transpose"), so the
  CPU schedule sets it;
* **wide** -- the column matrix of a batch range in the wide layout (K, n*L),
  the samples' blocks side by side (``im2col_wide`` / ``col2im_wide``), so each
  product covers the whole range: forward W (O, K) @ cols (K, n*L), backward
  dW = d (O, n*L) @ cols^T and dcols = W^T @ d, with the gradient moved to that
  layout first (one copy) and the forward's result moved back (one pass, with
  the bias). One large product instead of n small ones, and the weight gradient
  summed inside the product (no (n, O, K) stack and no sum). For the GPU, where
  small per-sample products leave the device idle; measured by
  ``benchmarks/gpu_check.sh`` (``MINICNN_CONV_WIDE``). With ``wide_max_pixels``
  only the layers with at most that many columns per sample (L) go wide; a kept
  matrix's own layout (2-D wide, 3-D per sample) decides its backward's;
* **scratch** -- with ``scratch_max`` > 0, the column matrices that live only
  inside one share's loop (a chunk's im2col when the matrix is not kept, the
  input-gradient columns before col2im, ConvTranspose2d's columns) are written
  into a per-thread buffer kept from call to call, up to ``scratch_max`` bytes
  each, instead of a fresh array per chunk: a fresh array of a few hundred KiB
  page-faults on every first touch, which cost more than the im2col itself
  (benchmarks/notes/cpu-kernels.md, "Scratch column buffers"). The CPU's choice;
  the GPU's memory pool already reuses its blocks (0, the default: off);
* **direct** -- a layer whose weight has at most ``direct_max`` elements runs its
  output (and its input gradient) through the backend's ``conv2d_direct`` /
  ``conv2d_direct_input_grad`` kernels, with no column matrix at all, and its
  weight gradient through ``conv2d_direct_weight_grad`` where the backend has one
  (the CPU's; else through im2col and a product). For the small first layers of
  these nets, where the column matrix is 25x the image and the product is tiny.
  The batch is dealt to the shares as for the products; where the backend's kernels
  run the ranges themselves (``ops.direct_ranges``, the CPU's), from
  ``direct_split_min_macs`` multiply-adds rather than ``split_min_macs``. ``direct_max=0`` (the
  default): never. ``direct_rule(w, pixels, stride)``, when given, must also hold:
  the backend's own choice by the weight, the output plane's pixels and the stride
  (the CPU's: few output channels on a large plane, stride 1, ``kernels/cpu/__init__.py``);

Per-share partial weight gradients are summed in share order, so the result
does not depend on thread timing. ``tests/test_conv_schedule.py`` forces every
path by its limit and compares it with the plain layer functions.
"""

from __future__ import annotations

import math
import threading

from minicnn.kernels.conv_ranges import accumulate, from_wide, kept_samples, sum_in_order, to_wide
from minicnn.kernels.conv_schedule_direct import DirectPaths
from minicnn.kernels.reference import array_module, conv_out_size, deconv_out_size

MiB = 2**20


class ConvSchedule(DirectPaths):
    """Batch ranges, kept matrices and thread shares for the conv products (see the module doc).

    ``ops``: the backend's ``im2col``, ``col2im`` and ``matmul`` (any object with
    those attributes, e.g. a ``SimpleNamespace``); with ``wide=True`` also
    ``im2col_wide`` and ``col2im_wide``; ``conv2d_direct`` and
    ``conv2d_direct_input_grad`` (both with ``out=``) where ``direct_max`` is to take
    effect, and optionally ``conv2d_direct_weight_grad``.
    """

    def __init__(self, ops, *, keep: int, chunk: int, split=None, kept_split: int = 8,
                 split_min_macs: int = 1 << 22, stack_limit: int | None = None, dw_transposed: bool = False,
                 wide: bool = False, wide_max_pixels: int | None = None, direct_max: int = 0,
                 direct_rule=None, scratch_max: int = 0, direct_split_min_macs: int | None = None):
        self.ops = ops
        self.scratch_max = int(scratch_max)
        self._local = threading.local()  # each thread's scratch buffers
        self.wide = bool(wide)
        self.wide_max_pixels = wide_max_pixels
        self.direct_max = int(direct_max)
        self.direct_rule = direct_rule
        self.keep, self.chunk = int(keep), int(chunk)
        self.split = split
        self.kept_split, self.split_min_macs = int(kept_split), int(split_min_macs)
        # the same limit for direct calls whose kernels run the ranges themselves (``direct_items``)
        self.direct_split_min_macs = self.split_min_macs if direct_split_min_macs is None \
            else int(direct_split_min_macs)
        self.stack_limit = stack_limit
        self.dw_transposed = bool(dw_transposed)

    def table(self) -> dict:
        """The kernel-table entries this schedule provides."""
        return {"conv2d_forward": self.conv2d_forward, "conv2d_backward": self.conv2d_backward,
                "conv_transpose2d_forward": self.conv_transpose2d_forward,
                "conv_transpose2d_backward": self.conv_transpose2d_backward}

    # -- the plan ---------------------------------------------------------
    def keeps(self, n: int, bytes_per_sample: int) -> bool:
        """Whether the whole (n, K, L) column matrix is built once and kept for backward."""
        return n * bytes_per_sample <= self.keep

    def chunks(self, n: int, bytes_per_sample: int) -> list[tuple[int, int]]:
        """[(start, stop)] batch ranges: the whole batch when the matrix is kept, else ranges of
        at most ``chunk`` bytes' worth of samples (one range when the whole matrix fits in one)."""
        if self.keeps(n, bytes_per_sample):
            return [(0, n)]
        per = max(1, self.chunk // max(1, bytes_per_sample))
        return [(i, min(n, i + per)) for i in range(0, n, per)]

    def work_items(self, n: int, chunks, macs: int):
        """The ranges handed to the split: the chunks, or a whole batch cut for the threads."""
        if len(chunks) > 1 or self.split is None or macs < self.split_min_macs:
            return chunks
        per = -(-n // self.kept_split)
        return [(i, min(n, i + per)) for i in range(0, n, per)]

    def run(self, fn, items) -> list:
        """``fn(share)`` for each share of ``items`` (one share with all of them without a split)."""
        if self.split is None:
            return [fn(list(items))]
        return self.split(fn, items)

    def add_weight_grad(self, acc, d, cols):
        """acc + sum_n d_n (O, L) @ cols_n^T (L, K) for d (n, O, L), cols (n, K, L); with
        ``dw_transposed`` the (K, O) transpose, sum_n cols_n @ d_n^T. ``acc`` None (a share's
        first range): the sum itself. One batched product and a sum while the (n, O, K) stack
        fits ``stack_limit``; else one product per sample, the first one becoming the
        accumulator and the others written into a scratch buffer before they are added (no
        fresh (O, K) array per sample: one of 800 KiB page-faulted on every first touch)."""
        a, b = (cols, d) if self.dw_transposed else (d, cols)
        n, shape = d.shape[0], (a.shape[1], b.shape[1])
        dtype = array_module(d).result_type(a, b)
        # a 1-sample range skips the stack: the same BLAS product for float32/64; other dtypes
        # (float16: NumPy's own loops, whose 2-D and batched products round differently) keep
        # the batched form of the plain layer, so that the backends agree bit for bit
        stack = n > 1 or dtype.char not in "fd"
        if stack and (self.stack_limit is None or n * math.prod(shape) * dtype.itemsize <= self.stack_limit):
            return accumulate(acc, self.ops.matmul(a, b.transpose(0, 2, 1)).sum(axis=0))
        for k in range(n):
            out = None if acc is None else self.scratch(array_module(d), "dw", shape, dtype)
            acc = accumulate(acc, self.ops.matmul(a[k], b[k].T, out=out))
        return acc

    def weight_grad(self, parts, xp, o: int, k: int, dtype):
        """The (O, K) weight gradient: the shares' accumulators summed in share order (zeros
        for an empty batch), transposed back when ``dw_transposed``."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return xp.zeros((o, k), dtype=dtype)
        total = sum_in_order(parts)
        return total.T if self.dw_transposed else total

    def scratch(self, xp, name: str, shape, dtype):
        """An uninitialised ``shape`` array for a temporary that never leaves the calling share:
        a view of this thread's buffer ``name`` (grown when too small, kept for the next call)
        when ``scratch_max`` allows its size, else None (the kernel then allocates a fresh one)."""
        if self.scratch_max <= 0:
            return None
        size = math.prod(shape)
        dtype = xp.dtype(dtype)
        if size * dtype.itemsize > self.scratch_max:
            return None
        bufs = self._local.__dict__.setdefault("bufs", {})
        buf = bufs.get((name, dtype))
        if buf is None or buf.size < size:
            buf = bufs[(name, dtype)] = xp.empty(size, dtype)
        return buf[:size].reshape(shape)

    def uses_wide(self, pixels: int) -> bool:
        """Whether a layer whose column matrix has ``pixels`` columns per sample (L = OH*OW; a
        ConvTranspose2d's input plane) runs in the wide layout: ``wide``, and at most
        ``wide_max_pixels`` columns when that is set."""
        return self.wide and (self.wide_max_pixels is None or pixels <= self.wide_max_pixels)

    def add_weight_grad_wide(self, acc, d, cols):
        """acc + d (O, n*L) @ cols^T (n*L, K) -- the sum over samples inside one product; with
        ``dw_transposed`` the transpose, cols @ d^T. ``acc`` None (the first range): the product;
        a later range's product goes through a scratch buffer."""
        a, b = (cols, d) if self.dw_transposed else (d, cols)
        out = None if acc is None else self.scratch(array_module(d), "dw", (a.shape[0], b.shape[0]),
                                                    array_module(d).result_type(a, b))
        return accumulate(acc, self.ops.matmul(a, b.T, out=out))

    # -- Conv2d -----------------------------------------------------------
    def conv2d_forward(self, x, w, b, stride, padding):
        """Conv2d's forward (``minicnn.nn.conv.conv2d_forward``) by batch ranges; ``cols``
        in the cache is None when the matrix is not kept (backward builds it again)."""
        ops, xp = self.ops, array_module(x)
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(wd, kw, sw, pw)
        if self.direct(w, oh * ow, stride):  # no column matrix (without a direct weight gradient, backward builds one)
            return self.direct_conv2d_forward(x, w, b, stride, padding, (n, o, oh, ow))
        w2 = w.reshape(o, -1)
        per_sample = c * kh * kw * oh * ow * x.itemsize
        chunks = self.chunks(n, per_sample)
        wide = self.uses_wide(oh * ow)
        im2col = ops.im2col_wide if wide else ops.im2col
        cols = im2col(x, kh, kw, sh, sw, ph, pw) if self.keeps(n, per_sample) else None
        out = xp.empty((n, o, oh * ow), dtype=xp.result_type(x, w))

        def fill(share):
            for i, j in share:
                if cols is not None:
                    cols_ij = kept_samples(cols, i, j, oh * ow, wide)
                elif wide:
                    cols_ij = im2col(x[i:j], kh, kw, sh, sw, ph, pw,
                                     out=self.scratch(xp, "cols", (w2.shape[1], (j - i) * oh * ow), x.dtype))
                else:
                    cols_ij = im2col(x[i:j], kh, kw, sh, sw, ph, pw,
                                     out=self.scratch(xp, "cols", (j - i, w2.shape[1], oh * ow), x.dtype))
                if wide:  # (O, n*L) -> out (n, O, L), the bias added in the same pass
                    from_wide(xp, ops.matmul(w2, cols_ij), out[i:j], b)
                    continue
                ops.matmul(w2, cols_ij, out=out[i:j])
                if b is not None:
                    out[i:j] += b.reshape(1, o, 1)

        self.run(fill, self.work_items(n, chunks, n * o * w2.shape[1] * oh * ow))
        return out.reshape(n, o, oh, ow), (x, cols, w, b is not None, stride, padding)

    def conv2d_backward(self, dout, cache, need_dx=True):
        """Conv2d's backward by the forward's ranges; returns (dx or None, dw, db or None)."""
        ops, xp = self.ops, array_module(dout)
        x, cols, w, has_bias, (sh, sw), (ph, pw) = cache
        n, c, h, wd = x.shape
        direct = self.direct(w, dout.shape[2] * dout.shape[3], (sh, sw))
        if direct and hasattr(ops, "conv2d_direct_weight_grad"):
            dx, dw = self.direct_backward(dout, x, w, (sh, sw), (ph, pw), need_dx)
            o = w.shape[0]
            return dx, dw, dout.reshape(n, o, dout.shape[2] * dout.shape[3]).sum(axis=(0, 2)) if has_bias else None
        if need_dx and direct:  # dx straight from dout and w; dW and db as below
            dx = ops.conv2d_direct_input_grad(dout, w, h, wd, (sh, sw), (ph, pw))
            return (dx, *self.conv2d_backward(dout, cache, need_dx=False)[1:])
        o, _, kh, kw = w.shape
        d = dout.reshape(n, o, dout.shape[2] * dout.shape[3])
        w2 = w.reshape(o, -1)
        db = d.sum(axis=(0, 2)) if has_bias else None
        dx = xp.empty(x.shape, dtype=xp.result_type(w, dout)) if need_dx else None
        chunks = [(0, n)] if cols is not None else self.chunks(n, c * kh * kw * d.shape[2] * x.itemsize)
        wide = cols.ndim == 2 if cols is not None else self.uses_wide(d.shape[2])  # a kept matrix's layout

        def grads(share):  # dx rows of one share; returns the share's part of dW
            if wide:
                return grads_wide(share)
            dw_share = None

            def shape(i, j):  # a chunk's columns
                return (j - i, w2.shape[1], d.shape[2])

            for i, j in share:
                cols_ij = cols[i:j] if cols is not None else \
                    ops.im2col(x[i:j], kh, kw, sh, sw, ph, pw, out=self.scratch(xp, "cols", shape(i, j), x.dtype))
                dw_share = self.add_weight_grad(dw_share, d[i:j], cols_ij)
                if need_dx:
                    dcols = ops.matmul(w2.T, d[i:j], out=self.scratch(xp, "dcols", shape(i, j), dx.dtype))
                    ops.col2im(dcols, j - i, c, h, wd, kh, kw, sh, sw, ph, pw, out=dx[i:j])
            return dw_share

        def grads_wide(share):
            dw_share = None
            for i, j in share:
                wide_shape = (w2.shape[1], (j - i) * d.shape[2])  # a range's columns
                cols_ij = kept_samples(cols, i, j, d.shape[2], True) if cols is not None else \
                    ops.im2col_wide(x[i:j], kh, kw, sh, sw, ph, pw, out=self.scratch(xp, "cols", wide_shape, x.dtype))
                d_ij = to_wide(xp, d[i:j])  # (O, n*L)
                dw_share = self.add_weight_grad_wide(dw_share, d_ij, cols_ij)
                if need_dx:
                    dcols = ops.matmul(w2.T, d_ij, out=self.scratch(xp, "dcols", wide_shape, dx.dtype))
                    ops.col2im_wide(dcols, j - i, c, h, wd, kh, kw, sh, sw, ph, pw, out=dx[i:j])
            return dw_share

        parts = self.run(grads, self.work_items(n, chunks, n * w2.size * d.shape[2]))
        dw = self.weight_grad(parts, xp, o, w2.shape[1], xp.result_type(x, dout))
        return dx, dw.reshape(w.shape), db

    # -- ConvTranspose2d --------------------------------------------------
    def conv_transpose2d_forward(self, x, w, b, stride, padding, output_padding):
        """ConvTranspose2d's forward by batch ranges (the column matrix is never kept)."""
        ops, xp = self.ops, array_module(x)
        n, cin, h, wd = x.shape
        _, cout, kh, kw = w.shape
        (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
        oh, ow = deconv_out_size(h, kh, sh, ph, oph), deconv_out_size(wd, kw, sw, pw, opw)
        if self.direct(w, h * wd, stride):  # the input gradient of a Conv2d with weight w (C_in, C_out, kh, kw)
            return self.direct_conv_transpose2d_forward(x, w, b, stride, padding, (n, cout, oh, ow))
        wt = w.reshape(cin, -1).T  # (C_out*kh*kw, C_in)
        x3 = x.reshape(n, cin, h * wd)
        out = xp.empty((n, cout, oh, ow), dtype=xp.result_type(w, x))
        wide = self.uses_wide(h * wd)

        def fill(share):
            for i, j in share:
                if wide:  # x as (C_in, n*H*W): one product for the range
                    ops.col2im_wide(ops.matmul(wt, to_wide(xp, x3[i:j])), j - i, cout, oh, ow, kh, kw, sh, sw,
                                    ph, pw, out=out[i:j])
                else:
                    cols_ij = ops.matmul(wt, x3[i:j], out=self.scratch(xp, "dcols", (j - i, wt.shape[0], h * wd),
                                                                       out.dtype))
                    ops.col2im(cols_ij, j - i, cout, oh, ow, kh, kw, sh, sw, ph, pw, out=out[i:j])
                if b is not None:
                    out[i:j] += b.reshape(1, cout, 1, 1)

        chunks = self.chunks(n, wt.shape[0] * h * wd * x.itemsize)
        self.run(fill, self.work_items(n, chunks, n * wt.size * h * wd))
        return out, (x, w, b is not None, stride, padding)

    def conv_transpose2d_backward(self, dout, cache, need_dx=True):
        """ConvTranspose2d's backward by batch ranges; returns (dx or None, dw, db or None)."""
        ops, xp = self.ops, array_module(dout)
        x, w, has_bias, (sh, sw), (ph, pw) = cache
        direct = self.direct(w, x.shape[2] * x.shape[3], (sh, sw))
        if direct and hasattr(ops, "conv2d_direct_weight_grad"):
            # the backward of that Conv2d with the roles of input and output swapped: dx its
            # forward of dout, dW its weight gradient from dout (its input) and x (its output's)
            dx, dw = self.direct_backward(dout, x, w, (sh, sw), (ph, pw), need_dx, transposed=True)
            return dx, dw, dout.sum(axis=(0, 2, 3)) if has_bias else None
        if need_dx and direct:  # dx: that Conv2d's forward of dout
            dx = ops.conv2d_direct(dout, w, None, (sh, sw), (ph, pw))
            return (dx, *self.conv_transpose2d_backward(dout, cache, need_dx=False)[1:])
        n, cin, h, wd = x.shape
        _, cout, kh, kw = w.shape
        w2 = w.reshape(cin, -1)
        x3 = x.reshape(n, cin, h * wd)
        dx = xp.empty(x3.shape, dtype=xp.result_type(w, dout)) if need_dx else None
        wide = self.uses_wide(h * wd)

        def grads(share):
            if wide:
                return grads_wide(share)
            dw_share = None
            for i, j in share:
                dcols = ops.im2col(dout[i:j], kh, kw, sh, sw, ph, pw,  # (n, C_out*kh*kw, H*W)
                                   out=self.scratch(xp, "cols", (j - i, w2.shape[1], h * wd), dout.dtype))
                if need_dx:
                    ops.matmul(w2, dcols, out=dx[i:j])
                dw_share = self.add_weight_grad(dw_share, x3[i:j], dcols)
            return dw_share

        def grads_wide(share):
            dw_share = None
            for i, j in share:
                dcols = ops.im2col_wide(dout[i:j], kh, kw, sh, sw, ph, pw)  # (C_out*kh*kw, n*H*W)
                x_ij = to_wide(xp, x3[i:j])  # (C_in, n*H*W)
                if need_dx:
                    from_wide(xp, ops.matmul(w2, dcols), dx[i:j], None)
                dw_share = self.add_weight_grad_wide(dw_share, x_ij, dcols)
            return dw_share

        chunks = self.chunks(n, w2.shape[1] * h * wd * x.itemsize)
        parts = self.run(grads, self.work_items(n, chunks, n * w2.size * h * wd))
        dw = self.weight_grad(parts, xp, cin, w2.shape[1], xp.result_type(x, dout))
        db = dout.sum(axis=(0, 2, 3)) if has_bias else None
        return (dx.reshape(x.shape) if need_dx else None), dw.reshape(w.shape), db
