"""conv.cu and pool.cu built for the host (tests/cuda_host.py): im2col/col2im (both layouts) and
the pooling kernels against the reference, in both thread orders."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels import reference as ref

from cuda_host import (
    BLOCK,
    CONV_CASES,
    DTYPES,
    GRID,
    POOL_CASES,
    SFX,
    _ids,
    _pool_input,
    assert_same,
    filled,
    run_both_orders,
)

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


# --------------------------------------------------------------------------
# conv.cu
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", CONV_CASES, ids=_ids(CONV_CASES))
def test_im2col_col2im_kernels(host, geom, dtype, ix):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(hash(geom) % 2**32)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    sizes = (h, w, kh, kw, sh, sw, ph, pw, oh, ow)

    total = n * c * kh * kw * oh * ow
    (cols,) = run_both_orders(
        host,
        f"im2col_{SFX[dtype]}_{ix}",
        lambda: (x, filled((n, c * kh * kw, oh * ow), dtype), total, *sizes),
        outputs=[1],
    )
    assert_same(cols, ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col")

    dcols = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    (img,) = run_both_orders(
        host,
        f"col2im_{SFX[dtype]}_{ix}",
        lambda: (dcols, filled((n, c, h, w), dtype), n * c * h * w, *sizes),
        outputs=[1],
    )
    # the same additions in the same order: equal bit for bit
    assert_same(img, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im")

    # the wide layout (C*kh*kw, N*OH*OW): the same values, the batch's blocks side by side
    (wide,) = run_both_orders(
        host,
        f"im2col_wide_{SFX[dtype]}_{ix}",
        lambda: (x, filled((c * kh * kw, n * oh * ow), dtype), total, n, c, *sizes),
        outputs=[1],
    )
    assert_same(wide, ref.im2col_wide(x, kh, kw, sh, sw, ph, pw), "im2col_wide")
    dwide = np.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(c * kh * kw, n * oh * ow)
    (img_wide,) = run_both_orders(
        host,
        f"col2im_wide_{SFX[dtype]}_{ix}",
        lambda: (dwide, filled((n, c, h, w), dtype), n * c * h * w, n, c, *sizes),
        outputs=[1],
    )
    assert_same(img_wide, img, "col2im_wide")
    assert_same(img_wide, ref.col2im_wide(dwide, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im_wide (reference)")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_col2im_is_adjoint_of_im2col(host, dtype):
    """<im2col(x), y> == <x, col2im(y)> (float64 sums)."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = 2, 3, 7, 6, 3, 2, 2, 1, 1, 1
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    sizes = (h, w, kh, kw, sh, sw, ph, pw, oh, ow)
    cols = filled(y.shape, dtype)
    host.launch(f"im2col_{SFX[dtype]}_i32", GRID, BLOCK, (x, cols, cols.size, *sizes))
    img = filled(x.shape, dtype)
    host.launch(f"col2im_{SFX[dtype]}_i32", GRID, BLOCK, (y, img, img.size, *sizes))
    lhs = np.sum(cols.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * img)
    assert lhs == pytest.approx(rhs, rel=1e-5 if dtype == np.float32 else 1e-12)


# --------------------------------------------------------------------------
# pool.cu
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", CONV_CASES, ids=_ids(CONV_CASES))
def test_maxpool_forward_kernel(host, geom, dtype, ix):
    """Values and int64 indices exactly; ties, NaN, +-inf and all-padding windows."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    x = _pool_input(np.random.default_rng(hash(geom) % 2**32), (n, c, h, w), dtype)
    out, idx = run_both_orders(
        host,
        f"maxpool2d_forward_{SFX[dtype]}_{ix}",
        lambda: (
            x,
            filled((n, c, oh, ow), dtype),
            filled((n, c, oh, ow), np.int64),
            n * c * oh * ow,
            h, w, kh, kw, sh, sw, ph, pw, oh, ow,
        ),
        outputs=[1, 2],
    )
    r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    assert_same(idx, r_idx, "maxpool idx")
    assert_same(out, r_out, "maxpool out")


def test_maxpool_forward_nan_rules(host):
    """First maximum on ties; the first NaN wins over everything; -inf padding."""
    x = np.array([[[[1, 5, 5], [np.nan, 2, np.nan], [-np.inf, -np.inf, 0]]]], dtype=np.float32)
    for kh, kw, sh, sw, ph, pw in [(2, 2, 1, 1, 0, 0), (3, 3, 1, 1, 1, 1), (1, 3, 1, 1, 0, 1), (2, 1, 1, 1, 1, 0)]:
        oh, ow = ref.conv_out_size(3, kh, sh, ph), ref.conv_out_size(3, kw, sw, pw)
        out, idx = filled((1, 1, oh, ow), np.float32), filled((1, 1, oh, ow), np.int64)
        host.launch("maxpool2d_forward_f32_i32", 1, 1, (x, out, idx, out.size, 3, 3, kh, kw, sh, sw, ph, pw, oh, ow))
        r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
        assert_same(idx, r_idx, f"idx k{kh}x{kw} p{ph}x{pw}")
        assert_same(out, r_out, f"out k{kh}x{kw} p{ph}x{pw}")


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", POOL_CASES, ids=_ids(POOL_CASES))
def test_maxpool_backward_kernels(host, geom, dtype, ix):
    """Gather (with geometry) and per-plane (without) both equal the reference exactly."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(hash(geom) % 2**32 + 1)
    x = _pool_input(rng, (n, c, h, w), dtype)
    _, idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    dout = rng.standard_normal((n, c, oh, ow)).astype(dtype)
    expected = ref.maxpool2d_backward(dout, idx, h, w)

    (dx,) = run_both_orders(
        host,
        f"maxpool2d_backward_{SFX[dtype]}_{ix}",
        lambda: (dout, idx, filled((n, c, h, w), dtype), n * c * h * w, h, w, kh, kw, sh, sw, ph, pw, oh, ow),
        outputs=[2],
    )
    assert_same(dx, expected, "maxpool backward (gather)")

    def planes_args():
        dx = filled((n, c, h, w), dtype)
        ws = dx if dtype == np.float64 else filled((n, c, h, w), np.float64)
        return (dout, idx, ws, dx, n * c, h * w, oh * ow)

    (dx2,) = run_both_orders(host, f"maxpool2d_backward_planes_{SFX[dtype]}_{ix}", planes_args, outputs=[3])
    assert_same(dx2, expected, "maxpool backward (planes)")


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["pool3s1", "pool2s2", "random"])
def test_maxunpool_kernels(host, kind, dtype, ix):
    """Unpool forward (claim + gather; the last duplicate wins, as numpy) and backward."""
    rng = np.random.default_rng({"pool3s1": 11, "pool2s2": 12, "random": 13}[kind])
    n, c, H, W = 2, 3, 7, 6  # the unpooled size
    if kind == "random":
        h, w = 5, 4
        idx = rng.integers(0, H * W, size=(n, c, h, w)).astype(np.int64)  # many duplicates
    else:
        k, s = (3, 1) if kind == "pool3s1" else (2, 2)
        pooled_from = _pool_input(rng, (n, c, H, W), dtype, specials=False)
        _, idx = ref.maxpool2d_forward(pooled_from, k, k, s, s, 0, 0)
        h, w = idx.shape[2:]
    x = rng.standard_normal((n, c, h, w)).astype(dtype)

    def forward():
        winner = np.zeros(n * c * H * W, dtype=np.uint64)
        host.launch(f"maxunpool2d_claim_{ix}", GRID, BLOCK, (idx, winner, x.size, h * w, H * W))
        out = filled((n, c, H, W), dtype)
        host.launch(f"maxunpool2d_gather_{SFX[dtype]}_{ix}", GRID, BLOCK, (x, winner, out, out.size, h * w, H * W))
        return out

    out = forward()
    assert_same(out, ref.maxunpool2d_forward(x, idx, H, W), "maxunpool forward")
    # claim in reverse thread order: the winner must not change
    winner = np.zeros(n * c * H * W, dtype=np.uint64)
    host.launch(f"maxunpool2d_claim_{ix}", GRID, BLOCK, (idx, winner, x.size, h * w, H * W), order=1)
    out2 = filled((n, c, H, W), dtype)
    host.launch(f"maxunpool2d_gather_{SFX[dtype]}_{ix}", GRID, BLOCK, (x, winner, out2, out2.size, h * w, H * W), order=1)
    assert_same(out2, out, "maxunpool forward, reverse order")

    dout = rng.standard_normal((n, c, H, W)).astype(dtype)
    (dx,) = run_both_orders(
        host,
        f"maxunpool2d_backward_{SFX[dtype]}_{ix}",
        lambda: (dout, idx, filled((n, c, h, w), dtype), n * c * h * w, h * w, H * W),
        outputs=[2],
    )
    assert_same(dx, ref.maxunpool2d_backward(dout, idx), "maxunpool backward")


def _close(got, want, dtype, what):
    """Within float rounding: the direct kernels sum the taps in another order than the product."""
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, want, err_msg=what, **tol)


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv2d_direct_kernels(host, geom, dtype, ix):
    """Output and input gradient without a column matrix equal im2col + product (+ bias) and
    col2im of W^T @ dy."""
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    o = 3
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(hash(geom) % 2**32)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    sizes = (c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow)
    w2 = wt.reshape(o, -1)
    want = (ref.matmul(w2, ref.im2col(x, kh, kw, sh, sw, ph, pw)) + b.reshape(1, o, 1)).reshape(n, o, oh, ow)
    for has_bias in (1, 0):
        (y,) = run_both_orders(
            host, f"conv2d_direct_forward_{SFX[dtype]}_{ix}",
            lambda: (x, wt, b, filled((n, o, oh, ow), dtype), n * o * oh * ow, *sizes, has_bias), outputs=[3])
        _close(y, want if has_bias else want - b.reshape(1, o, 1, 1), dtype, f"forward, bias {has_bias}")
    dy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
    want_dx = ref.col2im(ref.matmul(w2.T, dy.reshape(n, o, oh * ow)), n, c, h, w, kh, kw, sh, sw, ph, pw)
    (dx,) = run_both_orders(
        host, f"conv2d_direct_input_grad_{SFX[dtype]}_{ix}",
        lambda: (dy, wt, filled((n, c, h, w), dtype), n * c * h * w, *sizes), outputs=[2])
    _close(dx, want_dx, dtype, "input gradient")
