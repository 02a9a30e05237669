"""Fused in-place SGD and Adam steps on the GPU (kernels in ``optim.cu``).

``sgd_update`` / ``adam_update`` update one tensor; ``param``, ``grad`` and
the state (``buf``; ``exp_avg``, ``exp_avg_sq``) share one shape (any rank)
and one float dtype, and the arrays written in place must be C-contiguous
(``grad`` is copied when it is not). The ``_multi`` versions take lists (one
array per tensor in each, shapes free from tensor to tensor) and update
every tensor in one launch, through device tables of the tensors' addresses.
Anything the kernels don't cover runs the reference (per tensor for the
``_multi`` versions). This is the one source the loader compiles with NVRTC's
``--fmad=false`` (``launch.NVRTC_OPTIONS``): the results equal the reference
bit for bit.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import reference as _ref

from . import launch
from .launch import _i32, _i64, _launch, _scalar, _suffix, array_address


def _inplace_ok(param, grad, *state) -> bool:
    """In-place kernels need device arrays of one float dtype, C-contiguous state."""
    arrays = (param, grad, *state)
    return (
        launch._on_device(*arrays)
        and _suffix(param.dtype) is not None
        and all(a.dtype == param.dtype for a in arrays)
        and all(tuple(a.shape) == tuple(param.shape) for a in arrays)
        and all(a.flags.c_contiguous for a in (param, *state))
    )


def _sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first) -> tuple:
    """The hyper-parameter arguments of the sgd_update kernels (single and _multi)."""
    return (_scalar(lr, dt), _scalar(momentum, dt), _scalar(1 - dampening, dt), _scalar(weight_decay, dt),
            _i32(bool(weight_decay)), _i32(bool(momentum)), _i32(bool(nesterov)), _i32(bool(first)))


def _adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay) -> tuple:
    """The hyper-parameter arguments of the adam_update kernels (single and _multi); the bias
    corrections are computed in Python exactly as the reference does."""
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    return (_scalar(beta1, dt), _scalar(1 - beta1, dt), _scalar(beta2, dt), _scalar(1 - beta2, dt),
            _scalar(weight_decay, dt), _i32(bool(weight_decay)), _scalar(step_size, dt),
            _scalar(bias_correction2_sqrt, dt), _scalar(eps, dt))


def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on one tensor, in place (see the reference)."""
    state = (buf,) if momentum else ()
    if not _inplace_ok(param, grad, *state):
        return _ref.sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)
    xp = launch._cupy()
    grad = xp.ascontiguousarray(grad)
    dt = param.dtype
    args = (
        param,
        grad,
        buf if momentum else param,  # not touched when momentum == 0
        _i64(param.size),
        *_sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first),
    )
    _launch("optim", f"sgd_update_{_suffix(dt)}", param.size, args)


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on one tensor, in place (see the reference)."""
    if not _inplace_ok(param, grad, exp_avg, exp_avg_sq):
        return _ref.adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay)
    xp = launch._cupy()
    grad = xp.ascontiguousarray(grad)
    dt = param.dtype
    args = (
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        _i64(param.size),
        *_adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay),
    )
    _launch("optim", f"adam_update_{_suffix(dt)}", param.size, args)


# (addresses..., sizes...) -> (address table, offsets) on the device: with
# CuPy's memory pool the gradients of consecutive steps usually reuse the same
# blocks, so the tables are usually copied to the device once, not every step.
# Keyed by address alone: with unified virtual addressing (every 64-bit CUDA
# platform) an address belongs to one device, so the cached tables are on it.
_TABLE_CACHE: dict = {}
_TABLE_CACHE_MAX = 16


def _multi_tables(columns, sizes):
    """Device tables for the _multi kernels: uint64 addresses (len(columns), len(sizes)),
    one row per column of tensors, and int64 offsets (len(sizes) + 1,)."""
    key = (tuple(array_address(a) for col in columns for a in col), tuple(sizes))
    hit = _TABLE_CACHE.get(key)
    if hit is not None:
        return hit
    xp = launch._cupy()
    table = np.array([[array_address(a) for a in col] for col in columns], dtype=np.uint64)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if len(_TABLE_CACHE) >= _TABLE_CACHE_MAX:
        _TABLE_CACHE.clear()
    out = _TABLE_CACHE[key] = (xp.asarray(table), xp.asarray(offsets))
    return out


# The _multi calls of a CUDA-graphed training loop pass the very same arrays every step (the
# parameters, the recording's static gradients, the optimiser state): (name, ids of every array)
# -> (each array's address, dtype, shape and strides; what _prepare returned), so that such a
# call skips the checks, the address tables and their slicing. No array is kept alive by this
# (an eager loop's gradients are new every step); so an id may come back on another array once
# its own is gone, and a hit needs address, dtype, shape and strides unchanged too. A call is
# kept the second time its ids come (_SEEN holds the first), so that an eager loop, whose
# calls rarely repeat, does not pay for recording every array's layout.
_PREPARED: dict = {}
_SEEN: dict = {}
_PREPARED_MAX = 16


def _layout(a) -> tuple:
    return array_address(a), a.dtype, a.shape, a.strides


def _multi_prepare(name: str, columns):
    """Shared set-up of the _multi wrappers. ``columns`` = [params, grads, *state],
    lists with one array per tensor. Returns None when there is nothing to
    launch, False when some tensor needs the per-tensor path (see
    ``_inplace_ok``), else (dtype, address-table rows, offsets, tensors, total
    elements) for the non-empty tensors; the same as last time for the same arrays."""
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"{name}: lists of lengths {[len(c) for c in columns]}; expected one array per tensor "
                         "in each")
    if not columns[0]:
        return None
    arrays = [a for col in columns for a in col]
    key = (name, *map(id, arrays))
    hit = _PREPARED.get(key)
    if hit is not None and launch._on_device(*arrays) and all(map(_same_layout, arrays, hit[0])):
        return hit[1]
    prepared, copied = _prepare(columns)
    if prepared and not copied:  # (a gradient copied to make it contiguous is a new array every call)
        if hit is not None or _SEEN.pop(key, False):
            if len(_PREPARED) >= _PREPARED_MAX:
                _PREPARED.clear()
            _PREPARED[key] = (tuple(map(_layout, arrays)), prepared)
        else:
            if len(_SEEN) >= _PREPARED_MAX:
                _SEEN.clear()
            _SEEN[key] = True
    return prepared


def _same_layout(a, layout) -> bool:
    return _layout(a) == layout


def _prepare(columns):
    """``_multi_prepare``'s work for new arrays: (its answer, whether a gradient was copied)."""
    dt = columns[0][0].dtype
    if not all(p.dtype == dt and _inplace_ok(p, *rest) for p, *rest in zip(*columns)):
        return False, False
    live = [k for k, p in enumerate(columns[0]) if p.size]
    if not live:
        return None, False
    xp = launch._cupy()
    cols = [[c[k] for k in live] for c in columns]
    grads = [xp.ascontiguousarray(g) for g in cols[1]]
    copied = any(g is not c for g, c in zip(grads, cols[1]))
    cols[1] = grads
    sizes = [p.size for p in cols[0]]
    table, offsets = _multi_tables(cols, sizes)
    return (dt, [table[r] for r in range(len(cols))], offsets, len(live), int(sum(sizes))), copied


def sgd_update_multi(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first):
    """One SGD step on every tensor of a list, in place, in one launch (see the reference)."""
    params, grads = list(params), list(grads)
    bufs = list(bufs) if momentum else [None] * len(params)
    # without momentum the kernel never touches the buffer: pass the params in its place
    prep = _multi_prepare("sgd_update_multi", [params, grads, bufs if momentum else params])
    if prep is False:
        for p, g, b in zip(params, grads, bufs):  # per tensor (each falls back as it must)
            sgd_update(p, g, b, lr, momentum, dampening, nesterov, weight_decay, first)
        return
    if prep is None:
        return
    dt, rows, offsets, n, total = prep
    args = (
        *rows, offsets, _i32(n), _i64(total),
        *_sgd_scalars(dt, lr, momentum, dampening, nesterov, weight_decay, first),
    )
    _launch("optim", f"sgd_update_multi_{_suffix(dt)}", total, args)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """One Adam step on every tensor of a list, in place, in one launch (see the reference)."""
    columns = [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)]
    prep = _multi_prepare("adam_update_multi", columns)
    if prep is False:
        for p, g, m, v in zip(*columns):
            adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
        return
    if prep is None:
        return
    dt, rows, offsets, n, total = prep
    args = (
        *rows, offsets, _i32(n), _i64(total),
        *_adam_scalars(dt, step, lr, beta1, beta2, eps, weight_decay),
    )
    _launch("optim", f"adam_update_multi_{_suffix(dt)}", total, args)
