"""``Parameter``, ``Module`` and ``Sequential``: the containers every layer uses.

A module's ``forward(x)`` computes its output and keeps what its backward
needs (its *cache*); ``backward(dout)`` returns the gradient with respect
to the input and *adds* the gradients of its parameters into ``param.grad``
(accumulating, like PyTorch, until ``zero_grad()``).

Names, ``state_dict`` keys and array layouts are PyTorch's for the same module
tree, so ``{k: v.numpy() for k, v in torch_model.state_dict().items()}``
loads directly with ``load_state_dict``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from minicnn import backend


class Parameter:
    """A trainable array and its gradient.

    ``data`` is an array of the backend that created it; ``grad`` is None until
    a backward pass adds into it.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate(self, g) -> None:
        """``grad += g`` (creating ``grad`` on first use, as a C-contiguous copy: a conv
        schedule's weight gradient arrives as a transposed view, and the optimisers' kernels
        want contiguous arrays)."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = g.astype(self.data.dtype, order="C", copy=True).reshape(self.data.shape)
        else:
            self.grad += g.reshape(self.data.shape)

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: registers parameters, buffers and sub-modules by attribute."""

    needs_input_grad = True  # False: Conv2d, ConvTranspose2d and Linear skip d loss / d input

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------
    # A parameter or sub-module is registered in its table (what the traversals, state_dict and
    # the optimisers read) and also kept as a plain attribute, so that ``self.weight`` or
    # ``self.conv1`` is an ordinary lookup: through ``__getattr__`` (Python's fallback after a
    # failed lookup, as PyTorch does it) each took 0.88 us, 25 times a batch-4 step of the
    # tutorial net and 245 of ResNet-20 (benchmarks/notes/cpu-overhead.md). Buffers stay behind
    # ``__getattr__``: code replaces them in ``_buffers`` directly (``load_state_dict``, ``to``).
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        found = False
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                found = True
        if name in self.__dict__:
            object.__delattr__(self, name)
        elif not found:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name: str, value) -> None:
        """A non-trainable array saved in ``state_dict`` (e.g. BatchNorm's running stats)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = value

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        if value is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, value)

    def add_module(self, name: str, module: "Module") -> None:
        setattr(self, name, module)

    # -- the computation ----------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *douts):
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def cuda_graph_blocker(self) -> str | None:
        """Why a CUDA graph recording of this module's forward/backward (see
        ``minicnn.cuda_graph``) would not replay correctly, or None when it
        would. A module must say so when a step changes Python-side state or
        draws random numbers on the host: a replay repeats the recorded work
        only. Only this module's own code counts; children report for themselves."""
        return None

    def _need_cache(self, cache):
        if cache is None:
            raise RuntimeError(f"{self._describe()}: backward() called before forward()")
        return cache

    def _describe(self) -> str:
        extra = self.extra_repr()
        return f"{type(self).__name__}({extra})"

    # -- traversal -----------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True,
                      memo: set | None = None) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for this module and every submodule, depth first, as PyTorch's: a
        module registered under two names (shared) comes once, under its first name, unless
        ``remove_duplicate`` is False (what ``state_dict`` uses: every name gets its keys)."""
        if remove_duplicate:
            memo = set() if memo is None else memo
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, remove_duplicate, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, object]]:
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    # -- modes and gradients -------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def input_layer(self) -> "Module":
        """The module that receives the model's input: the first registered
        sub-module, recursively (``conv1`` of the seed models)."""
        m = self
        while m._modules:
            m = next(iter(m._modules.values()))
        return m

    def requires_input_grad_(self, flag: bool = True) -> "Module":
        """Whether ``backward`` must compute d loss / d input (default: yes).

        Training never needs it, and for the first convolution it is the
        largest single piece of work (a GEMM and a col2im over the whole
        input). With ``False`` the input layer skips it and its ``backward``
        returns None, as PyTorch skips inputs without ``requires_grad``.
        The layers with weights (Conv2d, ConvTranspose2d, Linear) skip it; any
        other input layer has no product to save and returns dx as usual.
        """
        object.__setattr__(self.input_layer(), "needs_input_grad", bool(flag))
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """PyTorch-named host copies of every parameter and buffer."""
        sd = OrderedDict()
        for mname, m in self.named_modules(remove_duplicate=False):
            for pname, p in m._parameters.items():
                sd[f"{mname}.{pname}" if mname else pname] = backend.to_numpy(p.data).copy()
            for bname, b in m._buffers.items():
                if b is not None:
                    sd[f"{mname}.{bname}" if mname else bname] = backend.to_numpy(b).copy()
        return sd

    def load_state_dict(self, state_dict, strict: bool = True) -> "Module":
        """Copy arrays into this module tree; list every missing/unexpected/mis-shaped key."""
        own = {}
        for mname, m in self.named_modules(remove_duplicate=False):
            for pname in m._parameters:
                own[f"{mname}.{pname}" if mname else pname] = (m, pname, "p")
            for bname, b in m._buffers.items():
                if b is not None:
                    own[f"{mname}.{bname}" if mname else bname] = (m, bname, "b")
        given = {str(k): v for k, v in state_dict.items()}
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        mismatched = []
        for k, (m, name, kind) in own.items():
            if k in given:
                cur = m._parameters[name].data if kind == "p" else m._buffers[name]
                shape = tuple(getattr(given[k], "shape", ()))
                if shape != tuple(cur.shape):
                    mismatched.append(f"{k}: checkpoint {shape} vs model {tuple(cur.shape)}")
        problems = []
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + " | ".join(problems))
        for k, (m, name, kind) in own.items():
            if k not in given:
                continue
            if kind == "p":
                p = m._parameters[name]
                p.data = backend.asarray(np.asarray(backend.to_numpy(given[k])), dtype=p.data.dtype).copy()
            else:
                cur = m._buffers[name]
                m._buffers[name] = backend.asarray(np.asarray(backend.to_numpy(given[k])), dtype=cur.dtype).copy()
        return self

    # -- moving between dtypes and backends ----------------------------------
    def _apply(self, fn_param, fn_buffer) -> "Module":
        for m in self.modules():
            for p in m._parameters.values():
                p.data = fn_param(p.data)
                if p.grad is not None:
                    p.grad = fn_param(p.grad)
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = fn_buffer(b)
        return self

    def to(self, dtype) -> "Module":
        """Cast floating parameters and buffers to ``dtype`` (like ``model.to(torch.float64)``)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to: expected a floating dtype, got {dtype}")

        def cast(a):
            return a.astype(dtype) if a.dtype.kind == "f" else a

        return self._apply(cast, cast)

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    def to_backend(self, name: str | None = None) -> "Module":
        """Move every parameter and buffer to backend ``name`` (default: the active one)."""
        be = backend.get(name)

        def move(a):
            return be.asarray(a)

        return self._apply(move, move)

    # -- printing ------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            lines[0] = f"{type(self).__name__}("
            for name, m in self._modules.items():
                sub = repr(m).replace("\n", "\n  ")
                lines.append(f"  ({name}): {sub}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


class Sequential(Module):
    """Modules applied in order; ``backward`` runs their backwards in reverse.

    A run of children that the backend computes as one fused kernel (``minicnn.fusion``)
    is one step of both passes; the numbers are those of the children one by one."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def append(self, m: Module) -> "Sequential":
        self.add_module(str(len(self)), m)
        return self

    def forward(self, x):
        from minicnn.fusion import steps  # the children, with the runs the backend fuses as one step

        object.__setattr__(self, "_steps", steps(self))
        for m in self._steps:
            x = m(x)
        return x

    def backward(self, dout):
        for m in reversed(self.__dict__.get("_steps") or list(self._modules.values())):
            dout = m.backward(dout)
        return dout


class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, dout):
        return dout
