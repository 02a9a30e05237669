"""Explicit SIMD registers for Numba kernels: a bank of float32 vectors that LLVM keeps in
registers, and the operations the register-blocked convolution (``direct_blocked.py``)
is written with.

Why not plain loops: a register-blocked kernel keeps a tile of partial sums (say 8 output
channels x 32 output positions) in vector registers while it runs over every input channel and
tap, so each loaded value feeds several multiply-adds and the tile is written once at the
end. Written as Python loops over a small array, LLVM vectorised the wrong loop (gathers,
shuffles) or kept the tile in memory: 1.8-82 GFLOP/s on one Xeon core, where the product
alone of im2col + BLAS ran at 66-125; written with these operations the tile stays in
registers (126 GFLOP/s; benchmarks/notes/cpu-direct.md, "Register-blocked direct convolution").

* ``bank(n)``: n vectors of ``LANES`` float32 (a stack array: after LLVM unrolls the loops
  over the bank's slots, every slot becomes a register);
* ``vzero(bank, k)``: slot k = 0;
* ``vfma(bank, k, a, i, s)``: slot k += a[i : i + LANES] * s (one fused multiply-add; ``a``
  a 1-D float32 array, read unaligned, no bounds test: the caller owns the range);
* ``vfma2(bank, k, a, i, b, j)``: slot k += a[i : i + LANES] * b[j : j + LANES];
* ``vstore(bank, k, a, i)``: a[i : i + LANES] = slot k;
* ``vadd_to(bank, k, a, i)``: a[i : i + LANES] += slot k.

``LANES`` is 16 (a 512-bit register) where the CPU Numba compiles for has AVX-512, else 8
(256 bits); ``MINICNN_CPU_LANES=8`` (or 16, read at import) sets it, e.g. to test the 8-lane
kernels on an AVX-512 machine. Only float32: the float64 kernels keep the plain passes of
``direct_rows.py``.
"""

from __future__ import annotations

import os

from llvmlite import binding as _llvm
from llvmlite import ir
from numba import types
from numba.core import config
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.extending import intrinsic



def _lanes() -> int:
    raw = os.environ.get("MINICNN_CPU_LANES", "").strip()
    if raw:
        if raw not in ("8", "16"):
            raise ValueError(f"MINICNN_CPU_LANES={raw!r}: expected 8 or 16 (float32 lanes of a vector register)")
        return int(raw)
    features = config.CPU_FEATURES or _llvm.get_host_cpu_features().flatten()  # what Numba compiles for
    return 16 if "+avx512f" in features.split(",") else 8


LANES = _lanes()

_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)
_I32 = ir.IntType(32)


class Bank(types.Type):
    """A stack array of ``n`` float32 vectors (its LLVM value: an i8* to it)."""

    def __init__(self, n: int):
        self.n = n
        super().__init__(name=f"SimdBank({n}x{LANES})")


@register_default(Bank)
class _BankModel(models.OpaqueModel):
    pass


def _slot(builder, bank, k, n):
    arr = builder.bitcast(bank, ir.ArrayType(_VEC, n).as_pointer())
    return builder.gep(arr, [ir.Constant(_I32, 0), k])


def _at(context, builder, aryty, ary, i):
    """A <LANES x float>* to ary[i] (a 1-D array's data pointer + i)."""
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [i]), _VEC.as_pointer())


def _fma_fn(builder):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]),
                                          f"llvm.fma.v{LANES}f32")


def _f32_array(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1


@intrinsic
def bank(typingctx, n):
    if not isinstance(n, types.IntegerLiteral):
        return None  # Numba asks again with the literal value
    size = n.literal_value

    def codegen(context, builder, sig, args):
        arr = cgutils.alloca_once(builder, ir.ArrayType(_VEC, size))
        return builder.bitcast(arr, ir.IntType(8).as_pointer())

    return Bank(size)(n), codegen


@intrinsic
def vzero(typingctx, bk, k):
    if not isinstance(bk, Bank):
        return None

    def codegen(context, builder, sig, args):
        builder.store(ir.Constant(_VEC, None), _slot(builder, args[0], args[1], sig.args[0].n))
        return context.get_dummy_value()

    return types.none(bk, k), codegen


@intrinsic
def vfma(typingctx, bk, k, a, i, s):
    if not (isinstance(bk, Bank) and _f32_array(a)):
        return None

    def codegen(context, builder, sig, args):
        b, k_, arr, i_, s_ = args
        slot = _slot(builder, b, k_, sig.args[0].n)
        x = builder.load(_at(context, builder, sig.args[2], arr, i_), align=4)
        s32 = context.cast(builder, s_, sig.args[4], types.float32)
        splat = builder.shuffle_vector(builder.insert_element(ir.Constant(_VEC, None), s32, ir.Constant(_I32, 0)),
                                       ir.Constant(_VEC, None), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
        builder.store(builder.call(_fma_fn(builder), [x, splat, builder.load(slot)]), slot)
        return context.get_dummy_value()

    return types.none(bk, k, a, i, s), codegen


@intrinsic
def vfma2(typingctx, bk, k, a, i, b, j):
    if not (isinstance(bk, Bank) and _f32_array(a) and _f32_array(b)):
        return None

    def codegen(context, builder, sig, args):
        bk_, k_, a_, i_, b_, j_ = args
        slot = _slot(builder, bk_, k_, sig.args[0].n)
        x = builder.load(_at(context, builder, sig.args[2], a_, i_), align=4)
        y = builder.load(_at(context, builder, sig.args[4], b_, j_), align=4)
        builder.store(builder.call(_fma_fn(builder), [x, y, builder.load(slot)]), slot)
        return context.get_dummy_value()

    return types.none(bk, k, a, i, b, j), codegen


@intrinsic
def vstore(typingctx, bk, k, a, i):
    if not (isinstance(bk, Bank) and _f32_array(a)):
        return None

    def codegen(context, builder, sig, args):
        b, k_, arr, i_ = args
        v = builder.load(_slot(builder, b, k_, sig.args[0].n))
        builder.store(v, _at(context, builder, sig.args[2], arr, i_), align=4)
        return context.get_dummy_value()

    return types.none(bk, k, a, i), codegen


@intrinsic
def vadd_to(typingctx, bk, k, a, i):
    if not (isinstance(bk, Bank) and _f32_array(a)):
        return None

    def codegen(context, builder, sig, args):
        b, k_, arr, i_ = args
        v = builder.load(_slot(builder, b, k_, sig.args[0].n))
        ptr = _at(context, builder, sig.args[2], arr, i_)
        builder.store(builder.fadd(builder.load(ptr, align=4), v), ptr, align=4)
        return context.get_dummy_value()

    return types.none(bk, k, a, i), codegen
