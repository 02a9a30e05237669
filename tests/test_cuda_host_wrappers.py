"""The Python wrappers of minicnn.kernels.cuda on the host build (tests/cuda_host.py, the
``emulated`` fixture: NumPy for CuPy): kernel names, argument types, outputs, the choice
between kernels and the fallbacks to the reference; the optimiser updates bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import fused as fused_ops
from minicnn.kernels import reference as ref

from cuda_host import (
    DTYPES,
    FIXED,
    SFX,
    _act_input,
    _ids,
    _pool_input,
    _tol,
    assert_close_scaled,
    assert_same,
)

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def test_table_matches_reference_names():
    schedule = set(cuda_kernels.CONV_SCHEDULE.table())
    fused = set(fused_ops.ENTRIES)
    assert set(cuda_kernels.TABLE) - schedule - fused == set(ref.TABLE), "a reference kernel has no CUDA version"
    assert fused <= set(cuda_kernels.TABLE)


def test_host_build_has_every_kernel(host):
    names = set(host.signatures)
    for base in ["im2col", "col2im", "im2col_wide", "col2im_wide", "conv2d_direct_forward", "conv2d_direct_input_grad",
                 "maxpool2d_forward", "maxpool2d_backward",
                 "maxpool2d_backward_planes",
                 "maxunpool2d_gather", "maxunpool2d_backward"]:
        for s, ix in itertools.product(["f32", "f64"], ["i32", "i64"]):
            assert f"{base}_{s}_{ix}" in names
    assert {"maxunpool2d_claim_i32", "maxunpool2d_claim_i64"} <= names
    for base in ["relu_forward", "add_relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward",
                 "elu_backward", "gelu_forward", "gelu_backward", "sgd_update", "adam_update",
                 "sgd_update_multi", "adam_update_multi", "cross_entropy_forward", "cross_entropy_backward"]:
        assert {f"{base}_f32", f"{base}_f64"} <= names


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("geom", FIXED, ids=_ids(FIXED))
def test_wrappers_conv_pool(emulated, geom, dtype):
    n, c, h, w, kh, kw, sh, sw, ph, pw = geom
    oh, ow = ref.conv_out_size(h, kh, sh, ph), ref.conv_out_size(w, kw, sw, pw)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    ops = cuda_kernels

    # a non-contiguous input is copied first
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert_same(ops.im2col(xt, kh, kw, sh, sw, ph, pw), ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col")
    dcols = rng.standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
    assert_same(
        ops.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw),
        ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw),
        "col2im",
    )
    assert emulated[-2:] == [f"im2col_{SFX[dtype]}_i32", f"col2im_{SFX[dtype]}_i32"]
    # out=: the kernels write into the caller's arrays
    cols_buf = np.full((n, c * kh * kw, oh * ow), np.nan, dtype=dtype)
    img_buf = np.full((n, c, h, w), np.nan, dtype=dtype)
    assert ops.im2col(x, kh, kw, sh, sw, ph, pw, out=cols_buf) is cols_buf
    assert ops.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw, out=img_buf) is img_buf
    assert_same(cols_buf, ref.im2col(x, kh, kw, sh, sw, ph, pw), "im2col out=")
    assert_same(img_buf, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im out=")
    assert emulated[-2:] == [f"im2col_{SFX[dtype]}_i32", f"col2im_{SFX[dtype]}_i32"]
    with pytest.raises(ValueError, match="im2col: out must be a C-contiguous array"):
        ops.im2col(x, kh, kw, sh, sw, ph, pw, out=cols_buf[:, :, :-1])
    # the wide layout (C*kh*kw, N*OH*OW) through its wrappers, into out= as well
    assert_same(ops.im2col_wide(xt, kh, kw, sh, sw, ph, pw), ref.im2col_wide(x, kh, kw, sh, sw, ph, pw), "im2col_wide")
    dwide = np.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(c * kh * kw, n * oh * ow)
    img_buf = np.full((n, c, h, w), np.nan, dtype=dtype)
    assert ops.col2im_wide(dwide, n, c, h, w, kh, kw, sh, sw, ph, pw, out=img_buf) is img_buf
    assert_same(img_buf, ref.col2im(dcols, n, c, h, w, kh, kw, sh, sw, ph, pw), "col2im_wide out=")
    assert emulated[-2:] == [f"im2col_wide_{SFX[dtype]}_i32", f"col2im_wide_{SFX[dtype]}_i32"]

    xp_ = _pool_input(rng, (n, c, h, w), dtype)
    out, idx = ops.maxpool2d_forward(xp_, kh, kw, sh, sw, ph, pw)
    r_out, r_idx = ref.maxpool2d_forward(xp_, kh, kw, sh, sw, ph, pw)
    assert_same(idx, r_idx, "maxpool idx")
    assert_same(out, r_out, "maxpool out")
    dout = rng.standard_normal(out.shape).astype(dtype)
    expected = ref.maxpool2d_backward(dout, r_idx, h, w)
    assert_same(ops.maxpool2d_backward(dout, idx, h, w), expected, "maxpool backward (planes)")
    assert emulated[-1] == f"maxpool2d_backward_planes_{SFX[dtype]}_i32"
    dx = ops.maxpool2d_backward(dout, idx, h, w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw)
    assert_same(dx, expected, "maxpool backward (gather)")
    assert emulated[-1] == f"maxpool2d_backward_{SFX[dtype]}_i32"
    # geometry that does not give dout's shape: the per-plane kernel, same result
    bad = ops.maxpool2d_backward(dout, idx, h, w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph + 1, pw=pw + 1)
    assert_same(bad, expected, "maxpool backward (mismatched geometry)")
    assert emulated[-1] == f"maxpool2d_backward_planes_{SFX[dtype]}_i32"

    up = ops.maxunpool2d_forward(out, idx, h, w)
    assert_same(up, ref.maxunpool2d_forward(out, r_idx, h, w), "maxunpool forward")
    dup = rng.standard_normal((n, c, h, w)).astype(dtype)
    assert_same(ops.maxunpool2d_backward(dup, idx), ref.maxunpool2d_backward(dup, r_idx), "maxunpool backward")
    assert emulated[-3:] == ["maxunpool2d_claim_i32", f"maxunpool2d_gather_{SFX[dtype]}_i32",
                             f"maxunpool2d_backward_{SFX[dtype]}_i32"]


def test_wrappers_pick_i64_for_huge_arrays(emulated, monkeypatch):
    """With the 32-bit limit lowered, the wrappers switch to the _i64 kernels."""
    monkeypatch.setattr(cuda_kernels.launch, "_I32_MAX", 50)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    assert_same(cuda_kernels.im2col(x, 3, 3, 1, 1, 1, 1), ref.im2col(x, 3, 3, 1, 1, 1, 1), "im2col i64")
    assert emulated[-1] == "im2col_f64_i64"
    out, idx = cuda_kernels.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    assert emulated[-1] == "maxpool2d_forward_f64_i64"
    y = np.random.default_rng(1).standard_normal((1, 1, 3, 2))
    cuda_kernels.maxpool2d_forward(y, 2, 2, 1, 1, 0, 0)
    assert emulated[-1] == "maxpool2d_forward_f64_i32"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_wrappers_activations(emulated, dtype):
    ops = cuda_kernels
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=3)
    y, mask = ops.relu_forward(x)
    r_y, r_mask = ref.relu_forward(x)
    assert_same(y, r_y, "relu y")
    assert mask.dtype == np.bool_ and (mask == r_mask).all()
    assert_same(ops.relu_backward(dy, mask), ref.relu_backward(dy, r_mask), "relu dx")
    y, mask = ops.add_relu_forward(x, dy)  # the residual merge (kernels/fused.py)
    r_y, r_mask = fused_ops.add_relu_forward(x, dy)
    assert emulated[-1] == f"add_relu_forward_{SFX[dtype]}"
    assert_same(y, r_y, "add relu y")
    assert mask.dtype == np.bool_ and (mask == r_mask).all()
    y, mask = ops.leaky_relu_forward(x, 0.2)
    r_y, r_mask = ref.leaky_relu_forward(x, 0.2)
    assert_same(y, r_y, "leaky y")
    assert (mask == r_mask).all()
    assert_same(ops.leaky_relu_backward(dy, mask, 0.2), ref.leaky_relu_backward(dy, r_mask, 0.2), "leaky dx")
    y = ops.elu_forward(x, 0.7)
    np.testing.assert_allclose(y, ref.elu_forward(x, 0.7), **_tol(dtype))
    assert_same(ops.elu_backward(dy, y, 0.7), ref.elu_backward(dy, y, 0.7), "elu dx")
    fin = np.isfinite(x)
    ax = np.abs(x[fin]).astype(np.float64)
    for approximate in ("none", "tanh"):
        y = ops.gelu_forward(x, approximate)
        assert_close_scaled(y[fin], ref.gelu_forward(x, approximate)[fin], 1 + ax, dtype, what="gelu y")
        dx = ops.gelu_backward(dy, x, approximate)
        r_dx = ref.gelu_backward(dy, x, approximate)[fin]
        assert_close_scaled(dx[fin], r_dx, np.abs(dy[fin]) * (1 + ax) ** 3, dtype, what="gelu dx")
    assert emulated[-1] == f"gelu_backward_{SFX[dtype]}"
    # non-contiguous input, shape kept
    xt = x.T
    y, _ = ops.relu_forward(xt)
    assert y.shape == xt.shape
    assert_same(y, ref.relu_forward(xt)[0], "relu on a transposed input")


SGD_CONFIGS = [
    # momentum, dampening, nesterov, weight_decay
    (0.0, 0.0, False, 0.0),
    (0.0, 0.0, False, 1e-2),
    (0.9, 0.0, False, 0.0),
    (0.9, 0.1, False, 5e-4),
    (0.9, 0.0, True, 5e-4),
    (0.5, 0.0, True, 0.0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[f"m{m}_d{d}_n{int(nv)}_wd{wd}" for m, d, nv, wd in SGD_CONFIGS])
def test_wrapper_sgd_bitwise(emulated, cfg, dtype):
    momentum, dampening, nesterov, wd = cfg
    rng = np.random.default_rng(21)
    p0 = rng.standard_normal((7, 29)).astype(dtype)
    p_k, p_r = p0.copy(), p0.copy()
    b_k = np.zeros_like(p0) if momentum else None
    b_r = np.zeros_like(p0) if momentum else None
    for step in range(4):
        g = rng.standard_normal(p0.shape).astype(dtype)
        cuda_kernels.sgd_update(p_k, g, b_k, 0.05, momentum, dampening, nesterov, wd, step == 0)
        ref.sgd_update(p_r, g, b_r, 0.05, momentum, dampening, nesterov, wd, step == 0)
        assert_same(p_k, p_r, f"sgd param, step {step}")
        if momentum:
            assert_same(b_k, b_r, f"sgd buf, step {step}")
    assert emulated[-1] == f"sgd_update_{SFX[dtype]}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_wrapper_adam_bitwise(emulated, wd, dtype):
    rng = np.random.default_rng(22)
    p0 = rng.standard_normal((5, 41)).astype(dtype)
    p_k, p_r = p0.copy(), p0.copy()
    m_k, v_k, m_r, v_r = (np.zeros_like(p0) for _ in range(4))
    for step in range(1, 5):
        g = rng.standard_normal(p0.shape).astype(dtype)
        cuda_kernels.adam_update(p_k, g, m_k, v_k, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        ref.adam_update(p_r, g, m_r, v_r, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        assert_same(m_k, m_r, f"adam exp_avg, step {step}")
        assert_same(v_k, v_r, f"adam exp_avg_sq, step {step}")
        assert_same(p_k, p_r, f"adam param, step {step}")
    assert emulated[-1] == f"adam_update_{SFX[dtype]}"


# a list of tensors as an optimiser has them: odd sizes, an empty one, scalars-like
MULTI_SHAPES = [(7, 29), (3,), (0, 4), (1,), (5, 2, 3), (64,)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[f"m{m}_d{d}_n{int(nv)}_wd{wd}" for m, d, nv, wd in SGD_CONFIGS])
def test_wrapper_sgd_multi_bitwise(emulated, cfg, dtype):
    """One launch over the whole list equals the reference tensor by tensor (the
    emulated grid, 3 blocks x 32 threads, strides over 312 elements)."""
    momentum, dampening, nesterov, wd = cfg
    rng = np.random.default_rng(23)
    p0 = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    p_k, p_r = [p.copy() for p in p0], [p.copy() for p in p0]
    b_k = [np.zeros_like(p) for p in p0] if momentum else None
    b_r = [np.zeros_like(p) for p in p0] if momentum else None
    for step in range(3):
        g = [rng.standard_normal(p.shape).astype(dtype) for p in p0]
        emulated.clear()
        cuda_kernels.sgd_update_multi(p_k, g, b_k, 0.05, momentum, dampening, nesterov, wd, step == 0)
        assert emulated == [f"sgd_update_multi_{SFX[dtype]}"]  # one launch for every tensor
        for k in range(len(p0)):
            ref.sgd_update(p_r[k], g[k], b_r[k] if momentum else None, 0.05, momentum, dampening, nesterov, wd,
                           step == 0)
            assert_same(p_k[k], p_r[k], f"sgd multi param {k}, step {step}")
            if momentum:
                assert_same(b_k[k], b_r[k], f"sgd multi buf {k}, step {step}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_wrapper_adam_multi_bitwise(emulated, wd, dtype):
    rng = np.random.default_rng(24)
    p0 = [rng.standard_normal(s).astype(dtype) for s in MULTI_SHAPES]
    p_k, p_r = [p.copy() for p in p0], [p.copy() for p in p0]
    m_k, v_k, m_r, v_r = ([np.zeros_like(p) for p in p0] for _ in range(4))
    for step in range(1, 4):
        g = [rng.standard_normal(p.shape).astype(dtype) for p in p0]
        emulated.clear()
        cuda_kernels.adam_update_multi(p_k, g, m_k, v_k, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        assert emulated == [f"adam_update_multi_{SFX[dtype]}"]
        for k in range(len(p0)):
            ref.adam_update(p_r[k], g[k], m_r[k], v_r[k], step, 1e-3, 0.9, 0.999, 1e-8, wd)
            assert_same(m_k[k], m_r[k], f"adam multi exp_avg {k}, step {step}")
            assert_same(v_k[k], v_r[k], f"adam multi exp_avg_sq {k}, step {step}")
            assert_same(p_k[k], p_r[k], f"adam multi param {k}, step {step}")


def test_multi_tables_are_reused_for_the_same_arrays(emulated, monkeypatch):
    monkeypatch.setattr(cuda_kernels.optim, "_TABLE_CACHE", {})
    ps = [np.ones(5, np.float32), np.ones(3, np.float32)]
    gs = [np.full(5, 0.5, np.float32), np.full(3, 0.5, np.float32)]
    for _ in range(2):
        cuda_kernels.sgd_update_multi(ps, gs, None, 0.1, 0.0, 0.0, False, 0.0, True)
    assert len(cuda_kernels.optim._TABLE_CACHE) == 1
    (table, offsets), = cuda_kernels.optim._TABLE_CACHE.values()
    assert table.dtype == np.uint64 and table.shape == (3, 2) and offsets.tolist() == [0, 5, 8]
    np.testing.assert_allclose(ps[0], 0.9)  # two steps of 0.1 * 0.5
    np.testing.assert_allclose(ps[1], 0.9)


@pytest.mark.parametrize("adam", [False, True], ids=["sgd", "adam"])
def test_multi_calls_with_the_same_arrays_are_prepared_once(emulated, monkeypatch, adam):
    """A CUDA-graphed loop's steps pass the same arrays (static gradients refilled in place): the
    checks and tables are worked out on the first call only, and every step still equals the
    reference bit for bit. New gradient arrays (an eager loop) are prepared afresh."""
    optim = cuda_kernels.optim
    monkeypatch.setattr(optim, "_PREPARED", {})
    monkeypatch.setattr(optim, "_SEEN", {})
    calls = []
    real = optim._prepare
    monkeypatch.setattr(optim, "_prepare", lambda columns: calls.append(1) or real(columns))
    rng = np.random.default_rng(31)
    p0 = [rng.standard_normal(s).astype(np.float32) for s in MULTI_SHAPES]
    p_k, p_r = [p.copy() for p in p0], [p.copy() for p in p0]
    s_k = [[np.zeros_like(p) for p in p0] for _ in range(2)]
    s_r = [[np.zeros_like(p) for p in p0] for _ in range(2)]
    grads = [np.empty_like(p) for p in p0]  # static: refilled in place every step

    def step(g, k):
        if adam:
            cuda_kernels.adam_update_multi(p_k, g, *s_k, k, 1e-3, 0.9, 0.999, 1e-8, 1e-2)
        else:
            cuda_kernels.sgd_update_multi(p_k, g, s_k[0], 0.05, 0.9, 0.0, True, 1e-2, k == 1)
        for i in range(len(p0)):
            if adam:
                ref.adam_update(p_r[i], g[i], s_r[0][i], s_r[1][i], k, 1e-3, 0.9, 0.999, 1e-8, 1e-2)
            else:
                ref.sgd_update(p_r[i], g[i], s_r[0][i], 0.05, 0.9, 0.0, True, 1e-2, k == 1)
            assert_same(p_k[i], p_r[i], f"param {i}, step {k}")

    for k in range(1, 5):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        step(grads, k)
    assert len(calls) == 2  # prepared on the first two steps only (kept when the arrays come again)
    step([g.copy() for g in grads], 5)  # new gradient arrays: prepared again
    assert len(calls) == 3
    # an entry whose layout no longer matches (an id reused by another array) is not used
    name, state = ("adam_update_multi", s_k) if adam else ("sgd_update_multi", s_k[:1])
    key = (name, *map(id, [*p_k, *grads, *(a for column in state for a in column)]))
    layouts, prepared = optim._PREPARED[key]
    optim._PREPARED[key] = ((layouts[0][0] + 1, *layouts[0][1:]), *layouts[1:]), prepared
    step(grads, 6)
    assert len(calls) == 4


def test_multi_with_a_non_contiguous_gradient_is_prepared_every_call(emulated, monkeypatch):
    """The contiguous copy of a strided gradient is a new array every call: never cached."""
    optim = cuda_kernels.optim
    monkeypatch.setattr(optim, "_PREPARED", {})
    monkeypatch.setattr(optim, "_SEEN", {})
    ps = [np.ones(3), np.ones(4)]
    gs = [np.ones((3, 2))[:, 0], np.ones(4)]
    for _ in range(2):
        cuda_kernels.sgd_update_multi(ps, gs, None, 0.1, 0.0, 0.0, False, 0.0, True)
    assert optim._PREPARED == {} and optim._SEEN == {}
    np.testing.assert_allclose(ps[0], 0.8)
    np.testing.assert_allclose(ps[1], 0.8)


def test_multi_falls_back_per_tensor_for_non_contiguous_state(emulated):
    ps = [np.ones((4, 6))[:, ::2], np.ones(3)]
    gs = [np.ones_like(ps[0]), np.ones(3)]
    emulated.clear()
    cuda_kernels.sgd_update_multi(ps, gs, None, 0.1, 0.0, 0.0, False, 0.0, True)
    np.testing.assert_allclose(ps[0], 0.9)
    np.testing.assert_allclose(ps[1], 0.9)
    assert emulated == ["sgd_update_f64"]  # the strided tensor took the reference, the other its kernel


def test_wrappers_fall_back_to_reference(emulated):
    """float16, integer masks of other shapes, non-contiguous optimiser state: no kernel."""
    x16 = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float16)
    assert_same(cuda_kernels.im2col(x16, 2, 2, 1, 1, 0, 0), ref.im2col(x16, 2, 2, 1, 1, 0, 0), "im2col f16")
    p = np.ones((4, 6))[:, ::2]
    g = np.ones_like(p)
    cuda_kernels.sgd_update(p, g, None, 0.1, 0.0, 0.0, False, 0.0, True)
    np.testing.assert_allclose(p, 0.9)
    assert emulated == []


def test_wrappers_without_cupy_use_reference():
    """NumPy inputs never reach the CUDA path (and never import CuPy)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    assert_same(cuda_kernels.im2col(x, 3, 3, 1, 1, 1, 1), ref.im2col(x, 3, 3, 1, 1, 1, 1), "im2col")
    out, idx = cuda_kernels.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0)
    assert_same(cuda_kernels.maxpool2d_backward(out, idx, 5, 5, kh=2, kw=2, sh=2, sw=2),
                ref.maxpool2d_backward(out, idx, 5, 5), "maxpool backward")


def test_multi_lists_of_different_lengths_are_refused():
    p = [np.ones(3, np.float32), np.ones(2, np.float32)]
    with pytest.raises(ValueError, match=r"lengths \[2, 1, 2\]"):
        cuda_kernels.sgd_update_multi(p, p[:1], p, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match=r"lengths \[2, 2, 2, 1\]"):
        cuda_kernels.adam_update_multi(p, p, p, p[:1], 1, 1e-3, 0.9, 0.999, 1e-8, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_wrappers_conv2d_direct(emulated, dtype):
    """The direct kernels through their wrappers (Conv2d's output with and without bias, its
    input gradient), and the reference composition for what they don't take."""
    from minicnn.kernels.cuda import conv as cuda_conv

    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 9, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    stride, padding = (2, 1), (1, 1)
    cols = ref.im2col(x, 3, 2, *stride, *padding)
    want = ref.matmul(w.reshape(4, -1), cols) + b.reshape(1, 4, 1)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y = cuda_conv.conv2d_direct(x, w, b, stride, padding)
    assert emulated[-1] == f"conv2d_direct_forward_{SFX[dtype]}_i32"
    np.testing.assert_allclose(y.reshape(want.shape), want, **tol)
    np.testing.assert_allclose(cuda_conv.conv2d_direct(x, w, None, stride, padding).reshape(want.shape),
                               want - b.reshape(1, 4, 1), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = cuda_conv.conv2d_direct_input_grad(dy, w, 9, 7, stride, padding)
    assert emulated[-1] == f"conv2d_direct_input_grad_{SFX[dtype]}_i32"
    want_dx = ref.col2im(ref.matmul(w.reshape(4, -1).T, dy.reshape(2, 4, -1)), 2, 3, 9, 7, 3, 2, *stride, *padding)
    np.testing.assert_allclose(dx, want_dx, **tol)
    # shapes that do not fit are refused before any launch (the kernels would read past the arrays)
    launches = len(emulated)
    with pytest.raises(ValueError, match="does not fit weight"):
        cuda_conv.conv2d_direct(x, w[:, :2], None, stride, padding)
    with pytest.raises(ValueError, match="bias of shape"):
        cuda_conv.conv2d_direct(x, w, b[:3], stride, padding)
    with pytest.raises(ValueError, match="does not fit weight"):
        cuda_conv.conv2d_direct_input_grad(dy[:, :3], w, 9, 7, stride, padding)
    with pytest.raises(ValueError, match="spatial size"):
        cuda_conv.conv2d_direct_input_grad(dy[:, :, :-1], w, 9, 7, stride, padding)
    assert len(emulated) == launches
    # a weight of another dtype: the reference composition, no launch
    y64 = cuda_conv.conv2d_direct(x, w.astype(np.float16), None, stride, padding)
    assert len(emulated) == launches and y64.shape == y.shape
