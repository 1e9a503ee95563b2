"""Optimizers and learning-rate schedules by name (what the five student reports used, so a
lecture swaps one for another by changing a string), Lookahead, and gradient clipping.
Their values are checked at the door (``fit`` checks its config), not here."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer, lr_scheduler

OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {  # the names of lecture 04 -> torch classes
    "sgd": torch.optim.SGD,  # plain SGD: no momentum
    "momentum": torch.optim.SGD,  # SGD with classical momentum
    "nesterov": torch.optim.SGD,  # SGD with Nesterov momentum
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
}

OPTIMIZERS = tuple(OPTIMIZER_CLASSES)
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")
DEFAULT_MOMENTUM = 0.9
# Arguments make_optimizer and make_scheduler set themselves, not extra keyword arguments.
_SET_BY_NAME = {"params", "lr", "weight_decay", "momentum", "nesterov", "optimizer", "epochs",
                "steps_per_epoch", "self"}  # fmt: skip


def accepted_kwargs(name_or_builder: str | Callable[..., Any]) -> set[str]:
    """The extra keyword arguments an optimizer (by name) or a schedule builder takes."""
    target = OPTIMIZER_CLASSES.get(name_or_builder, name_or_builder)
    names = inspect.signature(target).parameters
    return {name for name in names if name not in _SET_BY_NAME and not name.startswith("_")}


def make_optimizer(
    name: str, params: nn.Module | Iterable, lr: float, weight_decay: float,
    momentum: float | None = None, lookahead: dict[str, float] | None = None, **kwargs: Any,
) -> Optimizer:  # fmt: skip
    """Build the optimizer called ``name`` (lectures 04 and 06). ``momentum`` (default 0.9)
    is for "momentum" and "nesterov"; ``lookahead=dict(k=5, alpha=0.5)`` wraps the result."""
    if name not in OPTIMIZER_CLASSES:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if name in MOMENTUM_OPTIMIZERS:
        kwargs |= {"momentum": DEFAULT_MOMENTUM if momentum is None else momentum}
        kwargs["nesterov"] = name == "nesterov"
    elif momentum is not None:
        kwargs.update(momentum=momentum)  # torch refuses it where the optimizer has none
    params = params.parameters() if isinstance(params, nn.Module) else params
    optimizer = OPTIMIZER_CLASSES[name](params, lr=lr, weight_decay=weight_decay, **kwargs)
    return Lookahead(optimizer, **lookahead) if lookahead else optimizer


class Lookahead(Optimizer):
    """Lookahead (Zhang et al. 2019; ``rout``): after ``k`` fast steps of ``base`` the slow weights
    move ``alpha`` of the way to the fast ones and the fast restart there (groups: the base's)."""

    def __init__(self, base: Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        # Optimizer.__init__ sets up the hooks schedulers expect; then the base's groups are shared.
        super().__init__([dict(group) for group in base.param_groups], base.defaults)
        self.base, self.k, self.alpha = base, k, alpha
        self.param_groups, self.state = base.param_groups, base.state
        self.fast_steps, self.slow_weights = 0, {}  # slow weights by parameter

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One fast step of the base optimizer; every k-th step also updates the slow weights."""
        with torch.no_grad():
            for p in self._params():  # from the first step on, so weights loaded later count
                if p not in self.slow_weights:
                    self.slow_weights[p] = p.detach().clone()
        loss = self.base.step(closure)
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            with torch.no_grad():
                for p, slow in self.slow_weights.items():
                    slow.add_(p - slow, alpha=self.alpha)
                    p.copy_(slow)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state plus the slow weights (by parameter index) and step count."""
        index = {p: i for i, p in enumerate(self._params())}
        slow = {index[p]: weights for p, weights in self.slow_weights.items()}
        return {"base": self.base.state_dict(), "slow_weights": slow, "fast_steps": self.fast_steps,
                "k": self.k, "alpha": self.alpha}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned, so training continues exactly."""
        self.base.load_state_dict(state_dict["base"])
        self.param_groups, self.state = self.base.param_groups, self.base.state  # new lists
        params = self._params()
        self.slow_weights = {
            params[i]: slow.to(device=params[i].device, dtype=params[i].dtype, copy=True)
            for i, slow in state_dict["slow_weights"].items()
        }
        self.fast_steps, self.k = state_dict["fast_steps"], state_dict["k"]
        self.alpha = state_dict["alpha"]

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer's own keeps only defaults, state and groups; deepcopy and pickle need more.
        extra = ("base", "k", "alpha", "fast_steps", "slow_weights")
        return {**super().__getstate__(), **{name: getattr(self, name) for name in extra}}


@dataclass
class Schedule:
    """A learning-rate scheduler behind one interface: ``step()`` after every optimizer step if
    ``per_step``, else once per epoch with the validation accuracy (only "plateau" uses it)."""

    scheduler: lr_scheduler.LRScheduler
    per_step: bool
    name: str = "custom"

    @property
    def needs_metric(self) -> bool:
        """True when ``step`` needs the validation metric (ReduceLROnPlateau)."""
        return isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau)

    def step(self, metric: float | None = None) -> None:
        """Advance the schedule by one step (or one epoch)."""
        if not self.needs_metric:
            return self.scheduler.step()
        if metric is None:
            raise ValueError(
                f"The {self.name!r} schedule reacts to the validation accuracy: "
                "call step(metric) with it once per epoch."
            )
        self.scheduler.step(metric)

    def state_dict(self) -> dict[str, Any]:  # the wrapped scheduler's, for checkpoints
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state_dict)


def has_momentum(optimizer: Optimizer) -> bool:
    """Whether OneCycleLR can cycle this optimizer's momentum (Adam's beta1 or SGD momentum)."""
    return "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0


def _step_schedule(optimizer, epochs, steps_per_epoch, milestones=None, gamma=0.1) -> Schedule:
    """Multiply the rate by ``gamma`` at each milestone epoch (default: at 1/2 and 3/4)."""
    milestones = milestones or sorted({max(1, epochs // 2), max(1, epochs * 3 // 4)})
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones, gamma)
    return Schedule(scheduler, per_step=False, name="step")


def _cosine_schedule(optimizer, epochs, steps_per_epoch, eta_min=0.0) -> Schedule:
    """A half cosine from the rate down to ``eta_min`` over every step of the run."""
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch, eta_min)
    return Schedule(scheduler, per_step=True, name="cosine")


def _onecycle_schedule(
    optimizer, epochs, steps_per_epoch, pct_start=0.3, anneal_strategy="cos",
    cycle_momentum: bool | None = None, div_factor=25.0, final_div_factor=1e4,
) -> Schedule:  # fmt: skip
    """Warm up to the rate over ``pct_start`` of the steps, then anneal to almost zero."""
    total = epochs * steps_per_epoch
    if pct_start * total == 1:  # torch's OneCycleLR would divide by zero on its first step
        raise ValueError(
            f"the onecycle schedule cannot warm up over exactly 1 of its {total} steps (pct_start "
            f"{pct_start}); use more images or epochs, a smaller batch, or another pct_start."
        )
    max_lr = [group["lr"] for group in optimizer.param_groups]
    cycle_momentum = has_momentum(optimizer) if cycle_momentum is None else cycle_momentum
    scheduler = lr_scheduler.OneCycleLR(
        optimizer, max_lr, total, pct_start=pct_start, anneal_strategy=anneal_strategy,
        cycle_momentum=cycle_momentum, div_factor=div_factor, final_div_factor=final_div_factor,
    )  # fmt: skip
    return Schedule(scheduler, per_step=True, name="onecycle")


def _plateau_schedule(
    optimizer, epochs, steps_per_epoch, mode="max", factor=0.5, patience=10, min_lr=0.0
) -> Schedule:
    """Cut the rate by ``factor`` when the validation accuracy stalls for ``patience`` epochs
    (``mode`` "max": fit steps it with the validation accuracy)."""
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode, factor, patience, min_lr=min_lr)
    return Schedule(scheduler, per_step=False, name="plateau")


def _constant_schedule(optimizer, epochs, steps_per_epoch) -> Schedule:
    """The same rate throughout."""
    scheduler = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)  # lr never changes
    return Schedule(scheduler, per_step=False, name="constant")


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant_schedule,
    "step": _step_schedule,
    "cosine": _cosine_schedule,
    "onecycle": _onecycle_schedule,
    "plateau": _plateau_schedule,
}
"""Schedule names -> builders ``(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule``."""

EXTENSIBLE_SCHEDULES = ("constant", "plateau")  # independent of epochs: a resume may add some


def make_scheduler(
    name: str, optimizer: Optimizer, epochs: int, steps_per_epoch: int, **kwargs: Any
) -> Schedule:
    """Build the learning-rate ``Schedule`` called ``name`` (see ``SCHEDULES``; lecture 04);
    ``kwargs`` tune it, e.g. ``pct_start`` for "onecycle"."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    return SCHEDULES[name](optimizer, epochs, steps_per_epoch, **kwargs)


def clip_gradients(
    model: nn.Module | Iterable[torch.Tensor], value: float | None = None, norm: float | None = None
) -> torch.Tensor | None:
    """Clip gradients in place: each entry to [-value, value], then the total norm to ``norm``
    (``wang`` clipped by value 0.1). Returns the total norm before norm clipping, else None."""
    params = model.parameters() if isinstance(model, nn.Module) else model
    params = [p for p in params if p.grad is not None]
    if value is not None:
        nn.utils.clip_grad_value_(params, value)
    return nn.utils.clip_grad_norm_(params, norm) if norm is not None else None
