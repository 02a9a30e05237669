"""Conv2d's cache-sized batch chunks give the same results as one whole im2col matrix."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.nn import conv


@pytest.mark.usefixtures("cpu_backend")
@pytest.mark.parametrize("need_dx", [True, False])
def test_chunked_equals_whole(monkeypatch, need_dx):
    rng = np.random.default_rng(0)
    x = mc.asarray(rng.standard_normal((5, 3, 9, 8)))
    g = mc.asarray(rng.standard_normal((5, 4, 5, 4)))
    results = []
    for limits in ({"keep": 2**40, "chunk": 2**40}, {"keep": 0, "chunk": 1}, {"keep": 0, "chunk": 3 * 8 * 27 * 20}):
        monkeypatch.setattr(conv, "CPU_LIMITS", limits)
        mc.manual_seed(1)
        m = nn.Conv2d(3, 4, 3, stride=(2, 2), padding=1).double()
        m.needs_input_grad = need_dx
        y = m(x)
        assert (m._cache[1] is None) == (limits["keep"] == 0)  # chunked: no whole matrix kept
        dx = m.backward(g)
        results.append((mc.to_numpy(y), None if dx is None else mc.to_numpy(dx), mc.to_numpy(m.weight.grad),
                         mc.to_numpy(m.bias.grad)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if a is None:
                assert b is None
            else:
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
