"""kernels/cpu/split_chooser.py: which way the CPU conv schedule runs its shares, by a
fixed rule on the call's sample count (never by timing), and its environment switch."""

from __future__ import annotations

import pytest

from minicnn.kernels.cpu import split_chooser, threads
from minicnn.kernels.cpu.split_chooser import SplitChooser, from_environment


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 2)


def test_every_call_goes_the_threads_way_by_default(two_workers):
    """The default rule: "threads" for every call (the "blas" way's spinning BLAS workers stall
    the direct kernels' OpenMP threads, split_chooser's module doc)."""
    ch = SplitChooser()
    for items in ([(0, 1), (1, 2), (2, 3), (3, 4)], [(0, 3), (3, 5)], [(0, 4)], [(i, i + 1) for i in range(64)]):
        assert ch.way(items) == "threads"


def test_a_small_batch_goes_the_blas_way_where_asked(two_workers, monkeypatch):
    ran = []
    monkeypatch.setattr(split_chooser, "WAYS", {n: (lambda fn, items, n=n: ran.append(n) or [fn(items)])
                                                for n in ("threads", "blas")})
    ch = SplitChooser(small="blas")  # at most 2 samples per worker: 4 on two
    assert ch.way([(0, 1), (1, 2), (2, 3), (3, 4)]) == "blas"  # batch 4, a kept matrix per sample
    assert ch.way([(0, 3), (3, 5)]) == "threads"  # batch 5 in chunks of 3
    assert ch.way([(i, i + 1) for i in range(64)]) == "threads"
    assert SplitChooser(small="blas", max_samples_per_worker=4).way([(0, 3), (3, 6), (6, 8)]) == "blas"
    assert ch(lambda share: len(share), [(0, 2), (2, 4)]) == [2] and ran == ["blas"]
    assert ch(lambda share: len(share), [(0, 32), (32, 64)]) == [2] and ran == ["blas", "threads"]
    assert ch.way([(0, 4)]) == ch.way([(0, 1)]) == "threads"  # one range: in the caller, BLAS at one thread
    assert ch(lambda share: share, [(0, 2)]) == [[(0, 2)]] and ran == ["blas", "threads", "threads"]
    assert SplitChooser(small="blas", max_samples_per_worker=0).way([(0, 1), (1, 2)]) == "threads"
    assert SplitChooser(small="blas", force="threads").way([(0, 1), (1, 2)]) == "threads"
    assert SplitChooser(force="blas").way([(0, 640)]) == "blas"


def test_direct_calls_hand_their_ranges_to_the_kernels(two_workers, monkeypatch):
    """The CPU's direct kernels take the batch ranges themselves (one call, run on Numba's
    threads): the schedule's split is not asked; a layer that is not direct still goes the
    split's way."""
    import numpy as np

    from minicnn.kernels import cpu
    from minicnn.kernels.conv_schedule import ConvSchedule

    ran, calls = [], []
    monkeypatch.setattr(split_chooser, "WAYS", {n: (lambda fn, items, n=n: ran.append(n) or [fn(items)])
                                                for n in ("threads", "blas")})
    ops = cpu.CONV_SCHEDULE.ops
    spy = type(ops)(**vars(ops))
    for name in ("conv2d_direct", "conv2d_direct_input_grad", "conv2d_direct_weight_grad"):
        setattr(spy, name, lambda *a, _f=getattr(ops, name), _n=name, **k: calls.append((_n, k.get("ranges")))
                or _f(*a, **k))
    sched = ConvSchedule(spy, keep=0, chunk=1 << 30, split=SplitChooser(small="blas"), kept_split=4,
                         split_min_macs=0, direct_max=512, direct_rule=lambda w, px, stride: w.shape[3] == 5)
    x = np.random.default_rng(0).standard_normal((4, 3, 12, 12)).astype(np.float32)
    w = np.ones((6, 3, 5, 5), np.float32)
    y, cache = sched.conv2d_forward(x, w, None, (1, 1), (0, 0))  # direct: one range per worker
    dx, dw, _ = sched.conv2d_backward(y, cache)
    assert ran == [] and calls == [(name, [(0, 2), (2, 4)]) for name in
                                   ("conv2d_direct", "conv2d_direct_input_grad", "conv2d_direct_weight_grad")]
    w3 = np.ones((6, 3, 3, 3), np.float32)  # not direct: the products' rule
    y, cache = sched.conv2d_forward(x, w3, None, (1, 1), (0, 0))
    assert ran == ["blas"]


def test_the_rule_scales_with_the_workers(monkeypatch):
    monkeypatch.setattr(threads, "workers", lambda: 4)
    assert SplitChooser(small="blas").way([(0, 4), (4, 8)]) == "blas"
    assert SplitChooser(small="blas").way([(0, 4), (4, 9)]) == "threads"


def test_bad_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="unknown way 'gpu'; expected one of 'threads', 'blas'"):
        SplitChooser(force="gpu")
    monkeypatch.setenv("MINICNN_CPU_SPLIT", "both")
    with pytest.raises(ValueError, match="MINICNN_CPU_SPLIT='both': expected 'auto' or one of 'threads', 'blas'"):
        from_environment()
    monkeypatch.setenv("MINICNN_CPU_SPLIT", " BLAS ")
    assert from_environment().force == "blas"
    monkeypatch.setenv("MINICNN_CPU_SPLIT", "auto")
    assert from_environment().force is None
    monkeypatch.delenv("MINICNN_CPU_SPLIT")
    assert from_environment().force is None


def test_the_cpu_schedule_uses_the_rule_by_default():
    import os

    from minicnn.kernels.cpu import CONV_SCHEDULE

    if os.environ.get("MINICNN_CPU_SPLIT", "auto").strip().lower() not in ("", "auto"):
        pytest.skip("MINICNN_CPU_SPLIT forces one way in this environment")
    assert isinstance(CONV_SCHEDULE.split, SplitChooser) and CONV_SCHEDULE.split.force is None
    assert CONV_SCHEDULE.split.max_samples_per_worker == 2
