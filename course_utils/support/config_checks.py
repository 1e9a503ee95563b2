"""The checks of a run's settings, run at the doors (``fit``, ``recipes.run``,
``DeviceLoader``, the command line, sweeps), never when a config, an augmentation or a mixer
is built; the core modules themselves check nothing.

    check_config(config, mixer)           a TrainConfig (and a mixer given to fit)
    check_specs(specs)                    a pipeline's specs (names, arguments, fields, callables)
    check_augment(specs, images, gen)     the above, then a dry run on sample images
    check_mixer(mixer) / check_mix(...)   a Mixer's fields / a direct mixup or cutmix call

``check_config`` raises :class:`ConfigError` (one line naming the setting) for the first
setting that cannot work: names, ranges and types of every field, optimizer and schedule
arguments of the wrong kind, and the values torch would refuse at its first step, found by
building both on one dummy weight. It reads the config by duck typing (no config import).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from course_utils import augment, mixup, optim, settings
from course_utils.augment import (
    Augmentation,
    ColorJitter,
    Cutout,
    HorizontalFlip,
    RandomCrop,
    RandomErasing,
    RandomRotation,
)
from course_utils.support import words
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


def check_config(config: Any, mixer: Any = None) -> None:
    """Raise :class:`ConfigError` (one line) for the first setting of ``config`` that cannot
    work, before anything is built or trained; ``fit`` also hands over a mixer given to it."""
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
        check_specs(named)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"augment: {err}") from None
    if mixer is not None:
        check_mixer(mixer)


def _check_optimizer(config: Any) -> None:
    """The optimizer's name, momentum, extra arguments and Lookahead settings."""
    if config.optimizer not in optim.OPTIMIZERS:
        raise ConfigError(words.unknown("optimizer", config.optimizer, optim.OPTIMIZERS))
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
        raise ConfigError(words.unknown("schedule", config.schedule, optim.SCHEDULES))
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


# ----------------------------------------------------------------------------- augmentations


def _number(name: str, value: Any, low: float, high: float = math.inf) -> None:
    """A finite number in [low, high], both ends included."""
    if not is_number(value) or not math.isfinite(value) or not low <= value <= high:
        allowed = f"at least {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}.")


def _range(name: str, value: Any, low: float, high: float = math.inf) -> None:
    """A pair (min, max) with low <= min <= max <= high."""
    pair = isinstance(value, (tuple, list)) and len(value) == 2
    if pair:
        for bound in value:
            _number(f"{name} bounds", bound, low, high)
    if not pair or value[0] > value[1]:
        allowed = f"at least {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(
            f"{name} must be a pair (min, max) with min <= max, {allowed}, got {value!r}."
        )


def _int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}.")


def _fill(fill: Any) -> None:
    """One int 0-255 for every channel, or a tuple or list of them, one per channel."""
    values = list(fill) if isinstance(fill, (tuple, list)) else [fill]
    valid = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)
    if not valid or not values:
        raise ValueError(
            f"fill must be an int 0-255 or a tuple of them (one per channel), got {fill!r}."
        )


def check_fields(step: Augmentation) -> None:
    """The fields of one of the course's augmentations (also a field set after construction,
    such as ``flip.p = 5``)."""
    if isinstance(step, RandomCrop):
        _int("padding", step.padding, 0)
        if step.padding_mode not in ("constant", "reflect"):
            raise ValueError(
                f"padding_mode must be 'constant' or 'reflect', got {step.padding_mode!r}."
            )
    if isinstance(step, (HorizontalFlip, RandomErasing)):
        _number("p", step.p, 0.0, 1.0)
    if isinstance(step, RandomRotation):
        _number("degrees", step.degrees, 0.0, 180.0)
    if isinstance(step, ColorJitter):
        for name in ("brightness", "contrast", "saturation"):
            _number(name, getattr(step, name), 0.0)
        _number("hue", step.hue, 0.0, 0.5)
    if isinstance(step, RandomErasing):
        _range("scale", step.scale, 0.0, 1.0)
        _range("ratio", step.ratio, 0.0)
        if step.ratio[0] == 0:
            raise ValueError(f"ratio must be positive (an aspect ratio), got {step.ratio}.")
    if isinstance(step, Cutout):
        _int("size", step.size, 0)
    if isinstance(step, (RandomRotation, RandomErasing, Cutout)):
        _fill(step.fill)


def _missing(cls: type, method: str) -> str:
    return (
        f"{cls.__name__} must define {method}(): an Augmentation subclass defines "
        "sample(batch, height, width, generator, device) -> its random parameters and "
        "apply(images, params) -> the augmented images (see RandomCrop), or __call__ itself."
    )


def _check_signature(step: Callable) -> None:
    """A custom augmentation is called as ``step(images, generator)``: say so now, not as a
    TypeError in the middle of the first epoch."""
    module = isinstance(step, torch.nn.Module)  # e.g. a torchvision transform: forward(img)
    try:
        signature = inspect.signature(step.forward if module else step)
    except (TypeError, ValueError):  # some built-in callables have none to inspect
        return
    try:
        signature.bind(None, None)
    except TypeError:
        hint = (
            "; a torchvision transform works on one image: use the course's names "
            f"({', '.join(augment.AUGMENTATIONS)})"
            if module
            else " (use the generator for its randomness: torch.rand(..., generator=generator))"
        )
        raise TypeError(
            f"Augmentation {augment.qualified_name(step)!r} takes {signature}, but augmentations "
            f"are called as step(images, generator): give it both parameters{hint}."
        ) from None


def check_spec(spec: Any) -> None:
    """One spec ``augment.build`` takes: a name, a dict with a known "name" and the class's
    arguments, one of the course's augmentations, or a callable ``(images, generator)``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(
                f"an augmentation spec dict needs a 'name' key, e.g. {{'name': 'cutout', "
                f"'size': 8}}; got {spec!r}."
            )
        name = spec["name"]
        if not isinstance(name, str) or name not in augment.AUGMENTATIONS:
            raise ValueError(words.unknown("augmentation", name, augment.AUGMENTATIONS))
        accepted = list(inspect.signature(augment.AUGMENTATIONS[name]).parameters)
        for key in spec:
            if key != "name" and key not in accepted:
                raise ValueError(
                    f"Augmentation {name!r} has no argument {key!r}; it accepts "
                    f"{', '.join(accepted) or 'none'}."
                )
        check_fields(augment.build(spec))
    elif isinstance(spec, type) and issubclass(spec, Augmentation):
        raise TypeError(
            f"build needs an instance such as {spec.__name__}() or the name {spec.name!r}, "
            f"not the class {spec.__name__}."
        )
    elif isinstance(spec, Augmentation):
        if type(spec).__call__ is Augmentation.__call__:
            for method in ("sample", "apply"):
                if getattr(type(spec), method) is getattr(Augmentation, method):
                    raise NotImplementedError(_missing(type(spec), method))
        check_fields(spec)
    elif callable(spec):
        _check_signature(spec)
    else:
        raise TypeError(
            "An augmentation spec is a name, a dict with a 'name', an Augmentation or a "
            f"callable (images, generator) -> images; got {type(spec).__name__}."
        )


def check_specs(specs: Any) -> None:
    """Everything ``augment.build_pipeline(specs)`` needs, in one line each (TypeError or
    ValueError). The config check calls it on the named specs, wrapping it as ConfigError."""
    if isinstance(specs, (str, dict)) or not isinstance(specs, Sequence):
        raise TypeError(f"build_pipeline expects a list of specs, got {type(specs).__name__}.")
    for spec in specs:
        check_spec(spec)


def check_images(images: Any, who: str = "augment") -> None:
    """A uint8 batch [B, C, H, W], as every augmentation takes."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        got = f"{images.dtype} tensor" if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(
            f"{who} expects uint8 images [B, C, H, W] (augment before normalising), got a {got}."
        )
    if images.ndim != 4:
        raise ValueError(
            f"{who} expects a batch of images [B, C, H, W], got shape {list(images.shape)}; "
            "for a single image use image.unsqueeze(0)."
        )


def check_generator(generator: Any, who: str = "augment") -> None:
    """A torch.Generator, or None for torch's global one."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{who}'s generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) "
            f"or None for torch's global one, got {generator!r}."
        )


def check_fits(step: Callable, images: Tensor) -> None:
    """One of the course's augmentations against the images' size and channels."""
    channels, height, width = images.shape[1:]
    if isinstance(step, RandomCrop) and step.padding > 0 and step.padding >= min(height, width):
        raise ValueError(
            f"{step.padding_mode} padding must be smaller than the images ({height}x{width}), "
            f"got padding={step.padding}; 4 is usual for 32x32."
        )
    if isinstance(step, Cutout) and step.size > min(height, width):
        raise ValueError(
            f"cutout size {step.size} is larger than the {height}x{width} images: it would "
            f"erase whole images; use at most {min(height, width)} (8 to 16 is usual for 32x32)."
        )
    if isinstance(step, ColorJitter) and channels != 3:
        raise ValueError(f"ColorJitter needs RGB images, got {channels} channels.")
    fill = getattr(step, "fill", None) if isinstance(step, Augmentation) else None
    if isinstance(fill, (tuple, list)) and len(fill) not in (1, channels):
        raise ValueError(f"fill {fill} has {len(fill)} values but the images {channels} channels.")


def check_augment(specs: Any, images: Tensor, generator: Any = None) -> None:
    """The door of a loader or a run: the specs, then the pipeline tried on ``images`` (a
    sample, e.g. two of them), each step checked against them and each step's result checked
    to be a uint8 batch of their shape, so a faulty step is named now. Random states are kept."""
    check_images(images)
    check_generator(generator)
    check_specs(specs)
    shape, device = images.shape, images.device
    if generator is None:  # a step may draw from the generator the loader hands it
        generator = torch.Generator(device=device).manual_seed(0)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for step in augment.build_pipeline(specs):
            check_fits(step, images)
            images = step(images, generator)
            if not isinstance(images, Tensor):
                got = f"a {type(images).__name__}"
            elif images.dtype != torch.uint8 or images.shape != shape or images.device != device:
                got = f"a {images.dtype} tensor of shape {list(images.shape)} on {images.device}"
            else:
                continue
            raise ValueError(
                f"Augmentation {augment.describe([step])[0]!r} returned {got}; every augmentation "
                f"must return uint8 images of the input's shape {list(shape)} on {device}."
            )


# ------------------------------------------------------------------------------------ mixing


def check_alpha(alpha: Any) -> None:
    """A finite number >= 0 (TypeError when it is no number)."""
    message = f"alpha must be a number >= 0 (0 turns mixing off), e.g. 1.0; got {alpha!r}."
    if not is_number(alpha):
        raise TypeError(message)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(message)


def check_mixer(mixer: Any) -> None:
    """``fit``'s door for ``mixer=``: a ``Mixer``'s kind, alpha and prob (a student's own
    mixer is checked on every call by support.checks.checked_mixer)."""
    if not isinstance(mixer, mixup.Mixer):
        return
    if mixer.kind not in mixup.MIXERS:
        raise ValueError(words.unknown("mixing kind", mixer.kind, mixup.MIXERS))
    check_alpha(mixer.alpha)
    if not is_number(mixer.prob):
        raise TypeError(f"prob is a probability in [0, 1], e.g. 0.5; got {mixer.prob!r}.")
    if not 0.0 <= mixer.prob <= 1.0:
        raise ValueError(f"prob is a probability in [0, 1], got {mixer.prob}.")


def check_mix(x: Any, y: Any, alpha: Any = 1.0, lam: Any = None) -> None:
    """The arguments of a direct ``mixup``/``cutmix`` call: float images [N, C, H, W], labels
    [N], alpha, and lam in [0, 1] when given."""
    check_alpha(alpha)
    if not x.is_floating_point():
        raise TypeError(f"Mixing needs float images, got {x.dtype}; convert and normalise first.")
    if x.ndim != 4 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"Expected images [N, C, H, W] and labels [N], got {tuple(x.shape)} and "
            f"{tuple(y.shape)}."
        )
    if lam is not None and not 0.0 <= lam <= 1.0:
        raise ValueError(f"The mixing weight lam must lie in [0, 1], got {lam}.")
