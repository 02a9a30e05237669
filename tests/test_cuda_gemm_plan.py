"""The argument plan of the cuBLAS call that CUDA-graph recordings use for matmul
(minicnn.kernels.cuda.gemm.plan), checked without a GPU: a NumPy model of
column-major ``gemmStridedBatched`` runs the planned call on the operands' own
memory and must give ``a @ b``."""

from __future__ import annotations

import ctypes
import itertools
import types

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


# -- the whole host side of gemm.matmul, with NumPy for CuPy and a host model of cuBLAS --------


class _Dev(np.ndarray):
    """A NumPy array with CuPy's ``.data.ptr`` (its real host address, so the model can read it)."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])


def _gemm_model(calls, ctype):
    """gemmStridedBatched with column-major semantics on the memory the pointers address."""
    size = ctypes.sizeof(ctype)

    def gemm_call(h, ta, tb, m, n, k, one, pa, lda, sa, pb, ldb, sb, zero, pc, ldc, sc, batch):
        calls.append(("gemm", pa, pb, pc))

        def mat(ptr, off, rows, cols, ld, writeable=False):
            flat = np.ctypeslib.as_array((ctype * (off + (cols - 1) * ld + rows)).from_address(ptr))
            return np.lib.stride_tricks.as_strided(flat[off:], (rows, cols), (size, ld * size), writeable=writeable)

        for i in range(batch):
            A = mat(pa, i * sa, *((m, k) if ta == 0 else (k, m)), lda)
            B = mat(pb, i * sb, *((k, n) if tb == 0 else (n, k)), ldb)
            C = mat(pc, i * sc, m, n, ldc, writeable=True)
            C[...] = (A if ta == 0 else A.T) @ (B if tb == 0 else B.T)
        return 0

    return gemm_call


class _HostCublas:
    """The cuBLAS functions gemm.py calls, as plain functions (``_declare`` sets their
    argtypes), recording each call; the products are computed on the host."""

    def __init__(self):
        self.calls = []
        self.handles = 0

        def create(ref):
            self.handles += 1
            ref._obj.value = 16 * self.handles  # byref(handle): the new handle's value
            self.calls.append(("create", ref._obj.value))
            return 0

        def record(name):
            def call(handle, value, *rest):
                self.calls.append((name, getattr(handle, "value", handle), getattr(value, "value", value)))
                return 0
            return call

        self.cublasCreate_v2 = create
        self.cublasSetStream_v2 = record("stream")
        self.cublasSetWorkspace_v2 = record("workspace")
        self.cublasSetMathMode = record("math")
        self.cublasSgemmStridedBatched = _gemm_model(self.calls, ctypes.c_float)
        self.cublasDgemmStridedBatched = _gemm_model(self.calls, ctypes.c_double)

    def setup(self):
        """The calls other than the products, (name, handle, value)."""
        return [c for c in self.calls if c[0] != "gemm"]


@pytest.fixture
def host_gemm(monkeypatch):
    """gemm.py with NumPy for CuPy and _HostCublas for libcublas, its handle made by prepare()."""
    stream = types.SimpleNamespace(ptr=4096)
    cp = types.SimpleNamespace(
        float32=np.float32, float64=np.float64,
        empty=lambda shape, dtype=np.float64: np.full(shape, np.nan, dtype).view(_Dev),
        ascontiguousarray=lambda a: np.ascontiguousarray(a).view(_Dev),
        cuda=types.SimpleNamespace(get_current_stream=lambda: stream,
                                   runtime=types.SimpleNamespace(getDevice=lambda: 0),
                                   Device=lambda *a: types.SimpleNamespace(id=0),
                                   memory=types.SimpleNamespace(Memory=lambda n: types.SimpleNamespace(ptr=8192))))
    lib = _HostCublas()
    monkeypatch.setattr(gemm, "_cupy", lambda: cp)
    monkeypatch.setattr(gemm, "_cublas_path", lambda: "libcublas-host-model")
    monkeypatch.setattr(gemm.ctypes, "CDLL", lambda path: lib)
    for cache in ("_state", "_streams", "_plans", "_math", "_unavailable"):
        monkeypatch.setattr(gemm, cache, {})
    return lib, stream


def test_matmul_reuses_its_plans_and_sets_the_stream_only_when_it_changes(host_gemm):
    lib, stream = host_gemm
    rng = np.random.default_rng(1)
    cases = []
    for (sa, sb), ta, tb, pad in itertools.product(
            [((6, 75), (5, 75, 49)), ((5, 6, 49), (5, 49, 75)), ((7, 40), (40, 12)), ((3, 5, 8), (8, 2))],
            [False, True], [False, True], [0, 3]):
        base_a, a, base_b, b = _case(rng, sa, sb, ta, tb, row_pad=pad)
        cases.append((base_a.view(_Dev), a.view(_Dev), base_b.view(_Dev), b.view(_Dev), None))
    # operands that must be copied first (every other column), and an out that is not row-major
    x = rng.standard_normal((4, 6, 20)).view(_Dev)
    cases.append((x, x[:, :, ::2], x, np.swapaxes(x[:, :, ::2], 1, 2), None))
    out = np.zeros((4, 6, 6)).view(_Dev).transpose(0, 2, 1)
    cases.append((x, x[:, :, :10], x, np.swapaxes(x[:, :, 10:], 1, 2), out))
    for rounds in range(2):  # the second round runs every product from its cached plan, on new values
        for base_a, a, base_b, b, out in cases:
            base_a[...] = rng.standard_normal(base_a.shape)
            base_b[...] = rng.standard_normal(base_b.shape)
            want = np.asarray(a) @ np.asarray(b)
            got = gemm.matmul(a, b, out=out)
            assert got is out or out is None
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
    # a copy of each operand: the same layouts at other addresses, from the cached plans
    for base_a, a, base_b, b, out in cases[:8]:
        a2, b2 = (np.lib.stride_tricks.as_strided(base.copy().view(_Dev), v.shape, v.strides, subok=True)
                  for base, v in ((base_a, a), (base_b, b)))
        np.testing.assert_allclose(np.asarray(gemm.matmul(a2, b2)), np.asarray(a) @ np.asarray(b), rtol=1e-12)
    assert len(gemm._plans) == len(cases)
    assert lib.setup() == [("create", 16), ("workspace", 16, 8192), ("stream", 16, 4096), ("workspace", 16, 8192)]
    stream.ptr = 5120  # another stream (a CUDA-graph capture's): set again, workspace with it
    gemm.matmul(cases[0][1], cases[0][3])
    gemm.matmul(cases[0][1], cases[0][3])
    assert lib.setup()[4:] == [("stream", 16, 5120), ("workspace", 16, 8192)]


def test_float32_tf32_switch_and_a_new_handle(host_gemm):
    """float32 products: the math mode is set when the TF32 flag changes, not per product; a
    handle made again by prepare() gets its stream, workspace and math mode set again."""
    lib, stream = host_gemm
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 6, 7)).astype(np.float32).view(_Dev)
    b = rng.standard_normal((7, 3)).astype(np.float32).view(_Dev)
    want = np.asarray(a) @ np.asarray(b)
    for tf32 in (False, False, True, True, False, True):
        np.testing.assert_allclose(np.asarray(gemm.matmul(a, b, tf32=tf32)), want, rtol=1e-5)
    math = [c for c in lib.setup() if c[0] == "math"]
    assert math == [("math", 16, m) for m in (gemm._TF32_MATH, gemm._DEFAULT_MATH, gemm._TF32_MATH)]
    gemm._state.clear()  # the next product makes a new handle through prepare(), in the default mode
    gemm.matmul(a, b, tf32=True)
    new = [c for c in lib.setup() if c[1] == 32]
    assert [c[0] for c in new] == ["create", "workspace", "math", "stream", "workspace"]
    assert ("math", 32, gemm._TF32_MATH) in new


def test_matmul_checks_shapes_before_any_call(host_gemm):
    lib, _ = host_gemm
    a, b = np.ones((3, 4)).view(_Dev), np.ones((5, 2)).view(_Dev)
    with pytest.raises(ValueError, match="inner sizes differ"):
        gemm.matmul(a, b)
    with pytest.raises(ValueError, match="out has shape"):
        gemm.matmul(a, np.ones((4, 2)).view(_Dev), out=np.ones((3, 3)).view(_Dev))
    with pytest.raises(ValueError, match="do not broadcast"):
        gemm.matmul(np.ones((2, 3, 4)).view(_Dev), np.ones((3, 4, 2)).view(_Dev))
    products = lambda: [c for c in lib.calls if c[0] in ("gemm", "stream")]  # noqa: E731
    assert products() == []
    z = gemm.matmul(np.ones((3, 0)).view(_Dev), np.ones((0, 2)).view(_Dev))  # k == 0: zeros, no product
    assert np.asarray(z).shape == (3, 2) and not np.asarray(z).any() and products() == []
