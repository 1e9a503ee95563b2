"""The door checks of augment and mixup: every argument the augmentations, the pipelines and
the mixers take, refused in one line before training. ``DeviceLoader``, ``recipes.run``,
``fit``, the config check and sweeps call these; the core modules themselves check nothing.

    check_specs(specs)                    a pipeline's specs (names, arguments, fields, callables)
    check_augment(specs, images, gen)     the above, then a dry run on sample images
    check_mixer(mixer) / check_mix(...)   a Mixer's fields / a direct mixup or cutmix call
    code_fingerprint(pipeline)            what resume compares of a student's own steps
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from course_utils import augment, mixup
from course_utils.augment import (
    Augmentation,
    ColorJitter,
    Cutout,
    HorizontalFlip,
    RandomCrop,
    RandomErasing,
    RandomRotation,
)
from course_utils.support.validate import is_number

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
            known = ", ".join(augment.AUGMENTATIONS)
            raise ValueError(f"Unknown augmentation {name!r}; the known names are {known}.")
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


# ------------------------------------------------------------------------------------ resume


def code_fingerprint(pipeline: Sequence[Callable]) -> str | None:
    """A short digest of the code of a pipeline's own functions (not the course's
    augmentations, whose specs say everything): ``fit`` records it so that resuming after
    editing a function of the same name is refused. None when there is none."""
    codes = [_step_code(step) for step in pipeline if not isinstance(step, Augmentation)]
    return hashlib.sha1(b"".join(codes)).hexdigest()[:12] if codes else None


def _step_code(step: Callable) -> bytes:
    """What a custom step runs: its code and constants, and the values it closes over, was
    given (``functools.partial``) or holds (a callable object's attributes); memory
    addresses in their text are dropped, so the same step gives the same bytes next time."""
    if isinstance(step, functools.partial):
        settings = repr((step.args, sorted(step.keywords.items())))
        return _step_code(step.func) + settings.encode()
    function = getattr(step, "__func__", step)
    code = getattr(function, "__code__", None)
    if code is not None:
        cells = [cell.cell_contents for cell in function.__closure__ or ()]
        held = repr((code.co_consts, cells))
    else:  # a callable object: its class's __call__ and its attributes
        code = getattr(type(step).__call__, "__code__", None)
        held = repr(sorted(vars(step).items())) if hasattr(step, "__dict__") else ""
    raw = code.co_code if code is not None else b""
    return raw + re.sub(r" at 0x[0-9a-fA-F]+", "", held).encode()


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
        raise ValueError(
            f"Unknown mixing kind {mixer.kind!r}; choose one of {', '.join(mixup.MIXERS)}."
        )
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
