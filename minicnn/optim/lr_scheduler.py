"""Learning-rate schedules with PyTorch's semantics (``torch.optim.lr_scheduler``):
``StepLR``, ``MultiStepLR``, ``CosineAnnealingLR``, ``LambdaLR``, ``OneCycleLR``
and ``warmup_cosine`` (PyTorch's ``SequentialLR(LinearLR, CosineAnnealingLR)``).
"""

from __future__ import annotations

import bisect
import math

from minicnn.optim import Optimizer


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

    def jump_to(self, t: int) -> None:
        """Set the hyper-parameters of step ``t`` (as after ``t`` calls of ``step()``), wherever it was."""
        self.last_epoch = int(t) - 1
        self.step()

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


def lr_values(scheduler: LRScheduler, steps: int) -> list[float]:
    """The first group's lr at steps 0 .. ``steps``-1 of ``scheduler`` (for plots and twins; it
    moves the scheduler and its optimiser, so give it a throwaway optimiser)."""
    out = []
    for t in range(steps):
        scheduler.jump_to(t)
        out.append(scheduler.get_last_lr()[0])
    return out


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
