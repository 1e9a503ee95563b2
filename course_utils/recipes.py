"""The student reports' training recipes as data: one ``Recipe`` per report.

A recipe names a zoo model and every training choice the report made (optimizer, schedule,
epochs, batch size, regularisation, augmentation). ``recipe.fit_kwargs()`` and
``recipe.loader_kwargs()`` turn it into arguments for ``train.fit`` and ``DeviceLoader``;
``python -m course_utils train --recipe NAME`` runs one. Where a report leaves a choice
open, the recipe makes one and its ``source`` note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """One complete training setup: model, optimizer, schedule, regularisation, augmentation,
    and a ``source`` note saying which report it comes from and what was assumed."""

    name: str
    model: str
    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    weight_decay: float = 0.0
    momentum: float | None = None
    schedule: str = "constant"
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)
    mixup: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | dict[str, float] | None = None
    crop_padding: int = 4
    padding_mode: str = "zeros"
    flip: bool = True
    cutout: int = 0
    lookahead: dict[str, float] | None = None
    tta: bool = False
    ema: float | None = None
    validation_split: float = 0.0
    source: str = ""

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed, e.g. ``recipe.replace(epochs=5)``."""
        return replace(self, **changes)

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``train.fit`` (everything but the model and the loaders)."""
        optimizer_kwargs: dict[str, Any] = {}
        if self.momentum is not None:
            optimizer_kwargs["momentum"] = self.momentum
        if self.lookahead:
            optimizer_kwargs.update(
                lookahead=True,
                lookahead_k=self.lookahead["k"],
                lookahead_alpha=self.lookahead["alpha"],
            )
        return {
            "epochs": self.epochs,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "optimizer_kwargs": optimizer_kwargs or None,
            "schedule": self.schedule,
            "schedule_kwargs": dict(self.schedule_kwargs) or None,
            "mixup": self.mixup or None,
            "label_smoothing": self.label_smoothing,
            "grad_clip": self.grad_clip,
            "ema": self.ema,
        }

    def loader_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the training ``DeviceLoader`` (batch size and augmentation)."""
        return {
            "batch_size": self.batch_size,
            "crop_padding": self.crop_padding,
            "padding_mode": self.padding_mode,
            "flip": self.flip,
            "cutout": self.cutout,
        }


RECIPES: dict[str, Recipe] = {
    "pillai": Recipe(
        name="pillai",
        model="pillai",
        optimizer="adadelta",
        lr=1e-4,
        weight_decay=1e-3,
        batch_size=128,
        epochs=50,
        schedule="plateau",
        schedule_kwargs={"mode": "max", "factor": 0.5, "patience": 10},
        validation_split=0.2,
        source=(
            "Pillai et al.: Adadelta lr 1e-4, weight decay 1e-3, batch 128, ReduceLROnPlateau "
            "on validation accuracy (factor 0.5, patience 10), 80/20 train/validation split; "
            "300 epochs planned, 50 in the sweep winner (used here). Augmentation not stated: "
            "crop + flip assumed."
        ),
    ),
    "merabishvili": Recipe(
        name="merabishvili",
        model="merabishvili",
        optimizer="adam",
        lr=1e-3,
        batch_size=128,
        epochs=60,
        schedule="cosine",
        source=(
            "Merabishvili et al.: Adam with a learning-rate scheduler, random crop + flip, "
            "60 epochs, fixed seeds. The report names neither the scheduler, the learning rate "
            "nor the batch size: cosine, Adam's default lr 1e-3 and batch 128 are our choices."
        ),
    ),
    "rout": Recipe(
        name="rout",
        model="rout",
        optimizer="momentum",
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-4,
        lookahead={"k": 5, "alpha": 0.5},
        batch_size=128,
        epochs=400,
        schedule="cosine",
        label_smoothing=0.1,
        cutout=12,
        source=(
            "Rout & Mamidwar: SGD lr 0.05 momentum 0.9 weight decay 1e-4 in Lookahead (k 5, "
            "alpha 0.5), CosineAnnealingLR T_max 400 over 400 epochs (here per step over the "
            "same 400 epochs), label smoothing 0.1. Their RandomRotation(15), ColorJitter and "
            "RandomErasing(p 0.5) are approximated by cutout 12 (about the same expected erased "
            "area); rotation and colour jitter are left out. Batch size not stated: 128."
        ),
    ),
    "sudrik": Recipe(
        name="sudrik",
        model="sudrik",
        optimizer="adadelta",
        lr=0.1,
        batch_size=64,
        epochs=300,
        schedule="constant",
        mixup=1.0,
        source=(
            "Sudrik et al.: Adadelta lr 0.1 (constant), batch 64, mixup, 300 epochs, standard "
            "augmentation (crop + flip): 94.12% (best epoch, measured on the test set). The "
            "report gives no mixup alpha: 1.0 is the common default."
        ),
    ),
    "wang": Recipe(
        name="wang",
        model="wang",
        optimizer="adam",
        lr=0.01,
        weight_decay=1e-6,
        batch_size=128,
        epochs=70,
        schedule="onecycle",
        schedule_kwargs={"pct_start": 0.3},
        grad_clip={"value": 0.1},
        padding_mode="reflect",
        source=(
            "Wang et al.: Adam, one-cycle (max lr 0.01, 30% warm-up), weight decay 1e-6, "
            "gradient clipping 0.1 (by value: the report does not say which; value is our "
            "reading), 70 epochs, RandomCrop(32, padding 4, reflect) + flip: 93.81%. Batch size "
            "not stated: 128. Their std constants (0.2021, 0.1964, 0.2019) are not CIFAR-10's; "
            "the loader uses the true statistics."
        ),
    ),
    "fast94": Recipe(
        name="fast94",
        model="capstone",
        optimizer="nesterov",
        lr=0.4,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=512,
        epochs=30,
        schedule="onecycle",
        schedule_kwargs={"pct_start": 0.2, "anneal_strategy": "linear", "cycle_momentum": False},
        label_smoothing=0.2,
        padding_mode="reflect",
        cutout=8,
        tta=True,
        validation_split=0.1,
        source=(
            "This course's capstone (lecture 06), after Page's DAWNBench ResNet-9 runs: the "
            "4.2M-parameter 'capstone' network, SGD with Nesterov momentum 0.9, batch 512, "
            "learning rate rising linearly to 0.4 over the first 20% of steps then falling "
            "linearly to zero, weight decay 5e-4, label smoothing 0.2, reflect-padded crop + "
            "flip + 8x8 cutout, flip test-time augmentation; 10% of the training set held out "
            "for validation, the test set touched once at the end. 30 epochs on 45,000 images "
            "is about 2.7 PFLOPs of training. Target: 94% on real CIFAR-10 (a target, not a "
            "measurement)."
        ),
    ),
}
"""Every preset recipe by name."""


def get_recipe(name: str) -> Recipe:
    """The preset recipe called ``name``; a KeyError lists the names when it is unknown."""
    if name not in RECIPES:
        raise KeyError(f"Unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]
