"""One seeded source of randomness for initialisation, dropout and shuffling.

``minicnn.manual_seed(s)`` resets the default generator (a NumPy PCG64
``Generator``). Initial weights are always drawn on the host from it and then
moved to the backend, so one seed gives the same weights on every backend.
Dropout masks on the GPU come from a CuPy generator seeded from this one.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()
_device_generator = None


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the default generator (and the device generator, if any)."""
    global _generator, _device_generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    _device_generator = None
    return _generator


def default_generator() -> np.random.Generator:
    """The host generator every random draw uses unless given another."""
    return _generator


def device_generator():
    """A CuPy generator seeded from the host generator (created on first use)."""
    global _device_generator
    if _device_generator is None:
        import cupy

        _device_generator = cupy.random.default_rng(int(_generator.integers(2**63)))
    return _device_generator
