"""Static check, no run: the positions-in-lanes forward's innermost loop as LLVM compiles it for
a given CPU, with the taps at run time (commit 350ca82's kernel, rebuilt here from its text; on
8 lanes also its old 4 x 2 tile) and as constants (today's), and with a packed weight
(probes/fwd_packed.py). Counts the instructions of the innermost loop that holds the most
multiply-adds: FMAs, vector loads/broadcasts, stack accesses, all. Usage (from the repository
root; a fresh cache directory, since code loaded from a cache cannot be inspected):
  AVX-512 on any x86 machine: NUMBA_CPU_NAME=skylake-avx512 NUMBA_CPU_FEATURES=+avx512f,+avx512vl,...
      (the full list in asm_taps.txt) NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python .../asm_taps.py
  Zen 3: NUMBA_CPU_NAME=znver3 NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python .../asm_taps.py"""
import re, subprocess, types, numpy as np
from numba import types as nt
from minicnn.kernels.cpu import direct_blocked as db
old = subprocess.run(["git", "show", "350ca82:kernels/cpu/direct_blocked.py"], capture_output=True, text=True).stdout
src = old[old.index("def _forward_impl("):old.index("def _forward_channels_impl(")]
import importlib.util, tempfile, os
path = os.path.join(tempfile.mkdtemp(), "old_forward.py")  # a file, so that Numba can place the kernel
open(path, "w").write("import numpy as np\nfrom numba import prange\nfrom numba import uint64 as _u\n"
                      "from minicnn.kernels.cpu.direct_blocked import *\n"
                      "from minicnn.kernels.cpu.direct_blocked import _aligned_zeros, _pad_into, _plane_length\n" + src)
spec = importlib.util.spec_from_file_location("old_forward", path); mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
old_impl = mod._forward_impl
f32 = nt.float32
A4, A1, I1 = nt.Array(f32, 4, "C"), nt.Array(f32, 1, "C"), nt.Array(nt.int64, 1, "C")
def inner(asm):
    """The innermost loop (a label and the last backward jump to it, no other loop inside) that
    holds the most multiply-adds: its counts."""
    lines = asm.splitlines()
    loops = []
    for i, l in enumerate(lines):
        m = re.match(r"^(\.LBB\S+):", l)
        if not m:
            continue
        ends = [j for j in range(i + 1, len(lines)) if re.search(r"\bj\w+\s+" + re.escape(m.group(1)) + r"$", lines[j])]
        if ends:
            loops.append((i, ends[-1]))
    innermost = [(i, j) for i, j in loops if not any(i <= a and b <= j and (a, b) != (i, j) for a, b in loops)]
    def count(i, j):
        body = [x for x in lines[i + 1:j + 1] if x.startswith("\t") and not x.startswith("\t.")]
        return sum("vfmadd" in x for x in body), body
    fma, body = max((count(i, j) for i, j in innermost), key=lambda t: (t[0], -len(t[1])))
    loads = sum(bool(re.search(r"vbroadcastss|vmovups\s+-?\d*\(", x)) and "(%rsp)" not in x for x in body)
    stack = sum("(%rsp)" in x for x in body)
    return f"{fma} FMAs, {loads} vector loads/broadcasts (not stack), {stack} stack accesses, {len(body)} instructions"


OB, QV, L = db.FWD_OB, db.FWD_QV, db.LANES
for ob, qv in ((OB, QV),) + (((4, 2),) if L == 8 else ()):  # 4 x 2: the 8-lane tile before a5859d3
    k_old = db._specialised(old_impl, OB=ob, QV=qv, Q=qv * L, NACC=ob * qv)
    k_old.compile((A4, A1, I1, nt.int64, nt.int64, A1, nt.boolean, nt.int64, nt.int64, A4, I1))
    print(f"LANES {L}, tile {ob}x{qv}, taps at run time:", inner(list(k_old.inspect_asm().values())[0]))
for kh, ts in ((5, 1), (5, -1), (3, 1)):
    k_new = db._specialised(db._forward_impl, OB=OB, QV=QV, Q=QV * L, NACC=OB * QV, KH=kh, KW=kh, TS=ts)
    k_new.compile((A4, A1, nt.int64, nt.int64, nt.int64, A1, nt.boolean, nt.int64, nt.int64, A4, I1))
    print(f"LANES {L}, tile {OB}x{QV}, {kh}x{kh} taps constant, TS {ts}:", inner(list(k_new.inspect_asm().values())[0]))
# the packed-weight variant of probes/fwd_packed.py (one pointer for a tap's OB weights)
import sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fwd_packed as fp
for kh in (5, 3):
    k_p = db._specialised(fp._forward_packed_impl, OB=OB, QV=QV, Q=QV * L, NACC=OB * QV, KH=kh, KW=kh)
    k_p.compile((A4, A1, A1, nt.boolean, nt.int64, nt.int64, A4, I1))
    print(f"LANES {L}, tile {OB}x{QV}, {kh}x{kh} taps constant, packed weight:", inner(list(k_p.inspect_asm().values())[0]))
