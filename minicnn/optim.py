"""SGD and Adam with PyTorch's exact update rules, and learning-rate schedules.

The rules are in each class's docstring; as code they are the per-tensor
``sgd_update`` / ``adam_update`` of ``kernels/reference.py`` (a dozen lines
each). ``step()`` hands every group's tensors to the backend kernel
(``ops.sgd_update_multi``, ``ops.adam_update_multi``: those functions over a
list), so the numba and cupy backends run it fused and in place, cupy in one
launch for all tensors.

``state_dict()`` has PyTorch's layout: ``{"state": {i: {...}}, "param_groups":
[{..., "params": [i, ...]}]}`` with parameters numbered in order.
"""

from __future__ import annotations

import bisect
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


# --- schedules -------------------------------------------------------------
#
# PyTorch's schedulers, in closed form: ``lr_at(base_lr, t)`` is the rate after
# ``t`` calls of ``step()``, so ``load_state_dict`` (or setting ``last_epoch``)
# jumps to any point. Call ``step()`` once per epoch or once per batch: ``t``
# counts whichever you choose (OneCycleLR is meant per batch).

class LRScheduler:
    """Sets each group's ``lr`` from its ``initial_lr`` at every ``step()``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def _set(self, epoch: int) -> None:
        """Every group's hyper-parameters for step ``epoch`` (subclasses may set more than ``lr``)."""
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(base, epoch)

    def step(self) -> None:
        self.last_epoch += 1
        self._set(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, sd: dict) -> None:
        self.last_epoch = int(sd["last_epoch"])
        self.base_lrs = [float(b) for b in sd["base_lrs"]]
        self._set(self.last_epoch)


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones <= epoch): He et al.'s ResNet schedule
    divides by 10 at 50 % and 75 % of training (``milestones=[T // 2, 3 * T // 4]``)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (closed form)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(epoch), ``lr_lambda`` any function of the step count
    (e.g. :func:`warmup_cosine`). Its state_dict holds the position, not the function."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be callable, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.lr_lambda(epoch)


def warmup_cosine(warmup: int, total: int, start_factor: float = 0.1):
    """The factor of a linear warm-up then a cosine decay, for :class:`LambdaLR`:

    t < warmup:  start_factor + (1 - start_factor) * t / warmup   (PyTorch's LinearLR)
    t >= warmup: (1 + cos(pi * (t - warmup) / (total - warmup))) / 2   (CosineAnnealingLR to 0)

    i.e. PyTorch's ``SequentialLR([LinearLR(start_factor, total_iters=warmup),
    CosineAnnealingLR(T_max=total - warmup)], milestones=[warmup])``.
    """
    warmup, total = int(warmup), int(total)
    if not 0 <= warmup < total:
        raise ValueError(f"warmup_cosine: need 0 <= warmup < total, got warmup {warmup}, total {total}")

    def factor(t: int) -> float:
        if t < warmup:
            return start_factor + (1.0 - start_factor) * t / warmup
        return (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2

    return factor


class OneCycleLR(LRScheduler):
    """Smith's one-cycle policy, ``torch.optim.lr_scheduler.OneCycleLR`` (its defaults
    and formula); step it once per batch, ``total_steps`` times at most.

    lr rises from initial = max_lr / div_factor to max_lr over the first
    ``pct_start`` of the steps, then falls to min = initial / final_div_factor
    (``three_phase``: back to initial first, then to min). Each phase anneals
    from start to end with pct in [0, 1] running over the phase:
    cos: end + (start - end) * (1 + cos(pi * pct)) / 2;  linear: start + (end - start) * pct.
    Phase ends (PyTorch's): pct_start * T - 1, (three_phase: 2 * pct_start * T - 2), T - 1.
    ``cycle_momentum``: SGD's momentum (Adam's beta1) moves the opposite way,
    max_momentum -> base_momentum -> max_momentum.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) < 1:
            raise ValueError(f"OneCycleLR: total_steps must be >= 1, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        groups = optimizer.param_groups
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        self.max_lrs = _per_group("max_lr", max_lr, groups)
        if last_epoch == -1:
            for g, top in zip(groups, self.max_lrs):
                g["initial_lr"] = top / div_factor
                g["max_lr"] = top
                g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in groups[0]
        if self.cycle_momentum:
            if "momentum" not in groups[0] and not self.use_beta1:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimiser with momentum or betas")
            for g, top, low in zip(groups, _per_group("max_momentum", max_momentum, groups),
                                   _per_group("base_momentum", base_momentum, groups)):
                g["max_momentum"], g["base_momentum"] = top, low
        # (end step, lr from, lr to, momentum from, momentum to): the group keys each phase runs between
        up = (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")
        if three_phase:
            self.phases = [up, (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                                "base_momentum", "max_momentum"),
                           (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases = [up, (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, g, step):
        """(lr, momentum) of group ``g`` after ``step`` steps."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times; total_steps is {self.total_steps}")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if step <= end or i == len(self.phases) - 1:
                pct = (step - start) / (end - start)
                momentum = self._anneal(g[m0], g[m1], pct) if self.cycle_momentum else None
                return self._anneal(g[lr0], g[lr1], pct), momentum
            start = end

    def _set(self, epoch):
        for g in self.optimizer.param_groups:
            g["lr"], momentum = self._at(g, epoch)
            if momentum is None:
                continue
            if self.use_beta1:
                g["betas"] = (momentum, *g["betas"][1:])
            else:
                g["momentum"] = momentum


def _per_group(name, value, groups) -> list[float]:
    """One value per parameter group: a number for all, or a list/tuple of one each."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{name}: {len(value)} values for {len(groups)} parameter groups")
        return [float(v) for v in value]
    return [float(value)] * len(groups)
