"""Optimizers and learning-rate schedules by name, Lookahead, and gradient clipping.

``make_optimizer("nesterov", model.parameters(), lr=0.1)`` and
``make_scheduler("onecycle", optimizer, epochs, steps_per_epoch)`` build what the five
student reports used, so a lecture can swap one for another by changing a string.
"""

from __future__ import annotations

import inspect
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
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
)

OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
}
"""Optimizer names (lecture 04) -> the torch class each builds. "momentum" and "nesterov"
are SGD with momentum (classical or Nesterov); plain "sgd" has none."""

OPTIMIZERS = tuple(OPTIMIZER_CLASSES)
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")
DEFAULT_MOMENTUM = 0.9
# Arguments make_optimizer sets itself, so they are not extra keyword arguments.
_SET_BY_NAME = {"params", "lr", "weight_decay", "momentum", "nesterov"}


def accepted_kwargs(name_or_builder: str | Callable[..., Any]) -> set[str]:
    """The extra keyword arguments an optimizer (by name) or a schedule builder takes."""
    target = OPTIMIZER_CLASSES.get(name_or_builder, name_or_builder)
    parameters = inspect.signature(target).parameters
    fixed = _SET_BY_NAME | {"optimizer", "epochs", "steps_per_epoch", "self"}
    return {name for name in parameters if name not in fixed and not name.startswith("_")}


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
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Lookahead needs k >= 1 fast steps per slow step, got k={k!r}.")
        if not (_is_number(alpha) and 0.0 < alpha <= 1.0):
            raise ValueError(f"Lookahead's alpha must lie in (0, 1], got {alpha!r}.")
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


def make_optimizer(
    name: str,
    params: nn.Module | Iterable,
    lr: float,
    weight_decay: float,
    momentum: float | None = None,
    lookahead: dict[str, float] | None = None,
    **kwargs: Any,
) -> Optimizer:
    """Build the optimizer called ``name`` (see ``OPTIMIZERS``; lectures 04 and 06).

    ``momentum`` belongs to "momentum" and "nesterov" (default 0.9) and is an error for the
    others, as is a keyword argument the optimizer's class does not take, so that nothing is
    silently dropped. ``lookahead=dict(k=5, alpha=0.5)`` wraps the result in ``Lookahead``.
    """
    if name not in OPTIMIZER_CLASSES:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if not (_is_number(lr) and lr > 0 and _is_number(weight_decay) and weight_decay >= 0):
        raise ValueError(
            f"lr must be a positive number and weight_decay a number >= 0, got {lr!r} and "
            f"{weight_decay!r}."
        )
    if momentum is not None and not (_is_number(momentum) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}.")
    if lookahead is not None and (
        not isinstance(lookahead, dict) or set(lookahead) != {"k", "alpha"}
    ):
        raise ValueError(
            f"lookahead takes a dict of k and alpha, e.g. {{'k': 5, 'alpha': 0.5}}; got "
            f"{lookahead!r}."
        )
    unknown = sorted(set(kwargs) - accepted_kwargs(name))
    if unknown:
        raise ValueError(f"{name} takes no argument(s) {', '.join(unknown)}.")
    if name in MOMENTUM_OPTIMIZERS:
        momentum = DEFAULT_MOMENTUM if momentum is None else momentum
        kwargs.update(momentum=momentum, nesterov=name == "nesterov")
    elif momentum is not None:
        raise ValueError(
            f"{name} takes no momentum (only {' and '.join(MOMENTUM_OPTIMIZERS)} do); "
            "Adam-style optimizers set theirs with betas=(beta1, beta2)."
        )
    try:
        optimizer = OPTIMIZER_CLASSES[name](
            _as_params(params), lr=lr, weight_decay=weight_decay, **kwargs
        )
    except (TypeError, ValueError) as error:  # torch's own checks: an empty model, nesterov at 0
        raise ValueError(f"{name} cannot be built: {error}.") from None
    return Lookahead(optimizer, **lookahead) if lookahead else optimizer


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


_TRIAL_STEPS = 1009  # steps per epoch of the trial schedule in check_values (any number works)


def check_values(
    optimizer: str,
    lr: float,
    weight_decay: float,
    momentum: float | None,
    optimizer_kwargs: dict[str, Any],
    schedule: str,
    schedule_kwargs: dict[str, Any],
    epochs: int,
) -> None:
    """Raise ValueError (one line) for an optimizer or schedule argument of the wrong type, or
    a value torch refuses (Adam's betas above 1, a onecycle pct_start of 5, a plateau mode
    "maxx"), by building both on one dummy weight: ``TrainConfig.validate`` calls it so that
    such a value is found before training, not at its first step."""
    _check_types(OPTIMIZER_CLASSES[optimizer], optimizer_kwargs, f"{optimizer}'s")
    _check_types(SCHEDULES[schedule], schedule_kwargs, f"the {schedule} schedule's")
    refused = (TypeError, ValueError, IndexError, ArithmeticError)
    try:
        weight = torch.zeros(1, requires_grad=True)
        trial = make_optimizer(optimizer, [weight], lr, weight_decay, momentum, **optimizer_kwargs)
    except refused as error:
        raise ValueError(
            f"{str(error).rstrip('.')} (lr {lr}, weight_decay {weight_decay}, momentum "
            f"{momentum}, optimizer_kwargs {optimizer_kwargs})."
        ) from None
    try:
        make_scheduler(schedule, trial, epochs, _TRIAL_STEPS, **schedule_kwargs)
    except refused as error:
        raise ValueError(
            f"the {schedule} schedule refuses schedule_kwargs {schedule_kwargs}: {error}"
        ) from None


def _check_types(target: Callable[..., Any], kwargs: dict[str, Any], owner: str) -> None:
    """Each keyword argument must have its default's kind: True/False for a flag, a finite
    number for a number, as many numbers for a tuple (betas)."""
    parameters = inspect.signature(target).parameters
    defaults = {name: p.default for name, p in parameters.items()}
    annotations = {name: p.annotation for name, p in parameters.items()}
    for key, value in kwargs.items():
        default = defaults.get(key)
        if isinstance(default, bool):
            wanted, ok = "True or False", isinstance(value, bool)
        elif isinstance(default, (int, float)):
            wanted, ok = "a finite number", _is_number(value)
        elif isinstance(default, tuple):
            wanted = f"{len(default)} numbers, like {list(default)}"
            ok = isinstance(value, (list, tuple)) and len(value) == len(default)
            ok = ok and all(_is_number(v) for v in value)
        elif isinstance(default, str):
            wanted, ok = "a string", isinstance(value, str)
        elif default is None and str(annotations.get(key)) in _OPTIONAL_FLAG:  # foreach, fused
            wanted, ok = "True, False or None", value is None or isinstance(value, bool)
        else:
            continue
        if not ok:
            raise ValueError(f"{owner} {key} must be {wanted}, got {value!r}.")


_OPTIONAL_FLAG = {"bool | None", "Optional[bool]", "typing.Optional[bool]"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _has_momentum(optimizer: Optimizer) -> bool:
    """Whether OneCycleLR can cycle this optimizer's momentum (Adam's beta1 or SGD momentum)."""
    return "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0


def _step_schedule(
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    milestones: list[int] | None = None,
    gamma: float = 0.1,
) -> Schedule:
    """Multiply the rate by ``gamma`` at each milestone epoch (default: at 1/2 and 3/4)."""
    if milestones is not None and (
        not isinstance(milestones, (list, tuple))
        or not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones)
    ):
        raise ValueError(
            f"milestones must be a list of epochs (whole numbers >= 1), got {milestones!r}."
        )
    if milestones is not None and max(milestones, default=0) > epochs:
        raise ValueError(
            f"milestones {milestones} lie beyond the {epochs} epochs: they never fire."
        )
    if gamma <= 0:
        raise ValueError(f"gamma multiplies the rate and must be > 0, got {gamma}.")
    milestones = milestones or sorted({max(1, epochs // 2), max(1, epochs * 3 // 4)})
    return Schedule(MultiStepLR(optimizer, milestones, gamma=gamma), per_step=False, name="step")


def _cosine_schedule(
    optimizer: Optimizer, epochs: int, steps_per_epoch: int, eta_min: float = 0.0
) -> Schedule:
    """A half cosine from the rate down to ``eta_min`` over every step of the run."""
    lowest = min(group["lr"] for group in optimizer.param_groups)
    if not 0 <= eta_min <= lowest:
        raise ValueError(
            f"eta_min is the final rate and must be in [0, lr={lowest}], got {eta_min}."
        )
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=eta_min)
    return Schedule(scheduler, per_step=True, name="cosine")


def _onecycle_schedule(
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool | None = None,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """Warm up to the rate over ``pct_start`` of the steps, then anneal to almost zero."""
    if cycle_momentum and not _has_momentum(optimizer):
        raise ValueError(
            "cycle_momentum=True needs an optimizer with momentum (momentum, nesterov or an "
            "Adam-style one); this one has none to cycle."
        )
    total = epochs * steps_per_epoch
    if pct_start * total == 1:  # torch's OneCycleLR would divide by zero on its first step
        raise ValueError(
            f"the onecycle schedule cannot warm up over exactly 1 of its {total} steps "
            f"(pct_start {pct_start}); use more images or epochs, a smaller batch, or another "
            "pct_start."
        )
    scheduler = OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=epochs * steps_per_epoch,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        cycle_momentum=_has_momentum(optimizer) if cycle_momentum is None else cycle_momentum,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    return Schedule(scheduler, per_step=True, name="onecycle")


def _plateau_schedule(
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    mode: str = "max",
    factor: float = 0.5,
    patience: int = 10,
    min_lr: float = 0.0,
) -> Schedule:
    """Cut the rate by ``factor`` when the validation accuracy stalls for ``patience`` epochs."""
    if patience < 0:
        raise ValueError(f"patience must be a number of epochs >= 0, got {patience}.")
    if mode != "max":  # fit steps it with the validation accuracy: higher is better
        raise ValueError(
            f"the plateau schedule watches the validation accuracy, so mode must be 'max', "
            f"got {mode!r}."
        )
    scheduler = ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr
    )
    return Schedule(scheduler, per_step=False, name="plateau")


def _constant_schedule(optimizer: Optimizer, epochs: int, steps_per_epoch: int) -> Schedule:
    """The same rate throughout."""
    scheduler = ConstantLR(optimizer, factor=1.0, total_iters=0)  # never changes the lr
    return Schedule(scheduler, per_step=False, name="constant")


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant_schedule,
    "step": _step_schedule,
    "cosine": _cosine_schedule,
    "onecycle": _onecycle_schedule,
    "plateau": _plateau_schedule,
}
"""Schedule names -> builders ``(optimizer, epochs, steps_per_epoch, **kwargs) -> Schedule``."""

EXTENSIBLE_SCHEDULES = ("constant", "plateau")
"""Schedules that do not depend on the number of epochs, so a resumed run may add epochs."""


def make_scheduler(
    name: str, optimizer: Optimizer, epochs: int, steps_per_epoch: int, **kwargs: Any
) -> Schedule:
    """Build the learning-rate ``Schedule`` called ``name`` (see ``SCHEDULES``; lecture 04);
    ``kwargs`` tune it, e.g. ``pct_start`` for "onecycle"."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(
            f"epochs and steps_per_epoch must be at least 1, got {epochs} and {steps_per_epoch}."
        )
    unknown = sorted(set(kwargs) - accepted_kwargs(SCHEDULES[name]))
    if unknown:
        raise ValueError(f"The {name} schedule takes no argument(s) {', '.join(unknown)}.")
    return SCHEDULES[name](optimizer, epochs, steps_per_epoch, **kwargs)


def clip_gradients(
    model: nn.Module | Iterable[torch.Tensor],
    value: float | None = None,
    norm: float | None = None,
) -> torch.Tensor | None:
    """Clip gradients in place: each entry to [-value, value], then the total norm to ``norm``
    (``wang`` clipped by value 0.1). Returns the total norm before norm clipping, else None."""
    for name, limit in (("value", value), ("norm", norm)):
        if limit is not None and not (_is_number(limit) and limit > 0):
            raise ValueError(f"Clipping {name} must be a positive number, got {limit!r}.")
    params = [p for p in _as_params(model) if p.grad is not None]
    if value is not None:
        nn.utils.clip_grad_value_(params, value)
    if norm is not None:
        return nn.utils.clip_grad_norm_(params, norm)
    return None
