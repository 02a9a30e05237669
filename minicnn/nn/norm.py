"""BatchNorm1d and BatchNorm2d with PyTorch's semantics.

Both modes' forward and backward are the functions below; the training-mode
pair and the evaluation-mode forward run as backend table entries
(``ops.batchnorm_forward`` / ``ops.batchnorm_backward`` /
``ops.batchnorm_forward_eval``: plain array code in
``kernels/reference/regularization.py``, Numba kernels in
``kernels/cpu/batchnorm.py``).

Training normalises with the batch mean and the *biased* variance, and
updates ``running_mean``/``running_var`` with the *unbiased* variance:
``running = (1 - momentum) * running + momentum * batch_stat`` (momentum=None:
a cumulative average over ``num_batches_tracked``). Evaluation uses the
running statistics.

Backward (training), with xhat = (x - mean) / std over m = N*H*W values::

    dxhat = dy * gamma
    dx    = (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (m * std)
    dgamma = sum(dy * xhat);   dbeta = sum(dy)
"""

from __future__ import annotations

import numpy as np

from minicnn import backend
from minicnn.nn import init
from minicnn.nn._checks import check_input
from minicnn.nn.module import Module, Parameter


def batchnorm_forward(x, gamma, beta, eps):
    """Training mode: normalise with the batch's own statistics (per channel, over
    every axis but 1). Returns (y, mean, var, cache); var is biased;
    cache: ("train", (xhat, inv_std, gamma)). Kernel: ``ops.batchnorm_forward``."""
    y, mean, var, xhat, inv_std = backend.current().ops.batchnorm_forward(x, gamma, beta, eps)
    return y, mean, var, ("train", (xhat, inv_std, gamma))


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    """Evaluation mode: normalise with fixed statistics, y = gamma * (x - mean) * inv_std + beta,
    inv_std = 1 / sqrt(var + eps).

    x (N, C, *); gamma, beta (C,) or None; mean, var (C,). Kernel:
    ``ops.batchnorm_forward_eval`` (one pass, writes y only). cache: ("eval", (x, mean,
    inv_std, gamma, reduction axes)), mean, inv_std and gamma shaped (1, C, 1, ...) to
    broadcast against x: x itself, not xhat, so that inference writes one array per layer.
    """
    y, inv_std = backend.current().ops.batchnorm_forward_eval(x, gamma, beta, mean, var, eps)
    return y, eval_cache(x, mean, inv_std, gamma)


def eval_cache(x, mean, inv_std, gamma):
    """The evaluation forward's cache (see ``batchnorm_forward_eval``) from x, mean, inv_std (C,)
    and gamma (C,) or None."""
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    gamma = gamma.reshape(bshape) if gamma is not None else None
    saved = (x, mean.reshape(bshape), inv_std.reshape(bshape), gamma, (0,) + tuple(range(2, x.ndim)))
    return ("eval", saved)


def batchnorm_backward(dout, cache):
    """(dx, dgamma, dbeta). Training mode: the formula above (``ops.batchnorm_backward``).
    Evaluation mode: the statistics are constants, so dx = dout * gamma * inv_std, and
    dgamma = sum(dout * xhat) with xhat = (x - mean) * inv_std formed again (the forward's
    operations, its values)."""
    mode, saved = cache
    if mode == "train":
        return backend.current().ops.batchnorm_backward(dout, *saved)
    x, mean, inv_std, gamma, axes = saved
    dx = dout * (inv_std * gamma if gamma is not None else inv_std)
    xhat = (x - mean) * inv_std
    return dx, (dout * xhat).sum(axis=axes), dout.sum(axis=axes)


class _BatchNorm(Module):
    _expected = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(init.ones((c,), dtype))
            self.bias = Parameter(init.zeros((c,), dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", init.zeros((c,), dtype))
            self.register_buffer("running_var", init.ones((c,), dtype))
            self.register_buffer("num_batches_tracked", backend.current().xp.zeros((), dtype=np.int64))
        self._cache = None

    def _check(self, x):
        raise NotImplementedError

    def forward(self, x):
        self._check(x)
        gamma = self.weight.data if self.affine else None
        beta = self.bias.data if self.affine else None
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            m = x.size // self.num_features
            if m <= 1:
                raise ValueError(f"{self._describe()}: expected more than 1 value per channel when training, "
                                 f"got input of shape {tuple(x.shape)}")
            y, mean, var, self._cache = batchnorm_forward(x, gamma, beta, self.eps)
            if self.training and self.track_running_stats:
                self._update_running(mean, var * (m / (m - 1)))
        else:
            y, self._cache = batchnorm_forward_eval(x, gamma, beta, self.running_mean, self.running_var, self.eps)
        return y.astype(x.dtype, copy=False)

    def cuda_graph_blocker(self):
        if self.training and self.track_running_stats and self.momentum is None:
            return ("momentum=None averages the running statistics with a factor read on the host every "
                    "training step (a replay would repeat the recorded factor)")
        return None

    def _update_running(self, mean, unbiased_var):
        """running = (1 - f) * running + f * batch_stat, written into the buffers in place
        (their arrays stay the same, so a CUDA-graph replay updates them too)."""
        nbt = self._buffers["num_batches_tracked"]
        nbt += 1
        f = self.momentum if self.momentum is not None else 1.0 / float(nbt)
        for name, stat in (("running_mean", mean), ("running_var", unbiased_var)):
            buf = self._buffers[name]
            buf[...] = (1 - f) * buf + f * stat

    def backward(self, dout):
        dx, dgamma, dbeta = batchnorm_backward(dout, self._need_cache(self._cache))
        if self.affine:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L); statistics per channel C."""

    def _check(self, x):
        check_input(self, x, (2, 3), self.num_features, expected=f"(N, {self.num_features}) or (N, C, L)")


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W); statistics per channel C over N*H*W values."""

    def _check(self, x):
        check_input(self, x, (4,), self.num_features)
