"""PyTorch parity (float64, weights copied through state_dict): forward outputs,
input gradients and parameter gradients of every module, optimiser steps and
the seed models. Skips cleanly when torch is absent."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DeconvNet, TutorialNet

from conftest import assert_close, copy_to_torch, distinct

torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")
tnn = torch.nn
F = torch.nn.functional

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("cpu_backend", "float64")]


def check_module(ours, theirs, x, extra_ours=(), extra_theirs=(), rtol=1e-5, seed=0):
    """Forward, backward with the same upstream gradient, compare everything."""
    theirs = copy_to_torch(ours, theirs.double())
    rng = np.random.default_rng(seed)
    y = ours(mc.asarray(x), *extra_ours)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx, *extra_theirs)
    assert_close(y, ty, "forward", rtol)
    r = rng.standard_normal(ty.shape)
    ours.zero_grad()
    dx = ours.backward(mc.asarray(r))
    ty.backward(torch.from_numpy(r))
    assert_close(dx, tx.grad, "input gradient", rtol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"grad {name}", rtol)
    tbuf = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_close(b, tbuf[name], f"buffer {name}", rtol)


CONV = [(2, 3, 9, 8, 4, 3, 1, 0), (1, 2, 7, 7, 3, (3, 2), (2, 1), (1, 0)), (3, 4, 6, 5, 5, 5, 2, 2)]


@pytest.mark.parametrize("case", CONV)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(case, bias):
    n, c, h, w, o, k, s, p = case
    x = np.random.default_rng(1).standard_normal((n, c, h, w))
    check_module(nn.Conv2d(c, o, k, s, p, bias=bias), tnn.Conv2d(c, o, k, s, p, bias=bias), x)


TCONV = [(2, 3, 4, 5, 2, 3, 1, 0, 0), (1, 2, 3, 3, 3, (3, 2), (2, 3), (1, 0), (1, 2)),
         (2, 4, 5, 5, 3, 5, 2, 2, 1)]


@pytest.mark.parametrize("case", TCONV)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(case, bias):
    n, c, h, w, o, k, s, p, op = case
    x = np.random.default_rng(2).standard_normal((n, c, h, w))
    check_module(nn.ConvTranspose2d(c, o, k, s, p, op, bias=bias),
                 tnn.ConvTranspose2d(c, o, k, s, p, op, bias=bias), x)


@pytest.mark.parametrize("case", [(2, 3, 8, 8, 2, 2, 0), (1, 2, 7, 9, 3, 2, 1), (2, 2, 6, 5, 3, 1, 1),
                                  (1, 1, 9, 8, (3, 2), (2, 1), (1, 0))])
def test_maxpool2d_values_indices_grad(case):
    n, c, h, w, k, s, p = case
    x = distinct((n, c, h, w), np.random.default_rng(3))
    ours = nn.MaxPool2d(k, s, p, return_indices=True)
    (y, idx) = ours(mc.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = F.max_pool2d(tx, k, s, p, return_indices=True)
    assert_close(y, ty, "forward")
    np.testing.assert_array_equal(mc.to_numpy(idx), tidx.numpy())
    r = np.random.default_rng(4).standard_normal(ty.shape)
    ty.backward(torch.from_numpy(r))
    assert_close(ours.backward(mc.asarray(r)), tx.grad, "input gradient")


def test_maxpool2d_ties_pick_first():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = 1.0  # two equal maxima in the first window
    _, idx = nn.MaxPool2d(2, return_indices=True)(mc.asarray(x))
    _, tidx = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    np.testing.assert_array_equal(mc.to_numpy(idx), tidx.numpy())


@pytest.mark.parametrize("case", [(2, 3, 8, 8, 2), (1, 2, 9, 6, 3)])
@pytest.mark.parametrize("size", ["default", "given"])
def test_maxunpool2d(case, size):
    n, c, h, w, k = case
    e = 1 if size == "given" else 0  # odd pre-pool sizes need output_size
    x = distinct((n, c, h + e, w + e), np.random.default_rng(5))
    _, tidx = F.max_pool2d(torch.from_numpy(x), k, return_indices=True)
    v = np.random.default_rng(6).standard_normal(tidx.shape)
    out_size = (h + 1, w + 1) if size == "given" else None
    if size == "default" and (h % k or w % k):
        pytest.skip("default size only reaches planes that are multiples of the kernel")
    ours = nn.MaxUnpool2d(k)
    y = ours(mc.asarray(v), mc.asarray(tidx.numpy()), output_size=out_size)
    tv = torch.tensor(v, requires_grad=True)
    ty = F.max_unpool2d(tv, tidx, k, output_size=out_size)
    assert_close(y, ty, "forward")
    r = np.random.default_rng(7).standard_normal(ty.shape)
    ty.backward(torch.from_numpy(r))
    assert_close(ours.backward(mc.asarray(r)), tv.grad, "input gradient")


@pytest.mark.parametrize("k,s,p,hw", [(3, 2, 1, 5), (3, 2, 1, 7), (2, 1, 1, 4), (4, 2, 2, 6)])
def test_maxunpool2d_default_size_with_padding(k, s, p, hw):
    """The default output size counts the padding: MaxUnpool2d(3, 2, 1) on a 3x3 map
    gives 5x5, like PyTorch ((H - 1) * s - 2p + k)."""
    x = distinct((2, 3, hw, hw), np.random.default_rng(12))
    tv_in, tidx = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
    ours = nn.MaxUnpool2d(k, s, p)
    y = ours(mc.asarray(tv_in.numpy()), mc.asarray(tidx.numpy()))
    tv = tv_in.clone().requires_grad_(True)
    ty = F.max_unpool2d(tv, tidx, k, s, p)
    assert tuple(y.shape) == tuple(ty.shape)
    assert_close(y, ty, "forward")
    r = np.random.default_rng(13).standard_normal(ty.shape)
    ty.backward(torch.from_numpy(r))
    assert_close(ours.backward(mc.asarray(r)), tv.grad, "input gradient")


@pytest.mark.parametrize("ours,theirs", [
    (lambda: nn.ReLU(), lambda: tnn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2)),
])
def test_relu_gradient_at_zero(ours, theirs):
    """At exactly 0 and -0.0 the gradient follows PyTorch's rule (ReLU: 0;
    LeakyReLU: the slope), not whichever side a kernel happens to pick."""
    x = np.array([[0.0, -0.0, 1.5, -2.0, 0.0, -0.0, 1e-300, -1e-300]])
    check_module(ours(), theirs(), x)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    check_module(nn.Linear(7, 4, bias=bias), tnn.Linear(7, 4, bias=bias),
                 np.random.default_rng(8).standard_normal((5, 7)))


@pytest.mark.parametrize("ours,theirs", [
    (lambda: nn.ReLU(), lambda: tnn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2)),
    (lambda: nn.ELU(0.8), lambda: tnn.ELU(0.8)),
    (lambda: nn.GELU(), lambda: tnn.GELU()),
    (lambda: nn.GELU("tanh"), lambda: tnn.GELU("tanh")),
    (lambda: nn.Sigmoid(), lambda: tnn.Sigmoid()),
    (lambda: nn.Tanh(), lambda: tnn.Tanh()),
    (lambda: nn.Flatten(), lambda: tnn.Flatten()),
])
def test_elementwise(ours, theirs):
    check_module(ours(), theirs(), np.random.default_rng(9).standard_normal((3, 4, 5, 2)) * 2)


@pytest.mark.parametrize("ours,theirs,shape", [
    (lambda: nn.BatchNorm2d(3), lambda: tnn.BatchNorm2d(3), (4, 3, 5, 6)),
    (lambda: nn.BatchNorm2d(2, momentum=None), lambda: tnn.BatchNorm2d(2, momentum=None), (3, 2, 2, 3)),
    (lambda: nn.BatchNorm1d(5), lambda: tnn.BatchNorm1d(5), (6, 5)),
    (lambda: nn.BatchNorm1d(3, affine=False), lambda: tnn.BatchNorm1d(3, affine=False), (4, 3, 7)),
])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm(ours, theirs, shape, training):
    rng = np.random.default_rng(10)
    m, t = ours(), theirs()
    if m.affine:
        m.weight.data = mc.asarray(rng.uniform(0.5, 1.5, shape[1]))
        m.bias.data = mc.asarray(rng.standard_normal(shape[1]))
    m.register_buffer("running_mean", mc.asarray(rng.standard_normal(shape[1])))
    m.register_buffer("running_var", mc.asarray(rng.uniform(0.5, 2.0, shape[1])))
    m.train(training)
    t.train(training)
    check_module(m, t, rng.standard_normal(shape) * 3 + 1)
    if training:  # a second batch: running statistics keep following PyTorch
        x2 = rng.standard_normal(shape)
        m(mc.asarray(x2))
        t(torch.from_numpy(x2))
        for name, b in dict(t.named_buffers()).items():
            assert_close(dict(m.named_buffers())[name], b, name)


def test_dropout_scaling_and_eval():
    m = nn.Dropout(0.3)
    x = np.ones((200, 100))
    mc.manual_seed(0)
    y = mc.to_numpy(m(mc.asarray(x)))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7)  # PyTorch's inverted scaling
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_array_equal(mc.to_numpy(m.backward(mc.asarray(x))), y)
    m.eval()
    np.testing.assert_array_equal(mc.to_numpy(m(mc.asarray(x))), x)
    d2 = nn.Dropout2d(0.5)
    y2 = mc.to_numpy(d2(mc.asarray(np.ones((8, 16, 3, 3)))))
    per_channel = y2.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))  # whole channels


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy(reduction):
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((6, 5)) * 10
    logits[0, 0] = 1000.0  # stable for huge logits
    target = rng.integers(0, 5, 6)
    ours = nn.CrossEntropyLoss(reduction=reduction)
    loss = ours(mc.asarray(logits), mc.asarray(target))
    tl = torch.tensor(logits, requires_grad=True)
    tloss = F.cross_entropy(tl, torch.from_numpy(target), reduction=reduction)
    assert_close(loss, tloss, "loss")
    tloss.backward()
    assert_close(ours.backward(), tl.grad, "gradient")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse(reduction):
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    ours = nn.MSELoss(reduction=reduction)
    loss = ours(mc.asarray(a), mc.asarray(b))
    ta = torch.tensor(a, requires_grad=True)
    tloss = F.mse_loss(ta, torch.from_numpy(b), reduction=reduction)
    assert_close(loss, tloss, "loss")
    tloss.backward()
    assert_close(ours.backward(), ta.grad, "gradient")


# --- optimisers --------------------------------------------------------------

def _run_optimizer(make_ours, make_theirs, steps=4):
    rng = np.random.default_rng(13)
    shapes = [(4, 3), (5,), (2, 3, 2, 2)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]
    ps = [nn.Parameter(mc.asarray(a.copy())) for a in init]
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt, topt = make_ours(ps), make_theirs(tps)
    for k in range(steps):
        for p, tp, g in zip(ps, tps, grads[k]):
            p.grad = mc.asarray(g.copy())
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ps, tps)):
            assert_close(p.data, tp, f"step {k} param {i}")
    return opt, topt


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.01),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd(kw):
    opt, topt = _run_optimizer(lambda p: mc.optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw))
    tstate = topt.state_dict()["state"]
    for i, st in opt.state_dict()["state"].items():
        if "momentum_buffer" in st:
            assert_close(st["momentum_buffer"], tstate[i]["momentum_buffer"], f"momentum buffer {i}")


ADAM_CASES = [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)]


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam(kw):
    opt, topt = _run_optimizer(lambda p: mc.optim.Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw))
    tstate = topt.state_dict()["state"]
    for i, st in opt.state_dict()["state"].items():
        assert_close(st["exp_avg"], tstate[i]["exp_avg"], f"exp_avg {i}")
        assert_close(st["exp_avg_sq"], tstate[i]["exp_avg_sq"], f"exp_avg_sq {i}")
        assert st["step"] == float(tstate[i]["step"])


def test_schedulers():
    p = [nn.Parameter(mc.asarray(np.zeros(2)))]
    tp = [torch.zeros(2, requires_grad=True)]
    for ours, theirs in [
        (lambda o: mc.optim.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (lambda o: mc.optim.CosineAnnealingLR(o, 7, 0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.01)),
    ]:
        o, to = mc.optim.SGD(p, lr=0.1), torch.optim.SGD(tp, lr=0.1)
        s, ts = ours(o), theirs(to)
        for _ in range(10):
            np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
            to.step()
            s.step()
            ts.step()


# --- seed models ------------------------------------------------------------

from benchmarks.torch_models import TorchDeconvNet, TorchTutorialNet  # noqa: E402  (torch present here)


def test_tutorial_net_training_step():
    mc.manual_seed(0)
    ours = TutorialNet()
    theirs = copy_to_torch(ours, TorchTutorialNet().double())
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 10, 4)
    crit = nn.CrossEntropyLoss()
    opt = mc.optim.SGD(ours.parameters(), lr=0.001, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.001, momentum=0.9)
    for step in range(3):
        out = ours(mc.asarray(x))
        loss = crit(out, mc.asarray(y))
        opt.zero_grad()
        ours.backward(crit.backward())
        tout = theirs(torch.from_numpy(x))
        tloss = F.cross_entropy(tout, torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        assert_close(out, tout, f"step {step} logits")
        assert_close(loss, tloss, f"step {step} loss")
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_close(p.grad, tparams[name].grad, f"step {step} grad {name}")
        opt.step()
        topt.step()
    for name, p in theirs.named_parameters():
        assert_close(dict(ours.named_parameters())[name].data, p, f"weights {name}")


@pytest.mark.parametrize("lam", [1.0, 0.5])
def test_deconv_net_training_step(lam):
    mc.manual_seed(1)
    ours = DeconvNet()
    theirs = copy_to_torch(ours, TorchDeconvNet().double())
    rng = np.random.default_rng(15)
    x, y = rng.standard_normal((3, 3, 32, 32)), rng.integers(0, 10, 3)
    ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
    opt = mc.optim.Adam(ours.parameters(), lr=1e-3, weight_decay=1e-4)
    topt = torch.optim.Adam(theirs.parameters(), lr=1e-3, weight_decay=1e-4)
    xa = mc.asarray(x)
    for step in range(2):
        logits, xhat = ours(xa)
        loss = ce(logits, mc.asarray(y)) + lam * mse(xhat, xa)
        opt.zero_grad()
        dx = ours.backward(ce.backward(), mse.backward(lam))
        tx = torch.tensor(x, requires_grad=True)
        tlogits, txhat = theirs(tx)
        tloss = F.cross_entropy(tlogits, torch.from_numpy(y)) + lam * F.mse_loss(txhat, tx.detach())
        topt.zero_grad()
        tloss.backward()
        assert_close(logits, tlogits, "logits")
        assert_close(xhat, txhat, "x_hat")
        assert_close(loss, tloss, "loss")
        assert_close(dx, tx.grad, "input gradient")
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_close(p.grad, tparams[name].grad, f"grad {name}")
        opt.step()
        topt.step()
