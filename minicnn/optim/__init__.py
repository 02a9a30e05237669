"""SGD and Adam with PyTorch's exact update rules; the learning-rate schedules
are in ``minicnn.optim.lr_scheduler`` (as in PyTorch) and importable from here.

The rules are in each class's docstring; as code they are the per-tensor
``sgd_update`` / ``adam_update`` of ``kernels/reference/optim.py`` (a dozen lines
each). ``step()`` hands every group's tensors to the backend kernel
(``ops.sgd_update_multi``, ``ops.adam_update_multi``: those functions over a
list), so the numba and cupy backends run it fused and in place, cupy in one
launch for all tensors.

``state_dict()`` has PyTorch's layout: ``{"state": {i: {...}}, "param_groups":
[{..., "params": [i, ...]}]}`` with parameters numbered in order.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import backend
from minicnn.nn.module import Parameter


def _check_finite(name: str, **values) -> None:
    """ValueError naming every hyper-parameter that is NaN or infinite."""
    bad = [f"{k}={v!r}" for k, v in values.items() if not math.isfinite(float(v))]
    if bad:
        raise ValueError(f"{name}: hyper-parameters must be finite numbers, got {', '.join(bad)}")


class Optimizer:
    defaults: dict = {}

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if isinstance(params[0], dict):
            groups = params
        else:
            groups = [{"params": params}]
        self.param_groups = []
        seen = set()
        for gi, g in enumerate(groups):
            g = dict(g)
            g["params"] = list(g["params"])
            for pi, p in enumerate(g["params"]):
                if not isinstance(p, Parameter):
                    raise TypeError(f"{type(self).__name__}: expected minicnn Parameters, got {type(p).__name__}")
                if id(p) in seen:  # its state is keyed by id, and a step would update it twice
                    raise ValueError(f"{type(self).__name__}: parameter {pi} of group {gi} ({p!r}) appears more "
                                     "than once in the parameter list; pass each parameter once "
                                     "(model.parameters() already does)")
                seen.add(id(p))
            for k, v in defaults.items():
                g.setdefault(k, v)
            self.param_groups.append(g)
        self.state: dict[int, dict] = {}  # keyed by id(param)

    def _params(self):
        for g in self.param_groups:
            for p in g["params"]:
                yield g, p

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for _, p in self._params():
            st = self.state.get(id(p))
            if st:
                state[index[id(p)]] = {k: (backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                                       for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(groups)} parameter groups in the "
                             f"state, {len(self.param_groups)} in the optimiser")
        params = [p for _, p in self._params()]
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(list(theirs["params"])):
                raise ValueError(f"{type(self).__name__}.load_state_dict: a group has {len(theirs['params'])} "
                                 f"parameters in the state, {len(mine['params'])} in the optimiser")
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
                    if isinstance(mine[k], np.ndarray):
                        mine[k] = tuple(mine[k].tolist())
        self.state = {}
        bad = []
        for i, st in sd.get("state", {}).items():
            i = int(i)
            if i >= len(params):
                bad.append(f"state for parameter {i} (only {len(params)} parameters)")
                continue
            p = params[i]
            new = {}
            for k, v in st.items():
                if hasattr(v, "shape") and v.shape == p.shape:
                    new[k] = backend.asarray(np.asarray(backend.to_numpy(v)), dtype=p.dtype).copy()
                elif hasattr(v, "shape") and v.ndim > 0:
                    bad.append(f"{i}.{k}: shape {tuple(v.shape)} vs parameter {tuple(p.shape)}")
                else:
                    new[k] = float(v) if k == "step" else v
            self.state[id(p)] = new
        if bad:
            raise ValueError(f"{type(self).__name__}.load_state_dict: mismatched state: " + "; ".join(bad))


class SGD(Optimizer):
    """Stochastic gradient descent, ``torch.optim.SGD``.

    g = grad + wd * p; with momentum: buf = g on the first step, then
    buf = momentum * buf + (1 - dampening) * g; g = g + momentum * buf (nesterov)
    or buf; p -= lr * g.  (Code: ``kernels.reference.sgd_update``.)
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        _check_finite("SGD", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires a momentum > 0 and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self) -> None:
        """One update of every parameter with a gradient: one ``sgd_update_multi``
        call per group (two in the step that creates momentum buffers for some)."""
        be = backend.current()
        for g in self.param_groups:
            lists = {False: ([], [], []), True: ([], [], [])}  # first step of the buffer? -> params, grads, bufs
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state.setdefault(id(p), {})
                first = False
                buf = None
                if g["momentum"]:
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = st["momentum_buffer"] = be.xp.empty_like(p.data)
                        first = True
                for column, v in zip(lists[first], (p.data, p.grad, buf)):
                    column.append(v)
            for first, (ps, gs, bs) in lists.items():
                if ps:
                    be.ops.sgd_update_multi(ps, gs, bs, g["lr"], g["momentum"], g["dampening"], g["nesterov"],
                                            g["weight_decay"], first)


class Adam(Optimizer):
    """Adam, ``torch.optim.Adam`` (L2 weight decay added to the gradient; eps outside the sqrt).

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).  (Code: ``kernels.reference.adam_update``.)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _check_finite("Adam", lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        """One update of every parameter with a gradient: one ``adam_update_multi``
        call per group and step count (parameters that missed a step have fewer)."""
        be = backend.current()
        for g in self.param_groups:
            by_step: dict = {}  # step count -> params, grads, exp_avgs, exp_avg_sqs
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state.get(id(p))
                if not st:
                    st = self.state[id(p)] = {"step": 0.0, "exp_avg": be.xp.zeros_like(p.data),
                                              "exp_avg_sq": be.xp.zeros_like(p.data)}
                st["step"] += 1
                lists = by_step.setdefault(st["step"], ([], [], [], []))
                for column, v in zip(lists, (p.data, p.grad, st["exp_avg"], st["exp_avg_sq"])):
                    column.append(v)
            b1, b2 = g["betas"]
            for step, (ps, gs, ms, vs) in by_step.items():
                be.ops.adam_update_multi(ps, gs, ms, vs, step, g["lr"], b1, b2, g["eps"], g["weight_decay"])


from minicnn.optim.lr_scheduler import (  # noqa: E402  (they need Optimizer above)
    CosineAnnealingLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    StepLR,
    lr_values,
    warmup_cosine,
)
