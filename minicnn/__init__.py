"""minicnn: a convolutional-network engine whose every backward pass is written by hand.

Public API (PyTorch names where they exist)::

    import minicnn as mc
    mc.set_backend("numba")           # or "numpy", "cupy"; env MINICNN_BACKEND
    mc.manual_seed(0)
    net = mc.nn.Sequential(mc.nn.Conv2d(3, 6, 5), mc.nn.ReLU(), ...)
    out = net(mc.asarray(x))          # forward
    print(mc.summary(net, (3, 32, 32)))  # layer table: output shapes, parameter counts
    loss = criterion(out, y); net.backward(criterion.backward())
    opt.step()
"""

def _map_source_kernels() -> None:
    """``kernels/`` is installed as ``minicnn.kernels`` (see pyproject.toml). In a
    source checkout used without installing, map the top-level ``kernels/``
    folder to that name so the same imports work."""
    import importlib.util
    import sys
    from pathlib import Path

    try:
        import minicnn.kernels  # noqa: F401
    except ModuleNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        src = Path(__file__).resolve().parent.parent / "kernels" / "__init__.py"
        if not src.exists():
            raise
        spec = importlib.util.spec_from_file_location("minicnn.kernels", src,
                                                      submodule_search_locations=[str(src.parent)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["minicnn.kernels"] = module
        spec.loader.exec_module(module)


_map_source_kernels()
del _map_source_kernels

from minicnn.backend import (  # noqa: E402
    BackendError,
    asarray,
    available_backends,
    backend_name,
    set_backend,
    to_numpy,
)
from minicnn.random import default_generator, manual_seed  # noqa: E402
from minicnn.serialization import CheckpointError, load, save  # noqa: E402
from minicnn import data, fusion, models, nn, optim  # noqa: E402
from minicnn.summary import ModelSummary, summary  # noqa: E402  (the function shadows the submodule's name)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CheckpointError",
    "data",
    "models",
    "asarray",
    "available_backends",
    "default_generator",
    "backend_name",
    "load",
    "manual_seed",
    "ModelSummary",
    "nn",
    "optim",
    "save",
    "set_backend",
    "summary",
    "to_numpy",
]
