"""TF32 on the cupy backend (minicnn.tf32, PyTorch's switches): off gives the exact FP32
products bit for bit, on stays within TF32's rounding, float64 is never affected.
Skips cleanly without CuPy or a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, nn

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


@pytest.fixture(autouse=True)
def _cupy_exact_afterwards():
    saved = (backend.tf32.matmul, backend.tf32.conv)
    mc.set_backend("cupy")
    yield
    backend.tf32.matmul, backend.tf32.conv = saved


def _conv_and_linear(dtype):
    mc.manual_seed(0)
    conv, fc = nn.Conv2d(16, 32, 3, padding=1), nn.Linear(512, 64)
    if dtype == np.float64:
        conv, fc = conv.double(), fc.double()
    rng = np.random.default_rng(0)
    x = mc.asarray(rng.standard_normal((8, 16, 12, 12)).astype(dtype))
    v = mc.asarray(rng.standard_normal((8, 512)).astype(dtype))
    return mc.to_numpy(conv(x)), mc.to_numpy(fc(v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tf32_off_is_exact_and_on_is_close(dtype):
    backend.tf32.matmul = backend.tf32.conv = False
    exact_conv, exact_fc = _conv_and_linear(dtype)
    again_conv, again_fc = _conv_and_linear(dtype)
    np.testing.assert_array_equal(again_conv, exact_conv)
    backend.tf32.matmul = backend.tf32.conv = True
    tf_conv, tf_fc = _conv_and_linear(dtype)
    if dtype == np.float64:  # never on TF32
        np.testing.assert_array_equal(tf_conv, exact_conv)
        np.testing.assert_array_equal(tf_fc, exact_fc)
        return
    # TF32 keeps 10 mantissa bits of each input: relative error ~1e-3 per product, summed over K terms
    for got, want in ((tf_conv, exact_conv), (tf_fc, exact_fc)):
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 5e-3 * scale
    backend.tf32.matmul = backend.tf32.conv = False  # and back to the exact products
    back_conv, back_fc = _conv_and_linear(dtype)
    np.testing.assert_array_equal(back_conv, exact_conv)
    np.testing.assert_array_equal(back_fc, exact_fc)


@pytest.mark.parametrize("shape", [(16, 32, 16, 16, 64, 5), (64, 16, 32, 32, 16, 3)], ids=["net2-conv2", "resnet-16ch"])
def test_implicit_gemm_tf32_kernels(shape):
    """The implicit-GEMM kernels' tensor-core path (mma.sync m16n8k8 TF32; tf32.conv on) against
    the reference on TF32-rounded operands, to FP32 summation error; with tf32.conv off the exact
    kernels, which differ from it by TF32's rounding."""
    from minicnn.kernels import cuda
    from minicnn.kernels import reference as ref

    n, c, h, w, o, k = shape
    p = k // 2
    rng = np.random.default_rng(4)
    x, wt, b = (rng.standard_normal(s).astype(np.float32) for s in ((n, c, h, w), (o, c, k, k), (o,)))
    dy = rng.standard_normal((n, o, h, w)).astype(np.float32)

    def rounded(a):  # cvt.rna.tf32.f32
        u = a.view(np.uint32)
        return ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)

    xr, wr, dyr = rounded(x), rounded(wt), rounded(dy)
    cols = ref.im2col(xr, k, k, 1, 1, p, p)
    want_y = (ref.matmul(wr.reshape(o, -1), cols) + b.reshape(1, o, 1)).reshape(n, o, h, w)
    d = dyr.reshape(n, o, -1)
    want_dx = ref.col2im(ref.matmul(wr.reshape(o, -1).T, d), n, c, h, w, k, k, 1, 1, p, p)
    want_dw = ref.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(wt.shape)
    xd, wd, bd, dyd = (cupy.asarray(a) for a in (x, wt, b, dy))
    backend.tf32.conv = True
    got = [cuda.conv2d_igemm(xd, wd, bd, (1, 1), (p, p)), cuda.conv2d_igemm_input_grad(dyd, wd, h, w, (1, 1), (p, p)),
           cuda.conv2d_igemm_weight_grad(xd, dyd, k, k, (1, 1), (p, p))]
    for g, want in zip(got, (want_y, want_dx, want_dw)):
        np.testing.assert_allclose(cupy.asnumpy(g), want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
    backend.tf32.conv = False
    exact = cupy.asnumpy(cuda.conv2d_igemm(xd, wd, bd, (1, 1), (p, p)))
    assert np.abs(exact - cupy.asnumpy(got[0])).max() > 1e-5 * np.abs(want_y).max()
