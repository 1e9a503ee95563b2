"""Residual networks for 32x32 images: the two classic blocks and a ResNet you shape by hand.

Every block computes ``F(x) + shortcut(x)``; ``ResNet`` stacks blocks into stages, so each zoo
model is one line. PyTorch's default init, as in kuangliu/pytorch-cifar. The argument checks
and the block-shape check live in ``support/blocks.py``, each called here in one line.
"""

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from course_utils.support import blocks as check
from course_utils.support.blocks import BlockShapeError  # noqa: F401  (models.BlockShapeError)

Activation = Callable[[], nn.Module]  # a class or factory of fresh modules: nn.ReLU, a partial


def conv_bn(
    in_channels: int, out_channels: int, pool: bool = False, activation: Activation = nn.ReLU
) -> nn.Sequential:
    """3x3 conv + BN + activation, then 2x2 max-pooling when ``pool`` (the stems, ResNet-9)."""
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        act=activation(),
    )
    if pool:
        layers["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(layers)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when the block keeps the shape, else a 1x1 conv + BN matching its output."""
    check.count("stride", stride)
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
        self, in_channels: int, out_channels: int, stride: int = 1, activation: Activation = nn.ReLU
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
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 to ``planes``, 3x3 with the stride, 1x1 to ``4 * planes``, + shortcut (ResNet-50)."""

    expansion = 4

    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, activation: Activation = nn.ReLU
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
        return self.act3(out + self.shortcut(x))


def block_expansion(block: Callable[..., nn.Module]) -> int:
    """The block's ``expansion`` (output channels = width * expansion); 1 when it has none.
    Looks through ``functools.partial`` so ``partial(Bottleneck, ...)`` keeps its 4."""
    while isinstance(block, functools.partial):
        block = block.func
    return getattr(block, "expansion", 1)


class ResNet(nn.Module):
    """Stem (conv_bn), one stage per entry of ``blocks``/``widths``, global average pooling,
    optional dropout and a linear classifier. Stage ``i`` has ``blocks[i]`` blocks built as
    ``block(in_channels, widths[i], stride, activation)``, the first with stride 2 except in
    stage 1. Any block class with that signature plugs in; that each returns ``widths[i] *
    block.expansion`` channels is checked once here on a dummy batch (``BlockShapeError``)."""

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
        check.resnet_arguments(blocks, widths, stem_width, activation, num_classes, dropout)
        in_channels = widths[0] if stem_width is None else stem_width
        expansion = block_expansion(block)
        self.stem = conv_bn(3, in_channels, activation=activation)
        stages = OrderedDict()
        for s, (num_blocks, width) in enumerate(zip(blocks, widths, strict=True), 1):
            layers = []
            for b in range(1, num_blocks + 1):
                stride = 2 if s > 1 and b == 1 else 1
                where = f"stage {s}, block {b}"
                layers.append(
                    check.built_block(block, in_channels, width, stride, activation, where)
                )
                in_channels = width * expansion
            stages[f"stage{s}"] = nn.Sequential(*layers)
        self.stages = nn.Sequential(stages)
        head = OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())
        if dropout > 0:
            head["dropout"] = nn.Dropout(dropout)
        head["fc"] = nn.Linear(in_channels, num_classes)
        self.head = nn.Sequential(head)
        check.block_shapes(self, widths, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class Residual(nn.Module):
    """``out = x + F(x)``, ``F`` two conv_bn at constant width: ResNet-9's residual unit."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class ResNet9(nn.Module):
    """Page's DAWNBench ResNet-9: a stem, three stages that widen and max-pool (residual units
    after the first and the last), max-pool and a linear head. The last stage is narrowed from
    512 to 384 to fit the 5M budget (4.2M). The logits are multiplied by ``logit_scale`` (0.125
    as in Page's runs), which keeps early training from becoming over-confident."""

    def __init__(
        self,
        widths: Sequence[int] = (64, 128, 256, 384),
        num_classes: int = 10,
        logit_scale: float = 0.125,
    ) -> None:
        super().__init__()
        check.resnet9_arguments(widths, num_classes, logit_scale)
        stem, w1, w2, w3 = widths
        self.stem = conv_bn(3, stem)
        self.stages = nn.Sequential(
            OrderedDict(
                stage1=nn.Sequential(conv_bn(stem, w1, pool=True), Residual(w1)),
                stage2=conv_bn(w1, w2, pool=True),
                stage3=nn.Sequential(conv_bn(w2, w3, pool=True), Residual(w3)),
            )
        )
        head = OrderedDict(pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten())
        head["fc"] = nn.Linear(w3, num_classes)
        self.head = nn.Sequential(head)
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x))) * self.logit_scale
