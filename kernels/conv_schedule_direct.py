"""The conv schedule's direct paths: a layer the schedule sends to the backend's direct kernels
(``conv2d_direct``, ``conv2d_direct_input_grad``, ``conv2d_direct_weight_grad``: no column
matrix at all) runs here, its batch dealt to the shares like the products' ranges, or handed in
one call with those ranges where the backend's kernels run them themselves (the CPU's, on
Numba's threads: ``direct_ranges`` in its ops). The rest of
the schedule, and when a layer goes direct (``direct_max``, ``direct_rule``), is in
``conv_schedule.py``; the CPU's kernels are ``kernels/cpu/direct.py``, the GPU's
``kernels/cuda/conv.cu``."""

from __future__ import annotations

from minicnn.kernels.conv_ranges import accumulate, sum_in_order
from minicnn.kernels.reference import array_module


class DirectPaths:
    """Mixed into ``ConvSchedule`` (which provides ``ops``, ``direct_max``, ``direct_rule``,
    ``run`` and ``work_items``)."""

    def direct(self, w, pixels: int, stride) -> bool:
        """Whether a layer with weight ``w`` runs through the direct kernels (see the module doc):
        at most ``direct_max`` weights, and ``direct_rule(w, pixels, stride)`` when that is set;
        ``pixels`` is the output plane (OH*OW) of the Conv2d the kernels run (for a
        ConvTranspose2d, the Conv2d it is the adjoint of: its input plane)."""
        return (0 < w.size <= self.direct_max and hasattr(self.ops, "conv2d_direct")
                and (self.direct_rule is None or bool(self.direct_rule(w, pixels, tuple(stride)))))

    def direct_items(self, n: int, macs: int):
        """The batch ranges of a direct call: one per worker when the split says how many it has
        (a kernel call then keeps its sums and buffers over a whole share: Net2's conv2 10-17 %
        faster than in 8 ranges, benchmarks/notes/cpu-direct.md), else as for the products.
        Below ``split_min_macs`` one range, run by the caller; where the backend's kernels run
        the ranges themselves (``ranges_in_kernels``), below ``direct_split_min_macs``."""
        workers = getattr(self.split, "workers", None)
        least = self.direct_split_min_macs if self.ranges_in_kernels() else self.split_min_macs
        if workers is None or macs < least:
            return self.work_items(n, [(0, n)], macs)
        per = -(-n // max(1, int(workers())))
        return [(i, min(n, i + per)) for i in range(0, n, per)]

    def ranges_in_kernels(self) -> bool:
        """Whether the backend's direct kernels take the batch ranges themselves (``ranges=``,
        the CPU's: run at once on Numba's threads) rather than one call per range in the shares."""
        return bool(getattr(self.ops, "direct_ranges", False))

    def direct_conv2d_forward(self, x, w, b, stride, padding, out_shape):
        """Conv2d's forward through ``conv2d_direct``, the batch dealt to the shares; the cache
        holds no column matrix."""
        ops, xp = self.ops, array_module(x)
        n, o, oh, ow = out_shape
        out = xp.empty(out_shape, dtype=xp.result_type(x, w))
        items = self.direct_items(n, n * w.size * oh * ow)
        if self.ranges_in_kernels():
            ops.conv2d_direct(x, w, b, stride, padding, out=out, ranges=items)
            return out, (x, None, w, b is not None, stride, padding)

        def fill(share):
            for i, j in share:
                ops.conv2d_direct(x[i:j], w, b, stride, padding, out=out[i:j])

        self.run(fill, items)
        return out, (x, None, w, b is not None, stride, padding)

    def direct_conv_transpose2d_forward(self, x, w, b, stride, padding, out_shape):
        """ConvTranspose2d's forward: the input gradient of the Conv2d with weight w (C_in, C_out,
        kh, kw) through ``conv2d_direct_input_grad``, the batch dealt to the shares, + b."""
        ops, xp = self.ops, array_module(x)
        n, cout, oh, ow = out_shape
        out = xp.empty(out_shape, dtype=xp.result_type(w, x))

        items = self.direct_items(n, n * w.size * x.shape[2] * x.shape[3])
        if self.ranges_in_kernels():
            ops.conv2d_direct_input_grad(x, w, oh, ow, stride, padding, out=out, ranges=items)
            if b is not None:
                out += b.reshape(1, cout, 1, 1)
            return out, (x, w, b is not None, stride, padding)

        def fill(share):
            for i, j in share:
                ops.conv2d_direct_input_grad(x[i:j], w, oh, ow, stride, padding, out=out[i:j])
                if b is not None:
                    out[i:j] += b.reshape(1, cout, 1, 1)

        self.run(fill, items)
        return out, (x, w, b is not None, stride, padding)

    def direct_backward(self, dout, x, w, stride, padding, need_dx, transposed=False):
        """(dx or None, dW) with the direct kernels only, no column matrix: for a Conv2d dx =
        ``conv2d_direct_input_grad`` of dout and dW = ``conv2d_direct_weight_grad`` of (x, dout);
        for a ConvTranspose2d (``transposed``), the adjoint of that Conv2d, dx = ``conv2d_direct``
        of dout and dW the weight gradient of (dout, x). The batch ranges are dealt to the
        shares as in the products' path, the shares' weight gradients summed in share order."""
        ops, xp = self.ops, array_module(dout)
        n, _, h, wd = x.shape
        kh, kw = w.shape[2], w.shape[3]
        dx = xp.empty(x.shape, dtype=xp.result_type(w, dout)) if need_dx else None
        out_plane = h * wd if transposed else dout.shape[2] * dout.shape[3]  # the Conv2d's output plane
        items = self.direct_items(n, n * w.size * out_plane)
        if self.ranges_in_kernels():
            if need_dx and transposed:
                ops.conv2d_direct(dout, w, None, stride, padding, out=dx, ranges=items)
            elif need_dx:
                ops.conv2d_direct_input_grad(dout, w, h, wd, stride, padding, out=dx, ranges=items)
            conv_in, conv_dout = (dout, x) if transposed else (x, dout)
            return dx, ops.conv2d_direct_weight_grad(conv_in, conv_dout, kh, kw, stride, padding, ranges=items)

        def grads(share):
            dw_share = None
            for i, j in share:
                if need_dx and transposed:
                    ops.conv2d_direct(dout[i:j], w, None, stride, padding, out=dx[i:j])
                elif need_dx:
                    ops.conv2d_direct_input_grad(dout[i:j], w, h, wd, stride, padding, out=dx[i:j])
                conv_in, conv_dout = (dout[i:j], x[i:j]) if transposed else (x[i:j], dout[i:j])
                dw_share = accumulate(dw_share, ops.conv2d_direct_weight_grad(conv_in, conv_dout, kh, kw,
                                                                               stride, padding))
            return dw_share

        parts = [p for p in self.run(grads, items) if p is not None]
        dw = sum_in_order(parts) if parts else xp.zeros(w.shape, dtype=xp.result_type(x, dout))
        return dx, dw
