"""CUDA kernels (minicnn.kernels.cuda) on a real GPU vs the NumPy reference.

Skipped unless CuPy is installed and sees a CUDA device. Every kernel runs on
CuPy arrays and is compared with ``minicnn.kernels.reference`` on NumPy
copies: exactly where the kernel only moves data or sums in the reference's
order (im2col, col2im, pooling, relu, the optimiser updates with --fmad=false),
within a few float ulps where it calls erf/tanh/exp/expm1. The scatter-like
kernels (col2im, max-pool backward, max-unpool forward) must also be
bit-for-bit deterministic from run to run.
"""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")  # conftest.py skips without a device

import minicnn.kernels.cuda as K  # noqa: E402
from minicnn.kernels import reference as ref  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]

# (n, c, h, w, kh, kw, sh, sw, ph, pw)
GEOMS = [
    (2, 3, 8, 8, 3, 3, 1, 1, 1, 1),
    (1, 2, 7, 9, 3, 2, 2, 3, 1, 0),
    (2, 1, 5, 5, 1, 1, 1, 1, 0, 0),
    (1, 1, 6, 6, 2, 2, 3, 3, 0, 0),
    (3, 2, 8, 6, 2, 2, 2, 2, 0, 0),
    (1, 3, 9, 9, 3, 3, 2, 2, 1, 1),
    (4, 16, 32, 32, 3, 3, 1, 1, 1, 1),  # a realistic conv layer
    (8, 8, 33, 31, 3, 3, 2, 2, 1, 1),  # overlapping pooling windows
]
IDS = ["n{}c{}h{}w{}_k{}x{}_s{}x{}_p{}x{}".format(*g) for g in GEOMS]


def host(a):
    return cupy.asnumpy(a)


def assert_exact(got, want, what):
    got = host(got) if isinstance(got, cupy.ndarray) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got.shape}/{got.dtype} vs {want.shape}/{want.dtype}"
    np.testing.assert_array_equal(got, want, err_msg=what)


def assert_bitwise_equal(a, b, what):
    a, b = host(a), host(b)
    assert a.tobytes() == b.tobytes(), f"{what}: two runs differ"


def assert_close_scaled(got, want, scale, dtype, ulps=16, what=""):
    got = host(got).astype(np.float64)
    want = np.asarray(want, dtype=np.float64)
    eps = np.finfo(dtype).eps
    rtol = 4e-6 if dtype == np.float32 else 1e-13
    bound = ulps * eps * np.asarray(scale, dtype=np.float64) + rtol * np.abs(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))  # inf == inf, NaN ~ NaN
    bad = ~(same | (np.abs(got - want) <= bound))
    assert not bad.any(), f"{what}: {bad.sum()} off, e.g. {got[bad][:4]} vs {want[bad][:4]}"


def pool_input(rng, shape, dtype):
    x = rng.integers(-3, 4, size=shape).astype(dtype)  # many ties
    flat = x.reshape(-1)
    k = rng.choice(flat.size, size=max(1, flat.size // 15), replace=False)
    flat[k] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype), size=k.size)
    return x


def test_backend_uses_the_cuda_table():
    import minicnn.backend as backend

    b = backend.get("cupy")
    for name, fn in K.TABLE.items():
        assert b.table[name] is fn


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("geom", GEOMS, ids=IDS)
def test_im2col_col2im(geom, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    assert_exact(K.im2col(cupy.asarray(x), kh, kw, sh, sw, ph, pw), ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col")
    cols = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    d_cols = cupy.asarray(cols)
    a = K.col2im(d_cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    # same additions in the same order as the reference
    assert_exact(a, ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im")
    b = K.col2im(d_cols, n, c, h, w, kh, kw, sh, sw, ph, pw)
    assert_bitwise_equal(a, b, "col2im")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("geom", GEOMS, ids=IDS)
def test_maxpool(geom, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    if ph >= kh or pw >= kw:
        pytest.skip("windows entirely in the padding")
    rng = np.random.default_rng(1)
    x = pool_input(rng, (n, c, h, w), dtype)
    out, idx = K.maxpool2d_forward(cupy.asarray(x), kh, kw, sh, sw, ph, pw)
    r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    assert_exact(idx, r_idx, "maxpool idx")
    assert_exact(out, r_out, "maxpool out")

    dout = rng.standard_normal(r_out.shape).astype(dtype)
    d_dout = cupy.asarray(dout)
    want = ref.maxpool2d_backward(dout, r_idx, h, w)
    geo = dict(kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw)
    g1 = K.maxpool2d_backward(d_dout, idx, h, w, **geo)  # gather over input pixels
    g2 = K.maxpool2d_backward(d_dout, idx, h, w, **geo)
    p1 = K.maxpool2d_backward(d_dout, idx, h, w)  # reference signature: per-plane kernel
    p2 = K.maxpool2d_backward(d_dout, idx, h, w)
    # both sum in the reference's (bincount's) order, in double
    assert_exact(g1, want, "maxpool backward (gather)")
    assert_exact(p1, want, "maxpool backward (planes)")
    assert_bitwise_equal(g1, g2, "maxpool backward (gather)")
    assert_bitwise_equal(p1, p2, "maxpool backward (planes)")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape,k", [((4, 3, 32, 32), (2, 2)), ((2, 5, 11, 9), (4, 3)), ((3, 2, 9, 9), (3, 3))])
def test_relu_maxpool_fused(shape, k, dtype):
    """The fused ReLU -> max-pool (kernels/fused.py) equals the composition it replaces, bit for bit."""
    (kh, kw), (n, c, h, w) = k, shape
    rng = np.random.default_rng(2)
    x = pool_input(rng, shape, dtype)
    x.reshape(-1)[::11] = -0.0
    y, mask = ref.relu_forward(x)
    r_out, r_idx = ref.maxpool2d_forward(y, kh, kw, kh, kw, 0, 0)
    out, idx = K.relu_maxpool2d_forward(cupy.asarray(x), kh, kw)
    assert_exact(idx, r_idx, "fused idx")
    assert_bitwise_equal(out, r_out, "fused out (the bits, -0.0 and NaN included)")
    dout = rng.standard_normal(r_out.shape).astype(dtype)
    dout.reshape(-1)[::7] = -0.0
    want = ref.relu_backward(ref.maxpool2d_backward(dout, r_idx, h, w), mask)
    dx = K.relu_maxpool2d_backward(cupy.asarray(dout), out, idx, h, w, kh, kw)
    assert_bitwise_equal(dx, want, "fused dx (the bits)")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_add_relu_fused(dtype):
    """The residual merge relu(a + b) in one kernel equals the composition, bit for bit (one
    rounding of the sum either way), exact cancellations, NaN and inf - inf included."""
    rng = np.random.default_rng(3)
    a = rng.integers(-3, 3, size=(4, 16, 9, 7)).astype(dtype)
    b = rng.standard_normal(a.shape).astype(dtype)
    b.reshape(-1)[:50] = -a.reshape(-1)[:50]
    a.reshape(-1)[-3:], b.reshape(-1)[-3:] = [np.inf, np.nan, 1.0], [-np.inf, 1.0, np.nan]
    want_y, want_mask = ref.relu_forward(a + b)
    y, mask = K.add_relu_forward(cupy.asarray(a), cupy.asarray(b))
    assert_bitwise_equal(y, want_y, "add_relu y (the bits)")
    assert_exact(mask, want_mask, "add_relu mask")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_relu_eval_fused(dtype, affine):
    """Evaluation batch norm + ReLU (CuPy array code, kernels/fused.py's definition) against the
    NumPy reference composition: y to rounding (the GPU may contract x * g + b), the mask
    consistent with y, inv_std to rounding."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16, 8, 8)).astype(dtype)
    mean, gamma, beta = (rng.standard_normal(16).astype(dtype) for _ in range(3))
    var = rng.uniform(0.5, 2.0, 16).astype(dtype)
    g, b = (gamma, beta) if affine else (None, None)
    z, want_inv = ref.batchnorm_forward_eval(x, g, b, mean, var, 1e-5)
    want_y = np.maximum(z, 0)
    y, inv_std, mask = K.TABLE["batchnorm_relu_forward_eval"](*(cupy.asarray(v) if v is not None else None
                                                                for v in (x, g, b, mean, var)), 1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(y), want_y, rtol=tol, atol=tol)
    np.testing.assert_allclose(cupy.asnumpy(inv_std), want_inv, rtol=tol)
    np.testing.assert_array_equal(cupy.asnumpy(mask), cupy.asnumpy(y) > 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("kind", ["pool3s1", "pool2s2", "random"])
def test_maxunpool(kind, dtype):
    rng = np.random.default_rng(2)
    n, c, H, W = 4, 5, 17, 12
    if kind == "random":
        idx = rng.integers(0, H * W, size=(n, c, 9, 7)).astype(np.int64)  # duplicates
    else:
        k, s = (3, 1) if kind == "pool3s1" else (2, 2)
        _, idx = ref.maxpool2d_forward(rng.standard_normal((n, c, H, W)).astype(dtype), k, k, s, s, 0, 0)
    x = rng.standard_normal(idx.shape).astype(dtype)
    d_x, d_idx = cupy.asarray(x), cupy.asarray(idx)
    a = K.maxunpool2d_forward(d_x, d_idx, H, W)
    b = K.maxunpool2d_forward(d_x, d_idx, H, W)
    assert_exact(a, ref.maxunpool2d_forward(x, idx, H, W), "maxunpool forward (last duplicate wins)")
    assert_bitwise_equal(a, b, "maxunpool forward")
    dout = rng.standard_normal((n, c, H, W)).astype(dtype)
    assert_exact(K.maxunpool2d_backward(cupy.asarray(dout), d_idx), ref.maxunpool2d_backward(dout, idx), "maxunpool backward")


SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 30.0, -30.0, 1.0, -1.0]


def act_input(dtype, shape=(37, 53), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.reshape(-1)[: len(SPECIALS)] = SPECIALS
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_leaky_elu(dtype):
    x, dy = act_input(dtype), act_input(dtype, seed=1)
    dx_, ddy = cupy.asarray(x), cupy.asarray(dy)
    y, m = K.relu_forward(dx_)
    ry, rm = ref.relu_forward(x)
    assert_exact(y, ry, "relu y")
    assert_exact(m, rm, "relu mask")
    assert_exact(K.relu_backward(ddy, m), ref.relu_backward(dy, rm), "relu dx")
    y, m = K.leaky_relu_forward(dx_, 0.1)
    ry, rm = ref.leaky_relu_forward(x, 0.1)
    assert_exact(y, ry, "leaky y")
    assert_exact(m, rm, "leaky mask")
    assert_exact(K.leaky_relu_backward(ddy, m, 0.1), ref.leaky_relu_backward(dy, rm, 0.1), "leaky dx")
    y = K.elu_forward(dx_, 1.0)
    ry = ref.elu_forward(x, 1.0)
    assert_close_scaled(y, ry, 1.0, dtype, what="elu y")
    assert_exact(K.elu_backward(ddy, cupy.asarray(ry), 1.0), ref.elu_backward(dy, ry, 1.0), "elu dx")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_gelu(dtype, approximate):
    x, dy = act_input(dtype), act_input(dtype, seed=1)
    fin = np.isfinite(x)
    ax = np.abs(x[fin]).astype(np.float64)
    y = host(K.gelu_forward(cupy.asarray(x), approximate))
    assert_close_scaled(y[fin], ref.gelu_forward(x, approximate)[fin], 1 + ax, dtype, what="gelu y")
    dx = host(K.gelu_backward(cupy.asarray(dy), cupy.asarray(x), approximate))
    want = ref.gelu_backward(dy, x, approximate)[fin]
    assert_close_scaled(dx[fin], want, np.abs(dy[fin]) * (1 + ax) ** 3, dtype, what="gelu dx")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cross_entropy(dtype, reduction):
    rng = np.random.default_rng(3)
    n, c = 300, 10
    x = (rng.standard_normal((n, c)) * 8).astype(dtype)
    x[1, 4] = 200.0
    t = rng.integers(0, c, size=n)
    loss, probs = K.cross_entropy_forward(cupy.asarray(x), cupy.asarray(t), reduction)
    want_loss, want_probs = ref.cross_entropy_forward(x, t, reduction)
    assert_close_scaled(probs, want_probs, 1.0, dtype, what="softmax")
    assert host(loss).shape == () and host(loss).dtype == dtype
    assert_close_scaled(loss, want_loss, 60.0 * (1 if reduction == "mean" else n), dtype, what="loss")
    scale = 1.0 / n if reduction == "mean" else 1.0
    dx = K.cross_entropy_backward(cupy.asarray(want_probs), cupy.asarray(t), scale)
    assert_exact(dx, ref.cross_entropy_backward(want_probs, t, scale), "dlogits")
    t[5] = c  # a label out of range: its row's loss is NaN, no error and no wild read
    bad, _ = K.cross_entropy_forward(cupy.asarray(x), cupy.asarray(t), reduction)
    assert np.isnan(host(bad))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "momentum,dampening,nesterov,wd",
    [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 5e-4), (0.9, 0.1, False, 0.0), (0.9, 0.0, True, 1e-2)],
)
def test_sgd_update(dtype, momentum, dampening, nesterov, wd):
    rng = np.random.default_rng(3)
    p = rng.standard_normal((33, 65)).astype(dtype)
    buf = np.zeros_like(p) if momentum else None
    dp, dbuf = cupy.asarray(p), (cupy.asarray(buf) if momentum else None)
    for step in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        K.sgd_update(dp, cupy.asarray(g), dbuf, 0.05, momentum, dampening, nesterov, wd, step == 0)
        ref.sgd_update(p, g, buf, 0.05, momentum, dampening, nesterov, wd, step == 0)
    # each operation rounds as in numpy (no FMA contraction: --fmad=false)
    assert_exact(dp, p, "sgd param")
    if momentum:
        assert_exact(dbuf, buf, "sgd buf")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_adam_update(dtype, wd):
    rng = np.random.default_rng(4)
    p = rng.standard_normal((33, 65)).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    dp, dm, dv = cupy.asarray(p), cupy.asarray(m), cupy.asarray(v)
    for step in range(1, 4):
        g = rng.standard_normal(p.shape).astype(dtype)
        K.adam_update(dp, cupy.asarray(g), dm, dv, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        ref.adam_update(p, g, m, v, step, 1e-3, 0.9, 0.999, 1e-8, wd)
    assert_exact(dm, m, "adam exp_avg")
    assert_exact(dv, v, "adam exp_avg_sq")
    assert_exact(dp, p, "adam param")


MULTI_SHAPES = [(33, 65), (7,), (0, 3), (1,), (5, 4, 3), (1000,)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 5e-4), (0.9, True, 1e-2)])
def test_sgd_update_multi(dtype, momentum, nesterov, wd):
    rng = np.random.default_rng(5)
    ps = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    bufs = [np.zeros_like(p) for p in ps] if momentum else None
    dps = [cupy.asarray(p) for p in ps]
    dbufs = [cupy.asarray(b) for b in bufs] if momentum else None
    for step in range(3):
        gs = [rng.standard_normal(p.shape).astype(dtype) for p in ps]
        K.sgd_update_multi(dps, [cupy.asarray(g) for g in gs], dbufs, 0.05, momentum, 0.0, nesterov, wd, step == 0)
        ref.sgd_update_multi(ps, gs, bufs, 0.05, momentum, 0.0, nesterov, wd, step == 0)
    for k in range(len(ps)):
        assert_exact(dps[k], ps[k], f"sgd multi param {k}")
        if momentum:
            assert_exact(dbufs[k], bufs[k], f"sgd multi buf {k}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_adam_update_multi(dtype):
    rng = np.random.default_rng(6)
    ps = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    ms, vs = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
    dps, dms, dvs = ([cupy.asarray(a) for a in arrs] for arrs in (ps, ms, vs))
    for step in range(1, 4):
        gs = [rng.standard_normal(p.shape).astype(dtype) for p in ps]
        K.adam_update_multi(dps, [cupy.asarray(g) for g in gs], dms, dvs, step, 1e-3, 0.9, 0.999, 1e-8, 1e-2)
        ref.adam_update_multi(ps, gs, ms, vs, step, 1e-3, 0.9, 0.999, 1e-8, 1e-2)
    for k in range(len(ps)):
        assert_exact(dms[k], ms[k], f"adam multi exp_avg {k}")
        assert_exact(dvs[k], vs[k], f"adam multi exp_avg_sq {k}")
        assert_exact(dps[k], ps[k], f"adam multi param {k}")


def test_i64_kernels(monkeypatch):
    """The 64-bit-index variants give the same results (forced on small arrays)."""
    monkeypatch.setattr(K.launch, "_I32_MAX", 10)  # where the wrappers read it
    rng = np.random.default_rng(5)
    n, c, h, w, kh, kw, sh, sw, ph, pw = 2, 3, 9, 9, 3, 3, 2, 2, 1, 1
    x = pool_input(rng, (n, c, h, w), np.float32)
    d_x = cupy.asarray(x)
    assert_exact(K.im2col(d_x, kh, kw, sh, sw, ph, pw), ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col i64")
    out, idx = K.maxpool2d_forward(d_x, kh, kw, sh, sw, ph, pw)
    r_out, r_idx = ref.maxpool2d_forward(x, kh, kw, sh, sw, ph, pw)
    assert_exact(idx, r_idx, "maxpool idx i64")
    dout = rng.standard_normal(r_out.shape).astype(np.float32)
    want = ref.maxpool2d_backward(dout, r_idx, h, w)
    got = K.maxpool2d_backward(cupy.asarray(dout), idx, h, w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw)
    assert_exact(got, want, "maxpool backward i64")
    cols = rng.standard_normal((n, c * kh * kw, r_out.shape[2] * r_out.shape[3])).astype(np.float32)
    assert_exact(K.col2im(cupy.asarray(cols), n, c, h, w, kh, kw, sh, sw, ph, pw),
                 ref.col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im i64")
    assert_exact(K.maxunpool2d_forward(out, idx, h, w), ref.maxunpool2d_forward(r_out, r_idx, h, w), "unpool i64")


def test_grid_stride_on_a_large_array():
    """More elements than BLOCK * MAX_GRID threads: every element still written."""
    n = K.BLOCK * K.MAX_GRID + 12345
    x = cupy.arange(n, dtype=cupy.float32) - n // 2
    y, m = K.relu_forward(x)
    assert int((y != cupy.maximum(x, 0)).sum()) == 0
    assert bool(m[-1]) and not bool(m[0])


def test_non_contiguous_and_fallbacks():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    d_x = cupy.asarray(x).transpose(0, 1, 3, 2)  # non-contiguous
    assert_exact(K.im2col(d_x, 2, 2, 1, 1, 0, 0), ref.im2col(x.transpose(0, 1, 3, 2), 2, 2, 1, 1, 0, 0), "im2col T")
    y, _ = K.relu_forward(d_x)
    assert_exact(y, ref.relu_forward(x.transpose(0, 1, 3, 2))[0], "relu T")
    x16 = x.astype(np.float16)  # no kernel: the reference runs on CuPy
    got = K.im2col(cupy.asarray(x16), 2, 2, 1, 1, 0, 0)
    assert isinstance(got, cupy.ndarray)
    assert_exact(got, ref.im2col(x16, 2, 2, 1, 1, 0, 0), "im2col f16 fallback")
