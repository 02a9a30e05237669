"""The CPU kernels' kept scratch blocks (``minicnn.kernels.cpu.workspace``) and the weight
gradient that takes its buffers from them: a block is the same memory from call to call, per
thread and name, aligned, grown when too small, fresh above ``KEPT_MAX``; and what a block held
from an earlier call (poisoned here with NaN) never reaches a result."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")


def _workspace():
    from minicnn.kernels.cpu import workspace

    return workspace


def test_a_block_is_kept_aligned_and_grown():
    ws = _workspace()
    ws.clear()
    a = ws.kept("t", (3, 5), np.float64)
    assert a.shape == (3, 5) and a.dtype == np.float64 and a.flags.c_contiguous
    assert a.ctypes.data % ws.ALIGN == 0
    b = ws.kept("t", (4,), np.float32)  # smaller: the same memory
    assert b.ctypes.data == a.ctypes.data
    c = ws.kept("t", (100,), np.float64)  # larger: a new block, kept from now on
    assert c.ctypes.data % ws.ALIGN == 0
    assert ws.kept("t", (100,), np.float64).ctypes.data == c.ctypes.data
    assert ws.kept("other", (100,), np.float64).ctypes.data != c.ctypes.data  # one block per name
    ws.clear()


def test_each_thread_has_its_own_blocks():
    ws = _workspace()
    mine = ws.kept("t", (64,)).ctypes.data
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(ws.kept("t", (64,)).ctypes.data))
    t.start()
    t.join()
    assert theirs and theirs[0] != mine
    assert ws.kept("t", (64,)).ctypes.data == mine
    ws.clear()


def test_blocks_above_the_cap_are_fresh(monkeypatch):
    ws = _workspace()
    ws.clear()
    monkeypatch.setattr(ws, "KEPT_MAX", 1024)
    a = ws.kept("big", (1024,))  # 4 KiB > 1 KiB
    b = ws.kept("big", (1024,))
    assert a.ctypes.data % ws.ALIGN == 0 and not np.shares_memory(a, b)
    small = ws.kept("small", (16,))
    assert ws.kept("small", (16,)).ctypes.data == small.ctypes.data
    ws.clear()


# (n, c, h, w, o, k, stride, padding, ranges): both kinds of weight-gradient kernel, ranges
# with an empty one, a strided layer
DW_CASES = [
    (4, 64, 8, 8, 128, 5, 1, 2, [(0, 2), (2, 4)]),  # Net2's conv3: channels in the lanes
    (5, 16, 8, 8, 64, 3, 1, 1, [(0, 2), (2, 2), (2, 5)]),
    (5, 3, 12, 12, 7, 3, 1, 1, [(0, 3), (3, 5)]),  # positions in the lanes
    (3, 4, 9, 9, 6, 3, 2, 1, [(0, 1), (1, 3)]),
    (2, 3, 10, 10, 5, 5, 1, 2, None),
]


@pytest.mark.parametrize("case", DW_CASES, ids=[f"o{c[4]}-k{c[5]}-s{c[6]}" for c in DW_CASES])
def test_weight_grad_ignores_what_the_kept_blocks_held(case):
    from minicnn.kernels.cpu import direct

    ws = _workspace()
    n, c, h, w, o, k, s, p, ranges = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    oh = (h + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, o, oh, (w + 2 * p - k) // s + 1), dtype=np.float32)

    def dw():
        return direct.conv2d_direct_weight_grad(x, dy, k, k, (s, s), (p, p), ranges=ranges)

    ws.clear()
    first = dw()
    for name in ("dw_scratch", "dw_ranges"):  # poison every block the call took, and more
        ws.kept(name, (1 << 20,)).fill(np.nan)
    again = dw()
    assert np.isfinite(again).all()
    assert np.array_equal(first, again)
    assert not np.shares_memory(first, again)  # results are fresh arrays, never a kept block
    ref = direct.conv2d_direct_weight_grad(x.astype(np.float64), dy.astype(np.float64), k, k, (s, s), (p, p))
    np.testing.assert_allclose(again, ref, rtol=1e-4, atol=1e-3)
    ws.clear()
