"""The cupy backend's ConvSchedule (kernels/cuda: CUDA im2col/col2im, cuBLAS matmul, the direct
and the implicit-GEMM kernels) on every path, forced by its limits, against the plain whole-batch
layer functions on NumPy, in float64 and float32; and the implicit-GEMM kernels alone on larger
layers (several tiles, split weight-gradient sums). Skips cleanly without CuPy or a CUDA device."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels.conv_schedule import ConvSchedule
from minicnn.nn import conv

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")

N = 8


def _cuda_schedule(implicit=False, **limits):
    from minicnn.kernels import cuda

    direct = dict(conv2d_direct=cuda.conv2d_direct, conv2d_direct_input_grad=cuda.conv2d_direct_input_grad)
    if implicit:  # the implicit-GEMM kernels (MINICNN_CONV_IMPLICIT): dW too, every layer
        direct = dict(conv2d_direct=cuda.conv2d_igemm, conv2d_direct_input_grad=cuda.conv2d_igemm_input_grad,
                      conv2d_direct_weight_grad=cuda.conv2d_igemm_weight_grad)
    return ConvSchedule(SimpleNamespace(im2col=cuda.im2col, col2im=cuda.col2im, matmul=cuda.matmul,
                                        im2col_wide=cuda.im2col_wide, col2im_wide=cuda.col2im_wide,
                                        **direct), **limits)


PATHS = {"kept": dict(keep=1 << 40, chunk=1 << 40), "one-sample-chunks": dict(keep=0, chunk=1),
         "two-sample-chunks-per-sample-dW": dict(keep=0, chunk=2, stack_limit=0),
         # the wide layout (MINICNN_CONV_WIDE=1): the whole batch as one product, and in 2-sample ranges
         "wide-rebuilt": dict(keep=0, chunk=1 << 40, wide=True),
         "two-sample-chunks-wide": dict(keep=0, chunk=2, wide=True),
         # the direct kernels (MINICNN_CONV_DIRECT_MAX): output and input gradient without a column matrix
         "direct": dict(keep=0, chunk=1 << 40, direct_max=1 << 40),
         # the implicit-GEMM kernels (MINICNN_CONV_IMPLICIT): output, dx and dW without a column matrix
         "implicit": dict(keep=0, chunk=1 << 40, direct_max=1 << 40, implicit=True)}
SAMPLE_BYTES = {False: 3 * 9 * 5 * 9 * 8, True: 3 * 9 * 5 * 4 * 8}  # one float64 sample's column matrix


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "transpose"])
def test_cuda_schedule_equals_numpy_plain_math(path, transpose, dtype):
    """float64 to 1e-10; float32 (exact FP32 products here: tests/conftest.py) within float
    rounding, the direct kernels' FMA contraction included."""
    limits = dict(PATHS[path])
    if path.startswith("two"):  # ranges of 2 samples
        limits["chunk"] *= SAMPLE_BYTES[transpose]
    rng = np.random.default_rng(0)
    if transpose:
        x, w = rng.standard_normal((N, 4, 5, 4)), rng.standard_normal((4, 3, 3, 3))
        args = ((2, 2), (1, 0), (1, 0))
        fwd, bwd = "conv_transpose2d_forward", "conv_transpose2d_backward"
    else:
        x, w = rng.standard_normal((N, 3, 9, 7)), rng.standard_normal((5, 3, 3, 3))
        args = ((2, 1), (1, 2))
        fwd, bwd = "conv2d_forward", "conv2d_backward"
    b = rng.standard_normal(w.shape[1] if transpose else w.shape[0])
    prev = mc.backend_name()
    try:
        mc.set_backend("numpy")
        want, cache = getattr(conv, fwd)(x, w, b, *args)
        dout = rng.standard_normal(want.shape)
        want_grads = getattr(conv, bwd)(dout, cache)
        mc.set_backend("cupy")
        sched = _cuda_schedule(**limits)
        dev = [cupy.asarray(a.astype(dtype)) for a in (x, w, b, dout)]
        got, gcache = getattr(sched, fwd)(*dev[:3], *args)
        got_grads = getattr(sched, bwd)(dev[3], gcache)
    finally:
        mc.set_backend(prev)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert got.dtype == dtype
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=tol, atol=tol)
    for g, wnt in zip(got_grads, want_grads):
        np.testing.assert_allclose(cupy.asnumpy(g), wnt, rtol=tol, atol=tol)


def test_cupy_backend_uses_its_schedule():
    from minicnn import backend
    from minicnn.kernels import cuda

    ops = backend.get("cupy").ops
    assert ops.conv2d_forward == cuda.CONV_SCHEDULE.conv2d_forward
    assert cuda.CONV_SCHEDULE.split is None and cuda.CONV_SCHEDULE.stack_limit is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(16, 32, 16, 16, 64, 5, 2), (128, 16, 32, 32, 16, 3, 1), (4, 64, 8, 8, 128, 5, 2),
                                   (8, 16, 32, 32, 32, 3, 2)],
                         ids=["net2-conv2", "resnet-16ch-b128", "net2-conv3", "resnet-stride2"])
def test_implicit_gemm_kernels_on_larger_layers(shape, dtype):
    """conv2d_igemm, its input and weight gradients (split sums) against the reference composition
    in float64 on the host: to 1e-9 in float64 (the issue's bar), float32 within its rounding."""
    from minicnn.kernels import cuda
    from minicnn.kernels import reference as ref
    from minicnn.kernels.cuda import conv_igemm

    n, c, h, wd, o, k, s = shape
    p = k // 2
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((o, c, k, k)), rng.standard_normal(o)
    oh, ow = ref.conv_out_size(h, k, s, p), ref.conv_out_size(wd, k, s, p)
    dy = rng.standard_normal((n, o, oh, ow))
    cols = ref.im2col(x, k, k, s, s, p, p)
    want_y = (ref.matmul(w.reshape(o, -1), cols) + b.reshape(1, o, 1)).reshape(n, o, oh, ow)
    d = dy.reshape(n, o, -1)
    want_dx = ref.col2im(ref.matmul(w.reshape(o, -1).T, d), n, c, h, wd, k, k, s, s, p, p)
    want_dw = ref.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    assert conv_igemm.split_plan(o, c * k * k, n * oh * ow)[0] > 1 or shape[0] == 4  # the split sum is exercised
    xd, wdv, bd, dyd = (cupy.asarray(a.astype(dtype)) for a in (x, w, b, dy))
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for got, want in ((cuda.conv2d_igemm(xd, wdv, bd, (s, s), (p, p)), want_y),
                      (cuda.conv2d_igemm_input_grad(dyd, wdv, h, wd, (s, s), (p, p)), want_dx),
                      (cuda.conv2d_igemm_weight_grad(xd, dyd, k, k, (s, s), (p, p)), want_dw)):
        assert got.dtype == dtype
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=tol, atol=tol * float(np.abs(want).max()))
