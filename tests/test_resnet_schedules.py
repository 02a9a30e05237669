"""The learning-rate schedules the ResNet recipe uses, against PyTorch's own values:
MultiStepLR, LambdaLR, OneCycleLR (lr and the momentum or beta1 it cycles, with its
defaults and its options), warm-up + cosine (PyTorch's SequentialLR of LinearLR and
CosineAnnealingLR), and jumping to any step through state_dict / last_epoch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn

torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")
L = torch.optim.lr_scheduler

pytestmark = pytest.mark.torch


def _pair(kind="sgd"):
    p = [nn.Parameter(mc.asarray(np.zeros(2)))]
    tp = [torch.zeros(2, requires_grad=True)]
    if kind == "sgd":
        return mc.optim.SGD(p, lr=0.1, momentum=0.9), torch.optim.SGD(tp, lr=0.1, momentum=0.9)
    return mc.optim.Adam(p, lr=0.1), torch.optim.Adam(tp, lr=0.1)


def _follow(make, make_torch, steps, kind="sgd"):
    """Step both schedulers ``steps`` times; lr (and momentum / betas) equal at every step."""
    o, to = _pair(kind)
    s, ts = make(o), make_torch(to)
    key = "momentum" if kind == "sgd" else "betas"
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's SequentialLR/LambdaLR chatter
        for _ in range(steps):
            np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
            np.testing.assert_allclose(np.ravel(o.param_groups[0][key]), np.ravel(to.param_groups[0][key]),
                                       rtol=1e-12)
            lrs.append(s.get_last_lr()[0])
            to.step()
            s.step()
            ts.step()
    return s, lrs


ONE_CYCLE = [
    dict(max_lr=0.4, total_steps=50),                                         # PyTorch's defaults
    dict(max_lr=0.2, epochs=3, steps_per_epoch=7, pct_start=0.25, div_factor=10, final_div_factor=100),
    dict(max_lr=0.3, total_steps=37, anneal_strategy="linear", three_phase=True),
    dict(max_lr=0.3, total_steps=20, cycle_momentum=False),
    dict(max_lr=0.1, total_steps=9, base_momentum=0.8, max_momentum=0.9),
]


@pytest.mark.parametrize("kw", ONE_CYCLE)
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_one_cycle_matches_torch(kw, kind):
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    s, lrs = _follow(lambda o: mc.optim.OneCycleLR(o, **kw), lambda o: L.OneCycleLR(o, **kw), total, kind)
    assert max(lrs) == pytest.approx(kw["max_lr"], rel=0.05)
    with pytest.raises(ValueError, match="total_steps"):  # one step past the end, like PyTorch
        s.step()
        s.step()


def test_multistep_matches_torch():
    _follow(lambda o: mc.optim.MultiStepLR(o, [6, 9]), lambda o: L.MultiStepLR(o, [6, 9]), 14)
    _follow(lambda o: mc.optim.MultiStepLR(o, [3, 3, 8], 0.5), lambda o: L.MultiStepLR(o, [3, 3, 8], 0.5), 10)


def test_lambda_matches_torch():
    f = lambda t: 0.9 ** t + 0.01 * (t % 3)  # noqa: E731
    _follow(lambda o: mc.optim.LambdaLR(o, f), lambda o: L.LambdaLR(o, f), 12)


@pytest.mark.parametrize("warmup,total,start", [(4, 20, 0.1), (0, 10, 0.1), (5, 6, 0.25)])
def test_warmup_cosine_is_linear_then_cosine(warmup, total, start):
    def theirs(o):
        cos = L.CosineAnnealingLR(o, total - warmup)
        if warmup == 0:
            return cos
        return L.SequentialLR(o, [L.LinearLR(o, start, total_iters=warmup), cos], milestones=[warmup])

    _follow(lambda o: mc.optim.LambdaLR(o, mc.optim.warmup_cosine(warmup, total, start)), theirs, total)
    with pytest.raises(ValueError, match="warmup"):
        mc.optim.warmup_cosine(total, total)


@pytest.mark.parametrize("make", [
    lambda o: mc.optim.OneCycleLR(o, 0.5, total_steps=30),
    lambda o: mc.optim.MultiStepLR(o, [10, 20]),
    lambda o: mc.optim.LambdaLR(o, mc.optim.warmup_cosine(3, 30)),
])
def test_any_step_can_be_reached_directly(make):
    """What a resumed run does: the schedule at step t depends on t alone."""
    o, _ = _pair()
    s = make(o)
    walked = []
    for _ in range(25):
        walked.append((o.param_groups[0]["lr"], o.param_groups[0]["momentum"]))
        s.step()
    o2, _ = _pair()
    s2 = make(o2)
    for t in (17, 3, 0, 24):
        s2.jump_to(t)
        assert (o2.param_groups[0]["lr"], o2.param_groups[0]["momentum"]) == walked[t]
    s2.load_state_dict({"last_epoch": 11, "base_lrs": s2.base_lrs})
    assert (o2.param_groups[0]["lr"], o2.param_groups[0]["momentum"]) == walked[11]
    o3, _ = _pair()
    assert mc.optim.lr_values(make(o3), 25) == [lr for lr, _ in walked]


def test_bad_arguments():
    o, _ = _pair()
    with pytest.raises(ValueError, match="total_steps"):
        mc.optim.OneCycleLR(o, 0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        mc.optim.OneCycleLR(o, 0.1, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="pct_start"):
        mc.optim.OneCycleLR(o, 0.1, total_steps=5, pct_start=1.5)
    with pytest.raises(TypeError, match="callable"):
        mc.optim.LambdaLR(o, 0.5)
