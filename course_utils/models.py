"""Residual networks for 32x32 images: the two classic blocks and a ResNet you shape by hand.

Every block computes ``out = F(x) + shortcut(x)``: ``F`` is a few conv-BN layers and the
shortcut is the identity, or a 1x1 conv + BN when the block changes the shape. ``ResNet``
stacks blocks into stages; ``blocks`` and ``widths`` say how many blocks and how many
channels each stage has, so every model in the course zoo is one line.

Weights keep PyTorch's default initialisation everywhere (as in kuangliu/pytorch-cifar):
BatchNorm after every conv makes the choice of init matter little, and a student's own
block is then initialised exactly as they wrote it.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Sequence, Sized
from typing import Any

import torch
from torch import nn

Activation = Callable[[], nn.Module]
"""A class or factory that returns a fresh activation module: nn.ReLU, nn.LeakyReLU, a partial."""


class BlockShapeError(ValueError):
    """A block returned a tensor of the wrong shape (or failed) when ResNet tried it."""


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The residual shortcut: identity when the shape is kept, else a 1x1 conv + BN that
    matches the channels and the stride of the block's main path."""
    _check_count("stride", stride)
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN, plus the shortcut, then the activation (ResNet-18/34 block)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        activation: Activation = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return self.act2(out)


class Bottleneck(nn.Module):
    """1x1 squeeze to ``planes``, 3x3 at ``planes`` (with the stride), 1x1 expand to
    ``4 * planes``, plus the shortcut, then the activation (ResNet-50 block)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        activation: Activation = nn.ReLU,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = activation()
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.act3 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + self.shortcut(x)
        return self.act3(out)


def block_expansion(block: Callable[..., nn.Module]) -> int:
    """The block's ``expansion`` (output channels = width * expansion); 1 when the class has
    none. Looks through ``functools.partial`` so ``partial(Bottleneck, ...)`` keeps its 4."""
    while isinstance(block, functools.partial):
        block = block.func
    return getattr(block, "expansion", 1)


class ResNet(nn.Module):
    """Stem (3x3 conv + BN + act), one stage per entry of ``blocks``/``widths``, then global
    average pooling, optional dropout and a linear classifier.

    Stage ``i`` has ``blocks[i]`` blocks built as ``block(in_channels, widths[i], stride,
    activation)``; its first block has stride 2, except in the first stage. Any block class
    with that signature plugs in; its output must have ``widths[i] * block.expansion``
    channels, which is checked once here with a dummy image (``BlockShapeError`` otherwise).
    """

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int],
        stem_width: int | None = None,
        block: Callable[..., nn.Module] = BasicBlock,
        num_classes: int = 10,
        activation: Activation = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_stage_spec(blocks, widths)
        _check_activation(activation)
        _check_count("num_classes", num_classes)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"dropout must be a number in [0, 1), e.g. 0.2, got {dropout!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} is not a probability in [0, 1): use e.g. 0.2.")
        stem_width = widths[0] if stem_width is None else stem_width
        _check_count("stem_width", stem_width)
        expansion = block_expansion(block)

        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, stem_width, 3, stride=1, padding=1, bias=False),
                bn=nn.BatchNorm2d(stem_width),
                act=activation(),
            )
        )
        stages = OrderedDict()
        in_channels = stem_width
        for index, (num_blocks, width) in enumerate(zip(blocks, widths, strict=True)):
            first_stride = 1 if index == 0 else 2
            layers = []
            for position in range(num_blocks):
                stride = first_stride if position == 0 else 1
                where = f"stage {index + 1}, block {position + 1}"
                layers.append(_build_block(block, in_channels, width, stride, activation, where))
                in_channels = width * expansion
            stages[f"stage{index + 1}"] = nn.Sequential(*layers)
        self.stages = nn.Sequential(stages)

        head = OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())
        if dropout > 0:
            head["dropout"] = nn.Dropout(dropout)
        head["fc"] = nn.Linear(in_channels, num_classes)
        self.head = nn.Sequential(head)

        self._check_block_shapes(widths, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        out = self.stages(out)
        return self.head(out)

    def _check_block_shapes(self, widths: Sequence[int], expansion: int) -> None:
        """Push a dummy batch through every block (no grad) so a block with the wrong output
        shape fails here, naming itself, not deep inside training: one image in eval mode,
        then two in train mode (BatchNorm needs two), for a block that differs between the
        modes; the BatchNorm statistics and the random state are left as they were. 16x16
        costs a quarter of 32x32 and still shows every stride-2 stage halving the map."""
        was_training = self.training
        buffers = {name: buffer.clone() for name, buffer in self.named_buffers()}
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                for batch, training in ((1, False), (2, True)):
                    self.train(training)
                    mode = ", in train mode" if training else ""
                    x = self.stem(torch.zeros(batch, 3, 16, 16))
                    for s, (stage, width) in enumerate(zip(self.stages, widths, strict=True), 1):
                        for b, layer in enumerate(stage, 1):
                            stride = 2 if s > 1 and b == 1 else 1
                            size = (x.shape[-1] - 1) // stride + 1
                            expected = (x.shape[0], width * expansion, size, size)
                            x = _run_block(layer, x, f"stage {s}, block {b}{mode}", expected)
        finally:
            self.train(was_training)
            with torch.no_grad():
                for name, buffer in self.named_buffers():
                    buffer.copy_(buffers[name])


SIGNATURE = "block(in_channels, width, stride, activation)"
DUMMY_NOTE = "a dummy 16x16 batch that ResNet runs through every block when it is built"


def _build_block(
    block: Callable[..., nn.Module],
    in_channels: int,
    width: int,
    stride: int,
    activation: Activation,
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


def _check_count(name: str, value: Any) -> None:
    """Raise unless ``value`` is a whole number >= 1 (TypeError when it is no number at all)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a whole number >= 1, got {value!r}.")
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")


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


def _check_stage_spec(blocks: Sequence[int], widths: Sequence[int]) -> None:
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


def conv_bn(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    """3x3 conv + BN + ReLU, then 2x2 max-pooling when ``pool`` (ResNet-9's building brick)."""
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        act=nn.ReLU(),
    )
    if pool:
        layers["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(layers)


class Residual(nn.Module):
    """``out = x + F(x)`` with ``F`` two conv_bn layers at constant width: ResNet-9's
    residual unit (no projection needed, the shape never changes)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class ResNet9(nn.Module):
    """The fast-training layout of Page's DAWNBench ResNet-9: a stem conv, three stages that
    widen and max-pool, residual units after the first and the last, max-pool and a linear head.

    With the default widths (64, 128, 256, 384) it has 4.2M parameters: the original's last
    stage of 512 channels (6.6M) is narrowed to fit the course's 5M budget. The logits are
    multiplied by ``logit_scale`` (0.125 as in Page's runs), which keeps early training from
    becoming over-confident.
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 128, 256, 384),
        num_classes: int = 10,
        logit_scale: float = 0.125,
    ) -> None:
        super().__init__()
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sized) or len(widths) != 4:
            raise ValueError(
                f"widths must be 4 channel counts (stem and three stages), e.g. "
                f"(64, 128, 256, 384); got {widths!r}."
            )
        for width in widths:
            _check_count("every width", width)
        _check_count("num_classes", num_classes)
        if isinstance(logit_scale, bool) or not isinstance(logit_scale, numbers.Real):
            raise TypeError(f"logit_scale must be a number > 0, e.g. 0.125, got {logit_scale!r}.")
        if not 0 < logit_scale < math.inf:
            raise ValueError(
                f"logit_scale must be a number > 0 (0 makes every logit 0), e.g. 0.125; "
                f"got {logit_scale!r}."
            )
        stem, w1, w2, w3 = widths
        self.stem = conv_bn(3, stem)
        self.stages = nn.Sequential(
            OrderedDict(
                stage1=nn.Sequential(conv_bn(stem, w1, pool=True), Residual(w1)),
                stage2=conv_bn(w1, w2, pool=True),
                stage3=nn.Sequential(conv_bn(w2, w3, pool=True), Residual(w3)),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(w3, num_classes)
            )
        )
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return self.head(out) * self.logit_scale
