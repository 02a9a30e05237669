"""activation.cu built for the host (tests/cuda_host.py): ReLU, LeakyReLU, ELU and GELU,
forward and backward, against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels import reference as ref

from cuda_host import (
    DTYPES,
    SFX,
    _act_input,
    _tol,
    assert_close_scaled,
    assert_same,
    filled,
    run_both_orders,
)

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_relu_leaky_kernels(host, dtype):
    s = SFX[dtype]
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    y, mask = run_both_orders(host, f"relu_forward_{s}", lambda: (x, filled(x.shape, dtype), filled(x.shape, np.bool_), x.size), [1, 2])
    r_y, r_mask = ref.relu_forward(x)
    assert_same(y, r_y, "relu y")
    assert_same(mask.view(np.uint8), r_mask.view(np.uint8), "relu mask")
    (dx,) = run_both_orders(host, f"relu_backward_{s}", lambda: (dy, r_mask, filled(x.shape, dtype), x.size), [2])
    assert_same(dx, ref.relu_backward(dy, r_mask), "relu dx")

    slope = 0.01
    y, mask = run_both_orders(
        host,
        f"leaky_relu_forward_{s}",
        lambda: (x, dtype(slope), filled(x.shape, dtype), filled(x.shape, np.bool_), x.size),
        [2, 3],
    )
    r_y, r_mask = ref.leaky_relu_forward(x, slope)
    assert_same(y, r_y, "leaky y")
    assert_same(mask.view(np.uint8), r_mask.view(np.uint8), "leaky mask")
    (dx,) = run_both_orders(
        host, f"leaky_relu_backward_{s}", lambda: (dy, r_mask, dtype(slope), filled(x.shape, dtype), x.size), [3]
    )
    assert_same(dx, ref.leaky_relu_backward(dy, r_mask, slope), "leaky dx")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_elu_kernels(host, dtype):
    s, alpha = SFX[dtype], 1.3
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    (y,) = run_both_orders(host, f"elu_forward_{s}", lambda: (x, dtype(alpha), filled(x.shape, dtype), x.size), [2])
    r_y = ref.elu_forward(x, alpha)
    np.testing.assert_allclose(y, r_y, **_tol(dtype))
    assert_same(np.signbit(y), np.signbit(r_y), "elu sign")
    (dx,) = run_both_orders(
        host, f"elu_backward_{s}", lambda: (dy, r_y, dtype(alpha), filled(x.shape, dtype), x.size), [3]
    )
    assert_same(dx, ref.elu_backward(dy, r_y, alpha), "elu dx")  # no transcendental: exact


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gelu_kernels(host, dtype, approximate):
    s, flag = SFX[dtype], int(approximate == "tanh")
    x = _act_input(dtype)
    dy = _act_input(dtype, seed=1)
    finite = np.isfinite(x)
    (y,) = run_both_orders(host, f"gelu_forward_{s}", lambda: (x, filled(x.shape, dtype), x.size, flag), [1])
    r_y = ref.gelu_forward(x, approximate)
    ax = np.abs(x[finite]).astype(np.float64)
    assert_close_scaled(y[finite], r_y[finite], 1 + ax, dtype, what="gelu y")
    (dx,) = run_both_orders(
        host, f"gelu_backward_{s}", lambda: (dy, x, filled(x.shape, dtype), x.size, flag), [2]
    )
    r_dx = ref.gelu_backward(dy, x, approximate)
    assert_close_scaled(dx[finite], r_dx[finite], np.abs(dy[finite]) * (1 + ax) ** 3, dtype, what="gelu dx")
    # the non-finite inputs behave like the reference wherever it is defined
    assert_same(np.isnan(y), np.isnan(r_y), "gelu NaN positions")
