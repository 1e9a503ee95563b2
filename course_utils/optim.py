"""Optimizers and learning-rate schedules by name, Lookahead, and gradient clipping.

``make_optimizer("nesterov", model.parameters(), lr=0.1)`` and
``make_scheduler("onecycle", optimizer, epochs, steps_per_epoch)`` build what the five
student reports used, so a lecture can swap one for another by changing a string.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
)

LOOKAHEAD_PREFIX = "lookahead-"


def _plain(optimizer_class: type[Optimizer]) -> Callable[..., Optimizer]:
    """A builder for an optimizer that has no SGD-style momentum argument."""

    def build(params, lr: float, momentum: float, **kwargs: Any) -> Optimizer:
        return optimizer_class(params, lr=lr, **kwargs)

    return build


def _sgd(momentum_on: bool, nesterov: bool = False) -> Callable[..., Optimizer]:
    """A builder for SGD: plain (momentum 0), with momentum, or with Nesterov momentum."""

    def build(params, lr: float, momentum: float, **kwargs: Any) -> Optimizer:
        if not momentum_on:
            return torch.optim.SGD(params, lr=lr, **kwargs)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, **kwargs)

    return build


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd(momentum_on=False),
    "momentum": _sgd(momentum_on=True),
    "nesterov": _sgd(momentum_on=True, nesterov=True),
    "adam": _plain(torch.optim.Adam),
    "adamw": _plain(torch.optim.AdamW),
    "adagrad": _plain(torch.optim.Adagrad),
    "adadelta": _plain(torch.optim.Adadelta),
    "rmsprop": _plain(torch.optim.RMSprop),
}
"""Optimizer names -> builders ``(params, lr, momentum, **kwargs) -> Optimizer``."""


class Lookahead(Optimizer):
    """Lookahead (Zhang et al. 2019) around any optimizer, as in the ``rout`` report.

    The base optimizer takes ``k`` fast steps; then the slow weights move a fraction
    ``alpha`` towards the fast ones (slow += alpha * (fast - slow)) and the fast weights
    restart from there. ``param_groups`` and ``state`` are the base optimizer's own, so
    learning-rate schedulers and checkpoints work on it like on any torch optimizer.
    """

    def __init__(self, base: Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if not isinstance(base, Optimizer):
            raise TypeError(f"Lookahead wraps a torch optimizer, got {type(base).__name__}.")
        if isinstance(base, Lookahead):
            raise TypeError("This optimizer is already a Lookahead; wrap the base optimizer once.")
        if k < 1:
            raise ValueError(f"Lookahead needs k >= 1 fast steps per slow step, got k={k}.")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"Lookahead's alpha must lie in (0, 1], got {alpha}.")
        # Optimizer.__init__ sets up the hooks that schedulers and profilers expect; the
        # groups it copies are then replaced by the base optimizer's, shared, not copied.
        super().__init__([dict(group) for group in base.param_groups], base.defaults)
        self.base = base
        self.k = k
        self.alpha = alpha
        self.fast_steps = 0
        self.slow_weights: dict[torch.Tensor, torch.Tensor] = {}
        self._share_base()

    def _share_base(self) -> None:
        # base.load_state_dict() replaces the base's group list, so this runs again after it.
        self.param_groups = self.base.param_groups
        self.state = self.base.state

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One fast step of the base optimizer; every k-th step also updates the slow weights."""
        with torch.no_grad():
            for p in self._params():
                # Slow weights start from the weights at the first step (not at construction),
                # so weights loaded into the model after building the optimizer are respected.
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

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients, as the base optimizer does."""
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state plus the slow weights (by parameter index) and step count."""
        index = {p: i for i, p in enumerate(self._params())}
        return {
            "base": self.base.state_dict(),
            "slow_weights": {index[p]: slow for p, slow in self.slow_weights.items()},
            "fast_steps": self.fast_steps,
            "k": self.k,
            "alpha": self.alpha,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned, so training continues exactly."""
        if "base" not in state_dict or "slow_weights" not in state_dict:
            raise ValueError(
                "This is not a Lookahead state dict (no 'base'/'slow_weights' entries); "
                "load a plain optimizer's state into lookahead.base instead."
            )
        self.base.load_state_dict(state_dict["base"])
        self._share_base()
        params = self._params()
        self.slow_weights = {
            params[i]: slow.to(device=params[i].device, dtype=params[i].dtype, copy=True)
            for i, slow in state_dict["slow_weights"].items()
        }
        self.fast_steps = state_dict["fast_steps"]
        self.k = state_dict["k"]
        self.alpha = state_dict["alpha"]

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer's version keeps only defaults, state and groups; copy.deepcopy and
        # pickle also need the base optimizer and the Lookahead settings.
        return {
            **super().__getstate__(),
            "base": self.base,
            "k": self.k,
            "alpha": self.alpha,
            "fast_steps": self.fast_steps,
            "slow_weights": self.slow_weights,
        }

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, base={self.base!r})"


def _as_params(params: nn.Module | Iterable) -> list:
    return list(params.parameters() if isinstance(params, nn.Module) else params)


def _decay_groups(params: list, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weight decay on weight matrices and kernels, none on biases and BN."""
    if any(isinstance(p, dict) for p in params):
        raise ValueError(
            "no_decay_bn=True splits plain parameters itself; pass model.parameters(), "
            "not parameter groups."
        )
    decayed = [p for p in params if p.ndim > 1]
    not_decayed = [p for p in params if p.ndim <= 1]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": not_decayed, "weight_decay": 0.0},
    ]


def make_optimizer(
    name_or_optimizer: str | type[Optimizer] | Optimizer,
    params: nn.Module | Iterable,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    *,
    no_decay_bn: bool = False,
    lookahead: bool = False,
    lookahead_k: int = 5,
    lookahead_alpha: float = 0.5,
    **kwargs: Any,
) -> Optimizer:
    """Build an optimizer by name (see ``OPTIMIZERS``; ``"lookahead-<name>"`` wraps it in
    Lookahead), from an optimizer class, or pass a built one through (then only
    ``lookahead`` applies). ``momentum`` is used by "momentum" and "nesterov"; ``no_decay_bn``
    exempts biases and BatchNorm parameters from weight decay; ``kwargs`` go to the class.
    """
    if isinstance(name_or_optimizer, Optimizer):
        optimizer = name_or_optimizer
    else:
        if lr < 0:
            raise ValueError(f"The learning rate must not be negative, got lr={lr}.")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must not be negative, got {weight_decay}.")
        params = _as_params(params)
        if no_decay_bn and weight_decay > 0:
            params, weight_decay = _decay_groups(params, weight_decay), 0.0
        if isinstance(name_or_optimizer, type) and issubclass(name_or_optimizer, Optimizer):
            optimizer = name_or_optimizer(params, lr=lr, weight_decay=weight_decay, **kwargs)
        else:
            name = str(name_or_optimizer).strip().lower()
            if name.startswith(LOOKAHEAD_PREFIX):
                name, lookahead = name.removeprefix(LOOKAHEAD_PREFIX), True
            if name not in OPTIMIZERS:
                valid = ", ".join(OPTIMIZERS)
                raise ValueError(
                    f"Unknown optimizer {name_or_optimizer!r}; choose one of {valid} "
                    f"(or '{LOOKAHEAD_PREFIX}<name>')."
                )
            optimizer = OPTIMIZERS[name](
                params, lr=lr, momentum=momentum, weight_decay=weight_decay, **kwargs
            )
    if lookahead:
        return Lookahead(optimizer, k=lookahead_k, alpha=lookahead_alpha)
    return optimizer


@dataclass
class Schedule:
    """A learning-rate scheduler behind one interface, so ``fit()`` drives any kind alike:
    call ``step()`` after every optimizer step if ``per_step``, else once per epoch with
    the epoch's validation accuracy (only "plateau" uses it, the others ignore it)."""

    scheduler: LRScheduler
    per_step: bool
    name: str = "custom"

    @property
    def needs_metric(self) -> bool:
        """True when ``step`` needs the validation metric (ReduceLROnPlateau)."""
        return isinstance(self.scheduler, ReduceLROnPlateau)

    def step(self, metric: float | None = None) -> None:
        """Advance the schedule by one step (or one epoch)."""
        if not self.needs_metric:
            self.scheduler.step()
        elif metric is None:
            raise ValueError(
                f"The {self.name!r} schedule reacts to the validation accuracy: "
                "call step(metric) with it once per epoch."
            )
        else:
            self.scheduler.step(metric)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped scheduler's state, for checkpoints."""
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped scheduler's state from a checkpoint."""
        self.scheduler.load_state_dict(state_dict)


class WarmupCosine:
    """LambdaLR factor: linear warm-up to 1 over ``warmup_steps``, then a cosine to 0 at
    ``total_steps``. A class rather than a closure so the schedule can be checkpointed."""

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        """The learning-rate multiplier at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def _has_momentum(optimizer: Optimizer) -> bool:
    """Whether OneCycleLR can cycle this optimizer's momentum (Adam's beta1 or SGD momentum)."""
    return "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0


def _step_schedule(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule:
    milestones = kwargs.pop("milestones", sorted({max(1, epochs // 2), max(1, epochs * 3 // 4)}))
    scheduler = MultiStepLR(optimizer, milestones, gamma=kwargs.pop("gamma", 0.1), **kwargs)
    return Schedule(scheduler, per_step=False, name="step")


def _cosine_schedule(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule:
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, **kwargs)
    return Schedule(scheduler, per_step=True, name="cosine")


def _onecycle_schedule(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule:
    kwargs.setdefault("max_lr", [group["lr"] for group in optimizer.param_groups])
    kwargs.setdefault("pct_start", 0.3)
    kwargs.setdefault("cycle_momentum", _has_momentum(optimizer))
    scheduler = OneCycleLR(optimizer, total_steps=epochs * steps_per_epoch, **kwargs)
    return Schedule(scheduler, per_step=True, name="onecycle")


def _warmup_cosine_schedule(optimizer, epochs, steps_per_epoch, warmup=0.1) -> Schedule:
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup is a fraction of all steps in [0, 1), got {warmup}.")
    total = epochs * steps_per_epoch
    factor = WarmupCosine(round(warmup * total), total)
    return Schedule(LambdaLR(optimizer, factor), per_step=True, name="warmup_cosine")


def _plateau_schedule(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule:
    settings = {"mode": "max", "factor": 0.5, "patience": 10} | kwargs
    return Schedule(ReduceLROnPlateau(optimizer, **settings), per_step=False, name="plateau")


def _constant_schedule(optimizer, epochs, steps_per_epoch) -> Schedule:
    scheduler = ConstantLR(optimizer, factor=1.0, total_iters=0)  # never changes the lr
    return Schedule(scheduler, per_step=False, name="constant")


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant_schedule,
    "step": _step_schedule,
    "cosine": _cosine_schedule,
    "onecycle": _onecycle_schedule,
    "warmup_cosine": _warmup_cosine_schedule,
    "plateau": _plateau_schedule,
}
"""Schedule names -> builders ``(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule``."""


def make_scheduler(
    name: str | LRScheduler | Schedule,
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    **kwargs: Any,
) -> Schedule:
    """Build a learning-rate ``Schedule`` by name (see ``SCHEDULES``), or wrap a ready torch
    scheduler (``per_step=True`` if it should step every batch, default once per epoch).
    ``kwargs`` tune the schedule, e.g. ``pct_start`` for "onecycle", ``warmup`` fraction."""
    if isinstance(name, Schedule):
        return name
    if isinstance(name, LRScheduler):
        if name.optimizer.param_groups is not optimizer.param_groups:
            raise ValueError(
                "This scheduler was built for a different optimizer; build it on the "
                "optimizer that is passed in."
            )
        per_step = kwargs.pop("per_step", False)
        if kwargs:
            raise ValueError(
                f"A ready-built scheduler takes only per_step=..., not {', '.join(kwargs)}."
            )
        return Schedule(name, per_step=per_step, name=type(name).__name__)
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(
            f"epochs and steps_per_epoch must be at least 1, got {epochs} and {steps_per_epoch}."
        )
    key = str(name).strip().lower()
    if key not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    return SCHEDULES[key](optimizer, epochs, steps_per_epoch, **kwargs)


def clip_gradients(
    model: nn.Module | Iterable[torch.Tensor],
    value: float | None = None,
    norm: float | None = None,
) -> torch.Tensor | None:
    """Clip gradients in place: each entry to [-value, value], then the total norm to ``norm``
    (``wang`` clipped by value 0.1). Returns the total norm before norm clipping, else None."""
    params = [p for p in _as_params(model) if p.grad is not None]
    if value is not None:
        if value <= 0:
            raise ValueError(f"Clipping value must be positive, got {value}.")
        nn.utils.clip_grad_value_(params, value)
    if norm is not None:
        if norm <= 0:
            raise ValueError(f"Clipping norm must be positive, got {norm}.")
        return nn.utils.clip_grad_norm_(params, norm)
    return None
