"""The products of Linear and Conv2d: matmul, and im2col / col2im (its adjoint), which turn
a convolution into one matrix product (CS231n's ``conv_forward_im2col``).

``im2col_wide`` / ``col2im_wide`` are the same matrices with the batch's column blocks
side by side, (C*kh*kw, N*OH*OW), so that one product covers the whole batch
(``W (O, K) @ cols (K, N*L)``) instead of N products of (O, K) @ (K, L); a backend's
conv schedule may use them (``ConvSchedule(wide=True)``)."""

from __future__ import annotations

from .arrays import _into, _windows, _xp, check_cols_size, check_geometry


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


def im2col_wide(x, kh, kw, sh, sw, ph, pw, out=None):
    """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW): im2col's (N, K, L) blocks side by side,
    column n*L + l holding sample n's column l."""
    xp = _xp(x)
    cols = im2col(x, kh, kw, sh, sw, ph, pw)
    n, k, l = cols.shape
    return _into("im2col_wide", out, xp.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(k, n * l))


def col2im_wide(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=None):
    """Adjoint of im2col_wide: cols (C*kh*kw, N*OH*OW) -> x (N, C, H, W)."""
    oh, ow = check_geometry("col2im_wide", kh, kw, sh, sw, ph, pw, h, w)
    check_cols_size(cols, n, c, kh, kw, oh, ow)
    blocks = cols.reshape(c * kh * kw, n, oh * ow).transpose(1, 0, 2)
    return col2im(blocks, n, c, h, w, kh, kw, sh, sw, ph, pw, out=out)


def matmul(a, b, out=None):
    """``a @ b`` (NumPy's ``matmul``: 2-D or batched (B, m, k) @ (B, k, n), 2-D operands
    broadcast), into ``out`` when given. A table entry so that a backend can route the
    products (the CUDA one records them into CUDA graphs)."""
    return _xp(a).matmul(a, b, out=out)
