"""Prototype (not part of minicnn): a matmul entry on MKL's cblas_?gemm_batch_strided via ctypes,
with the numba backend's conv schedule and Linear patched to use it. For an A/B against OpenBLAS."""
import ctypes, os
import numpy as np
os.environ.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")
_mkl = ctypes.CDLL("/tmp/mkllib/libmkl_rt.so.3", mode=ctypes.RTLD_GLOBAL)
_i, _vp = ctypes.c_int, ctypes.c_void_p
_f = {}
for ch, ct in (("s", ctypes.c_float), ("d", ctypes.c_double)):
    f = getattr(_mkl, f"cblas_{ch}gemm_batch_strided")
    f.restype = None
    f.argtypes = [_i, _i, _i, _i, _i, _i, ct, _vp, _i, ctypes.c_longlong, _vp, _i, ctypes.c_longlong, ct, _vp, _i,
                  ctypes.c_longlong, _i]
    _f[np.dtype(ct).char if False else ("f" if ch == "s" else "d")] = f
ROW, N_, T_ = 101, 111, 112


def _lay(x):
    """(trans, ld, batch stride) for a 3-D row-major view (B, r, c), or None."""
    b, r, c = x.shape
    it = x.itemsize
    s0, s1, s2 = (s // it for s in x.strides)
    if (s2 == 1 or c == 1) and s1 >= max(c, 1):
        return N_, max(s1, c, 1), s0 if b > 1 else 0
    if (s1 == 1 or r == 1) and s2 >= max(r, 1):
        return T_, max(s2, r, 1), s0 if b > 1 else 0
    return None


def matmul(a, b, out=None):
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and a.dtype.char in "fd"
            and a.ndim in (2, 3) and b.ndim in (2, 3) and (out is None or out.dtype == a.dtype)):
        return np.matmul(a, b, out=out)
    a3 = a if a.ndim == 3 else a[None]
    b3 = b if b.ndim == 3 else b[None]
    bsz = max(a3.shape[0], b3.shape[0])
    if a3.shape[0] not in (1, bsz) or b3.shape[0] not in (1, bsz) or a3.shape[2] != b3.shape[1]:
        return np.matmul(a, b, out=out)
    m, k, n = a3.shape[1], a3.shape[2], b3.shape[2]
    shape = (m, n) if a.ndim == 2 and b.ndim == 2 else (bsz, m, n)
    c = np.empty(shape, a.dtype) if out is None else out
    if 0 in (m, n, k, bsz) or c.shape != shape or not c.flags.c_contiguous:
        return np.matmul(a, b, out=out)
    la, lb = _lay(a3), _lay(b3)
    if la is None:
        a3 = np.ascontiguousarray(a3); la = _lay(a3)
    if lb is None:
        b3 = np.ascontiguousarray(b3); lb = _lay(b3)
    _f[a.dtype.char](ROW, la[0], lb[0], m, n, k, 1.0, a3.ctypes.data, la[1], la[2], b3.ctypes.data, lb[1], lb[2],
                     0.0, c.ctypes.data, n, m * n, bsz)
    return c


def install():
    """Route the numba backend's products (conv schedule and the table's matmul) through MKL."""
    from minicnn.kernels import cpu
    from minicnn import backend
    cpu.CONV_SCHEDULE.ops.matmul = matmul
    cpu.TABLE["matmul"] = matmul
    b = backend.get("numba")
    b.table["matmul"] = matmul
    if hasattr(b, "ops"):
        try:
            setattr(b.ops, "matmul", matmul)
        except Exception:
            pass


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for sa, sb, ta, tb in [((6, 75), (5, 75, 49), 0, 0), ((5, 6, 49), (5, 49, 75), 0, 0), ((7, 40), (40, 12), 1, 0),
                           ((3, 5, 8), (8, 2), 0, 1), ((4, 9, 3), (4, 3, 7), 1, 1)]:
        for dt in (np.float32, np.float64):
            a = rng.standard_normal(sa).astype(dt); b = rng.standard_normal(sb).astype(dt)
            if ta: a = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
            if tb: b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
            got, want = matmul(a, b), np.matmul(a, b)
            assert got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-4), (sa, sb, ta, tb, dt)
    print("prototype ok")
