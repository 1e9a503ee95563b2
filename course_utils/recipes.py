"""The student reports' training recipes as data, and ``run``: one honest training run.

A ``Recipe`` is a named ``TrainConfig`` + a zoo model + a note on its source; where a
report leaves a choice open, the recipe makes one and its note says so. ``run`` is what
``python -m course_utils train`` and lecture 06 call: hold out validation, build the
loaders, ``fit``, evaluate the test set once, save history, checkpoint and curves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import plots, settings, zoo
from course_utils.config import ConfigError, TrainConfig, UnknownNameError
from course_utils.data import ImageData
from course_utils.loader import DeviceLoader
from course_utils.support import config_checks, words
from course_utils.support.checkpoint import (
    CheckpointMismatchError,
    evaluated_images,
    missing_folders,
    remove_if_empty,
)
from course_utils.support.config_checks import check_config
from course_utils.train import Evaluation, History, evaluate, fit

FILES = {"history": "history.json", "checkpoint": "checkpoint.pt", "curves": "curves.png"}
"""What ``run`` writes into its output folder."""

TORCHVISION_CROP = {"name": "crop", "padding": 4, "padding_mode": "constant"}
"""``RandomCrop(32, padding=4)`` as torchvision does it by default: the border filled with 0."""


@dataclass(frozen=True)
class Recipe:
    """One complete training setup (lecture 06): a name, a zoo model key, a TrainConfig and a
    ``source`` note saying which report it comes from and what was assumed."""

    name: str
    model: str
    config: TrainConfig = field(default_factory=TrainConfig)
    source: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.config, dict):
            object.__setattr__(self, "config", TrainConfig.from_dict(self.config))
        if not isinstance(self.config, TrainConfig):
            raise TypeError(
                f"a Recipe's config must be a TrainConfig (or a dict of its fields), got "
                f"{type(self.config).__name__}."
            )
        if self.model:  # "" when run() is given a built model
            zoo.check_key(self.model)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with TrainConfig fields (or ``model``) changed: ``recipe.replace(epochs=5)``."""
        model = changes.pop("model", self.model)
        return replace(self, model=model, config=self.config.replace(**changes))


@dataclass
class RunResult:
    """What ``run`` hands back: the trained model, its history, the one test evaluation and
    the output folder (None when nothing was saved)."""

    model: nn.Module
    history: History
    test: Evaluation
    out: Path | None


def run(
    recipe: Recipe | TrainConfig,
    train_data: ImageData,
    test_data: ImageData,
    *,
    model: nn.Module | str | None = None,
    augment: Sequence[str | dict | Callable] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    name: str | None = None,
    on_epoch: Callable[[int, dict], bool | None] | None = None,
    **overrides: Any,
) -> RunResult:
    """Train ``recipe`` (with TrainConfig ``overrides``) on ``train_data``, choosing nothing
    on the test set: ``val_split`` of the training images is held out for the per-epoch
    validation numbers, and ``test_data`` is evaluated once, at the end (with flip TTA when
    the config says so). ``model`` replaces the recipe's zoo model (a key or a built network,
    e.g. a student's); ``augment`` replaces its augmentation list (specs or your callables).
    With ``out``, history, checkpoint and curves are saved there; a finished run already in
    ``out`` is never overwritten unless ``overwrite=True``.
    """
    if isinstance(recipe, str):
        recipe = get_recipe(recipe)
    if isinstance(recipe, TrainConfig):
        if model is None:
            raise ValueError("run(TrainConfig(...)) needs model=: a zoo key or your nn.Module.")
        recipe = Recipe(name=name or "custom", model="", config=recipe)
    if not isinstance(recipe, Recipe):
        raise TypeError(
            f"run takes a Recipe, a recipe name ({', '.join(RECIPES)}) or a TrainConfig, got "
            f"{type(recipe).__name__}."
        )
    recipe = recipe.replace(**overrides)
    check_config(recipe.config)
    config = recipe.config
    _check_data(train_data, test_data)
    zoo.check_choice(model)
    if isinstance(augment, (str, dict)):
        raise TypeError(
            f"augment must be a list of augmentations, e.g. augment=['crop', 'flip'], got "
            f"{augment!r}."
        )
    pipeline = config.augment if augment is None else augment
    check_sizes(config, len(train_data), pipeline)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}.")
    folder = Path(out).expanduser() if out is not None else None
    settings.seed_everything(config.seed)  # before the model is built: the seed sets its init
    network = _build_network(model, recipe.model)
    if config.val_split > 0:
        train_part, val_part = train_data.holdout(config.val_split, seed=config.seed)
    else:
        train_part, val_part = train_data, None
    train_loader = DeviceLoader(train_part, config.batch_size, augment=pipeline)
    val_loader = DeviceLoader(val_part, config.batch_size, train=False) if val_part else None
    created = missing_folders(folder)  # removed again if the run ends before writing in them
    if folder is not None:
        check_output_folder(folder, resume, overwrite)
    if resume and folder is not None and (folder / FILES["history"]).is_file():
        _check_same_test_set(folder / FILES["history"], test_data, config.batch_size)
    replaced = _set_aside(folder) if folder is not None and overwrite else None
    try:
        history = fit(
            network,
            train_loader,
            val_loader,
            config,
            checkpoint=folder / FILES["checkpoint"] if folder is not None else None,
            resume=resume,
            progress=progress,
            name=name or recipe.name,
            on_epoch=on_epoch,
        )
    except BaseException:
        if replaced is not None:  # a run that never started leaves the old one in place
            _finish_replacing(replaced, started=(folder / FILES["checkpoint"]).exists())
        remove_if_empty(created)
        raise
    if replaced is not None:
        _finish_replacing(replaced, started=True)
    test_loader = DeviceLoader(test_data, config.batch_size, train=False)
    test = evaluate(network, test_loader, tta=config.tta)
    history.test = {
        **_test_set(test_data, len(test.targets)),  # fewer than it holds in a dry run
        "loss": test.loss,
        "accuracy": test.accuracy,
        "tta": config.tta,
    }
    if folder is not None:
        history.save(folder / FILES["history"])
        figure = plots.plot_history(history)
        plots.save_figure(figure, folder / FILES["curves"])
        plt.close(figure)
    return RunResult(model=network, history=history, test=test, out=folder)


REPLACED = ".replaced"
"""Where ``run(overwrite=True)`` keeps the old run's files until the new run has started."""


def _set_aside(folder: Path) -> Path:
    """Move the old run's files into ``folder/.replaced`` (nothing is deleted yet)."""
    aside = folder / REPLACED
    aside.mkdir(exist_ok=True)
    for name in FILES.values():
        if (folder / name).is_file():
            os.replace(folder / name, aside / name)
    return aside


def _finish_replacing(aside: Path, started: bool) -> None:
    """Delete the old run once the new one has written its first checkpoint; put it back
    when the new run failed before that (a mistake found on its first step)."""
    for file in list(aside.iterdir()):
        if started:
            file.unlink()
        else:
            os.replace(file, aside.parent / file.name)
    aside.rmdir()


def _build_network(model: nn.Module | str | Callable | None, recipe_model: str) -> nn.Module:
    """The network to train: given, a zoo key, or what a builder (a class or function taking
    no arguments, e.g. a student's ``lambda: ResNet(...)``) returns, built after seeding."""
    if isinstance(model, nn.Module):
        return model
    if model is None or isinstance(model, str):
        return zoo.build(model or recipe_model)
    try:
        network = model()
    except TypeError as error:  # e.g. model=ResNet: a class that needs its arguments
        raise TypeError(
            f"model={getattr(model, '__name__', model)!r} cannot be built with no arguments "
            f"({error}): build it first, model=ResNet(...), or pass a function that does."
        ) from None
    if not isinstance(network, nn.Module):
        raise TypeError(f"model() must return an nn.Module, got {type(network).__name__}.")
    return network


def _test_set(test_data: ImageData, images: int | None) -> dict:
    """What identifies the test set in ``History.test``: split, provenance and the number of
    images evaluated (in a dry run only the first batches')."""
    return {"split": test_data.split, "images": images, "provenance": test_data.provenance}


def _check_same_test_set(history_file: Path, test_data: ImageData, batch_size: int) -> None:
    """Resuming a finished run rewrites its test result: only on the same test set."""
    tested = History.load(history_file).test or {}
    images = evaluated_images(len(test_data), batch_size)
    changed = [
        f"{key}: {tested[key]!r} -> {value!r}"
        for key, value in _test_set(test_data, images).items()
        if key in tested and tested[key] != value
    ]
    if changed:
        raise CheckpointMismatchError(
            f"{history_file} was tested on another test set ({'; '.join(changed)}); resuming "
            "would replace its result: resume with the same test images."
        )


def _check_data(train_data: Any, test_data: Any) -> None:
    """Both sets are ImageData, and the test set is not the training images."""
    for role, given in (("train_data", train_data), ("test_data", test_data)):
        if not isinstance(given, ImageData):
            raise TypeError(
                f"{role} must be an ImageData (e.g. data.cifar10('train')), got "
                f"{type(given).__name__}."
            )
    if test_data is train_data or test_data.split == "train":
        raise ValueError(
            "test_data holds training images: pass the test set (data.cifar10('test')); run "
            "holds out its own validation split from train_data."
        )
    for what in ("source", "classes"):
        if getattr(train_data, what) != getattr(test_data, what):
            raise ValueError(
                f"train_data and test_data differ in {what} ({getattr(train_data, what)!r} vs "
                f"{getattr(test_data, what)!r}): test on the same kind of images."
            )


def check_sizes(config: TrainConfig, images: int, augment: Sequence | None = None) -> None:
    """Raise ConfigError before training when ``config`` cannot work on ``images`` training
    images: a validation split of none (or all) of them, a batch larger than what is left
    to train on, or an augmentation (``augment``, else the config's) that cannot run on
    32x32 images (tried on a dummy batch)."""
    held_out = round(images * config.val_split)
    if config.val_split > 0 and not 0 < held_out < images:
        raise ConfigError(
            f"val_split {config.val_split} of {images} images holds out {held_out}: use more "
            "images or another split."
        )
    dummy = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    try:
        config_checks.check_augment(config.augment if augment is None else augment, dummy)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"augment: {err}") from None
    if config.batch_size > images - held_out:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the {images - held_out} training "
            "images left after the validation split: lower it or use more images."
        )


def check_output_folder(folder: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse, before any training, an output folder that would lose a user's run: a finished
    run (its history), or an unfinished one's checkpoint when not resuming, unless
    ``overwrite`` (``run`` then sets the old files aside until the new run has started).
    Messages name ``out``, ``resume`` and ``overwrite`` in the words of the tool in use."""
    for name, flag in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    folder = Path(folder).expanduser()
    out = words.arg("out")
    resume_it, replace_it = words.arg("resume", True), words.arg("overwrite", True)
    if resume and overwrite:
        raise ValueError(
            f"{resume_it} continues the run in {folder} and {replace_it} replaces it: choose one."
        )
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{out} {folder} is a file, not a folder: choose another {out}.")
    for name in FILES.values():
        if (folder / name).is_dir():
            raise FileExistsError(
                f"{folder / name} is a folder, where a run writes its {name}: move it away or "
                f"choose another {out}."
            )
    finished = (folder / FILES["history"]).is_file()
    started = (folder / FILES["checkpoint"]).is_file()
    keep = not (resume or overwrite)
    if keep and finished:
        raise FileExistsError(
            f"{folder} holds a finished run ({FILES['history']}); choose another {out}, or add "
            f"{replace_it} to replace it."
        )
    if keep and started:
        raise FileExistsError(
            f"{folder} holds an unfinished run's {FILES['checkpoint']}; add {resume_it} to "
            f"continue it, or {replace_it} to start again."
        )
    if keep and (folder / FILES["curves"]).exists():
        raise FileExistsError(
            f"{folder} already has a {FILES['curves']} that a run would replace; choose another "
            f"{out}, or add {replace_it} to replace it."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PermissionError(
            f"cannot create {folder} ({error.strerror}): choose another {out}."
        ) from None
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write into {folder}: choose another {out}.")


RECIPES: dict[str, Recipe] = {
    "pillai": Recipe(
        name="pillai",
        model="pillai",
        config=TrainConfig(
            optimizer="adadelta",
            lr=1e-4,
            weight_decay=1e-3,
            batch_size=128,
            epochs=50,
            schedule="plateau",
            schedule_kwargs={"mode": "max", "factor": 0.5, "patience": 10},
            augment=(TORCHVISION_CROP, "flip"),
            val_split=0.2,
        ),
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
        config=TrainConfig(
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            batch_size=128,
            epochs=60,
            schedule="cosine",
            augment=(TORCHVISION_CROP, "flip"),
        ),
        source=(
            "Merabishvili et al.: Adam with a learning-rate scheduler, random crop + flip, "
            "60 epochs, fixed seeds. The report names neither the scheduler, the learning rate "
            "nor the batch size: cosine, Adam's default lr 1e-3 and batch 128 are our choices; "
            "no weight decay is stated, so none is used. Validation: the course's 10% split."
        ),
    ),
    "rout": Recipe(
        name="rout",
        model="rout",
        config=TrainConfig(
            optimizer="momentum",
            lr=0.05,
            momentum=0.9,
            weight_decay=1e-4,
            lookahead={"k": 5, "alpha": 0.5},
            batch_size=128,
            epochs=400,
            schedule="cosine",
            label_smoothing=0.1,
            augment=(
                TORCHVISION_CROP,
                "flip",
                {"name": "rotate", "degrees": 15.0},
                {
                    "name": "jitter",
                    "brightness": 0.2,
                    "contrast": 0.2,
                    "saturation": 0.2,
                    "hue": 0.1,
                },
                {"name": "erase", "p": 0.5, "scale": [0.02, 0.33], "ratio": [0.3, 3.3]},
            ),  # fmt: skip
        ),
        source=(
            "Rout & Mamidwar: SGD lr 0.05 momentum 0.9 weight decay 1e-4 in Lookahead (k 5, "
            "alpha 0.5), CosineAnnealingLR T_max 400 over 400 epochs (here per step over the "
            "same 400 epochs), label smoothing 0.1, RandomCrop(32, 4) + flip + "
            "RandomRotation(15) + ColorJitter(0.2, 0.2, 0.2, 0.1) + RandomErasing(p 0.5, "
            "scale 0.02-0.33, ratio 0.3-3.3). Batch size not stated: 128. Erasing fills with "
            "the mean pixel (torchvision's default fills with 0 after normalisation, which is "
            "the mean colour too)."
        ),
    ),
    "sudrik": Recipe(
        name="sudrik",
        model="sudrik",
        config=TrainConfig(
            optimizer="adadelta",
            lr=0.1,
            weight_decay=0.0,
            batch_size=64,
            epochs=300,
            schedule="constant",
            mixup=1.0,
            augment=(TORCHVISION_CROP, "flip"),
        ),
        source=(
            "Sudrik et al.: Adadelta lr 0.1 (constant), batch 64, mixup, 300 epochs, standard "
            "augmentation (crop + flip): 94.12% (best epoch, measured on the test set). The "
            "report gives no mixup alpha: 1.0 is the common default. Validation: the course's "
            "10% split, so that no epoch is chosen on the test set."
        ),
    ),
    "wang": Recipe(
        name="wang",
        model="wang",
        config=TrainConfig(
            optimizer="adam",
            lr=0.01,
            weight_decay=1e-6,
            batch_size=128,
            epochs=70,
            schedule="onecycle",
            schedule_kwargs={"pct_start": 0.3},
            grad_clip={"value": 0.1},
            augment=({"name": "crop", "padding": 4, "padding_mode": "reflect"}, "flip"),
        ),
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
        config=TrainConfig(
            optimizer="nesterov",  # SGD with Nesterov momentum
            lr=0.75,  # peak rate for the batch's mean loss (airbench94's, rescaled to batch 512)
            momentum=0.85,  # airbench94's; 0.9 averages over more, older gradients
            weight_decay=1.33e-3,  # airbench94's decay per step, for a mean loss (0.0153 / 11.5)
            schedule="onecycle",  # linear warm-up from 0.2x to 1x, then linear down to 0.07x
            schedule_kwargs={
                "pct_start": 0.23,
                "anneal_strategy": "linear",
                "div_factor": 5.0,
                "final_div_factor": 2.857,
                "cycle_momentum": False,
            },  # fmt: skip
            epochs=10,  # 10 x 45,000 images: 0.32 PFLOPs of training
            batch_size=512,
            label_smoothing=0.2,  # targets 0.82 for the class, 0.02 for each other
            augment=({"name": "crop", "padding": 2, "padding_mode": "reflect"}, "flip"),  # +-2 px
            tta=True,  # the test set scored on each image and its mirror
            val_split=0.1,  # 5,000 training images held out: every choice made on them
        ),
        source=(
            "This course's capstone (lecture 06), after Keller Jordan's airbench94 "
            "(KellerJordan/cifar10-airbench, 94.01% in 9.9 epochs at batch 1,024 on all 50,000 "
            "training images): its net made residual, its optimizer settings rescaled to batch "
            "512, label smoothing 0.2, +-2 px translations and flips, a warm-up then linear "
            "decay; no weight averaging (Lookahead cost 2.4 points on validation at CPU scale: "
            "benchmarks/results/capstone-tuning.md); flip TTA only. 10 "
            "epochs on 45,000 images (5,000 held out for validation) is 0.32 PFLOPs of "
            "training. Target: 94% on real CIFAR-10 (a target, not a measurement)."
        ),
    ),
    "page94": Recipe(
        name="page94",
        model="resnet9_page",
        config=TrainConfig(
            optimizer="nesterov",
            lr=0.4,
            momentum=0.9,
            weight_decay=5e-4,
            batch_size=512,
            epochs=30,
            schedule="onecycle",
            schedule_kwargs={
                "pct_start": 0.2,
                "anneal_strategy": "linear",
                "cycle_momentum": False,
            },
            label_smoothing=0.2,
            augment=(
                {"name": "crop", "padding": 4, "padding_mode": "reflect"},
                "flip",
                {"name": "cutout", "size": 8},
            ),
            tta=True,
            val_split=0.1,
        ),
        source=(
            "The course's first capstone (lecture 06 shows what fast94 changed), after Page's "
            "DAWNBench ResNet-9 runs: the 4.2M-parameter 'resnet9_page' network, SGD with "
            "Nesterov momentum 0.9, batch 512, "
            "learning rate rising linearly to 0.4 over the first 20% of steps then falling "
            "linearly to zero, weight decay 5e-4, label smoothing 0.2, reflect-padded crop + "
            "flip + 8x8 cutout, flip test-time augmentation; 10% of the training set held out "
            "for validation, the test set touched once at the end. 30 epochs on 45,000 images "
            "is about 2.7 PFLOPs of training. Its hyper-parameters come from Page, whose "
            "'valid' set was the CIFAR-10 test set. Target: 94% on real CIFAR-10 (a target, "
            "not a measurement)."
        ),
    ),
}
"""Every preset recipe by name."""


def get_recipe(name: str) -> Recipe:
    """The preset recipe called ``name``; a KeyError lists the names when it is unknown."""
    if name not in RECIPES:
        raise UnknownNameError(words.unknown("recipe", name, RECIPES))
    return RECIPES[name]
