"""The checks behind ``models``: the arguments of ``ResNet`` and ``ResNet9``, building each
block with a clear error, and the dummy-batch check that every block returns the shape its
stage needs. Every failure names the argument, or the stage and block, in one line.
``models`` imports this module as ``check``: ``check.resnet_arguments(...)`` and so on.

This module imports no other course_utils module (floor 1), so its count check is written
here rather than taken from ``support.validate``; the messages are the same.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence, Sized
from typing import Any

import torch
from torch import nn

SIGNATURE = "block(in_channels, width, stride, activation)"
DUMMY_NOTE = "a dummy 16x16 batch that ResNet runs through every block when it is built"


class BlockShapeError(ValueError):
    """A block returned a tensor of the wrong shape (or failed) when ResNet tried it."""


def count(name: str, value: Any) -> None:
    """Raise unless ``value`` is a whole number >= 1 (TypeError when it is no number at all)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a whole number >= 1, got {value!r}.")
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")


def resnet_arguments(
    blocks: Any, widths: Any, stem_width: Any, activation: Any, num_classes: Any, dropout: Any
) -> None:
    """Everything ``ResNet.__init__`` takes, checked before any layer is built."""
    _check_stage_spec(blocks, widths)
    _check_activation(activation)
    count("num_classes", num_classes)
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise TypeError(f"dropout must be a number in [0, 1), e.g. 0.2, got {dropout!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout} is not a probability in [0, 1): use e.g. 0.2.")
    if stem_width is not None:
        count("stem_width", stem_width)


def resnet9_arguments(widths: Any, num_classes: Any, logit_scale: Any) -> None:
    """Everything ``ResNet9.__init__`` takes: four widths, a class count, a positive scale."""
    _widths_and_scale(widths, 4, "stem and three stages", "(64, 128, 256, 384)", num_classes,
                      logit_scale, "0.125")  # fmt: skip


def capstone_arguments(widths: Any, num_classes: Any, logit_scale: Any) -> None:
    """Everything ``CapstoneNet.__init__`` takes: three widths, a class count, a positive scale."""
    _widths_and_scale(widths, 3, "one per block", "(64, 256, 256)", num_classes, logit_scale,
                      "1/9")  # fmt: skip


def _widths_and_scale(widths: Any, n: int, what: str, example: str, num_classes: Any,
                      logit_scale: Any, scale_example: str) -> None:  # fmt: skip
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sized) or len(widths) != n:
        raise ValueError(f"widths must be {n} channel counts ({what}), e.g. {example}; got "
                         f"{widths!r}.")  # fmt: skip
    for width in widths:
        count("every width", width)
    count("num_classes", num_classes)
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, numbers.Real):
        raise TypeError(
            f"logit_scale must be a number > 0, e.g. {scale_example}, got {logit_scale!r}."
        )
    if not 0 < logit_scale < math.inf:
        raise ValueError(
            f"logit_scale must be a number > 0 (0 makes every logit 0), e.g. {scale_example}; "
            f"got {logit_scale!r}."
        )


def _check_activation(activation: Any) -> None:
    """An activation is a module class (or a factory of modules) that each block calls."""
    if isinstance(activation, nn.Module):
        raise BlockShapeError(
            f"activation= got an instance ({activation!r}); pass the class itself, e.g. "
            f"activation=nn.{type(activation).__name__}, which each block calls for its own."
        )
    hint = "pass a module class such as nn.ReLU (or a function returning a fresh module)"
    try:
        made = activation()
    except TypeError:  # a string, or a function such as torch.relu that needs a tensor
        made = None
    if not isinstance(made, nn.Module):
        shown = getattr(activation, "__name__", None) or repr(activation)
        raise BlockShapeError(f"activation= got {shown} (a {type(activation).__name__}); {hint}.")


def _check_stage_spec(blocks: Any, widths: Any) -> None:
    """Reject stage lists a ResNet cannot be built from, saying what to change."""
    if any(isinstance(v, (str, bytes)) or not isinstance(v, Sized) for v in (blocks, widths)):
        raise TypeError(
            f"blocks and widths must be lists with one entry per stage, e.g. "
            f"ResNet([2, 2], [64, 128]); got {blocks!r} and {widths!r}."
        )
    if len(blocks) != len(widths):
        raise ValueError(
            f"blocks has {len(blocks)} entries but widths has {len(widths)}: "
            "give one block count and one width per stage."
        )
    if len(blocks) == 0:
        raise ValueError("blocks and widths are empty: give at least one stage.")
    values = [*blocks, *widths]
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in values):
        raise ValueError(
            f"blocks {list(blocks)} and widths {list(widths)} must all be positive integers."
        )


def built_block(
    block: Callable[..., nn.Module],
    in_channels: int,
    width: int,
    stride: int,
    activation: Callable[[], nn.Module],
    where: str,
) -> nn.Module:
    """``block(in_channels, width, stride, activation)``, or a BlockShapeError saying why not."""
    name = getattr(block, "__name__", type(block).__name__)
    if isinstance(block, nn.Module):
        raise BlockShapeError(
            f"block= got an instance of {name}; pass the class itself (block={name}), "
            f"which ResNet calls as {SIGNATURE} for every block."
        )
    try:
        layer = block(in_channels, width, stride, activation)
    except AttributeError as err:
        if "Module.__init__() call" not in str(err):
            raise
        raise BlockShapeError(
            f"{name} ({where}) could not be built: {err}; call super().__init__() first in "
            "its __init__."
        ) from None
    except TypeError as err:
        raise BlockShapeError(
            f"{name} ({where}) could not be built as {SIGNATURE} with ({in_channels}, {width}, "
            f"{stride}, {getattr(activation, '__name__', activation)}): {err}. Give its "
            "__init__ exactly these four arguments."
        ) from None
    if not isinstance(layer, nn.Module):
        raise BlockShapeError(
            f"{name} ({where}) returned {type(layer).__name__}, not an nn.Module: a block "
            "class must subclass nn.Module."
        )
    return layer


def block_shapes(model: nn.Module, widths: Sequence[int], expansion: int) -> None:
    """Push a dummy batch through every block of a ResNet (its ``stem`` and ``stages``), so a
    block with the wrong output shape fails here, naming itself, not deep inside training: one
    image in eval mode, then two in train mode (BatchNorm needs two), for a block that differs
    between the modes; the BatchNorm statistics and the random state are left as they were.
    16x16 costs a quarter of 32x32 and still shows every stride-2 stage halving the map."""
    was_training = model.training
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for batch, training in ((1, False), (2, True)):
                model.train(training)
                mode = ", in train mode" if training else ""
                x = model.stem(torch.zeros(batch, 3, 16, 16))
                for s, (stage, width) in enumerate(zip(model.stages, widths, strict=True), 1):
                    for b, layer in enumerate(stage, 1):
                        stride = 2 if s > 1 and b == 1 else 1
                        size = (x.shape[-1] - 1) // stride + 1
                        expected = (x.shape[0], width * expansion, size, size)
                        x = _run_block(layer, x, f"stage {s}, block {b}{mode}", expected)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def _run_block(
    layer: nn.Module, x: torch.Tensor, where: str, expected: tuple[int, ...]
) -> torch.Tensor:
    """Run one block on ``x`` and raise BlockShapeError unless it returns a tensor of
    ``expected`` shape; every message names the block, its place and the dummy input."""
    name = type(layer).__name__
    rule = (
        f"a block built as {SIGNATURE} must return one tensor of width * expansion channels "
        "with height and width divided by stride"
    )
    given = f"an input of shape {tuple(x.shape)} ({DUMMY_NOTE})"
    try:
        out = layer(x)
    except Exception as err:  # any failure of a student's block is reported the same way
        raise BlockShapeError(
            f"{name} ({where}) failed on {given}: {type(err).__name__}: {err}. Check that "
            "forward(x) takes one tensor, that its first layers take in_channels, and that "
            f"a shortcut adding x is projected (models.shortcut) when the shape changes; {rule}."
        ) from err
    if not isinstance(out, torch.Tensor):
        raise BlockShapeError(
            f"{name} ({where}) returned a {type(out).__name__} on {given}; {rule}."
        )
    if tuple(out.shape) != expected:
        hint = (
            "its last layer must give width * expansion channels"
            if out.shape[1] != expected[1]
            else "its first conv and its shortcut must both use the stride"
        )
        raise BlockShapeError(
            f"{name} ({where}) turned {given} into {tuple(out.shape)}, expected {expected}: "
            f"{hint}; {rule}."
        )
    return out
