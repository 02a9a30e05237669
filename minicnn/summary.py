"""``minicnn.summary(model, input_size)``: a layer table like torchinfo's or Keras's.

One forward pass of zeros, shape (batch_size, *input_size) (for an image net
(N, C, H, W) with input_size = (C, H, W)), runs in eval mode; every layer call
on the way records its output shape. A *row* is a leaf layer (a module with
no children, or one holding parameters of its own), named by its dotted path
(``layer1.0.conv1``): containers (Sequential) and blocks (ResNet's
BasicBlock, DeconvNet) are shown through their children, in the order the
forward pass calls them, so a DeconvNet's decoder rows follow its head's.
A layer called twice gets a row per call, its parameters counted on the
first; a layer the forward pass never calls gets a row without a shape.

The module tree has no hooks, so each leaf's ``forward`` is wrapped for the
duration of the pass. Afterwards every module's attributes are put back as
they were (training flags, caches of the last forward, so a pending
``backward`` still works), and the default random generator's state too:
parameters, BatchNorm running statistics and random draws are untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from minicnn import backend, nn
from minicnn.random import default_generator


@dataclass
class ModelSummary:
    """The table. ``rows``: dicts with ``name``, ``type``, ``output_shape`` (a tuple with the
    real batch size first; a list of tuples for a layer with several outputs, such as a pool
    returning its switches; None when not called), ``params`` and ``repeat`` (a later call
    of a layer already shown). Also ``total_params``, ``trainable_params``, ``input_shape``
    (batch first) and the bytes of the input, of every row's output and of the parameters."""

    model_name: str
    input_shape: tuple
    rows: list = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    input_bytes: int = 0
    activation_bytes: int = 0
    param_bytes: int = 0

    def __str__(self) -> str:
        def shape_text(shape):
            if shape is None:
                return "--  (not called)"
            if isinstance(shape, list):
                return ", ".join(shape_text(s) for s in shape)
            return str([-1, *shape[1:]])  # -1: any batch size

        cells = [(f"{r['name']} ({r['type']})", shape_text(r["output_shape"]),
                  "(repeat)" if r["repeat"] else f"{r['params']:,}") for r in self.rows]
        w0 = max([len("Layer (type)")] + [len(c[0]) for c in cells]) + 2
        w1 = max([len("Output shape")] + [len(c[1]) for c in cells]) + 2
        w2 = max([len("Param #")] + [len(c[2]) for c in cells])
        width = w0 + w1 + w2
        mb = 1024.0 ** 2
        lines = [f"{self.model_name}: input {[-1, *self.input_shape[1:]]} (batch {self.input_shape[0]})",
                 "=" * width, f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>{w2}}", "=" * width]
        lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in cells]
        lines += ["=" * width,
                  f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                  "-" * width,
                  f"Input size (MB): {self.input_bytes / mb:.2f}",
                  f"Forward activations (MB): {self.activation_bytes / mb:.2f}",
                  f"Params size (MB): {self.param_bytes / mb:.2f}",
                  "-" * width]
        return "\n".join(lines)

    __repr__ = __str__


def _check_sizes(input_size, batch_size) -> tuple:
    if isinstance(input_size, (int, np.integer)):
        input_size = (input_size,)
    if not isinstance(input_size, (tuple, list)) or not input_size:
        raise ValueError(f"summary: input_size must be a non-empty tuple of positive ints without the batch "
                         f"dimension, e.g. (3, 32, 32) for (N, 3, 32, 32) images; got {input_size!r}")
    bad = [v for v in input_size if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0]
    if bad:
        raise ValueError(f"summary: every entry of input_size must be a positive int; got {tuple(input_size)!r} "
                         f"(bad: {bad})")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"summary: batch_size must be a positive int, got {batch_size!r}")
    return (int(batch_size), *(int(v) for v in input_size))


def _shape_of(out):
    if isinstance(out, (tuple, list)):
        return [_shape_of(o) for o in out]
    return tuple(int(v) for v in out.shape)


def _nbytes(out) -> int:
    if isinstance(out, (tuple, list)):
        return sum(_nbytes(o) for o in out)
    return int(math.prod(out.shape)) * out.dtype.itemsize


def summary(model: nn.Module, input_size, batch_size: int = 1) -> ModelSummary:
    """Run ``model`` once on zeros of shape (batch_size, *input_size) in eval mode and
    return its :class:`ModelSummary` (``str()`` of it is the table).

    ``input_size`` leaves the batch out: (3, 32, 32) for CIFAR-10 images (N, 3, 32, 32).
    The model is left as it was found (see the module docstring). Raises ValueError
    for a bad ``input_size`` / ``batch_size``, or one the model cannot take.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: expected a minicnn.nn.Module, got {type(model).__name__}")
    shape = _check_sizes(input_size, batch_size)
    params = list(model.parameters())
    dtype = params[0].data.dtype if params else nn.get_default_dtype()
    x = backend.current().xp.zeros(shape, dtype=dtype)

    named, seen = [], set()
    for name, m in model.named_modules():  # a module registered twice keeps its first name
        if id(m) not in seen:
            seen.add(id(m))
            named.append((name, m))
    leaves = [(name or type(m).__name__, m) for name, m in named if not m._modules or m._parameters]
    rows, called, counted = [], set(), set()
    activation_bytes = 0

    def wrap(name, m, forward):
        def recorded(*args, **kwargs):
            nonlocal activation_bytes
            out = forward(*args, **kwargs)
            own = [p for p in m._parameters.values() if p is not None]
            first = id(m) not in counted
            counted.add(id(m))
            called.add(id(m))
            rows.append({"name": name, "type": type(m).__name__, "output_shape": _shape_of(out),
                         "params": sum(int(p.data.size) for p in own) if first else 0, "repeat": not first})
            activation_bytes += _nbytes(out)
            return out
        return recorded

    saved = [(m, dict(vars(m))) for _, m in named]  # training flags, caches, ...
    gen = default_generator()
    rng_state = gen.bit_generator.state
    try:
        model.eval()
        for name, m in leaves:
            object.__setattr__(m, "forward", wrap(name, m, m.forward))  # shadows the class's forward
        try:
            model(x)
        except (ValueError, TypeError, IndexError) as e:
            raise ValueError(f"summary: {type(model).__name__} cannot take an input of shape {shape} "
                             f"(batch_size, *input_size); input_size leaves the batch dimension out. "
                             f"The forward pass said: {e}") from e
    finally:
        for m, attrs in saved:
            vars(m).clear()
            vars(m).update(attrs)
        gen.bit_generator.state = rng_state

    for name, m in leaves:  # layers the forward pass never reached still hold parameters
        if id(m) not in called:
            own = [p for p in m._parameters.values() if p is not None]
            rows.append({"name": name, "type": type(m).__name__, "output_shape": None,
                         "params": sum(int(p.data.size) for p in own), "repeat": False})
    return ModelSummary(
        model_name=type(model).__name__, input_shape=shape, rows=rows,
        total_params=sum(int(p.data.size) for p in params),
        trainable_params=sum(int(p.data.size) for p in params if p.requires_grad),
        input_bytes=_nbytes(x), activation_bytes=activation_bytes,
        param_bytes=sum(int(p.data.size) * p.data.dtype.itemsize for p in params))
