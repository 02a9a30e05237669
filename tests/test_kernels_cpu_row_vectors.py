"""The positions-in-lanes forward with whole output rows as its vectors (``direct_blocked``;
``direct_tiles.ROW_VECTORS``, ``_row_vectors``): where the rule takes them (small planes whose rows are a
whole number of vectors) the forward and the input gradient give the very bits of the flat span
on the padded pitch, which computes every output with the same multiply-adds in the same order;
and the rule takes them for the layers it was measured on."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")

# (n, c, o, h, w, k, stride, padding, ranges)
CASES = [
    (4, 6, 7, 8, 8, 5, 1, 2, [(0, 2), (2, 4)]),  # Net2's conv3 shape, smaller (8 lanes: row vectors)
    (3, 5, 4, 16, 16, 5, 1, 2, [(0, 1), (1, 3)]),  # Net2's conv2 shape (8 and 16 lanes)
    (2, 4, 5, 8, 8, 3, 1, 1, None),  # ResNet-20's stage 3
    (3, 4, 6, 16, 16, 3, 2, 1, [(0, 2), (2, 3)]),  # a stride-2 layer to 8x8, its input gradient by phases
    (2, 3, 4, 16, 24, 5, 1, 2, None),  # a rectangular plane
]


def _run(case, rows: bool, monkeypatch):
    from minicnn.kernels.cpu import direct, direct_tiles

    n, c, o, h, w, k, s, p, ranges = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((o, c, k, k), dtype=np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, o, oh, ow), dtype=np.float32)
    monkeypatch.setattr(direct_tiles, "ROW_VECTORS", rows)
    y = direct.conv2d_direct(x, wt, b, (s, s), (p, p), ranges=ranges)
    dx = direct.conv2d_direct_input_grad(dy, wt, h, w, (s, s), (p, p), ranges=ranges)
    return (x, wt, b, dy), y, dx


@pytest.mark.parametrize("case", CASES, ids=[f"{c[3]}x{c[4]}-k{c[5]}-s{c[6]}" for c in CASES])
def test_row_vectors_give_the_bits_of_the_flat_span(case, monkeypatch, restore_backend):
    from minicnn.nn import conv

    (x, wt, b, dy), y_rows, dx_rows = _run(case, True, monkeypatch)
    _, y_flat, dx_flat = _run(case, False, monkeypatch)
    assert np.array_equal(y_rows, y_flat)
    assert np.array_equal(dx_rows, dx_flat)
    s, p = case[6], case[7]
    mc.set_backend("numpy")  # the plain layer math in float64 (restore_backend puts the backend back)
    ref, cache = conv.conv2d_forward(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), (s, s),
                                     (p, p))
    dx_ref = conv.conv2d_backward(dy.astype(np.float64), cache)[0]
    np.testing.assert_allclose(y_rows, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx_rows, dx_ref, rtol=1e-4, atol=1e-4)


def test_the_rule_takes_row_vectors_where_they_save_tiles(monkeypatch):
    from minicnn.kernels.cpu import direct_tiles as db

    lanes = db.LANES
    assert db._row_vectors(16, 16, 20, 5, 1)  # 16x16, 5x5: 8 tiles instead of 10 (8 or 16 lanes)
    assert db._row_vectors(8, 8, 12, 5, 1) == (lanes == 8)  # 8x8: 2 instead of 3 (a row is 8 lanes)
    assert db._row_vectors(8, 8, 10, 3, 1) == (lanes == 8)
    assert not db._row_vectors(32, 32, 34, 3, 1)  # 32 of 34 tiles: not worth it (measured)
    assert not db._row_vectors(7, 7, 11, 5, 1)  # a row is not a whole number of vectors
    monkeypatch.setattr(db, "ROW_VECTORS", False)
    assert not db._row_vectors(16, 16, 20, 5, 1)
