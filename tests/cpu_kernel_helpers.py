"""What the two files of Numba CPU kernel tests share (``test_kernels_cpu.py``: im2col,
col2im and pooling; ``test_kernels_cpu_elementwise.py``: activations, optimisers, dropout
and batch norm): the dtypes and tolerances, the ``dtype`` fixture that forces every
wrapper onto one compiled variant, and seeded inputs."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from minicnn.kernels.cpu import activations, batchnorm, conv, optim, pooling

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-6}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}

_MODULES = (conv, pooling, activations, optim, batchnorm)


# (compiled variant, dtype). Every variant is compiled per dtype on first use,
# which dominates this file's cold-cache run time; the parallel variants run
# the same source as the serial ones (only the outer loop is split between
# threads), so they are checked for float32 and the serial ones for both.
MODES = [("serial", np.float32), ("serial", np.float64), ("parallel", np.float32)]


def _force(monkeypatch, variant):
    value = 0 if variant == "parallel" else 1 << 62
    for mod in _MODULES:
        for name in dir(mod):
            if name.endswith("_PAR_MIN"):
                monkeypatch.setattr(mod, name, value)


@pytest.fixture(params=MODES, ids=[f"{v}-{np.dtype(d).name}" for v, d in MODES])
def dtype(request, monkeypatch):
    """The dtype to test, with every wrapper forced onto one compiled variant."""
    variant, dt = request.param
    _force(monkeypatch, variant)
    return dt


@pytest.fixture
def serial_f32(monkeypatch):
    _force(monkeypatch, "serial")
    return np.float32


def _rng(*key):
    """A generator seeded from ``key`` reproducibly (``hash`` is salted per process)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _distinct(rng, shape, dtype):
    """Distinct, exactly representable values (negatives included), shuffled."""
    size = int(np.prod(shape))
    return (rng.permutation(size).astype(dtype) - size // 3).reshape(shape) * dtype(0.5)


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1
