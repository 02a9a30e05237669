"""SGD and Adam steps as Numba kernels, in place (same signatures as ``kernels.reference``).

The per-element arithmetic is the reference's, operation for operation (no
``fastmath``, so LLVM neither fuses multiply-adds nor reorders), and every
Python-float hyper-parameter is cast to the parameter's dtype first, as NumPy
does with a Python scalar next to a float32 array; the results match the
reference bit for bit for float32 and float64.

The update has to land in the caller's arrays, so a non-C-contiguous
``param``/``buf``/``exp_avg``/``exp_avg_sq`` (rare: parameters are allocated
contiguous) falls back to the reference kernel instead of updating a copy.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .. import reference as _ref
from ._jit import compiled_for, dual

OPTIM_PAR_MIN = 262_144  # elements (memory-bound; used when parallel mode is on, see __init__)


def _sgd_impl(param, grad, buf, lr, use_momentum, momentum, one_minus_damp, nesterov, wd,
              use_wd, first):
    """buf is only read/written when use_momentum (pass any array otherwise)."""
    pf = param.reshape(param.size)
    gf = grad.reshape(grad.size)
    bf = buf.reshape(buf.size)
    for i in prange(pf.size):
        g = gf[i]
        if use_wd:
            g = g + wd * pf[i]
        if use_momentum:
            if first:
                b = g
            else:
                b = bf[i] * momentum
                b = b + one_minus_damp * g
            bf[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        pf[i] = pf[i] - lr * g


def _adam_impl(param, grad, exp_avg, exp_avg_sq, step_size, beta1, one_minus_b1, beta2,
               one_minus_b2, bc2_sqrt, eps, wd, use_wd):
    pf = param.reshape(param.size)
    gf = grad.reshape(grad.size)
    mf = exp_avg.reshape(exp_avg.size)
    vf = exp_avg_sq.reshape(exp_avg_sq.size)
    for i in prange(pf.size):
        g = gf[i]
        if use_wd:
            g = g + wd * pf[i]
        m = mf[i] * beta1
        m = m + one_minus_b1 * g
        mf[i] = m
        v = vf[i] * beta2
        v = v + one_minus_b2 * g * g
        vf[i] = v
        denom = np.sqrt(v) / bc2_sqrt + eps
        pf[i] = pf[i] - step_size * (m / denom)


_sgd_ser, _sgd_par = dual(_sgd_impl)
_adam_ser, _adam_par = dual(_adam_impl)


def _ok(*arrays):
    """Whether the kernel can update these arrays in place: NumPy, C-contiguous,
    of a compiled dtype (float16 ... go to the reference, see ``_jit``)."""
    for a in arrays:
        if type(a) is not np.ndarray or not a.flags.c_contiguous or not compiled_for(a):
            return False
    return True


def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on one tensor, in place (PyTorch's ``_single_tensor_sgd``)."""
    use_m = bool(momentum)
    if not (_ok(param, buf) if use_m else _ok(param)) or not compiled_for(grad):
        return _ref.sgd_update(param, grad, buf, lr, momentum, dampening, nesterov,
                               weight_decay, first)
    t = param.dtype.type
    f = _sgd_par if param.size >= OPTIM_PAR_MIN else _sgd_ser
    f(param, np.ascontiguousarray(grad), buf if use_m else param, t(lr), use_m, t(momentum),
      t(1 - dampening), bool(nesterov), t(weight_decay), bool(weight_decay), bool(first))


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on one tensor, in place (PyTorch's ``_single_tensor_adam``)."""
    if not _ok(param, exp_avg, exp_avg_sq) or not compiled_for(grad):
        return _ref.adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps,
                                weight_decay)
    t = param.dtype.type
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    f = _adam_par if param.size >= OPTIM_PAR_MIN else _adam_ser
    f(param, np.ascontiguousarray(grad), exp_avg, exp_avg_sq, t(step_size), t(beta1),
      t(1 - beta1), t(beta2), t(1 - beta2), t(bias_correction2_sqrt), t(eps),
      t(weight_decay), bool(weight_decay))


def sgd_update_multi(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first):
    """This module's ``sgd_update`` on every tensor of a list (see the reference)."""
    bufs = [None] * len(params) if bufs is None else bufs
    for param, grad, buf in zip(params, grads, bufs, strict=True):
        sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """This module's ``adam_update`` on every tensor of a list (see the reference)."""
    for param, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
        adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)
