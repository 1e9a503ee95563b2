"""``check_config``: the one check of a ``TrainConfig``, run at the doors (``fit``,
``recipes.run``, the command line, sweeps), never when a config is built.

It raises :class:`ConfigError` (one line naming the setting) for the first setting that
cannot work: names, ranges and types of every field, with optimizer and schedule arguments
of the wrong kind, and the values torch would refuse at its first step, found by building
both on one dummy weight. It reads the config by duck typing, so it imports no config.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils import augment, optim, settings
from course_utils.support.validate import (
    ConfigError,
    is_number,
    require_bool,
    require_choice,
    require_int,
    require_number,
)

_TRIAL_STEPS = 1009  # steps per epoch of the trial schedule (any number works)
_REFUSED = (TypeError, ValueError, IndexError, ArithmeticError)  # what torch raises
_OPTIONAL_FLAG = {"bool | None", "Optional[bool]", "typing.Optional[bool]"}  # foreach, fused


def check_config(config: Any) -> None:
    """Raise :class:`ConfigError` (one line) for the first setting of ``config`` that cannot
    work, before anything is built or trained."""
    if isinstance(config.augment, (str, dict)) or not isinstance(config.augment, (list, tuple)):
        raise ConfigError(
            f"augment must be a list of augmentations ([] for none), got {config.augment!r}."
        )
    for name in ("optimizer_kwargs", "schedule_kwargs"):
        kwargs = getattr(config, name)
        if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
            raise ConfigError(f"{name} must be a dict of arguments by name, got {kwargs!r}.")
    require_number("lr", config.lr, low=0, low_open=True)
    require_number("weight_decay", config.weight_decay, low=0)
    require_int("epochs", config.epochs, low=1)
    require_int("batch_size", config.batch_size, low=1)
    require_int("seed", config.seed, low=0, high=settings.MAX_SEED)
    require_number("label_smoothing", config.label_smoothing, low=0, high=1)
    require_number("mixup", config.mixup, low=0)
    require_number("val_split", config.val_split, low=0, high=1)
    if config.ema is not None:
        require_number("ema", config.ema, low=0, high=1, low_open=True)
    for name in ("tta", "channels_last", "compile"):
        require_bool(name, getattr(config, name))
    require_choice("precision", config.precision, settings.PRECISIONS)
    _check_optimizer(config)
    _check_schedule(config)
    _check_values(config)
    _check_grad_clip(config.grad_clip)
    # A student's own augmentation is recorded by its qualified name (module.function):
    # a record of what ran, not something to rebuild, so only named specs are checked.
    named = [spec for spec in config.augment if not (isinstance(spec, str) and "." in spec)]
    try:
        augment.build_pipeline(named)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"augment: {err}") from None


def _check_optimizer(config: Any) -> None:
    """The optimizer's name, momentum, extra arguments and Lookahead settings."""
    if config.optimizer not in optim.OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {config.optimizer!r}; choose one of: {', '.join(optim.OPTIMIZERS)}."
        )
    if config.momentum is not None:
        if config.optimizer not in optim.MOMENTUM_OPTIMIZERS:
            own = (
                "plain SGD has none: choose optimizer 'momentum' or 'nesterov'"
                if config.optimizer == "sgd"
                else f"{config.optimizer} has its own (e.g. Adam's betas in optimizer_kwargs)"
            )
            raise ConfigError(
                f"momentum is used by {' and '.join(optim.MOMENTUM_OPTIMIZERS)} only; {own}."
            )
        require_number("momentum", config.momentum, low=0, high=1)
    accepted = optim.accepted_kwargs(config.optimizer)
    unknown = sorted(set(config.optimizer_kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"optimizer_kwargs {', '.join(unknown)} are not arguments of {config.optimizer}; "
            f"it takes: {', '.join(sorted(accepted))}."
        )
    if config.lookahead is not None:
        if set(config.lookahead) != {"k", "alpha"}:
            raise ConfigError(
                f"lookahead needs exactly k and alpha, e.g. {{'k': 5, 'alpha': 0.5}}; got "
                f"{config.lookahead!r}."
            )
        require_int("lookahead k", config.lookahead["k"], low=1)
        require_number("lookahead alpha", config.lookahead["alpha"], 0, 1, low_open=True)


def _check_schedule(config: Any) -> None:
    """The schedule's name and the names of its extra arguments."""
    if config.schedule not in optim.SCHEDULES:
        raise ConfigError(
            f"unknown schedule {config.schedule!r}; choose one of: {', '.join(optim.SCHEDULES)}."
        )
    accepted = optim.accepted_kwargs(optim.SCHEDULES[config.schedule])
    unknown = sorted(set(config.schedule_kwargs) - accepted)
    if unknown:
        taken = ", ".join(sorted(accepted)) or "nothing"
        raise ConfigError(
            f"schedule_kwargs {', '.join(unknown)} do not apply to the {config.schedule} "
            f"schedule; it takes: {taken}."
        )


def _check_values(config: Any) -> None:
    """An optimizer or schedule argument of the wrong type, or a value torch refuses (Adam's
    betas above 1, a onecycle pct_start of 5), found by building both on one dummy weight,
    so that it is found before training, not at the first step."""
    _check_types(optim.OPTIMIZER_CLASSES[config.optimizer], config.optimizer_kwargs,
                 f"{config.optimizer}'s")  # fmt: skip
    _check_types(optim.SCHEDULES[config.schedule], config.schedule_kwargs,
                 f"the {config.schedule} schedule's")  # fmt: skip
    weight = torch.zeros(1, requires_grad=True)
    try:
        trial = optim.make_optimizer(
            config.optimizer, [weight], config.lr, config.weight_decay, config.momentum,
            **config.optimizer_kwargs,
        )  # fmt: skip
    except _REFUSED as error:
        raise ConfigError(
            f"{config.optimizer} cannot be built: {str(error).rstrip('.')} (lr {config.lr}, "
            f"weight_decay {config.weight_decay}, momentum {config.momentum}, optimizer_kwargs "
            f"{config.optimizer_kwargs})."
        ) from None
    try:
        _check_schedule_values(config, trial)
        optim.make_scheduler(
            config.schedule, trial, config.epochs, _TRIAL_STEPS, **config.schedule_kwargs
        )
    except _REFUSED as error:
        raise ConfigError(
            f"the {config.schedule} schedule refuses schedule_kwargs {config.schedule_kwargs}: "
            f"{error}"
        ) from None


def _check_grad_clip(clip: Any) -> None:
    """A max norm, or a dict of value and/or norm, each > 0."""
    if isinstance(clip, dict):
        if not clip or not set(clip) <= {"value", "norm"}:
            raise ConfigError(f"grad_clip takes value and/or norm, got {clip!r}.")
        for key, number in clip.items():
            require_number(f"grad_clip {key}", number, low=0, low_open=True)
    elif clip is not None:
        require_number("grad_clip", clip, low=0, low_open=True)


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
            wanted, ok = "a finite number", _is_finite(value)
        elif isinstance(default, tuple):
            wanted = f"{len(default)} numbers, like {list(default)}"
            ok = isinstance(value, (list, tuple)) and len(value) == len(default)
            ok = ok and all(_is_finite(v) for v in value)
        elif isinstance(default, str):
            wanted, ok = "a string", isinstance(value, str)
        elif default is None and str(annotations.get(key)) in _OPTIONAL_FLAG:
            wanted, ok = "True, False or None", value is None or isinstance(value, bool)
        else:
            continue
        if not ok:
            raise ConfigError(f"{owner} {key} must be {wanted}, got {value!r}.")


def _is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _check_schedule_values(config: Any, trial: torch.optim.Optimizer) -> None:
    """Schedule arguments torch takes but that cannot work in ``fit`` (ValueError)."""
    kwargs, epochs = config.schedule_kwargs, config.epochs
    if config.schedule == "step":
        milestones = kwargs.get("milestones")
        if milestones is not None and (
            not isinstance(milestones, (list, tuple))
            or not all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones
            )
        ):
            raise ValueError(
                f"milestones must be a list of epochs (whole numbers >= 1), got {milestones!r}."
            )
        if milestones is not None and max(milestones, default=0) > epochs:
            raise ValueError(
                f"milestones {milestones} lie beyond the {epochs} epochs: they never fire."
            )
        if kwargs.get("gamma", 0.1) <= 0:
            raise ValueError(f"gamma multiplies the rate and must be > 0, got {kwargs['gamma']}.")
    eta_min = kwargs.get("eta_min", 0.0)
    if config.schedule == "cosine" and not 0 <= eta_min <= config.lr:
        raise ValueError(
            f"eta_min is the final rate and must be in [0, lr={config.lr}], got {eta_min}."
        )
    cycle_momentum = kwargs.get("cycle_momentum")
    if config.schedule == "onecycle" and cycle_momentum and not optim.has_momentum(trial):
        raise ValueError(
            "cycle_momentum=True needs an optimizer with momentum (momentum, nesterov or an "
            "Adam-style one); this one has none to cycle."
        )
    if config.schedule == "plateau" and kwargs.get("patience", 0) < 0:
        raise ValueError(f"patience must be a number of epochs >= 0, got {kwargs['patience']}.")
    if config.schedule == "plateau" and kwargs.get("mode", "max") != "max":
        raise ValueError(
            f"the plateau schedule watches the validation accuracy, so mode must be 'max', "
            f"got {kwargs['mode']!r}."
        )
