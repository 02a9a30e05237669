"""Batch ranges in one direct-kernel call (``ranges=``, ``minicnn.kernels.cpu.direct``): the
register-blocked float32 kernels run them at once on Numba's threads (their parallel build),
the float64 passes and the fallbacks through ``threads.run_split``. Either way the numbers are
bit for bit those of one call per range, the weight gradient being the ranges' sums added in
range order (where the channels weight gradient is cut by input channel instead, one call's
numbers). Also: when ``threads.numba_team`` lets a kernel use Numba's threads, the checks
on the ranges, and a forked child (GNU OpenMP terminates a child that starts a parallel region
after its parent did: the child runs the serial build)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels.cpu import direct, direct_blocked, threads

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")

RANGES = [(0, 2), (2, 4), (4, 5)]

# (c, h, w, o, kh, kw, sh, sw, ph, pw, dtype); 5 samples each
CASES = [
    (3, 12, 12, 7, 3, 3, 1, 1, 1, 1, np.float32),  # positions in the lanes
    (2, 11, 13, 3, 5, 5, 1, 1, 2, 2, np.float32),
    (16, 8, 8, 64, 3, 3, 1, 1, 1, 1, np.float32),  # channels in the lanes (forward and weight gradient)
    (32, 9, 7, 40, 5, 5, 1, 1, 2, 2, np.float32),  # ... forward and input gradient
    (2, 9, 30, 3, 3, 8, 1, 1, 1, 0, np.float32),  # wider than KW_MAX: the weight gradient's row passes
    (3, 10, 10, 4, 5, 5, 1, 1, 2, 2, np.float64),  # the passes
    (3, 9, 7, 5, 3, 3, 2, 1, 1, 1, np.float32),  # stride (2, 1): the input cut into phases
    (3, 9, 9, 4, 3, 3, 2, 2, 2, 2, np.float32),  # ... an input-gradient phase past the padding: im2col fallback
    (3, 9, 7, 5, 3, 3, 2, 1, 1, 1, np.float64),  # stride 2 in float64: the im2col fallback
]


@pytest.fixture
def two_workers(monkeypatch):
    """numba_team sees two workers (the parallel build then runs on however many threads Numba has)."""
    monkeypatch.setattr(threads, "workers", lambda: 2)


def _arrays(case, seed=0):
    c, h, w, o, kh, kw, sh, sw, ph, pw, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    dy = rng.standard_normal((5, o, oh, ow)).astype(dtype)
    return x, wt, b, dy, (sh, sw), (ph, pw)


def _range_sums(x, dy, kh, kw, stride, padding, ranges):
    """The weight gradient of one call per range, added in range order."""
    parts = [direct.conv2d_direct_weight_grad(x[i:j], dy[i:j], kh, kw, stride, padding) for i, j in ranges]
    want = parts[0].copy()
    for part in parts[1:]:
        want += part
    return want


@pytest.fixture
def batch_parts(monkeypatch):
    """The channels weight gradient cut by batch range only (``direct_blocked_dw.CHANNEL_PARTS``)."""
    from minicnn.kernels.cpu import direct_blocked_dw

    monkeypatch.setattr(direct_blocked_dw, "CHANNEL_PARTS", False)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_ranges_give_the_numbers_of_one_call_per_range(case, two_workers, batch_parts):
    x, w, b, dy, stride, padding = _arrays(case)
    kh, kw = w.shape[2:]
    h, wd = x.shape[2:]
    y = direct.conv2d_direct(x, w, b, stride, padding, ranges=RANGES)
    np.testing.assert_array_equal(y, np.concatenate([direct.conv2d_direct(x[i:j], w, b, stride, padding)
                                                     for i, j in RANGES]))
    dx = direct.conv2d_direct_input_grad(dy, w, h, wd, stride, padding, ranges=RANGES)
    np.testing.assert_array_equal(dx, np.concatenate([direct.conv2d_direct_input_grad(dy[i:j], w, h, wd, stride,
                                                                                      padding) for i, j in RANGES]))
    dw = direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding, ranges=RANGES)
    np.testing.assert_array_equal(dw, _range_sums(x, dy, kh, kw, stride, padding, RANGES))
    # and into out=, a second time: the same bits
    out = np.empty_like(dw)
    direct.conv2d_direct_weight_grad(x, dy, kh, kw, stride, padding, out=out, ranges=RANGES)
    np.testing.assert_array_equal(out, dw)


# (c, h, w, o, k, stride): 5 samples, 2 ranges, padding 1; all but the last have dW larger than
# x and d together
CHANNEL_CASES = [
    (64, 6, 6, 72, 5, 1),  # Net2's conv3 on a small plane
    (16, 3, 3, 64, 3, 1),  # 8 input channels a part
    (32, 7, 7, 64, 3, 2),  # stride 2: the input's phases
    (16, 8, 8, 64, 3, 1),  # dW smaller: cut by batch range
]


@pytest.mark.parametrize("case", CHANNEL_CASES, ids=str)
def test_the_channel_cut_gives_the_numbers_of_one_call(case, two_workers, monkeypatch):
    """Where dW is larger than x and d together, the channels weight gradient is cut by input
    channel (``channel_parts``): each part sums the whole batch straight into its channels' block
    of dW, so the bits are those of one call without ranges; elsewhere those of the ranges' sums.
    Without the cut (``CHANNEL_PARTS = False``) the ranges' sums, as before."""
    from minicnn.kernels.cpu import direct_blocked_dw as dd

    check_channel_cut(case, lambda cut: monkeypatch.setattr(dd, "CHANNEL_PARTS", cut))


def check_channel_cut(case, set_cut):
    """The test above, with ``set_cut(flag)`` setting ``CHANNEL_PARTS`` (also run in a fresh
    process with 8 lanes, ``test_kernels_cpu_direct.py``)."""
    from minicnn.kernels.cpu import direct_blocked_dw as dd

    c, h, w, o, k, s = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, c, h, w)).astype(np.float32)
    oh, ow = (h + 2 - k) // s + 1, (w + 2 - k) // s + 1
    dy = rng.standard_normal((5, o, oh, ow)).astype(np.float32)
    ranges, stride, padding = [(0, 3), (3, 5)], (s, s), (1, 1)
    cut = dd.channel_parts(5, c, o * c * k * k, x.size, dy.size, 2)
    assert (cut is not None) == (case != CHANNEL_CASES[-1])
    one = direct.conv2d_direct_weight_grad(x, dy, k, k, stride, padding)
    sums = _range_sums(x, dy, k, k, stride, padding, ranges)
    assert not np.array_equal(one, sums)  # the two orders of summing differ in the last bits
    got = direct.conv2d_direct_weight_grad(x, dy, k, k, stride, padding, ranges=ranges)
    np.testing.assert_array_equal(got, one if cut is not None else sums)
    set_cut(False)
    np.testing.assert_array_equal(direct.conv2d_direct_weight_grad(x, dy, k, k, stride, padding, ranges=ranges),
                                  sums)


def test_the_channel_cut_rule():
    from minicnn.kernels.cpu import direct_blocked_dw as dd

    net2_conv3 = dict(dw_size=128 * 64 * 25, x_size=4 * 64 * 64, d_size=4 * 128 * 64)
    parts = dd.channel_parts(4, 64, ranges=2, **net2_conv3)
    assert parts.tolist() == [[0, 4, 0, 32, 0], [0, 4, 32, 64, 0]]
    assert dd.channel_parts(4, 64, ranges=1, **net2_conv3) is None  # one range: nothing to cut
    assert dd.channel_parts(64, 64, 128 * 64 * 25, 64 * 64 * 64, 64 * 128 * 64, 2) is None  # batch 64
    assert dd.channel_parts(4, 15, 128 * 15 * 25, 4 * 15 * 64, 4 * 128 * 64, 2) is None  # under 8 a part
    assert dd.channel_parts(4, 16, 128 * 16 * 25, 4 * 16 * 64, 4 * 128 * 64, 2).shape == (2, 5)


def test_the_blocked_kernels_ran_their_parallel_build(two_workers):
    x, w, b, dy, stride, padding = _arrays(CASES[0])
    direct_blocked._COMPILED.clear()
    direct.conv2d_direct(x, w, b, stride, padding, ranges=RANGES)
    direct.conv2d_direct(x, w, b, stride, padding)
    assert sorted(key[1] for key in direct_blocked._COMPILED) == [False, True]


def test_one_range_and_an_empty_batch(two_workers):
    x, w, b, dy, stride, padding = _arrays(CASES[2])
    np.testing.assert_array_equal(direct.conv2d_direct(x, w, b, stride, padding, ranges=[(0, 5)]),
                                  direct.conv2d_direct(x, w, b, stride, padding))
    assert direct.conv2d_direct(x[:0], w, b, stride, padding, ranges=[(0, 0)]).shape == (0, 64, 8, 8)
    np.testing.assert_array_equal(direct.conv2d_direct_weight_grad(x[:0], dy[:0], 3, 3, stride, padding,
                                                                   ranges=[(0, 0)]), np.zeros_like(w))


@pytest.mark.parametrize("ranges", [[(0, 2), (3, 5)], [(0, 6)], [(1, 5)], [(0, 3), (3, 2), (2, 5)], []], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ranges_that_do_not_cover_the_batch_in_order_are_refused(ranges, dtype):
    x, w, b, dy, stride, padding = _arrays(CASES[0][:-1] + (dtype,))
    with pytest.raises(ValueError, match=r"batch ranges .* do not cover samples 0 to 5 in order"):
        direct.conv2d_direct(x, w, b, stride, padding, ranges=ranges)
    with pytest.raises(ValueError, match=r"do not cover samples 0 to 5 in order"):
        direct.conv2d_direct_weight_grad(x, dy, 3, 3, stride, padding, ranges=ranges)


def test_when_kernels_use_numbas_threads(two_workers, monkeypatch):
    def team(parts):
        with threads.numba_team(parts) as together:
            return together

    assert team(2) and team(3)
    assert not team(1)  # one range: nothing to share
    monkeypatch.setattr(threads._local, "inside", True, raising=False)  # inside a run_split share
    assert not team(2)
    monkeypatch.setattr(threads._local, "inside", False)
    with threads.numba_team(2) as outer:  # another caller holds the team: one after another
        assert outer and not team(2)
    monkeypatch.setattr(threads, "_forked", True)
    assert not team(2)
    monkeypatch.setattr(threads, "_forked", False)
    monkeypatch.setattr(threads, "workers", lambda: 1)
    assert not team(2)


def test_a_forked_child_runs_the_ranges_after_its_parent_used_numbas_threads(tmp_path):
    """In a fresh interpreter: the parent runs a ranged call on Numba's threads, forks, and the
    child makes the same call (serial build); both give the same bits."""
    code = textwrap.dedent("""
        import multiprocessing as mp
        import numpy as np
        from minicnn.kernels.cpu import direct, threads
        threads.workers = lambda: 2
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 16, 8, 8)).astype(np.float32)
        w = rng.standard_normal((64, 16, 3, 3)).astype(np.float32)
        ranges = [(0, 3), (3, 5)]
        parent = direct.conv2d_direct(x, w, None, (1, 1), (1, 1), ranges=ranges)

        def child(q):
            assert threads._forked
            q.put(direct.conv2d_direct(x, w, None, (1, 1), (1, 1), ranges=ranges))

        q = mp.get_context("fork").Queue()
        p = mp.get_context("fork").Process(target=child, args=(q,))
        p.start()
        got = q.get(timeout=120)
        p.join(60)
        assert p.exitcode == 0, p.exitcode
        np.testing.assert_array_equal(got, parent)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr


@pytest.mark.parametrize("layer", ["conv", "transpose"])
def test_layers_give_the_bits_of_one_call_per_share(layer, two_workers, monkeypatch):
    """A float32 Conv2d / ConvTranspose2d on the numba backend, its batch cut into one range per
    worker: the ranges in one kernel call (on Numba's threads) give the bits of the shares'
    path (one call per range on run_split's threads, the weight gradients summed in order),
    and the numpy reference's numbers to float rounding."""
    from minicnn import nn
    from minicnn.kernels.cpu import CONV_SCHEDULE

    monkeypatch.setattr(CONV_SCHEDULE, "split_min_macs", 0)
    monkeypatch.setattr(CONV_SCHEDULE, "direct_split_min_macs", 0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 8, 10, 10)).astype(np.float32)
    g = rng.standard_normal((5, 16, 10, 10)).astype(np.float32)

    def grads():
        mc.manual_seed(2)
        m = nn.Conv2d(8, 16, 3, padding=1) if layer == "conv" else nn.ConvTranspose2d(8, 16, 3, padding=1)
        y = m(mc.asarray(x))
        dx = m.backward(mc.asarray(g))
        return [mc.to_numpy(a) for a in (y, dx, m.weight.grad, m.bias.grad)]

    was = mc.backend_name()
    try:
        mc.set_backend("numba")
        assert CONV_SCHEDULE.direct_items(5, 10**9) == [(0, 3), (3, 5)]
        together = grads()
        monkeypatch.setattr(CONV_SCHEDULE.ops, "direct_ranges", False)
        for a, b in zip(together, grads()):
            np.testing.assert_array_equal(a, b)
        mc.set_backend("numpy")
        for a, b in zip(together, grads()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(1.0, float(np.abs(b).max())))
    finally:
        mc.set_backend(was)
