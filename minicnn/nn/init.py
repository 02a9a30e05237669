"""PyTorch's default initialisation, drawn from minicnn's seeded generator.

``kaiming_uniform`` with ``a = sqrt(5)`` gives U(-b, b) with
b = gain * sqrt(3 / fan_in) and gain = sqrt(2 / (1 + a**2)), i.e.
b = 1 / sqrt(fan_in): PyTorch's default for Conv, ConvTranspose and Linear
weights. Biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

fan_in is ``weight.shape[1] * prod(weight.shape[2:])`` -- for ConvTranspose2d
(weight (in, out, kH, kW)) that is out*kH*kW, exactly as PyTorch computes it.
Values are drawn on the host in float64 and cast, then moved to the backend,
so one seed gives the same weights on every backend.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import backend
from minicnn.random import default_generator

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """dtype for new parameters (float32 unless changed; gradient checks use float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def fan_in(shape) -> int:
    """PyTorch's fan_in of a weight of this shape."""
    if len(shape) < 2:
        raise ValueError(f"fan_in needs a weight with >= 2 dims, got shape {shape}")
    return int(shape[1] * math.prod(shape[2:]))


def uniform(shape, bound: float, dtype=None, generator=None):
    """A backend array of U(-bound, bound) values."""
    gen = generator or default_generator()
    host = gen.uniform(-bound, bound, size=shape).astype(dtype or _default_dtype)
    return backend.asarray(host)


def kaiming_uniform(shape, a: float = math.sqrt(5), dtype=None, generator=None):
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in(shape))
    return uniform(shape, bound, dtype, generator)


def default_bias(n: int, weight_shape, dtype=None, generator=None):
    fi = fan_in(weight_shape)
    bound = 1.0 / math.sqrt(fi) if fi > 0 else 0.0
    return uniform((n,), bound, dtype, generator)


def zeros(shape, dtype=None):
    return backend.current().xp.zeros(shape, dtype=dtype or _default_dtype)


def ones(shape, dtype=None):
    return backend.current().xp.ones(shape, dtype=dtype or _default_dtype)
