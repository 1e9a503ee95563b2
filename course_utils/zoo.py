"""The course's case studies: the models of five student reports, rebuilt exactly.

``build(key)`` returns a fresh, untrained model; ``REPORTS[key]`` holds what the report
says about it (architecture, recipe, reported accuracy...). Each model is built from the
report's description alone: the parameter counts are never tuned to match a number.
``summary()`` tabulates size and cost of every model against the 5M-parameter budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import params
from course_utils.capstone import CapstoneNet
from course_utils.models import Activation, Bottleneck, ResNet, ResNet9
from course_utils.support import words
from course_utils.support.validate import UnknownNameError

BUDGET = 5_000_000
"""The mini-project's rule: fewer than this many trainable parameters."""

PILLAI_DROPOUT = 0.1
"""Dropout inside pillai's blocks; the report does not state p (it does not change the count)."""

ROUT_DROPOUT = 0.2
"""Dropout after each of rout's stages; the report found p in 0.1-0.3 worked best."""


@dataclass(frozen=True)
class Report:
    """What one student report says about its model: the facts lectures point back to."""

    key: str
    title: str
    authors: str
    architecture: str
    recipe: str
    reported_accuracy: float | None = None
    """Test accuracy in percent, as reported; None where the report gives none."""
    reported_params: int | None = None
    """Parameter count as the report states it; None where the digest withholds it (and for
    resnet18, which is a reference point, not a report)."""
    epochs: int | None = None
    hardware: str | None = None
    wall_clock: str | None = None
    code: str | None = None
    notes: str = ""


class PaddedProjection(nn.Module):
    """pillai's shortcut for blocks that change shape: the ResNet paper's parameter-free
    "option A" (subsample by the stride, zero-pad the missing channels), then a 1x1 conv
    ``out -> out`` + BN.

    The report's layer table fixes that 1x1 weight at out x out (64x64, 128x128, 256x256),
    so it cannot read the ``in`` channels directly; option A makes the forward well defined.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"PaddedProjection pads {in_channels} channels up to {out_channels}; "
                "it cannot reduce channels: use an out_channels >= in_channels."
            )
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return self.bn(self.conv(x))


class DropoutBlock(nn.Module):
    """pillai's block: 3x3 conv - BN - act - Dropout - 3x3 conv - BN - Dropout, plus the
    shortcut (PaddedProjection when the shape changes, identity otherwise), then act.

    The report lists no activation inside the block; we put it after the first BN
    (BN-ReLU-Dropout), as in every other block here, and after the addition.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        activation: Activation = nn.ReLU,
        p: float = PILLAI_DROPOUT,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.drop1 = nn.Dropout(p)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.drop2 = nn.Dropout(p)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = PaddedProjection(in_channels, out_channels, stride)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop1(self.act1(self.bn1(self.conv1(x))))
        out = self.drop2(self.bn2(self.conv2(out)))
        out = out + self.shortcut(x)
        return self.act2(out)


def pillai() -> ResNet:
    """Stem 16, DropoutBlocks, widths 64/128/256, blocks 3/5/3."""
    return ResNet([3, 5, 3], [64, 128, 256], stem_width=16, block=DropoutBlock)


def merabishvili() -> ResNet:
    """Stem 66, BasicBlocks, widths 66/132/264, blocks 3/4/3."""
    return ResNet([3, 4, 3], [66, 132, 264], stem_width=66)


def rout() -> ResNet:
    """Stem 32, Bottlenecks with LeakyReLU everywhere, m = 64/128/256, blocks 3/3/3, and a
    Dropout closing each stage (added to the generic ResNet's stages after building)."""
    model = ResNet(
        [3, 3, 3], [64, 128, 256], stem_width=32, block=Bottleneck, activation=nn.LeakyReLU
    )
    for stage in model.stages:
        stage.append(nn.Dropout(ROUT_DROPOUT))
    return model


# BasicBlock ResNets take their stem width from the first stage (the reports' convention).
_BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "pillai": pillai,
    "merabishvili": merabishvili,
    "rout": rout,
    "sudrik": partial(ResNet, [3, 2, 3, 2], [64, 128, 192, 256]),
    "sudrik_resnet10": partial(ResNet, [1, 1, 1, 1], [64, 128, 256, 512]),
    "sudrik_resnet18": partial(ResNet, [2, 2, 2, 2], [64, 157, 211, 270]),
    "sudrik_resnet20": partial(ResNet, [2, 2, 2, 3], [64, 128, 185, 245]),
    "sudrik_resnet24": partial(ResNet, [3, 3, 2, 3], [64, 128, 128, 256]),
    "sudrik_resnet32": partial(ResNet, [4, 4, 4, 3], [32, 64, 128, 256]),
    "wang": partial(ResNet, [2, 1, 1, 1], [64, 128, 256, 512]),
    "wang_deep": partial(ResNet, [6, 5, 4, 3], [32, 64, 128, 256]),
    "resnet18": partial(ResNet, [2, 2, 2, 2], [64, 128, 256, 512]),
    "capstone": CapstoneNet,
    "resnet9_page": ResNet9,
}


def build(key: str) -> nn.Module:
    """A fresh, untrained model of the zoo entry ``key`` (see ``REPORTS`` for the keys)."""
    check_key(key)
    return _BUILDERS[key]()


def check_choice(model: Any) -> None:
    """A model choice (``recipes.run``, ``sweep.Objective``) is a zoo key, a built network or a
    function that builds one; None means the recipe's."""
    if isinstance(model, str):
        check_key(model)
    elif model is not None and not callable(model):
        raise TypeError(
            f"model must be a zoo key, an nn.Module or a function that builds one, got "
            f"{type(model).__name__}."
        )


def check_key(key: str) -> None:
    """Refuse a name that is not a zoo key, listing the keys (recipes check theirs early)."""
    if not isinstance(key, str) or key not in _BUILDERS:
        raise UnknownNameError(words.unknown("zoo model", key, _BUILDERS))


_SUDRIK = dict(
    title="Residual Network Design Mini-Project",
    authors="Sudrik, Nagula, Oza",
    code="utsavoza/aperture",
)
_SUDRIK_TABLE1 = dict(
    recipe="Table 1 study: Adadelta lr 0.1, batch 32, standard augmentation, 20 epochs.",
    epochs=20,
    **_SUDRIK,
)
_WANG = dict(
    title="Mini-Project Report",
    authors="Wang, Zhao, Qin",
    code="KevinQyhNYU/Deep-learning-Mini-project",
)
_WANG_RECIPE = dict(
    recipe=(
        "Normalisation with mean (0.4914, 0.4822, 0.4465) and std (0.2021, 0.1964, 0.2019), "
        "RandomCrop(32, padding 4, reflect) + horizontal flip; Adam, one-cycle (max lr 0.01, "
        "30% warm-up), weight decay 1e-6, gradient clipping 0.1, 70 epochs."
    ),
    epochs=70,
    hardware="Colab",
)

REPORTS: dict[str, Report] = {
    "pillai": Report(
        key="pillai",
        title="ResNet Optimization for Image Classification",
        authors="Pillai, Wang, Ramesh",
        architecture=(
            "Stem 16; 3 stages of dropout residual blocks (3x3 conv-BN-Dropout-3x3 conv-BN-"
            "Dropout, 1x1 out x out projection + BN where the shape changes), widths "
            "64/128/256, blocks 3/5/3; avg-pool + Linear(256, 10)."
        ),
        recipe=(
            "Adadelta lr 1e-4, weight decay 1e-3, batch 128, ReduceLROnPlateau on validation "
            "accuracy (factor 0.5, patience 10), cross-entropy, 80/20 train/validation split; "
            "hyper-parameters from Weights & Biases sweeps."
        ),
        epochs=300,
        hardware="Colab A100, torch 2.6",
        notes="300 epochs planned, sweep winner 50; curves and a confusion matrix, no test "
        "accuracy stated.",
    ),
    "merabishvili": Report(
        key="merabishvili",
        title="Enhancing CIFAR-10 Performance With Modified ResNet",
        authors="Merabishvili, Mohammad, Khan",
        architecture=(
            "Stem 66; 3 stages of BasicBlocks, widths 66/132/264, blocks 3/4/3; "
            "avg-pool + Linear(264, 10)."
        ),
        recipe=(
            "Adam with a learning-rate scheduler, cross-entropy, random crop + horizontal "
            "flip, per-channel normalisation, 60 epochs; fixed seeds and deterministic mode."
        ),
        reported_accuracy=94.16,
        epochs=60,
        hardware="Tesla V100, torch 2.2.1",
        notes="Final validation 94.25%, training 99.36%; epoch 1: 49.15% train / 56.30% val; "
        "epoch 10: 84.23% / 84.37%.",
    ),
    "rout": Report(
        key="rout",
        title="Optimizing ResNet for CIFAR-10",
        authors="Rout, Mamidwar (Team SPAR)",
        architecture=(
            "Stem 32; 3 stages of bottleneck blocks with LeakyReLU everywhere, m = 64/128/256 "
            "(outputs 256/512/1024), blocks 3/3/3, Dropout after each stage; "
            "avg-pool + Linear(1024, 10)."
        ),
        recipe=(
            "SGD lr 0.05, momentum 0.9, weight decay 1e-4, in Lookahead (k 5, alpha 0.5); "
            "CosineAnnealingLR T_max 400; label smoothing 0.1; RandomCrop(32, 4), flip, "
            "RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.1), RandomErasing(p 0.5)."
        ),
        reported_accuracy=86.968,
        epochs=400,
        notes="98.67% train. LeakyReLU beat ReLU; dropout > 0.5 hurt; a wider stem gave no gain.",
    ),
    "sudrik": Report(
        key="sudrik",
        architecture=(
            "ResNet-22: stem 64, BasicBlocks, blocks 3/2/3/2, widths 64/128/192/256, "
            "F 3, K 1, P 4 (4x4 avg-pool on the 4x4 map); Linear(256, 10)."
        ),
        recipe="Adadelta lr 0.1, batch 64, mixup, 300 epochs.",
        reported_accuracy=94.12,
        reported_params=4_922_826,
        epochs=300,
        hardware="RTX 8000",
        wall_clock="about 24 s/epoch; 2.7 hours for the published 400-epoch log",
        notes="94.12% is the best epoch measured on the test set; the final epoch reads "
        "92.94%: choose on a validation split, touch the test set once.",
        **_SUDRIK,
    ),
    "sudrik_resnet10": Report(
        key="sudrik_resnet10",
        architecture="Table 1: BasicBlocks, blocks 1/1/1/1, widths 64/128/256/512, stem 64.",
        reported_accuracy=81.61,
        **_SUDRIK_TABLE1,
    ),
    "sudrik_resnet18": Report(
        key="sudrik_resnet18",
        architecture="Table 1: BasicBlocks, blocks 2/2/2/2, widths 64/157/211/270, stem 64.",
        reported_accuracy=83.35,
        **_SUDRIK_TABLE1,
    ),
    "sudrik_resnet20": Report(
        key="sudrik_resnet20",
        architecture="Table 1: BasicBlocks, blocks 2/2/2/3, widths 64/128/185/245, stem 64.",
        reported_accuracy=83.63,
        **_SUDRIK_TABLE1,
    ),
    "sudrik_resnet24": Report(
        key="sudrik_resnet24",
        architecture="Table 1: BasicBlocks, blocks 3/3/2/3, widths 64/128/128/256, stem 64.",
        reported_accuracy=83.95,
        **_SUDRIK_TABLE1,
    ),
    "sudrik_resnet32": Report(
        key="sudrik_resnet32",
        architecture="Table 1: BasicBlocks, blocks 4/4/4/3, widths 32/64/128/256, stem 32.",
        reported_accuracy=82.80,
        **_SUDRIK_TABLE1,
    ),
    "wang": Report(
        key="wang",
        architecture=(
            "Standard CIFAR ResNet-18 layout (stem 64, BasicBlocks, widths 64/128/256/512) "
            "with blocks 2/1/1/1; 4x4 avg-pool + Linear(512, 10)."
        ),
        reported_accuracy=93.81,
        reported_params=4_977_226,
        wall_clock="about 36 minutes (report); the stored notebook's run took about 77 "
        "minutes, CPU-bound in a DataLoader without workers (~750 images/s)",
        notes="The std constants are not CIFAR-10's per-pixel std (about 0.247, 0.243, "
        "0.261): a copied constant.",
        **_WANG,
        **_WANG_RECIPE,
    ),
    "wang_deep": Report(
        key="wang_deep",
        architecture=(
            "Width-vs-depth variant: half the channels (stem 32, widths 32/64/128/256), "
            "blocks 6/5/4/3, BasicBlocks."
        ),
        recipe="The report's width-vs-depth study (training details as for wang).",
        reported_accuracy=93.87,
        notes="About 4.9M parameters; beat one block per stage at full width (93.38%); "
        "a < 1M-parameter model still passed 92%.",
        **_WANG,
    ),
    "resnet18": Report(
        key="resnet18",
        title="Deep Residual Learning for Image Recognition (CIFAR ResNet-18 layout)",
        authors="He, Zhang, Ren, Sun",
        architecture=(
            "Stem 64, BasicBlocks, blocks 2/2/2/2, widths 64/128/256/512; "
            "avg-pool + Linear(512, 10). Over the budget: the reference point."
        ),
        recipe="Not a student report: the standard model the others shrink.",
        notes="11,173,962 parameters, more than twice the budget.",
    ),
    "capstone": Report(
        key="capstone",
        title="The course's capstone network (lecture 06, recipe fast94)",
        authors="this course, after Keller Jordan's airbench94",
        architecture=(
            "Whitening stem (2x2 conv, 24 filters fixed from training patches) + GELU; three "
            "residual DownBlocks (conv-maxpool-BN-GELU-conv-BN plus a maxpool + 1x1-conv "
            "shortcut, then GELU) of widths 64/256/256; global max-pool + Linear(256, 10), "
            "logits x 1/9. BatchNorm scales fixed at 1, shifts trained 64x faster."
        ),
        recipe="See course_utils.recipes 'fast94'.",
        notes="Not a student report: what the course builds to beat them. airbench94's net "
        "(1.97M parameters) with a shortcut around each conv pair.",
    ),
    "resnet9_page": Report(
        key="resnet9_page",
        title="Page's DAWNBench ResNet-9, narrowed (the course's first capstone; recipe page94)",
        authors="this course, after David Page's 'How to train your ResNet'",
        architecture=(
            "ResNet-9 layout: stem 64, stage widths 128/256/384 with 2x2 max-pooling, "
            "residual units after stages 1 and 3, max-pool + Linear(384, 10), logits x 0.125. "
            "The original's last stage of 512 (6.6M parameters) is narrowed to fit 5M."
        ),
        recipe="See course_utils.recipes 'page94'.",
        notes="Not a student report: lecture 06 shows what the capstone changed from it.",
    ),
}


def summary() -> pd.DataFrame:
    """One row per zoo model: parameters, forward GFLOPs per 32x32 image, whether it is
    under the 5M budget, and what its report states (used by the CLI and lecture 03)."""
    rows = []
    for key in _BUILDERS:
        with torch.device("meta"):  # counts and FLOPs need shapes only: allocate no weights
            model = build(key)
        count = params.count_parameters(model)
        rows.append(
            {
                "key": key,
                "parameters": count,
                "gflops": params.flops(model) / 1e9,
                "under_budget": count < BUDGET,
                "reported_params": REPORTS[key].reported_params,
                "reported_accuracy": REPORTS[key].reported_accuracy,
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"reported_params": "Int64"})
