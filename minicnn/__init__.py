"""minicnn: a convolutional-network engine whose every backward pass is written by hand.

Public API (PyTorch names where they exist)::

    import minicnn as mc
    mc.set_backend("numba")           # or "numpy", "cupy"; env MINICNN_BACKEND
    mc.manual_seed(0)
    net = mc.nn.Sequential(mc.nn.Conv2d(3, 6, 5), mc.nn.ReLU(), ...)
    out = net(mc.asarray(x))          # forward
    loss = criterion(out, y); net.backward(criterion.backward())
    opt.step()
"""

from __future__ import annotations

import importlib.util as _ilu
import sys as _sys
from pathlib import Path as _Path

# ``kernels/`` is installed as ``minicnn.kernels`` (see pyproject.toml). When the
# package is used straight from a source checkout without installing, map the
# top-level ``kernels/`` folder to that name so the same imports work.
try:
    import minicnn.kernels  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover - only in an uninstalled checkout
    _src = _Path(__file__).resolve().parent.parent / "kernels" / "__init__.py"
    if not _src.exists():
        raise
    _spec = _ilu.spec_from_file_location("minicnn.kernels", _src, submodule_search_locations=[str(_src.parent)])
    _mod = _ilu.module_from_spec(_spec)
    _sys.modules["minicnn.kernels"] = _mod
    _spec.loader.exec_module(_mod)

from minicnn.backend import (  # noqa: E402
    BackendError,
    asarray,
    available_backends,
    get_backend,
    set_backend,
    to_numpy,
)
from minicnn.random import default_generator, manual_seed  # noqa: E402
from minicnn.serialization import load, save  # noqa: E402
from minicnn import data, models, nn, optim  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "data",
    "models",
    "asarray",
    "available_backends",
    "default_generator",
    "get_backend",
    "load",
    "manual_seed",
    "nn",
    "optim",
    "save",
    "set_backend",
    "to_numpy",
]
