"""SGD/Adam hand every tensor of a group to one ``*_update_multi`` call, grouped
by what the per-tensor update needs to be equal (momentum buffer's first step,
Adam's step count); the result equals the per-tensor reference update."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, optim
from minicnn.kernels import reference as ref
from minicnn.nn.module import Parameter


def _params(rng, shapes):
    return [Parameter(mc.asarray(rng.standard_normal(s))) for s in shapes]


@pytest.mark.usefixtures("cpu_backend")
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_groups_first_steps_and_equals_per_tensor_reference(nesterov):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    ps = _params(rng, shapes)
    mine = [p.data.copy() for p in ps]
    bufs = [None] * len(ps)
    opt = optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    calls = []
    ops = backend.current().ops
    real = ops.sgd_update_multi
    ops.sgd_update_multi = lambda *a: (calls.append((len(a[0]), a[-1])), real(*a))
    try:
        for step in range(3):
            # the last parameter gets its first gradient only at step 1
            grads = [rng.standard_normal(s) if (k < 2 or step >= 1) else None for k, s in enumerate(shapes)]
            for p, g in zip(ps, grads):
                p.grad = None if g is None else mc.asarray(g)
            opt.step()
            for k, g in enumerate(grads):
                if g is None:
                    continue
                first = bufs[k] is None
                if first:
                    bufs[k] = np.empty_like(mine[k])
                ref.sgd_update(mine[k], g, bufs[k], 0.1, 0.9, 0.0, nesterov, 1e-3, first)
            for k, p in enumerate(ps):
                np.testing.assert_allclose(mc.to_numpy(p.data), mine[k], rtol=1e-13, atol=0)
    finally:
        ops.sgd_update_multi = real
    # step 0: one call (first, 2 tensors); step 1: two calls (old buffers, the new one); step 2: one call
    assert calls == [(2, True), (2, False), (1, True), (3, False)]


@pytest.mark.usefixtures("cpu_backend")
def test_adam_groups_by_step_count_and_equals_per_tensor_reference():
    rng = np.random.default_rng(1)
    shapes = [(4,), (2, 3)]
    ps = _params(rng, shapes)
    mine = [p.data.copy() for p in ps]
    ms = [np.zeros_like(m) for m in mine]
    vs = [np.zeros_like(m) for m in mine]
    steps = [0, 0]
    opt = optim.Adam(ps, lr=1e-2, weight_decay=1e-2)
    for step in range(4):
        present = [True, step != 1]  # the second parameter misses step 1: its count lags
        grads = [rng.standard_normal(s) if present[k] else None for k, s in enumerate(shapes)]
        for p, g in zip(ps, grads):
            p.grad = None if g is None else mc.asarray(g)
        opt.step()
        for k, g in enumerate(grads):
            if g is not None:
                steps[k] += 1
                ref.adam_update(mine[k], g, ms[k], vs[k], steps[k], 1e-2, 0.9, 0.999, 1e-8, 1e-2)
        for k, p in enumerate(ps):
            np.testing.assert_allclose(mc.to_numpy(p.data), mine[k], rtol=1e-13, atol=0)
    assert steps == [4, 3]
    assert [opt.state[id(p)]["step"] for p in ps] == [4.0, 3.0]


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps + [ps[0]], lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam([{"params": ps}, {"params": [ps[1]]}])])
def test_a_parameter_listed_twice_is_refused(make):
    ps = _params(np.random.default_rng(2), [(2,), (3,)])
    with pytest.raises(ValueError, match="appears more than once"):
        make(ps)


@pytest.mark.parametrize("make,bad", [
    (lambda ps, v: mc.optim.SGD(ps, lr=v), "lr"),
    (lambda ps, v: mc.optim.SGD(ps, lr=0.1, momentum=v), "momentum"),
    (lambda ps, v: mc.optim.SGD(ps, lr=0.1, weight_decay=v), "weight_decay"),
    (lambda ps, v: mc.optim.Adam(ps, lr=v), "lr"),
    (lambda ps, v: mc.optim.Adam(ps, eps=v), "eps"),
    (lambda ps, v: mc.optim.Adam(ps, betas=(v, 0.999)), "beta1"),
])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_hyper_parameters_are_refused(make, bad, value):
    params = [mc.nn.Parameter(np.zeros(3, np.float32))]
    with pytest.raises(ValueError, match=f"must be finite numbers, got {bad}="):
        make(params, value)
