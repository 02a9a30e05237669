"""The blocked kernels' plans (``kernels/cpu/plans.py``): what a call works out from shapes is kept
per key, so a key must hold every input of that work. A switch flipped after a plan was made
(``direct_tiles.ROW_VECTORS``, ``direct_blocked_dw.WHOLE_KERNEL_OW`` and ``CHANNEL_PARTS``) must
reach the next call; a kept plan gives the bits of a plan made afresh; a bad call is refused
every time."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")


def _arrays(n, c, o, h, k, stride, pad, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    oh = (h + 2 * pad - k) // stride + 1
    dy = rng.standard_normal((n, o, oh, oh), dtype=np.float32)
    return x, w, b, dy


@pytest.fixture
def launched(monkeypatch):
    """The constants of every kernel launched (``Launch.__call__`` spied on)."""
    from minicnn.kernels.cpu import direct_blocked

    seen = []
    call = direct_blocked.Launch.__call__

    def spy(self, *args):
        seen.append(dict(self.consts))
        return call(self, *args)

    monkeypatch.setattr(direct_blocked.Launch, "__call__", spy)
    return seen


def test_a_switch_flipped_after_the_plan_reaches_the_next_call(launched, monkeypatch):
    from minicnn.kernels.cpu import direct, direct_blocked, direct_tiles

    if direct_blocked.LANES != 8:
        pytest.skip("whole-row vectors of an 8x8 plane need 8 lanes")
    x, w, b, dy = _arrays(2, 4, 5, 8, 3, 1, 1)
    for rows in (True, False, True):
        monkeypatch.setattr(direct_tiles, "ROW_VECTORS", rows)
        launched.clear()
        direct.conv2d_direct(x, w, b, (1, 1), (1, 1))
        direct.conv2d_direct_input_grad(dy, w, 8, 8, (1, 1), (1, 1))
        assert [c["RV"] for c in launched] == [int(rows)] * 2
    # the strided input gradient's phases (16x16 -> 8x8 at stride 2): the rule takes whole rows
    # for some of the four 8x8 phases, none with the switch off
    x, w, b, dy = _arrays(2, 4, 5, 16, 3, 2, 1)
    for rows in (True, False, True):
        monkeypatch.setattr(direct_tiles, "ROW_VECTORS", rows)
        launched.clear()
        direct.conv2d_direct_input_grad(dy, w, 16, 16, (2, 2), (1, 1))
        assert len(launched) == 4 and (1 in {c["RV"] for c in launched}) == rows


def test_the_weight_gradient_tile_switch_reaches_the_next_call(launched, monkeypatch):
    from minicnn.kernels.cpu import direct, direct_blocked, direct_blocked_dw

    if direct_blocked.LANES != 8:
        pytest.skip("the one-row tile is the 8-lane rule's")
    x, w, b, dy = _arrays(2, 8, 32, 16, 3, 1, 1)  # 32 channels on 16x16: channels in the lanes
    tiles = []
    for whole_ow in (8, 0, 8):
        monkeypatch.setattr(direct_blocked_dw, "WHOLE_KERNEL_OW", whole_ow)
        launched.clear()
        direct.conv2d_direct_weight_grad(x, dy, 3, 3, (1, 1), (1, 1))
        tiles.append(launched[-1]["TR"])
    assert tiles == [1, 3, 1]  # one kernel row, the whole kernel, one row again


def test_the_channel_cut_switch_reaches_the_next_call(monkeypatch):
    from minicnn.kernels.cpu import direct, direct_blocked, direct_blocked_dw

    monkeypatch.setattr("minicnn.kernels.cpu.threads.workers", lambda: 2)
    seen = []  # the parts each weight-gradient launch ran
    call = direct_blocked.Launch.__call__

    def spy(self, *args):
        seen.append(self.bounds.tolist())
        return call(self, *args)

    monkeypatch.setattr(direct_blocked.Launch, "__call__", spy)
    x, w, b, dy = _arrays(4, 64, 128, 8, 5, 1, 2)  # Net2's conv3 at batch 4: dW larger than x and dy
    for cut in (True, False, True):
        monkeypatch.setattr(direct_blocked_dw, "CHANNEL_PARTS", cut)
        direct.conv2d_direct_weight_grad(x, dy, 5, 5, (1, 1), (2, 2), ranges=[(0, 2), (2, 4)])
    by_channel, by_range = [[0, 4, 0, 32, 0], [0, 4, 32, 64, 0]], [[0, 2, 0, 64, 0], [2, 4, 0, 64, 1]]
    assert seen == [by_channel, by_range, by_channel]


CASES = [  # (n, c, o, h, k, stride, pad, ranges)
    (4, 6, 16, 14, 5, 1, 0, None),  # the tutorial net's conv2
    (4, 16, 32, 16, 3, 2, 1, [(0, 2), (2, 4)]),  # a strided ResNet layer, two ranges
    (4, 8, 64, 8, 5, 1, 2, [(0, 1), (1, 4)]),  # channels in the lanes for the weight gradient
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[3]}x{c[3]}-k{c[4]}-s{c[5]}" for c in CASES])
def test_a_kept_plan_gives_the_bits_of_a_fresh_one(case, monkeypatch):
    from minicnn.kernels.cpu import direct
    from minicnn.kernels.cpu.plans import Plans

    n, c, o, h, k, s, p, ranges = case
    x, w, b, dy = _arrays(n, c, o, h, k, s, p)

    def three():
        return (direct.conv2d_direct(x, w, b, (s, s), (p, p), ranges=ranges),
                direct.conv2d_direct_input_grad(dy, w, h, h, (s, s), (p, p), ranges=ranges),
                direct.conv2d_direct_weight_grad(x, dy, k, k, (s, s), (p, p), ranges=ranges))

    first, kept = three(), three()
    monkeypatch.setattr(Plans, "enabled", False)
    fresh = three()
    for a, b_, c_ in zip(first, kept, fresh):
        assert np.array_equal(a, b_) and np.array_equal(a, c_)


def test_bad_ranges_are_refused_on_every_call():
    from minicnn.kernels.cpu import direct_blocked

    x, w, b, _ = _arrays(4, 3, 4, 8, 3, 1, 1)
    y = np.empty((4, 4, 8, 8), np.float32)
    size = len(direct_blocked._FORWARD_PLANS)
    for _ in range(2):
        with pytest.raises(ValueError, match="do not cover samples 0 to 4"):
            direct_blocked.forward(x, w, b, True, 1, 1, y, ranges=[(0, 2), (3, 4)])
    assert len(direct_blocked._FORWARD_PLANS) == size


def test_the_table_is_emptied_at_its_limit():
    from minicnn.kernels.cpu.plans import Plans, ranges_key

    made = []
    plans = Plans(limit=3)
    for key in (1, 2, 3, 1, 4, 1):
        assert plans.get(key, lambda k: made.append(k) or ("plan", k), key) == ("plan", key)
    assert made == [1, 2, 3, 4, 1] and len(plans) == 2  # 4 found the table full: emptied, then 4 and 1
    assert ranges_key([[0, 2], (2, 4)]) == ((0, 2), (2, 4)) and ranges_key(None) is None
