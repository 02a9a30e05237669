"""The fused ReLU -> max-pool CUDA kernels (pool.cu, kernels/cuda/pool.py) built for the host
with g++ (see tests/cuda_host.py): bit for bit the composition they replace
(kernels/fused.py), in both thread orders, through the kernels and through the wrappers.
Skipped when g++ is missing."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels
from minicnn.kernels import reference as ref

from cuda_host import (
    DTYPES,
    SFX,
    assert_same,
    filled,
    run_both_orders,
)
from test_fusion import hostile_input

CASES = [((2, 3, 8, 8), (2, 2)), ((3, 2, 9, 7), (2, 2)), ((2, 2, 9, 9), (3, 3)), ((1, 2, 11, 8), (4, 2)),
         ((2, 1, 5, 5), (1, 1))]


def _composition(x, kh, kw, dout):
    y, mask = ref.relu_forward(x)
    out, idx = ref.maxpool2d_forward(y, kh, kw, kh, kw, 0, 0)
    dx = ref.relu_backward(ref.maxpool2d_backward(dout, idx, x.shape[2], x.shape[3]), mask)
    return out, idx, dx


@pytest.mark.parametrize("ix", ["i32", "i64"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k", CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_relu_maxpool_kernels(host, shape, k, dtype, ix):
    (kh, kw), (n, c, h, w) = k, shape
    x = hostile_input(shape, dtype)
    oh, ow = h // kh, w // kw
    dout = np.random.default_rng(2).standard_normal((n, c, oh, ow)).astype(dtype)
    dout.reshape(-1)[::5] = -0.0
    want_out, want_idx, want_dx = _composition(x, kh, kw, dout)
    sizes = (h, w, kh, kw, oh, ow)
    out, idx = run_both_orders(
        host, f"relu_maxpool2d_forward_{SFX[dtype]}_{ix}",
        lambda: (x, filled(want_out.shape, dtype), filled(want_out.shape, np.int64), want_out.size, *sizes),
        outputs=[1, 2])
    assert_same(out, want_out, "fused forward out")
    assert_same(idx, want_idx, "fused forward idx")
    (dx,) = run_both_orders(
        host, f"relu_maxpool2d_backward_{SFX[dtype]}_{ix}",
        lambda: (dout, want_out, want_idx, filled(shape, dtype), n * c * h * w, *sizes), outputs=[3])
    assert_same(dx, want_dx, "fused backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_relu_maxpool_wrappers(emulated, dtype):
    x = hostile_input((2, 3, 11, 9), dtype)
    kh, kw = 4, 3
    out, idx = cuda_kernels.relu_maxpool2d_forward(x, kh, kw)
    assert emulated[-1] == f"relu_maxpool2d_forward_{SFX[dtype]}_i32"
    dout = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
    want_out, want_idx, want_dx = _composition(x, kh, kw, dout)
    assert_same(out, want_out, "out")
    assert_same(idx, want_idx, "idx")
    dx = cuda_kernels.relu_maxpool2d_backward(dout, out, idx, 11, 9, kh, kw)
    assert emulated[-1] == f"relu_maxpool2d_backward_{SFX[dtype]}_i32"
    assert_same(dx, want_dx, "dx")
    # what the kernels don't take runs the reference composition: a window larger than the input
    launches = len(emulated)
    small = hostile_input((1, 1, 3, 3), dtype)
    out, idx = cuda_kernels.relu_maxpool2d_forward(small, 4, 4)
    assert len(emulated) == launches and out.shape == idx.shape == (1, 1, 0, 0)
