"""The command line: ``python -m course_utils zoo`` tabulates the model zoo and
``python -m course_utils train ...`` trains a zoo model or a report's recipe.

A training run writes ``history.json``, ``checkpoint.pt`` and ``curves.png`` into ``--out``
and ends with a summary. A recipe (``--recipe``) fills in every setting; flags given
explicitly override it. Mistakes in the arguments get one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from torch import nn

from course_utils import data, params, plots, settings, zoo
from course_utils.checkpoint import CheckpointMismatchError
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.recipes import RECIPES, Recipe, get_recipe
from course_utils.train import TrainingDiverged, evaluate, fit

DEFAULTS = Recipe(
    name="custom",
    model="",
    optimizer="nesterov",
    lr=0.1,
    weight_decay=5e-4,
    schedule="onecycle",
    epochs=10,
    batch_size=512,
    source="Command-line defaults: SGD with Nesterov momentum, one-cycle schedule.",
)
"""Settings used when neither a recipe nor a flag sets them."""

SMOKE_TRAIN_IMAGES = 2000
SMOKE_TEST_IMAGES = 1000
SMOKE_EPOCHS = 2
SMOKE_BATCH_SIZE = 128
"""Smoke runs cap a recipe's batch (not an explicit --batch-size) so a couple of thousand
images still make a few dozen steps."""
SMOKE_MAX_PARAMETERS = 500_000
SMOKE_MODEL = {"blocks": [1, 1, 1], "widths": [16, 32, 64]}
"""In smoke mode, bigger models are replaced by this small ResNet (a CPU trains it at
hundreds of images/s; a 5M-parameter model at about 15)."""

FILES = {"history": "history.json", "checkpoint": "checkpoint.pt", "curves": "curves.png"}

# Flags that override a recipe's field of the same name when given.
_OVERRIDES = (
    "model",
    "optimizer",
    "lr",
    "weight_decay",
    "schedule",
    "epochs",
    "batch_size",
    "mixup",
    "label_smoothing",
)


class UsageError(Exception):
    """A mistake in the command-line arguments, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports mistakes in one line (exit code 2), no usage dump."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_utils`` argument parser with its ``zoo`` and ``train`` commands."""
    parser = _Parser(prog="python -m course_utils", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("zoo", help="list the zoo's models: size, cost, reported accuracy")

    train = commands.add_parser("train", help="train a zoo model or a recipe")
    train.add_argument("--recipe", help=f"a report's recipe: {', '.join(RECIPES)}")
    train.add_argument("--model", help="zoo key (see the zoo command); overrides the recipe's")
    train.add_argument("--optimizer", help="e.g. nesterov, adam, adadelta, lookahead-momentum")
    train.add_argument("--lr", type=float, help="(peak) learning rate")
    train.add_argument("--weight-decay", type=float)
    train.add_argument(
        "--schedule", help="constant, step, cosine, onecycle, warmup_cosine, plateau"
    )
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--mixup", type=float, help="mixup alpha (0 = off)")
    train.add_argument("--label-smoothing", type=float)
    train.add_argument("--data", choices=("auto", "cifar10", "synthetic"), default="auto")
    train.add_argument("--train-images", type=int, help="use only the first N training images")
    train.add_argument("--test-images", type=int, help="use only the first N test images")
    train.add_argument("--smoke", action="store_true", help="tiny data, epochs and model (CI)")
    train.add_argument("--out", type=Path, help="output folder (default runs/<name>)")
    train.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    train.add_argument("--budget", type=int, help="refuse models with this many parameters or more")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "zoo":
            return show_zoo()
        return train(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def show_zoo() -> int:
    """Print the zoo's table: parameters, GFLOPs per image, budget, reported accuracy."""
    table = zoo.summary()
    shown = pd.DataFrame(
        {
            "key": table["key"],
            "parameters": table["parameters"].map("{:,}".format),
            "GFLOPs/image": table["gflops"].map("{:.3f}".format),
            f"under {zoo.BUDGET / 1e6:g}M": table["under_budget"].map({True: "yes", False: "NO"}),
            "reported parameters": table["reported_params"].map(_or_dash("{:,}")),
            "reported accuracy": table["reported_accuracy"].map(_or_dash("{:.2f}%")),
        }
    )
    print(shown.to_string(index=False))
    return 0


def _or_dash(template: str) -> Callable[[object], str]:
    """A formatter that writes missing values as a dash."""
    return lambda value: "-" if pd.isna(value) else template.format(value)


def train(args: argparse.Namespace) -> int:
    """Train what ``args`` describe, write history, checkpoint and curves, print a summary."""
    started = time.perf_counter()
    recipe = resolve_recipe(args)
    smoke = args.smoke or settings.SMOKE
    out = args.out or Path("runs") / (args.recipe or recipe.model)
    settings.seed_everything(args.seed)

    model = zoo.build(recipe.model)
    if args.budget is not None:
        try:
            params.check_budget(model, args.budget)
        except params.BudgetExceededError as err:
            raise UsageError(f"{recipe.model}: {str(err).splitlines()[0]}") from None
    train_data, test_data = _load_data(args, smoke)
    if smoke:
        batch_size = args.batch_size or min(recipe.batch_size, SMOKE_BATCH_SIZE)
        recipe = recipe.replace(epochs=min(recipe.epochs, SMOKE_EPOCHS), batch_size=batch_size)
        model = _smoke_model(model, recipe, len(train_data), len(test_data))
    eval_data = test_data
    if recipe.validation_split > 0:
        train_data, eval_data = train_data.split(recipe.validation_split, seed=args.seed)
        print(f"Holding out {len(eval_data)} training images for validation (the recipe's split).")
    _warn_if_slow(model, len(train_data) * recipe.epochs)

    try:
        train_loader = DeviceLoader(train_data, seed=args.seed, **recipe.loader_kwargs())
    except ValueError as err:  # e.g. a batch larger than the training set
        raise UsageError(str(err)) from None
    eval_loader = DeviceLoader(eval_data, batch_size=recipe.batch_size, train=False)
    try:
        history = fit(
            model,
            train_loader,
            eval_loader,
            checkpoint=out / FILES["checkpoint"],
            resume=args.resume,
            progress=not args.no_progress,
            seed=args.seed,
            name=args.recipe or recipe.model,
            **recipe.fit_kwargs(),
        )
    except (TrainingDiverged, CheckpointMismatchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    test_accuracy = history.final["test_acc"]
    if eval_data is not test_data or recipe.tta:
        test_loader = DeviceLoader(test_data, batch_size=recipe.batch_size, train=False)
        test_accuracy = evaluate(model, test_loader, tta_flip=recipe.tta).accuracy
    history.save(out / FILES["history"])
    eval_label = "test" if eval_data is test_data else "validation"
    figure = plots.plot_history(history, eval_label=eval_label)
    plots.save_figure(figure, out / FILES["curves"])
    plt.close(figure)
    _print_summary(history, model, test_accuracy, out, time.perf_counter() - started)
    return 0


def resolve_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe (or the defaults) with every explicitly given flag applied, checked."""
    if args.recipe is not None:
        try:
            recipe = get_recipe(args.recipe)
        except KeyError as err:
            raise UsageError(err.args[0]) from None
    else:
        recipe = DEFAULTS
    changes = {key: getattr(args, key) for key in _OVERRIDES if getattr(args, key) is not None}
    recipe = recipe.replace(**changes)
    _check(recipe, args)
    return recipe


def _check(recipe: Recipe, args: argparse.Namespace) -> None:
    """Raise UsageError (one line) for the first impossible setting."""
    keys = list(zoo.REPORTS)
    if not recipe.model:
        raise UsageError(f"give --model KEY or --recipe NAME; zoo keys: {', '.join(keys)}.")
    if recipe.model not in keys:
        raise UsageError(f"unknown model {recipe.model!r}; choose one of: {', '.join(keys)}.")
    problems = [
        (recipe.lr <= 0, f"--lr must be positive, got {recipe.lr}."),
        (recipe.weight_decay < 0, f"--weight-decay must be >= 0, got {recipe.weight_decay}."),
        (recipe.epochs < 1, f"--epochs must be at least 1, got {recipe.epochs}."),
        (recipe.batch_size < 1, f"--batch-size must be at least 1, got {recipe.batch_size}."),
        (recipe.mixup < 0, f"--mixup alpha must be >= 0 (0 = off), got {recipe.mixup}."),
        (
            not 0 <= recipe.label_smoothing < 1,
            f"--label-smoothing must be in [0, 1), got {recipe.label_smoothing}.",
        ),
        (args.budget is not None and args.budget < 1, "--budget must be a positive count."),
        (
            any(n is not None and n < 1 for n in (args.train_images, args.test_images)),
            "--train-images and --test-images must be at least 1.",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise UsageError(message)


def _load_data(args: argparse.Namespace, smoke: bool) -> tuple[data.ImageData, data.ImageData]:
    """The training and test sets (first N images when asked, or smoke-sized)."""
    n_train = args.train_images or (SMOKE_TRAIN_IMAGES if smoke else None)
    n_test = args.test_images or (SMOKE_TEST_IMAGES if smoke else None)
    try:
        train_data = data.cifar10("train", source=args.data, n=n_train, seed=args.seed)
        # The same source as the training set ("auto" is resolved, and announced, once).
        test_data = data.cifar10("test", source=train_data.source, n=n_test, seed=args.seed)
    except data.DataNotFoundError as err:
        raise UsageError(str(err)) from None
    return train_data, test_data


def _smoke_model(model: nn.Module, recipe: Recipe, n_train: int, n_test: int) -> nn.Module:
    """In smoke mode, swap a model too big to train quickly on a CPU for a small ResNet,
    and say in one line what smoke mode changed."""
    count = params.count_parameters(model)
    note = f"Smoke mode: {n_train} train / {n_test} test images, {recipe.epochs} epoch(s)"
    if count <= SMOKE_MAX_PARAMETERS:
        print(f"{note}.")
        return model
    small = ResNet(**SMOKE_MODEL)
    print(
        f"{note}; {recipe.model} ({count:,} parameters) is replaced by a small "
        f"ResNet(blocks={SMOKE_MODEL['blocks']}, widths={SMOKE_MODEL['widths']}, "
        f"{params.count_parameters(small):,} parameters)."
    )
    return small


def _warn_if_slow(model: nn.Module, images: int) -> None:
    """Say so up front when a full-size run is about to start on a CPU."""
    pflops = params.training_flops(model, images) / 1e15
    if settings.get_device().type == "cpu" and pflops > 0.01:
        print(
            f"No GPU: this run is {pflops:.2f} PFLOPs of training, hours to days on a CPU. "
            "Add --smoke for a quick end-to-end check, or run it on a GPU."
        )


def _print_summary(history, model: nn.Module, test_accuracy: float, out: Path, wall: float) -> None:
    """Print the run's final numbers and where its files are."""
    images = sum(row["images_per_sec"] * row["seconds"] for row in history.epochs)
    training = history.final["elapsed"]
    source = {"synthetic": "synthetic stand-in (not CIFAR-10)"}.get(history.source, history.source)
    rows = {
        "run": f"{history.name} ({len(history.epochs)} epochs on {history.config['device']})",
        "test accuracy": f"{100 * test_accuracy:.2f}%",
        "parameters": f"{params.count_parameters(model):,}",
        "training PFLOPs": f"{params.training_flops(model, round(images)) / 1e15:.3g}",
        "wall time": f"{wall:.1f} s ({training:.1f} s training)",
        "images/s": f"{images / training:,.0f}",
        "data": source,
        "files": ", ".join(str(out / name) for name in FILES.values()),
    }
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
