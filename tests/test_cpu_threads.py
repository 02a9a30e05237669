"""kernels/cpu/threads.py: batch ranges split over CPU threads, BLAS held at one
thread while the numba backend is selected, and layers that use the split
giving the same numbers as the serial path."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, nn
from minicnn.kernels.cpu import threads


def _blas_threads():
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def blas_at_three():
    """BLAS at 3 threads for the test (so that holding it at 1 is visible even on 1 core)."""
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    from threadpoolctl import threadpool_limits

    was = backend.backend_name()
    backend.set_backend("numpy")
    with threadpool_limits(limits=3, user_api="blas"):
        assert set(_blas_threads()) == {3}
        yield
    backend.set_backend(was)


def _reselect(name):
    """Select backend ``name`` afresh (via numpy), so that its on_select runs again: a test that
    leaves BLAS raised while numba stays selected would leak that into later tests."""
    backend.set_backend("numpy")
    backend.set_backend(name)


@pytest.fixture
def three_workers(monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 3)


def test_shares_are_round_robin_in_order_share_0_in_the_caller(three_workers):
    seen = {}

    def fn(share):
        seen[share[0]] = threading.current_thread().name
        return list(share)

    out = threads.run_split(fn, range(8))
    assert out == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("minicnn-cpu") and seen[2].startswith("minicnn-cpu") and seen[1] != seen[2]


def test_a_second_concurrent_caller_runs_the_same_shares_serially(three_workers):
    caller = threading.current_thread().name
    with threads._busy:  # as if another thread were using the helpers
        out = threads.run_split(lambda s: (threading.current_thread().name, s), range(5))
    assert out == [(caller, [0, 3]), (caller, [1, 4]), (caller, [2])]


def test_numba_parallel_mode_runs_the_shares_serially(three_workers, monkeypatch):
    monkeypatch.setattr(threads, "_numba_parallel_on", lambda: True)
    caller = threading.current_thread().name
    out = threads.run_split(lambda s: (threading.current_thread().name, s), range(4))
    assert out == [(caller, [0, 3]), (caller, [1]), (caller, [2])]


def test_first_failing_share_in_share_order_is_raised_after_all_ended(three_workers):
    ended = []

    def fn(share):
        if share[0] in (0, 2):
            raise ValueError(f"share {share[0]}")
        time.sleep(0.05)
        ended.append(share[0])
        return share

    with pytest.raises(ValueError, match="share 0"):
        threads.run_split(fn, range(3))
    assert ended == [1]  # share 1 (a helper) had finished before the caller re-raised
    assert threads.run_split(lambda s: s, range(3)) == [[0], [1], [2]]  # helpers still usable


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_fresh_helpers(three_workers):
    import os

    threads.run_split(lambda s: s, range(3))  # helpers exist in the parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not wait on the parent's helper queues
        try:
            ok = threads.run_split(lambda s: s, range(3)) == [[0], [1], [2]]
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("run_split hung in a forked child")
    assert os.read(r, 1) == b"1"
    os.close(r)


def test_one_item_or_one_worker_runs_in_the_calling_thread(monkeypatch):
    caller = threading.current_thread().name
    assert threads.run_split(lambda s: (threading.current_thread().name, s), [5]) == [(caller, [5])]
    monkeypatch.setattr(threads, "workers", lambda: 1)
    assert threads.run_split(lambda s: (threading.current_thread().name, s), [1, 2]) == [(caller, [1, 2])]


def test_nested_split_runs_the_same_shares_serially_inside_a_share(three_workers):
    out = threads.run_split(lambda share: threads.run_split(lambda inner: list(inner), range(4)), range(3))
    assert out == [[[0, 3], [1], [2]]] * 3


def test_a_failing_share_raises_and_blas_gets_its_threads_back(three_workers, blas_at_three):
    before = _blas_threads()
    inside = []

    def fn(share):
        inside.append(_blas_threads())
        if 1 in share:
            raise ValueError("share with item 1")
        return share

    was = backend.backend_name()
    backend.set_backend("numpy")  # nothing held: run_split limits BLAS itself
    try:
        with pytest.raises(ValueError, match="share with item 1"):
            threads.run_split(fn, range(3))
    finally:
        backend.set_backend(was)
    assert all(v == [1] * len(before) for v in inside)
    assert _blas_threads() == before


def test_selecting_numba_holds_blas_at_one_thread_until_deselected(blas_at_three):
    before = _blas_threads()
    try:
        backend.set_backend("numba")
        assert threads.blas_held()
        assert _blas_threads() == [1] * len(before)
        backend.set_backend("numba")  # re-selecting changes nothing
        assert _blas_threads() == [1] * len(before)
    finally:
        backend.set_backend("numpy")
    assert not threads.blas_held()
    assert _blas_threads() == before


def test_blas_threads_way_runs_the_same_shares_in_the_caller_with_blas_raised(three_workers):
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    caller = threading.current_thread().name
    was = backend.backend_name()
    backend.set_backend("numba")  # BLAS held at 1 thread
    try:
        held = _blas_threads()
        assert held == [1] * len(held)
        seen = []

        def fn(share):
            seen.append((threading.current_thread().name, _blas_threads(),
                         threads.run_split(lambda inner: _blas_threads(), range(2))))  # nested: as it is
            return list(share)

        assert threads.run_shares_blas_threads(fn, range(7)) == [[0, 3, 6], [1, 4], [2, 5]]
        assert [name for name, _, _ in seen] == [caller] * 3
        assert all(inside == [3] * len(held) and nested == [inside] * 2 for _, inside, nested in seen)
        assert _blas_threads() == [3] * len(held)  # left there for the next small call ...
        assert threads.run_split(lambda s: (_blas_threads(), list(s)), range(7)) == [
            ([1] * len(held), [0, 3, 6]), ([1] * len(held), [1, 4]), ([1] * len(held), [2, 5])]
        assert _blas_threads() == held  # ... until a run_split takes it back to one
        with pytest.raises(ValueError, match="share 1"):
            threads.run_shares_blas_threads(lambda s: (_ for _ in ()).throw(ValueError("share 1")) if 1 in s
                                            else s, range(3))
        assert _blas_threads() == [3] * len(held)
        backend.set_backend("numpy")
        backend.set_backend("numba")  # selected afresh: held at one thread
        assert _blas_threads() == held
    finally:
        _reselect(was)


def test_blas_threads_way_without_the_hold_puts_blas_back(three_workers, blas_at_three, monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 2)
    assert threads.run_shares_blas_threads(lambda s: (_blas_threads(), s), range(3)) == [
        ([2] * len(_blas_threads()), [0, 2]), ([2] * len(_blas_threads()), [1])]
    assert set(_blas_threads()) == {3}


def test_a_conv_calls_blas_threads_follow_its_own_ranges_not_history(monkeypatch):
    """The CPU rule sets BLAS's thread count from the call's own ranges: a small multi-range
    call at workers() threads, a single range or a large call at one, whatever ran before."""
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    from minicnn.kernels.cpu.split_chooser import SplitChooser

    monkeypatch.setattr(threads, "workers", lambda: 2)
    rule = SplitChooser(small="blas")  # (the default sends every call the "threads" way)
    calls = {"small": [(0, 1), (1, 2), (2, 3), (3, 4)], "one range": [(0, 4)], "large": [(0, 32), (32, 64)]}
    want = {"small": [2], "one range": [1], "large": [1]}
    was = backend.backend_name()
    backend.set_backend("numba")
    try:
        for order in (["small", "one range", "large", "small", "large", "one range", "small"],
                      ["large", "small", "small", "one range", "one range", "large"]):
            for name in order:
                seen = rule(lambda share: _blas_threads(), calls[name])
                assert all(v == want[name] * len(v) for v in seen), (name, seen)
    finally:
        _reselect(was)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_the_two_ways_agree_and_each_repeats_bitwise(monkeypatch, dtype, tol):
    """Net2's conv2 at batch 4 (per-sample ranges: its column matrix is over the 2 MiB keep
    limit and built one sample at a time), forward and backward,
    with the shares on helper threads and with BLAS's threads: the same sums of the same
    products (a product may round differently with another BLAS thread count), and each way
    gives the same bits when run again. The BLAS way is checked to run at 2 BLAS threads."""
    from minicnn.kernels.cpu import CONV_SCHEDULE
    from minicnn.kernels.cpu import split_chooser
    from minicnn.kernels.cpu.split_chooser import SplitChooser

    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    monkeypatch.setattr(threads, "workers", lambda: 2)
    counts = {"threads": set(), "blas": set()}

    def spy(name):
        real = split_chooser.WAYS[name]

        def run(fn, items):
            def share(s):
                counts[name].add(tuple(_blas_threads()))
                return fn(s)
            return real(share, items)
        return run

    monkeypatch.setattr(split_chooser, "WAYS", {n: spy(n) for n in ("threads", "blas")})
    monkeypatch.setattr(CONV_SCHEDULE, "direct_max", 0)  # the products' path (direct kernels take no split)
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 32, 16, 16)).astype(dtype), rng.standard_normal((4, 64, 16, 16)).astype(dtype)
    was = backend.backend_name()
    backend.set_backend("numba")
    out = {}
    try:
        for way in ("threads", "blas", "threads", "blas"):
            monkeypatch.setattr(CONV_SCHEDULE, "split", SplitChooser(force=way))
            mc.manual_seed(3)
            m = nn.Conv2d(32, 64, 5, padding=2)
            m = m.double() if dtype == np.float64 else m
            y = m(mc.asarray(x))
            dx = m.backward(mc.asarray(g))
            now = [mc.to_numpy(a) for a in (y, dx, m.weight.grad, m.bias.grad)]
            for a, b in zip(out.setdefault(way, now), now):
                assert b.dtype == dtype
                np.testing.assert_array_equal(a, b)
    finally:
        _reselect(was)
    n_libs = len(_blas_threads())
    assert counts == {"threads": {(1,) * n_libs}, "blas": {(2,) * n_libs}}
    for a, b in zip(out["threads"], out["blas"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(a).max())


@pytest.fixture(params=["threads", "blas"])
def numba_split(request, monkeypatch, three_workers):
    """numba backend with every conv split into ranges (no size threshold), the shares run
    on helper threads or with BLAS's threads in each product."""
    from minicnn.kernels.cpu import CONV_SCHEDULE
    from minicnn.kernels.cpu.split_chooser import SplitChooser

    monkeypatch.setattr(CONV_SCHEDULE, "split_min_macs", 0)
    monkeypatch.setattr(CONV_SCHEDULE, "direct_split_min_macs", 0)
    calls = []
    real = SplitChooser(force=request.param)

    def spy(fn, items):
        out = real(fn, items)
        calls.append(len(out))
        return out

    monkeypatch.setattr(CONV_SCHEDULE, "split", spy)
    was = backend.backend_name()
    backend.set_backend("numba")
    yield calls
    _reselect(was)


def _conv_grads(make, x, g, seed=1):
    mc.manual_seed(seed)
    m = make().double()
    y = m(mc.asarray(x))
    dx = m.backward(mc.asarray(g))
    return [mc.to_numpy(a) for a in (y, dx, m.weight.grad, m.bias.grad)]


@pytest.mark.parametrize("limits", [{"keep": 2**40, "chunk": 2**40}, {"keep": 0, "chunk": 2000}])
@pytest.mark.parametrize("layer", ["conv", "transpose"])
def test_split_layers_equal_the_numpy_reference_and_repeat_bitwise(numba_split, monkeypatch, limits, layer):
    from minicnn.kernels.cpu import CONV_SCHEDULE

    for name, value in limits.items():
        monkeypatch.setattr(CONV_SCHEDULE, name, value)
    rng = np.random.default_rng(0)
    if layer == "conv":
        def make():
            return nn.Conv2d(3, 4, 3, stride=2, padding=1)
        x, g = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((7, 4, 5, 4))
    else:
        def make():
            return nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
        x, g = rng.standard_normal((7, 3, 5, 4)), rng.standard_normal((7, 4, 10, 8))
    split = _conv_grads(make, x, g)
    assert numba_split == [3, 3]  # forward and backward each ran as 3 shares
    again = _conv_grads(make, x, g)
    for a, b in zip(split, again):
        np.testing.assert_array_equal(a, b)  # shares are summed in a fixed order
    backend.set_backend("numpy")
    ref = _conv_grads(make, x, g)
    for a, b in zip(split, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
