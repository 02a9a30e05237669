"""The argument plan of the cuBLAS call that CUDA-graph recordings use for matmul
(minicnn.kernels.cuda.gemm.plan), checked without a GPU: a NumPy model of
column-major ``gemmStridedBatched`` runs the planned call on the operands' own
memory and must give ``a @ b``."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels.cuda import gemm


def _offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // view.itemsize


def _colmajor(flat, off, rows, cols, ld):
    """The column-major (rows, cols) matrix with leading dimension ld starting at flat[off]."""
    return np.lib.stride_tricks.as_strided(flat[off:], shape=(rows, cols),
                                           strides=(flat.itemsize, ld * flat.itemsize), writeable=False)


def _run_plan(a3, b3, c3, base_a, base_b, base_c):
    """Execute the planned call with cuBLAS semantics: C' = op(A') op(B'), A' = b3's memory."""
    ta, tb, m, n, k, ld1, s1, ld2, s2, ldc, sc, batch = gemm.plan(a3, b3, c3)
    fa, fb, fc = base_b.reshape(-1), base_a.reshape(-1), base_c.reshape(-1)
    oa, ob, oc = _offset(b3, base_b), _offset(a3, base_a), _offset(c3, base_c)
    for i in range(batch):
        A = _colmajor(fa, oa + i * s1, *((m, k) if ta == 0 else (k, m)), ld1)
        B = _colmajor(fb, ob + i * s2, *((k, n) if tb == 0 else (n, k)), ld2)
        A = A if ta == 0 else A.T
        B = B if tb == 0 else B.T
        C = A @ B  # (m, n) column-major in C'
        start = oc + i * sc
        for col in range(n):
            fc[start + col * ldc: start + col * ldc + m] = C[:, col]


def _case(rng, shape_a, shape_b, ta=False, tb=False, batch_out=None, row_pad=0):
    """Operands with a chosen layout: t* makes the operand a transposed (column-major) view."""
    def make(shape, t):
        if t:
            base = rng.standard_normal(shape[:-2] + (shape[-1], shape[-2] + row_pad))
            return base, np.swapaxes(base[..., :shape[-2]], -1, -2)
        base = rng.standard_normal(shape[:-1] + (shape[-1] + row_pad,))
        return base, base[..., :shape[-1]]
    (ba, a), (bb, b) = make(shape_a, ta), make(shape_b, tb)
    return ba, a, bb, b


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("shapes", [((6, 75), (5, 75, 49)), ((5, 6, 49), (5, 49, 75)), ((7, 40), (40, 12)),
                                    ((4, 1, 9), (4, 9, 1)), ((3, 5, 8), (8, 2)), ((1, 3), (3, 4))])
@pytest.mark.parametrize("row_pad", [0, 3])
def test_planned_call_computes_the_product(shapes, ta, tb, row_pad):
    rng = np.random.default_rng(0)
    sa, sb = shapes
    base_a, a, base_b, b = _case(rng, sa, sb, ta, tb, row_pad=row_pad)
    want = a @ b
    a3 = a if a.ndim == 3 else a[None]
    b3 = b if b.ndim == 3 else b[None]
    bsz = max(a3.shape[0], b3.shape[0])
    base_c = np.full((bsz, want.shape[-2], want.shape[-1] + 2), np.nan)  # out rows padded: a slice
    c3 = base_c[:, :, :want.shape[-1]]
    assert gemm.plan(a3, b3, c3) is not None
    _run_plan(a3, b3, c3, base_a, base_b, base_c)
    np.testing.assert_allclose(c3.reshape(want.shape) if want.ndim == 2 else c3, want, rtol=1e-12, atol=1e-12)
    assert np.isnan(base_c[:, :, want.shape[-1]:]).all()  # nothing written outside out


def test_layouts_that_need_a_copy_are_refused():
    x = np.zeros((2, 6, 10))
    assert gemm._layout(x[:, :, ::2]) is None            # neither unit row nor unit column stride
    assert gemm._layout(x)[0] == gemm._OP_N
    assert gemm._layout(np.swapaxes(x, 1, 2))[0] == gemm._OP_T
    assert gemm.plan(x[:, :, :4], np.zeros((2, 4, 3)), np.zeros((2, 3, 6)).transpose(0, 2, 1)) is None  # out not row-major
