"""The numpy and numba backends train the same: a few SGD steps of the seed
nets (and of a net with BatchNorm and Dropout) from the same seed give the
same loss trajectory and the same weights, to float rounding.

What differs between the backends is the order of some float32 sums (the
numba backend splits convolutions over threads and adds the per-thread weight
gradients; its batch-norm sums run in float64), so the comparison is to a
relative 1e-5 after five steps (measured: at most 1.4e-6), not bitwise.
Dropout masks come from the same generator draws on both backends, so the
same units are dropped.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import MODELS

pytestmark = pytest.mark.skipif("numba" not in mc.available_backends(), reason="numba is not installed")

STEPS = 5


class BNDropNet(nn.Module):
    """conv-BN-ReLU-pool, Dropout2d, then Linear-BN1d-ReLU-Dropout-Linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.25),
            nn.Flatten(), nn.Linear(8 * 16 * 16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)

    def backward(self, g):
        return self.body.backward(g)


def _train(backend, name, batch):
    prev = mc.backend_name()
    mc.set_backend(backend)
    try:
        mc.manual_seed(0)
        model = BNDropNet() if name == "bn-dropout" else MODELS[name]()
        opt = mc.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
        rng = np.random.default_rng(1)
        shape = (batch, 1, 28, 28) if name == "mnist" else (batch, 3, 32, 32)
        losses = []
        for _ in range(STEPS):
            x = mc.asarray(rng.standard_normal(shape).astype(np.float32))
            y = mc.asarray(rng.integers(0, 10, batch))
            opt.zero_grad()
            if name == "deconv":
                logits, x_hat = model(x)
                loss = ce(logits, y) + mse(x_hat, x)
                model.backward(ce.backward(), mse.backward())
            else:
                loss = ce(model(x), y)
                model.backward(ce.backward())
            opt.step()
            losses.append(float(loss))
        return losses, {k: mc.to_numpy(v) for k, v in model.state_dict().items()}
    finally:
        mc.set_backend(prev)


@pytest.mark.parametrize("name", ["tutorial", "net2", "mnist", "deconv", "bn-dropout"])
def test_same_loss_trajectory_and_weights(name):
    batch = 16
    l_np, w_np = _train("numpy", name, batch)
    l_nb, w_nb = _train("numba", name, batch)
    assert all(np.isfinite(l_np)) and len(set(l_np)) == STEPS  # it trains: the loss moves every step
    np.testing.assert_allclose(l_nb, l_np, rtol=1e-5)
    assert w_np.keys() == w_nb.keys()
    for k in w_np:
        scale = np.abs(w_np[k]).max() + 1e-12
        np.testing.assert_allclose(w_nb[k], w_np[k], rtol=1e-5, atol=1e-5 * scale, err_msg=k)
