"""Linear (fully connected) and Flatten."""

from __future__ import annotations

import math

from minicnn import backend
from minicnn.nn import init
from minicnn.nn._checks import check_input
from minicnn.nn.module import Module, Parameter


def linear_forward(x, w, b):
    """x (N, in) @ W^T (in, out) + b -> (N, out). cache: (x, w, has_bias)."""
    out = backend.current().ops.matmul(x, w.T)
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache, need_dx=True):
    """dx = dout @ W;  dW = dout^T @ x;  db = sum_n dout. dout (N, out).

    Returns (dx (N, in) or None when ``need_dx`` is False, dW (out, in), db (out,) or None).
    """
    x, w, has_bias = cache
    matmul = backend.current().ops.matmul
    dx = matmul(dout, w) if need_dx else None
    return dx, matmul(dout.T, x), (dout.sum(axis=0) if has_bias else None)


class Linear(Module):
    """y = x W^T + b, PyTorch's ``nn.Linear``. x (N, in) -> (N, out).

    weight (out, in), bias (out,). Caches x. Leading dims beyond N are
    flattened into the batch and restored.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(init.kaiming_uniform(shape, a=math.sqrt(5), dtype=dtype))
        self.bias = Parameter(init.default_bias(self.out_features, shape, dtype=dtype)) if bias else None
        self._cache = None

    def forward(self, x):
        check_input(self, x, tuple(range(1, 9)), self.in_features, axis=-1, expected=f"(N, {self.in_features})")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        out, cache = linear_forward(x2, self.weight.data, None if self.bias is None else self.bias.data)
        self._cache = (cache, lead)
        return out.reshape(*lead, self.out_features)

    def backward(self, dout):
        """Returns dx (None if ``needs_input_grad`` is False); adds into weight.grad, bias.grad."""
        cache, lead = self._need_cache(self._cache)
        dx, dw, db = linear_backward(dout.reshape(-1, self.out_features), cache, self.needs_input_grad)
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return None if dx is None else dx.reshape(*lead, self.in_features)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch). Caches the input shape."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim
        self._cache = None

    def forward(self, x):
        nd = x.ndim
        s, e = self.start_dim % nd, self.end_dim % nd
        if s > e:
            raise ValueError(f"{self._describe()}: start_dim {self.start_dim} is after end_dim {self.end_dim} "
                             f"for input of shape {tuple(x.shape)}")
        self._cache = x.shape
        return x.reshape(*x.shape[:s], -1, *x.shape[e + 1:]) if x.size else x.reshape(
            *x.shape[:s], math.prod(x.shape[s:e + 1]), *x.shape[e + 1:])

    def backward(self, dout):
        return dout.reshape(self._need_cache(self._cache))

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


