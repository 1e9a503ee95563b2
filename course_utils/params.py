"""Counting what a model costs: parameters (total, per layer, per stage), FLOPs, the budget.

The by-hand formulas (``conv_params``, ``bn_params``, ``linear_params``) are the ones
lecture 03 derives; the tests check them against PyTorch's own modules.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.settings import model_device

InputSize = tuple[int, ...]
CIFAR_INPUT: InputSize = (1, 3, 32, 32)


class BudgetExceededError(ValueError):
    """A model has at least as many trainable parameters as the budget allows."""


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters in ``model`` (only those with requires_grad, by default):
    the number the 5M budget is about."""
    _check_model(model, "count_parameters")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_params(k: int, c_in: int, c_out: int, bias: bool = False) -> int:
    """Parameters of a k x k conv: one k*k*c_in filter per output channel (+ one bias each)."""
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn_params(c: int) -> int:
    """Parameters of BatchNorm over c channels: a scale and a shift per channel (the running
    mean and variance are buffers, not parameters)."""
    return 2 * c


def linear_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """Parameters of a linear layer: an n_out x n_in weight (+ one bias per output)."""
    return n_in * n_out + (n_out if bias else 0)


def stage_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level child (``stem``, ``stage1``..``stageN``, ``head`` for a
    ResNet): where the parameters of a model live. A child named ``stages`` is opened one
    level, and parameters held by the model itself appear as ``(model)``."""
    counts = {}
    for name, child in model.named_children():
        parts = child.named_children() if name == "stages" else [(name, child)]
        for part_name, part in parts:
            counts[part_name] = count_parameters(part, trainable_only=False)
    own = _own_parameters(model, trainable_only=False)
    if own:
        counts["(model)"] = own
    return counts


def summary(model: nn.Module, input_size: InputSize = CIFAR_INPUT, **kwargs) -> Any:
    """torchinfo's summary with layer names, output sizes and parameter counts; nothing is
    printed (display the returned object). Runs on the model's device, in eval mode;
    ``kwargs`` override any torchinfo argument (``depth=2`` for a shorter table)."""
    import torchinfo  # imported here: the rest of course_utils trains without it

    _check_model(model, "summary")
    options = {
        "input_size": input_size,
        "col_names": ("output_size", "num_params"),
        "row_settings": ("var_names",),
        "device": model_device(model),
        "mode": "eval",
        "verbose": 0,
    }
    options.update(kwargs)
    try:
        return torchinfo.summary(model, **options)
    except RuntimeError as err:  # torchinfo's "Failed to run torchinfo", caused by the model
        raise ValueError(_cannot_run(model, options["input_size"], err.__cause__ or err)) from None


def check_budget(model: nn.Module, limit: int = 5_000_000) -> int:
    """The trainable parameter count when it is under ``limit``; otherwise raise
    BudgetExceededError naming the three largest layers, the first places to cut."""
    if isinstance(limit, bool) or not isinstance(limit, numbers.Real):
        raise TypeError(
            f"check_budget's limit is a number of parameters, e.g. 5_000_000, got {limit!r}."
        )
    count = count_parameters(model)
    if count < limit:
        return count
    largest = ", ".join(f"{name} ({n:,})" for name, n in _largest_layers(model, 3))
    raise BudgetExceededError(
        f"{type(model).__name__} has {count:,} trainable parameters, {count - limit:,} over "
        f"the limit of {limit:,} (it must stay under it). Largest layers: {largest}; "
        "shrink their widths or remove blocks."
    )


def flops(model: nn.Module, input_size: InputSize = CIFAR_INPUT) -> int:
    """Forward FLOPs per image, counted exactly by torch's FlopCounterMode (a multiply-add
    is 2 FLOPs; convolutions and matrix products only, which dominate: BN, activations and
    pooling are not counted). The model itself is untouched: FLOPs depend only on shapes,
    so an eval-mode copy runs on the "meta" device, which tracks shapes without computing."""
    _check_model(model, "flops")
    _check_input_size(input_size, "flops")
    shapes_only = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            shapes_only(torch.zeros(input_size, device="meta"))
    except Exception as err:  # any failure of the model on this input size
        raise ValueError(_cannot_run(model, input_size, err)) from None
    return counter.get_total_flops() // input_size[0]


def training_flops(model: nn.Module, images: int) -> float:
    """FLOPs to train on ``images`` images: 3 x forward FLOPs per image x images, the usual
    rule of thumb (the backward pass costs about twice the forward)."""
    return 3.0 * flops(model) * images


class ComputeLedger:
    """The training compute of every run in a lecture (lectures 01-07 print it as they go and
    total it in their summary): ``ledger.add("resnet-20", model, epochs * images)``."""

    def __init__(self) -> None:
        self.pflops: dict[str, float] = {}

    def add(self, name: str, model: nn.Module, images: int) -> float:
        """Record and print one run's training PFLOPs (3 x forward FLOPs x images seen). A
        name already recorded is a cell run again (a Try it): the new run replaces the old
        one in the total, and the printed line says so."""
        _check_model(model, "ComputeLedger.add")
        if isinstance(images, bool) or not isinstance(images, numbers.Real) or images < 0:
            raise ValueError(
                f"images is how many images the run trained on (>= 0), got {images!r}."
            )
        pflops = training_flops(model, images) / 1e15
        again = " (replaces the earlier run of this name)" if name in self.pflops else ""
        self.pflops[name] = pflops
        print(f"{name}: {count_parameters(model):,} parameters, {pflops:.3g} PFLOPs{again}")
        return pflops

    @property
    def total(self) -> float:
        """PFLOPs of every run recorded so far."""
        return sum(self.pflops.values())


def _check_model(model: Any, who: str) -> None:
    """Raise one clear TypeError unless ``model`` is a built nn.Module."""
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise TypeError(
            f"{who} needs a built model such as {model.__name__}(...), not the class "
            f"{model.__name__}."
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who} needs a model (an nn.Module), got {type(model).__name__}.")


def _check_input_size(input_size: Any, who: str) -> None:
    """An input size is a tuple of whole numbers >= 1, the batch first."""
    valid = isinstance(input_size, (tuple, list)) and len(input_size) >= 2
    if not valid or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in input_size
    ):
        raise ValueError(
            f"{who}'s input_size is a batch shape such as {CIFAR_INPUT} (batch, channels, "
            f"height, width), got {input_size!r}."
        )


def _cannot_run(model: nn.Module, input_size: Any, err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (
        f"{type(model).__name__} cannot run on an input of size {tuple(input_size)}: "
        f"{lines[0] if lines else type(err).__name__}; give input_size as the full batch shape, "
        f"e.g. {CIFAR_INPUT} for 32x32 RGB images."
    )


def _largest_layers(model: nn.Module, n: int) -> list[tuple[str, int]]:
    """The ``n`` modules holding the most trainable parameters of their own."""
    sizes = [
        (name or type(model).__name__, _own_parameters(module))
        for name, module in model.named_modules()
    ]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:n]


def _own_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Parameters a module holds itself, not counting its children."""
    return sum(
        p.numel() for p in module.parameters(recurse=False) if p.requires_grad or not trainable_only
    )


def _dummy_input(model: nn.Module, input_size: InputSize) -> torch.Tensor:
    """A zero batch of ``input_size`` on the model's device."""
    return torch.zeros(input_size, device=model_device(model))


@contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad for a measuring pass, then every submodule's own mode back."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes.items():
            module.training = training
