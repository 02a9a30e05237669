"""Runs of layers that a backend computes in one fused kernel: the backend's business.

Each layer file reads as its own math, and a model is a chain of such layers. A
backend that has a fused kernel for a run of them (``kernels/fused.py`` defines
each fused operation as the composition it replaces, bit for bit) gets that run
through it: :func:`steps` turns a ``Sequential``'s children into the list its
``forward`` runs, with each run it fuses replaced by one step object, and its
``backward`` walks the same list in reverse. Nothing else changes: the same
numbers, parameters, ``state_dict`` and module tree.

Fused today, where the backend's kernel table has the entry (numba and cupy):

* ``ReLU() -> MaxPool2d(k)`` when the pool's windows tile the input (stride ==
  kernel, no padding) -- :class:`ReLUMaxPool2d`, entries ``relu_maxpool2d_*``;
* a ReLU of a sum, the residual blocks' merge ``relu(main + shortcut)`` -- :func:`add_relu`
  (called by the block, as it has no Sequential to fuse in), entry ``add_relu_forward``;
* ``BatchNorm1d/2d -> ReLU`` in evaluation mode (running statistics, every array of x's
  dtype) -- :func:`batchnorm_relu`, in a Sequential through :class:`BatchNormReLU` and in the
  residual blocks (``relu1(bn1(.))``) called by the block, entry ``batchnorm_relu_forward_eval``;
  in training mode the two layers run as they are. Both keep their usual caches, so their
  own ``backward`` calls work after it.

A run is left alone when a module could behave otherwise than its class says:
a ReLU with a visualisation rule (``backward_mode`` other than ``"normal"``), a
pool that returns its indices, a subclass, or a ``forward``/``backward``
replaced on the instance; and when fusion is off: ``set_enabled(False)`` or the
environment variable ``MINICNN_FUSION=0`` (read at import), e.g. to time both.

After a fused forward, ``MaxPool2d.indices`` holds the switches as usual, but
the two modules hold no caches of their own: call ``backward`` on the
Sequential (or switch fusion off to call theirs one by one).
"""

from __future__ import annotations

import os

from minicnn import backend
from minicnn.kernels.fused import relu_maxpool2d_tiles
from minicnn.nn.activation import ReLU
from minicnn.nn.norm import BatchNorm1d, BatchNorm2d, eval_cache
from minicnn.nn.pool import MaxPool2d

_enabled = os.environ.get("MINICNN_FUSION", "1").strip().lower() not in ("0", "false", "no", "off")


def set_enabled(flag: bool = True) -> None:
    """Fuse the runs the current backend has kernels for (``True``, the default) or never."""
    global _enabled
    _enabled = bool(flag)


def enabled() -> bool:
    """Whether fusion is on (see :func:`set_enabled`)."""
    return _enabled


def _plain(m, cls) -> bool:
    """``m`` is exactly a ``cls`` whose forward and backward are the class's own."""
    return type(m) is cls and "forward" not in vars(m) and "backward" not in vars(m)


class ReLUMaxPool2d:
    """``MaxPool2d(k)(ReLU()(x))`` through ``ops.relu_maxpool2d_forward/backward``.

    x (N, C, H, W) -> out (N, C, H // kh, W // kw); cache: out and the switches
    (the ReLU's mask is ``out > 0`` at the switches). An input the kernels don't
    take (not 4-D, smaller than the window) runs the two modules one after the
    other instead, so their own checks and messages apply.
    """

    first = (ReLU,)  # the classes a run can start with (``fits`` wants exactly one of them)

    def __init__(self, relu: ReLU, pool: MaxPool2d):
        self.relu, self.pool = relu, pool
        self._cache = None
        self._unfused = False

    @staticmethod
    def fits(a, b) -> bool:
        """Whether modules ``a``, ``b`` (in this order) form a run this step computes."""
        return (_plain(a, ReLU) and a.backward_mode == "normal" and _plain(b, MaxPool2d)
                and not b.return_indices and relu_maxpool2d_tiles(*b.kernel_size, *b.stride, *b.padding))

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        kh, kw = self.pool.kernel_size
        self._unfused = getattr(x, "ndim", 0) != 4 or x.shape[2] < kh or x.shape[3] < kw
        if self._unfused:
            return self.pool(self.relu(x))
        out, idx = backend.current().ops.relu_maxpool2d_forward(x, kh, kw)
        self.relu._cache = self.pool._cache = None  # theirs would be stale: the Sequential's backward goes here
        self.pool.indices = idx
        self._cache = (out, idx, x.shape[2], x.shape[3], kh, kw)
        return out

    def backward(self, dout):
        if self._unfused:
            return self.relu.backward(self.pool.backward(dout))
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return backend.current().ops.relu_maxpool2d_backward(dout, *self._cache)

    def __repr__(self) -> str:
        return f"ReLUMaxPool2d(kernel_size={self.pool.kernel_size})"


def batchnorm_relu(bn, relu: ReLU, x):
    """``relu(bn(x))`` for a batch norm and a ReLU module: in evaluation mode (running
    statistics), with x, the affine parameters and the statistics of one dtype, in one pass
    (``ops.batchnorm_relu_forward_eval``), both modules' caches set as their own forwards set
    them (so ``relu.backward`` then ``bn.backward`` work as usual); else, or with fusion off,
    ``relu(bn(x))`` itself."""
    ops = backend.current().ops
    if not (_enabled and hasattr(ops, "batchnorm_relu_forward_eval") and BatchNormReLU.fits(bn, relu)
            and not bn.training and bn.track_running_stats):
        return relu(bn(x))
    bn._check(x)
    gamma, beta = (bn.weight.data, bn.bias.data) if bn.affine else (None, None)
    mean, var = bn.running_mean, bn.running_var
    if any(a.dtype != x.dtype for a in (mean, var) + ((gamma, beta) if bn.affine else ())):
        return relu(bn(x))
    y, inv_std, relu._cache = ops.batchnorm_relu_forward_eval(x, gamma, beta, mean, var, bn.eps)
    bn._cache = eval_cache(x, mean, inv_std, gamma)
    return y


class BatchNormReLU:
    """``ReLU()(BatchNorm2d(c)(x))`` (or BatchNorm1d) in a Sequential through
    :func:`batchnorm_relu`: fused in evaluation mode, the two modules in training mode;
    backward is always the two modules' own (their caches are set either way)."""

    first = (BatchNorm2d, BatchNorm1d)

    def __init__(self, bn, relu: ReLU):
        self.bn, self.relu = bn, relu

    @staticmethod
    def fits(a, b) -> bool:
        """Whether modules ``a``, ``b`` (in this order) form a run this step computes."""
        return (_plain(a, BatchNorm2d) or _plain(a, BatchNorm1d)) and _plain(b, ReLU) and b.backward_mode == "normal"

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return batchnorm_relu(self.bn, self.relu, x)

    def backward(self, dout):
        return self.bn.backward(self.relu.backward(dout))

    def __repr__(self) -> str:
        return f"BatchNormReLU({self.bn.num_features})"


# the fused steps, each with fits(a, b) over two modules, and the kernel-table entry it needs
_RUNS = ((ReLUMaxPool2d, "relu_maxpool2d_forward"), (BatchNormReLU, "batchnorm_relu_forward_eval"))
# the classes any run starts with: steps() asks fits() only at those (it runs on every forward)
_FIRSTS = frozenset(c for run, _ in _RUNS for c in run.first)


def add_relu(relu: ReLU, a, b):
    """``relu(a + b)`` for a ReLU module and two arrays of one shape and dtype, in one pass
    (``ops.add_relu_forward``: the sum is never written) where the backend has it and ``relu``
    is a plain ReLU with the normal rule; the module keeps its usual cache (the mask), so its
    ``backward`` is unchanged. Otherwise, or with fusion off, ``relu(a + b)`` itself."""
    ops = backend.current().ops
    if (not _enabled or not hasattr(ops, "add_relu_forward") or not (_plain(relu, ReLU) and
                                                                       relu.backward_mode == "normal")
            or getattr(a, "shape", None) != getattr(b, "shape", None) or getattr(a, "dtype", None) != b.dtype):
        return relu(a + b)
    y, relu._cache = ops.add_relu_forward(a, b)
    return y


def steps(seq) -> list:
    """What ``seq.forward`` runs: its children in order, each run of two that the
    current backend fuses replaced by its fused step."""
    mods = list(seq._modules.values())
    ops = backend.current().ops
    runs = [cls for cls, entry in _RUNS if hasattr(ops, entry)]
    if not _enabled or not runs:
        return mods

    def first_fit(i):
        """Index in ``runs`` of the first run that mods[i], mods[i + 1] form, or None."""
        if i + 1 >= len(mods) or type(mods[i]) not in _FIRSTS:
            return None
        return next((k for k, cls in enumerate(runs) if cls.fits(mods[i], mods[i + 1])), None)

    out, i = [], 0
    while i < len(mods):
        k = first_fit(i)
        later = first_fit(i + 1) if k is not None else None
        if later is not None and later < k:  # the run listed first gets a module two runs share
            k = None                         # (BatchNorm2d, ReLU, MaxPool2d: ReLUMaxPool2d)
        run = None if k is None else runs[k]
        if run is None:
            out.append(mods[i])
            i += 1
        else:
            out.append(run(mods[i], mods[i + 1]))
            i += 2
    return out
