"""SGD and Adam steps, in place, as PyTorch's single-tensor code paths (and their list forms)."""

from __future__ import annotations

from .arrays import _xp


def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on one tensor, in place (PyTorch's ``_single_tensor_sgd``).

    g = grad + wd * param;  buf = g (first step) or momentum*buf + (1-dampening)*g;
    g = g + momentum*buf (nesterov) or buf;  param -= lr * g.
    ``buf`` may be None when momentum == 0.
    """
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on one tensor, in place (PyTorch's ``_single_tensor_adam``).

    g = grad + wd*param; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    param -= (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
    """
    xp = _xp(param)
    g = grad + weight_decay * param if weight_decay else grad
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    param -= step_size * (exp_avg / denom)


def sgd_update_multi(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first):
    """``sgd_update`` on every tensor of a list (same hyper-parameters and
    ``first``); ``bufs`` may be None when momentum == 0. The CUDA backend does
    it in one launch."""
    bufs = [None] * len(params) if bufs is None else bufs
    for param, grad, buf in zip(params, grads, bufs, strict=True):
        sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """``adam_update`` on every tensor of a list (same hyper-parameters and
    step count). The CUDA backend does it in one launch."""
    for param, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
        adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)
