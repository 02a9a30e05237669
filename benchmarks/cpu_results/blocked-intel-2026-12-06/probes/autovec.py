"""A register tile written as plain Numba loops (before simd.py): a stack array of OB x Q float32
partial sums, LLVM left to vectorise. One sample, stride 1, one thread, against the product
alone of im2col + BLAS. Usage: OB=8 Q=32 python autovec.py"""
import time, numpy as np, numba
from numba import njit, types, uint64 as _u, carray
from numba.extending import intrinsic
from numba.core import cgutils

@intrinsic
def stack_f32(typingctx, size):
    if not isinstance(size, types.IntegerLiteral):
        return None
    n = size.literal_value
    def impl(context, builder, sig, args):
        ty = context.get_value_type(types.float32)
        return cgutils.alloca_once(builder, ty, size=n)
    return types.CPointer(types.float32)(size), impl

import os; OB = int(os.environ["OB"])
Q = int(os.environ["Q"])

@njit(fastmath={"contract"}, cache=False)
def conv_fwd(xp, wt, out, C, Hp, Wp, O, kh, kw, nq):
    # xp: (C, Hp*Wp) flat padded plane; wt: (O//OB, C, kh, kw, OB) flat; out: (O, nq) wide
    hw = Hp * Wp
    acc = carray(stack_f32(256), (256,))
    for ob in range(O // OB):
        for q0 in range(0, nq, Q):
            for t in range(OB * Q):
                acc[t] = 0.0
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        xb = c * hw + q0 + i * Wp + j
                        wb = (((ob * C + c) * kh + i) * kw + j) * OB
                        for b in range(OB):
                            wv = wt[_u(wb + b)]
                            for t in range(Q):
                                acc[b * Q + t] += wv * xp[_u(xb + t)]
            for b in range(OB):
                ob_ = (ob * OB + b) * nq + q0
                for t in range(Q):
                    out[_u(ob_ + t)] = acc[b * Q + t]

def bench(C, O, H, W, k):
    p = k // 2
    Hp, Wp = H + 2 * p, W + 2 * p
    nq = H * Wp
    nqb = (nq + Q - 1) // Q * Q
    extra_rows = (nqb - nq + k + Wp - 1) // Wp + 1
    Hq = Hp + extra_rows
    x = np.random.rand(C, H, W).astype(np.float32)
    w = (np.random.rand(O, C, k, k).astype(np.float32) - 0.5)
    xp = np.zeros((C, Hq, Wp), np.float32)
    xp[:, p:p + H, p:p + W] = x
    wt = np.ascontiguousarray(w.reshape(O // OB, OB, C, k, k).transpose(0, 2, 3, 4, 1)).ravel()
    out = np.zeros((O, nqb), np.float32)
    f = lambda: conv_fwd(xp.ravel(), wt, out.ravel(), C, Hq, Wp, O, k, k, nqb)
    f()
    got = out[:, :nq].reshape(O, H, Wp)[:, :, :W]
    # reference via im2col
    cols = np.empty((C * k * k, H * W), np.float32)
    xpad = xp[:, :Hp, :]
    r = 0
    for c in range(C):
        for i in range(k):
            for j in range(k):
                cols[r] = xpad[c, i:i + H, j:j + W].ravel(); r += 1
    ref = (w.reshape(O, -1) @ cols).reshape(O, H, W)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    macs = O * C * k * k * H * W
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(20): f()
        ts.append((time.perf_counter() - t0) / 20)
    t = min(ts)
    wm = w.reshape(O, -1)
    ts2 = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(20): np.matmul(wm, cols)
        ts2.append((time.perf_counter() - t0) / 20)
    t2 = min(ts2)
    print(f"C{C} O{O} {H}x{W} k{k}: direct {t*1e6:.1f} us {2*macs/t/1e9:.1f} GF/s | gemm only {t2*1e6:.1f} us {2*macs/t2/1e9:.1f} GF/s | err {err:.2e}")

import os
for args in [(16,16,32,32,3),(32,32,16,16,3),(64,64,8,8,3),(32,64,14,14,5),(64,128,5,5,5),(6,16,10,10,5)]:
    if args[1] % OB == 0:
        bench(*args)

