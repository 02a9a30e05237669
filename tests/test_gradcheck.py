"""Finite-difference gradient checks (float64) for every module and whole models.

Each case compares the hand-written backward (input and parameter gradients)
with central differences of sum(out * R) for a random R; relative error < 1e-6.
Runs under every CPU backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DeconvNet, TutorialNet

from conftest import distinct, gradcheck

pytestmark = pytest.mark.usefixtures("cpu_backend", "float64")

CONV_CASES = [
    # (N, C, H, W, O, k, stride, padding)
    (2, 3, 7, 7, 4, 3, 1, 0),
    (1, 2, 6, 5, 3, 3, 2, 1),
    (2, 1, 9, 8, 2, (3, 2), (2, 3), (1, 0)),
    (3, 2, 5, 5, 3, 5, 1, 2),
    (1, 3, 8, 8, 2, 2, 2, 0),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(case, bias):
    n, c, h, w, o, k, s, p = case
    mc.manual_seed(1)
    m = nn.Conv2d(c, o, k, stride=s, padding=p, bias=bias)
    x = np.random.default_rng(2).standard_normal((n, c, h, w))
    gradcheck(m, [x])


TCONV_CASES = [
    # (N, C_in, H, W, C_out, k, stride, padding, output_padding)
    (2, 3, 4, 4, 2, 3, 1, 0, 0),
    (1, 2, 3, 5, 3, 3, 2, 1, 1),
    (2, 2, 5, 4, 1, (3, 2), (2, 3), (1, 0), (1, 2)),
    (3, 4, 2, 2, 3, 5, 1, 2, 0),
    (1, 3, 3, 3, 2, 2, 2, 0, 1),
]


@pytest.mark.parametrize("case", TCONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d(case, bias):
    n, c, h, w, o, k, s, p, op = case
    mc.manual_seed(3)
    m = nn.ConvTranspose2d(c, o, k, stride=s, padding=p, output_padding=op, bias=bias)
    x = np.random.default_rng(4).standard_normal((n, c, h, w))
    gradcheck(m, [x])


POOL_CASES = [
    # (N, C, H, W, k, stride, padding)
    (2, 3, 6, 6, 2, 2, 0),
    (1, 2, 7, 5, 3, 2, 1),
    (2, 1, 5, 7, 3, 1, 0),  # overlapping windows: gradients add at shared maxima
    (1, 2, 9, 8, (3, 2), (2, 1), (1, 1)),
    (3, 2, 4, 4, 4, 4, 2),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool2d(case):
    n, c, h, w, k, s, p = case
    m = nn.MaxPool2d(k, s, p)
    x = distinct((n, c, h, w), np.random.default_rng(5))
    gradcheck(m, [x])


@pytest.mark.parametrize("case", [(2, 3, 6, 6, 2, 2), (1, 2, 7, 5, 3, 3), (2, 2, 9, 6, 3, 3)])
def test_maxunpool2d(case):
    n, c, h, w, k, s = case
    pool = nn.MaxPool2d(k, s, return_indices=True)
    _, idx = pool(mc.asarray(distinct((n, c, h, w), np.random.default_rng(6))))
    y = np.random.default_rng(7).standard_normal(idx.shape)
    m = nn.MaxUnpool2d(k, s)
    gradcheck(m, [y, mc.to_numpy(idx)], call=lambda mod, a, i: mod(a, i, output_size=(h, w)))


@pytest.mark.parametrize("case", [((2, 5), 5, 3), ((1, 7), 7, 4), ((2, 3, 6), 6, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(case, bias):
    shape, fin, fout = case
    mc.manual_seed(8)
    m = nn.Linear(fin, fout, bias=bias)
    gradcheck(m, [np.random.default_rng(9).standard_normal(shape)])


ACTIVATIONS = [
    lambda: nn.ReLU(),
    lambda: nn.LeakyReLU(0.1),
    lambda: nn.ELU(0.7),
    lambda: nn.GELU(),
    lambda: nn.GELU(approximate="tanh"),
    lambda: nn.Sigmoid(),
    lambda: nn.Tanh(),
]


@pytest.mark.parametrize("make", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 7)])
def test_activation(make, shape):
    gradcheck(make(), [distinct(shape, np.random.default_rng(10), scale=0.3)])


@pytest.mark.parametrize("cls,shape", [(nn.Dropout, (3, 4, 5)), (nn.Dropout2d, (2, 4, 3, 3))])
def test_dropout_train(cls, shape):
    m = cls(p=0.4)
    gradcheck(m, [np.random.default_rng(11).standard_normal(shape)], reseed=123)


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (3, 2, 3, 4)), (nn.BatchNorm2d, (1, 3, 2, 2)),
                                       (nn.BatchNorm1d, (5, 3)), (nn.BatchNorm1d, (2, 4, 3))])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm(cls, shape, training):
    mc.manual_seed(12)
    m = cls(shape[1])
    rng = np.random.default_rng(13)
    m.weight.data = mc.asarray(rng.uniform(0.5, 1.5, shape[1]))
    m.bias.data = mc.asarray(rng.standard_normal(shape[1]))
    m.running_mean = mc.asarray(rng.standard_normal(shape[1]))
    m.register_buffer("running_mean", mc.asarray(rng.standard_normal(shape[1])))
    m.register_buffer("running_var", mc.asarray(rng.uniform(0.5, 2.0, shape[1])))
    m.train(training)
    gradcheck(m, [rng.standard_normal(shape) * 2 + 1])


def test_flatten():
    gradcheck(nn.Flatten(), [np.random.default_rng(14).standard_normal((2, 3, 2, 2))])


class _LossAsModule(nn.Module):
    """Wraps a loss so gradcheck can drive it: forward(pred) -> loss (1,)."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, target

    def forward(self, pred):
        return self.loss(pred, mc.asarray(self.target)).reshape(1)

    def backward(self, grad):
        return self.loss.backward(grad.reshape(()))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy(reduction):
    rng = np.random.default_rng(15)
    logits = rng.standard_normal((5, 4)) * 3
    target = rng.integers(0, 4, 5)
    gradcheck(_LossAsModule(nn.CrossEntropyLoss(reduction=reduction), target), [logits])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse(reduction):
    rng = np.random.default_rng(16)
    gradcheck(_LossAsModule(nn.MSELoss(reduction=reduction), rng.standard_normal((2, 3, 4))),
              [rng.standard_normal((2, 3, 4))])


def test_small_model():
    mc.manual_seed(17)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ELU(), nn.Flatten(), nn.Linear(16, 5),
                      nn.GELU(), nn.Linear(5, 3))
    gradcheck(m, [np.random.default_rng(18).standard_normal((2, 2, 8, 8))])


def test_tutorial_net_batch1():
    mc.manual_seed(19)
    gradcheck(TutorialNet(), [np.random.default_rng(20).standard_normal((1, 3, 32, 32))], tol=1e-6)


def test_deconv_net_two_outputs():
    """Both heads' gradients meet at the shared latent; checked against finite differences."""
    mc.manual_seed(21)
    gradcheck(DeconvNet(), [np.random.default_rng(22).standard_normal((2, 3, 32, 32))])
