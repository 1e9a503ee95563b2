"""The command line: ``python -m course_utils zoo`` tabulates the model zoo,
``python -m course_utils train ...`` trains a zoo model or a report's recipe and
``python -m course_utils sweep ...`` adds trials to a hyper-parameter sweep (lecture 07).

A training run (``recipes.run``) holds out a validation split, evaluates the test set once
at the end, writes ``history.json``, ``checkpoint.pt`` and ``curves.png`` into ``--out`` and
ends with a summary. A recipe (``--recipe``) fills in every setting; flags given explicitly
override it; the rest are ``TrainConfig``'s defaults. Mistakes that can be known before
training get one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from torch import nn

from course_utils import data, params, settings, zoo
from course_utils.capstone import CapstoneNet
from course_utils.config import ConfigError, defaults
from course_utils.models import ResNet, ResNet9
from course_utils.recipes import (
    FILES,
    RECIPES,
    Recipe,
    check_output_folder,
    check_sizes,
    get_recipe,
    run,
)
from course_utils.support import sweep, words
from course_utils.support.checkpoint import (
    CheckpointMismatchError,
    CheckpointWriteError,
    missing_folders,
    remove_if_empty,
)
from course_utils.support.config_checks import check_config
from course_utils.train import TrainingDiverged

SMOKE_TRAIN_IMAGES = 2000
SMOKE_TEST_IMAGES = 1000
SMOKE_EPOCHS = 2
SMOKE_BATCH_SIZE = 128
"""Smoke runs cap a recipe's batch (not an explicit --batch-size) so a couple of thousand
images still make a few dozen steps."""
SMOKE_MAX_PARAMETERS = 500_000
SMOKE_MODEL = {"blocks": [1, 1, 1], "widths": [16, 32, 64]}
SMOKE_CAPSTONE_WIDTHS = (16, 32, 32)
SMOKE_PAGE_WIDTHS = (16, 32, 64, 96)
"""In smoke mode, bigger models are replaced by small ones a CPU trains at hundreds of
images/s (a 5M-parameter model trains at about 15): the capstone by a narrowed CapstoneNet,
Page's ResNet-9 by a narrowed ResNet9, the others by a small ResNet."""
SMOKE_HELP = (
    f"a quick check (CI): {SMOKE_TRAIN_IMAGES:,} train / {SMOKE_TEST_IMAGES:,} test images, "
    f"at most {SMOKE_EPOCHS} epochs and batch {SMOKE_BATCH_SIZE}, a small model"
)

# Flags that set the TrainConfig field of the same name when given: (flag type, help).
CONFIG_FLAGS: dict[str, tuple[Callable, str]] = {
    "optimizer": (str, "optimizer name: sgd, momentum, nesterov, adam, adamw, ..."),
    "lr": (float, "(peak) learning rate"),
    "weight_decay": (float, "weight decay"),
    "momentum": (float, "SGD momentum (momentum and nesterov only)"),
    "lookahead": (str, "wrap the optimizer in Lookahead: K,ALPHA (e.g. 5,0.5)"),
    "schedule": (str, "constant, step, cosine, onecycle, plateau"),
    "epochs": (int, "epochs"),
    "batch_size": (int, "batch size"),
    "label_smoothing": (float, "label smoothing in [0, 1)"),
    "mixup": (float, "mixup alpha (0 = off)"),
    "grad_clip": (float, "clip the gradient norm to this value"),
    "ema": (float, "evaluate an EMA of the weights with this decay (e.g. 0.999)"),
    "augment": (str, "augmentations in order, e.g. crop,flip,cutout:size=8 (none: '')"),
    "val_split": (float, "share of the training images held out for validation"),
    "precision": (str, "auto, bf16, fp16 or fp32"),
    "seed": (int, "the one seed: initial weights, batch order, augmentation, mixup"),
}


class UsageError(Exception):
    """A mistake in the command-line arguments, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports mistakes in one line (exit code 2), no usage dump."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_utils`` argument parser with its ``zoo``, ``train`` and
    ``sweep`` commands."""
    parser = _Parser(prog="python -m course_utils", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("zoo", help="list the zoo's models: size, cost, reported accuracy")

    train = commands.add_parser("train", help="train a zoo model or a recipe")
    train.add_argument("--recipe", help=f"a report's recipe: {', '.join(RECIPES)}")
    train.add_argument("--model", help="zoo key (see the zoo command); overrides the recipe's")
    shown = defaults()
    _add_shared_flags(train, shown)
    for key, text in (("tta", "flip TTA at test"), ("compile", "torch.compile, on CUDA only")):
        default = _format_flag(key, shown[key])
        train.add_argument(
            words.flag_of(key),
            action=argparse.BooleanOptionalAction,
            help=_recipe_help(text, default),
        )
    train.add_argument("--test-images", type=int, help="use only the first N test images")
    train.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    train.add_argument(
        "--out", type=_folder, help="output folder [runs/<name>; runs/<name>-smoke with --smoke]"
    )
    train.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    train.add_argument("--budget", type=int, help="refuse models with this many parameters or more")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_sweep_parser(commands, shown)
    return parser


def _add_shared_flags(parser: argparse.ArgumentParser, shown: dict) -> None:
    """The flags train and sweep share: one per TrainConfig field (``shown``: the defaults
    --help prints), and where the training images come from."""
    for key, (kind, text) in CONFIG_FLAGS.items():
        default = _format_flag(key, shown[key])
        parser.add_argument(words.flag_of(key), type=kind, help=_recipe_help(text, default))
    parser.add_argument(
        "--data",
        default="auto",
        help="auto, cifar10, hub, synthetic, or the path of an image folder, its archive or the "
        "official cifar-10-python.tar.gz (relative: from here, else from the repository) [auto]",
    )
    parser.add_argument(
        "--check-counts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="an image folder must hold CIFAR-10's 5,000/1,000 images per class (off: any number)",
    )
    parser.add_argument("--train-images", type=int, help="use only the first N training images")


def _recipe_help(text: str, default: str) -> str:
    """A flag's help where the recipe decides the default (TrainConfig's without one)."""
    return f"{text} [default: the recipe's value; {default} without --recipe]"


def _folder(text: str) -> Path:
    """An output folder flag: ``~`` expanded, an empty value refused (it would mean here)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a folder name (an empty one would mean here)")
    return Path(text).expanduser()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    # A SIGTERM (a job scheduler's stop, `kill`) ends the run like Ctrl-C: said, and resumable.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if on_main_thread else None
    try:
        with words.command_line():  # messages name flags, not Python keywords
            if args.command == "zoo":
                return show_zoo()
            if args.command == "sweep":
                return run_sweep(args)
            return train(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started (while loading data, say)
        print("\nInterrupted: nothing was saved.", file=sys.stderr)
        return 130
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    """Train what ``args`` describe through ``recipes.run`` and print a summary. The output
    folder, when this command creates it, is removed again if nothing was written into it
    (a Ctrl-C or a mistake before the first epoch finished)."""
    started = time.perf_counter()
    smoke = args.smoke or settings.SMOKE
    recipe = resolve_recipe(args, smoke)
    out = args.out or Path("runs") / (f"{recipe.name}-smoke" if smoke else recipe.name)
    created = missing_folders(out)
    try:
        return _train(args, recipe, out, smoke, started)
    finally:
        remove_if_empty(created)


def _train(args: argparse.Namespace, recipe: Recipe, out: Path, smoke: bool, started: float) -> int:
    """``train`` once its recipe and output folder are known."""
    try:
        check_output_folder(out, args.resume, args.overwrite)  # checks only: nothing removed
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    say_settings(args, recipe, smoke)
    settings.seed_everything(recipe.config.seed)
    model = zoo.build(recipe.model)
    if args.budget is not None and args.budget < 1:
        raise UsageError(f"--budget must be a positive number of parameters, got {args.budget}.")
    if args.budget is not None:
        try:
            params.check_budget(model, args.budget)
        except params.BudgetExceededError as err:
            raise UsageError(f"{recipe.model}: {str(err).splitlines()[0]}") from None
    elif params.count_parameters(model) >= zoo.BUDGET:
        print(
            f"Note: {recipe.model} has {params.count_parameters(model):,} parameters, over the "
            f"course's {zoo.BUDGET:,} budget (add --budget {zoo.BUDGET} to refuse such models)."
        )
    train_data, test_data = _load_data(args, smoke, recipe.config.seed)
    if smoke:
        model = _smoke_model(model, recipe, len(train_data), len(test_data))
    try:
        check_sizes(recipe.config, len(train_data))
    except ConfigError as err:
        raise UsageError(_as_flags(str(err))) from None
    _warn_if_slow(
        model, round(len(train_data) * (1 - recipe.config.val_split)) * recipe.config.epochs
    )
    saved = out / FILES["checkpoint"]
    old_checkpoint = saved.stat().st_mtime_ns if saved.is_file() else None
    epochs = EpochLines(recipe.config.epochs, printing=args.no_progress)
    try:
        result = run(
            recipe,
            train_data,
            test_data,
            model=model,
            out=out,
            resume=args.resume,
            overwrite=args.overwrite,  # the old run is removed only now, after every check
            progress=not args.no_progress,
            on_epoch=epochs,
        )
    except CheckpointMismatchError as err:  # found before the first step: a usage mistake
        raise UsageError(str(err)) from None
    except (TrainingDiverged, CheckpointWriteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\n{_interrupted(out / FILES['checkpoint'], old_checkpoint, args.overwrite)}",
            file=sys.stderr,
        )
        return 130
    _print_summary(result, out, time.perf_counter() - started, epochs.trained, len(test_data))
    return 0


class EpochLines:
    """``on_epoch`` for the train command: counts the epochs this command trains and, without
    a progress bar (``--no-progress``), prints one line for each."""

    def __init__(self, epochs: int, printing: bool) -> None:
        self.epochs, self.printing, self.trained = epochs, printing, 0

    def __call__(self, epoch: int, record: dict) -> None:
        self.trained += 1
        if not self.printing:
            return
        line = f"epoch {epoch}/{self.epochs}: train loss {record['train_loss']:.3f}, "
        line += f"accuracy {record['train_acc']:.2%}"
        if record.get("val_acc") is not None:
            line += f"; validation loss {record['val_loss']:.3f}, accuracy {record['val_acc']:.2%}"
        print(f"{line}; {record['seconds']:.1f} s", flush=True)


def _interrupted(checkpoint: Path, before: int | None, overwrite: bool) -> str:
    """What a Ctrl-C during training left (``before``: the checkpoint's modification time
    when the command started, None if there was none), and how to continue."""
    if not checkpoint.is_file():
        return "Interrupted before the first epoch finished: nothing was saved; run it again."
    if checkpoint.stat().st_mtime_ns == before:  # no epoch of this command finished
        return f"Interrupted before the first epoch finished: {checkpoint.parent} is as it was."
    how = "replace --overwrite with --resume" if overwrite else "run it again with --resume"
    return f"Interrupted. The finished epochs are in {checkpoint}: {how} to continue."


def _base_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe ``--recipe`` names, or TrainConfig's defaults for ``--model``: what the
    flags change."""
    if args.model is not None and args.model not in zoo.REPORTS:
        raise UsageError(words.unknown("model", args.model, zoo.REPORTS))
    if args.recipe is not None:
        try:
            return get_recipe(args.recipe)
        except KeyError as err:
            raise UsageError(err.args[0]) from None
    if args.model is None:
        raise UsageError(f"give --model KEY or --recipe NAME; zoo keys: {', '.join(zoo.REPORTS)}.")
    return Recipe(name=args.model, model=args.model, source="command-line settings")


def _given(args: argparse.Namespace) -> dict:
    """The TrainConfig settings given as flags, as the config holds them."""
    changes = {key: getattr(args, key) for key in CONFIG_FLAGS if getattr(args, key) is not None}
    changes |= {
        key: getattr(args, key) for key in ("tta", "compile") if getattr(args, key) is not None
    }
    if "lookahead" in changes:
        changes["lookahead"] = _parse_lookahead(changes["lookahead"])
    if "augment" in changes:
        changes["augment"] = _parse_augment(changes["augment"])
    if "grad_clip" in changes:
        changes["grad_clip"] = {"norm": changes["grad_clip"]}
    return changes


def resolve_recipe(args: argparse.Namespace, smoke: bool = False) -> Recipe:
    """The recipe (or the defaults) with every explicitly given flag applied, checked; in
    smoke mode with its epochs and batch capped."""
    recipe = _base_recipe(args)
    changes = _given(args)
    if args.model is not None:
        changes["model"] = args.model
    if smoke:
        changes.setdefault("epochs", min(recipe.config.epochs, SMOKE_EPOCHS))
        changes.setdefault("batch_size", min(recipe.config.batch_size, SMOKE_BATCH_SIZE))
    try:
        recipe = recipe.replace(**changes)
        check_config(recipe.config)
        return recipe
    except ConfigError as err:
        raise UsageError(_as_flags(str(err))) from None


def say_settings(args: argparse.Namespace, recipe: Recipe, smoke: bool) -> None:
    """The run's first line: every setting that differs from the recipe (or the defaults),
    each with what changed it (a flag, smoke mode, or a new optimizer or schedule)."""
    base = _base_recipe(args)
    given = set(_given(args))
    before, after = base.config.to_dict(), recipe.config.to_dict()
    changed = []
    if base.model != recipe.model:
        changed.append(f"model {base.model} -> {recipe.model} (--model)")
    for key in before:
        if before[key] == after[key]:
            continue
        if key in given:
            why = words.flag_of(key)
        elif smoke and key in ("epochs", "batch_size"):
            why = "smoke mode"
        else:  # a new optimizer or schedule starts from its own arguments
            why = "reset by --schedule" if key == "schedule_kwargs" else "reset by --optimizer"
        old, new = _format_flag(key, before[key]), _format_flag(key, after[key])
        changed.append(f"{key} {old} -> {new} ({why})")
    what = f"recipe {base.name}" if args.recipe else "TrainConfig's defaults"
    print(f"Settings: {what}, " + (f"changed: {'; '.join(changed)}." if changed else "unchanged."))


def _as_flags(message: str) -> str:
    """A config error worded with the command line's flag name (--weight-decay, ...)."""
    key = message.split(" ", 1)[0].rstrip(":")
    if key not in CONFIG_FLAGS:
        return message
    return f"{words.flag_of(key)}{message[len(key) :]}"


def _parse_lookahead(text: str) -> dict[str, float]:
    try:
        k, alpha = text.split(",")
        return {"k": int(k), "alpha": float(alpha)}
    except ValueError:
        raise UsageError(f"--lookahead takes K,ALPHA (e.g. 5,0.5), got {text!r}.") from None


def _parse_augment(text: str) -> tuple:
    """``crop,flip,cutout:size=8`` as augment specs (values read as JSON, else as text)."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, arguments = item.partition(":")
        if not arguments:
            specs.append(name)
            continue
        spec = {"name": name}
        for pair in arguments.split(";"):
            key, equals, value = pair.partition("=")
            if not equals:
                raise UsageError(f"--augment: write {name}:key=value;key=value, got {item!r}.")
            try:
                spec[key] = json.loads(value)
            except json.JSONDecodeError:
                spec[key] = value
        specs.append(spec)
    return tuple(specs)


def _format_flag(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "augment":
        return ",".join(item if isinstance(item, str) else item["name"] for item in value) or "none"
    if value is None:
        return "the optimizer's" if key == "momentum" else "off"
    return str(value)


def _image_count(split: str, given: int | None, smoke: bool) -> int | None:
    """How many images of ``split`` to use: ``--{split}-images`` (checked against CIFAR-10's
    size), else the smoke size in smoke mode, else None (all)."""
    most, smoke_size = {"train": (50_000, SMOKE_TRAIN_IMAGES), "test": (10_000, SMOKE_TEST_IMAGES)}[
        split
    ]
    if given is not None and not 1 <= given <= most:
        raise UsageError(
            f"--{split}-images must be between 1 and {most:,} (CIFAR-10's {split} set)."
        )
    return smoke_size if smoke and given is None else given


def _load_data(
    args: argparse.Namespace, smoke: bool, seed: int
) -> tuple[data.ImageData, data.ImageData]:
    """The training and test sets (first N images when asked, or smoke-sized)."""
    n_train = _image_count("train", args.train_images, smoke)
    n_test = _image_count("test", args.test_images, smoke)
    try:
        options = {"seed": seed, "check_counts": args.check_counts}
        train_data = data.cifar10("train", source=args.data, n=n_train, **options)
        # The same source as the training set ("auto" is resolved, and announced, once).
        source = args.data if train_data.source != "synthetic" else "synthetic"
        test_data = data.cifar10("test", source=source, n=n_test, **options)
    except (data.DataNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return train_data, test_data


def _smoke_model(model: nn.Module, recipe: Recipe, n_train: int, n_test: int) -> nn.Module:
    """In smoke mode, swap a model too big to train quickly on a CPU for a small one of the
    same family, and say in one line what smoke mode changed."""
    count = params.count_parameters(model)
    note = f"Smoke mode: {n_train} train / {n_test} test images, {recipe.config.epochs} epoch(s)"
    if count <= SMOKE_MAX_PARAMETERS:
        print(f"{note}.")
        return model
    settings.seed_everything(recipe.config.seed)  # the small model starts from the seed too
    if isinstance(model, CapstoneNet):
        small = CapstoneNet(widths=SMOKE_CAPSTONE_WIDTHS)
        described = f"CapstoneNet(widths={SMOKE_CAPSTONE_WIDTHS})"
    elif isinstance(model, ResNet9):
        small = ResNet9(widths=SMOKE_PAGE_WIDTHS)
        described = f"ResNet9(widths={SMOKE_PAGE_WIDTHS})"
    else:
        small = ResNet(**SMOKE_MODEL)
        described = f"ResNet(blocks={SMOKE_MODEL['blocks']}, widths={SMOKE_MODEL['widths']})"
    print(
        f"{note}; {recipe.model} ({count:,} parameters) is replaced by {described} "
        f"({params.count_parameters(small):,} parameters)."
    )
    return small


def _warn_if_slow(model: nn.Module, images: int) -> None:
    """Say so up front when a full-size run is about to start on a CPU."""
    pflops = params.training_flops(model, images) / 1e15
    if settings.get_device().type == "cpu" and pflops > 0.01:
        print(
            f"No GPU: this run is {pflops:.2f} PFLOPs of training, about "
            f"{settings.minutes(pflops, settings.CPU_TFLOPS) / 60:.1f} h on a 2-core CPU (more "
            "for thin nets). Add --smoke for a quick end-to-end check, or run it on a GPU."
        )


def _print_summary(result, out: Path, wall: float, trained_here: int, test_size: int) -> None:
    """Print the run's final numbers and where its files are: this command's wall time apart
    from the run's training time (a resumed run trained some epochs before), a dry run's cap
    on every number it affects, and a warning line for a run that learned nothing."""
    history, model = result.history, result.model
    epochs, val, tested = len(history.epochs), history.final["val_acc"], history.test["images"]
    images = sum(row["images_per_sec"] * row["seconds"] for row in history.epochs)
    training = history.final["elapsed"]
    per_epoch = history.run["train_images"]  # every compute bill counts epochs x images
    capped = " (dry run)" if history.run.get("max_steps") else ""
    earlier = epochs - trained_here  # trained before this command resumed the run
    before = f", {earlier} of them before this command" if earlier else ""
    rows = {
        "run": f"{history.name} ({epochs} epochs on {history.run['device']}, "
        f"{history.run['precision']})",
        "validation accuracy": "-" if val is None else f"{100 * val:.2f}% (last epoch){capped}",
        "test accuracy": f"{100 * result.test.accuracy:.2f}% (evaluated once"
        + (", flip TTA" if history.config["tta"] else "")
        + (f", {tested:,} of {test_size:,} images)" if tested != test_size else ")")
        + capped,
        "parameters": f"{params.count_parameters(model):,}",
        "training PFLOPs": f"{params.training_flops(model, epochs * per_epoch) / 1e15:.3g} "
        f"({epochs} epochs x {per_epoch:,} images){capped}",
        "this command": f"{wall:.1f} s wall clock",
        "training time": f"{training:.1f} s for the run's {epochs} epoch(s){before}",
        "images/s": f"{images / training:,.0f} (training)",
        "data": history.provenance or history.source,
        "files": ", ".join(str(out / name) for name in FILES.values()),
    }
    if capped:
        rows["note"] = f"{settings.dry_run_note(history.run['max_steps'])}: not a measurement"
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    for line in history.warnings:
        print(f"{'warning':<{width}}  {line}")


SWEEP_HELP = """Add --trials N trials to a hyper-parameter sweep (an Optuna study), creating the
study or resuming it: run the same command in several terminals, machines or Colab
sessions pointing at one --storage and they share the study's trials. Each trial trains
the recipe with settings drawn from its search space and is scored on the validation
split (never the test set); a trial behind the others is pruned after an epoch. Flags
such as --epochs or --lr change the recipe every trial starts from (the lr range is
centred on it). Ends with the best trial and the train command that tests it once."""


def _add_sweep_parser(commands, shown: dict) -> None:
    """The ``sweep`` command's flags; its help lists every recipe's default search space."""
    spaces = "\n".join(
        f"  {name}:\n" + "\n".join(f"    {line}" for line in sweep.describe_space(space))
        for name, space in ((n, sweep.default_space(r)) for n, r in RECIPES.items())
    )
    command = commands.add_parser(
        "sweep",
        help="add trials to a hyper-parameter sweep (Optuna study)",
        description=SWEEP_HELP,
        epilog="default search spaces (course_utils.support.sweep.default_space):\n" + spaces,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--recipe", help=f"the recipe to sweep: {', '.join(RECIPES)}")
    command.add_argument("--model", help="zoo key; overrides the recipe's")
    command.add_argument("--trials", type=int, required=True, help="trials to add here")
    command.add_argument(
        "--storage",
        default=sweep.DEFAULT_STORAGE,
        help="where the study lives: a database URL (sqlite:///FILE, "
        "postgresql://USER:PASSWORD@HOST/DB) or a journal file ending in .log "
        f"[{sweep.DEFAULT_STORAGE}]",
    )
    command.add_argument("--study", help="study name [the recipe's name, +'-smoke' in smoke mode]")
    command.add_argument(
        "--sampler", default="tpe", choices=sweep.SAMPLERS, help="how settings are drawn [tpe]"
    )
    command.add_argument(
        "--pruner", default="median", choices=sweep.PRUNERS, help="when to stop a trial [median]"
    )
    command.add_argument(
        "--sampler-seed",
        type=int,
        help="seed of the random and tpe samplers (leave unset when several workers share "
        "a study: equal seeds draw equal settings)",
    )
    _add_shared_flags(command, shown)
    command.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    command.set_defaults(tta=None, compile=None)


def run_sweep(args: argparse.Namespace) -> int:
    """Add ``args.trials`` trials to the study and print the best trial and where it lives.
    Storage, recipe, data and search space are checked before any training."""
    started = time.perf_counter()
    if args.trials < 1:
        raise UsageError("--trials must be at least 1.")
    if args.sampler_seed is not None and not 0 <= args.sampler_seed <= settings.MAX_SEED:
        raise UsageError(f"--sampler-seed must be between 0 and {settings.MAX_SEED}.")
    smoke = args.smoke or settings.SMOKE
    recipe = resolve_recipe(args, smoke)
    n_train = _image_count("train", args.train_images, smoke)
    try:
        sweep.require_optuna()
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    try:
        storage = sweep.open_storage(args.storage)
    except sweep.SweepError as err:
        raise UsageError(f"--storage: {err}") from None
    say_settings(args, recipe, smoke)
    train_data = _load_train_data(args, n_train, recipe.config.seed)
    settings.seed_everything(recipe.config.seed)
    model = zoo.build(recipe.model)
    if smoke:
        model = _smoke_model(model, recipe, len(train_data), 0)  # a sweep uses no test image
    name = args.study or (f"{recipe.name}-smoke" if smoke else recipe.name)
    sweep.quiet_optuna()  # this command prints its own line per trial
    try:
        objective = sweep.Objective(recipe, train_data, model=model, progress=not args.no_progress)
        study = sweep.open_study(
            name, objective, storage, sampler=args.sampler, pruner=args.pruner,
            seed=args.sampler_seed,
        )  # fmt: skip
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    images = len(objective.train_part) * recipe.config.epochs * args.trials
    _warn_if_slow(model, images)
    print(f"study {name!r} in {sweep.where(args.storage)}: {len(study.trials)} trial(s) so far")
    print(f"adding {args.trials} with the {args.sampler} sampler, {args.pruner} pruning; space:")
    for line in sweep.describe_space(objective.space):
        print(f"  {line}")
    try:
        added = sweep.add_trials(study, objective, args.trials, callbacks=[_print_trial])
    except KeyboardInterrupt:
        print(
            "\nInterrupted. Finished trials are in the study: run the same command again to "
            "add more (the interrupted trial is marked failed).",
            file=sys.stderr,
        )
        return 130
    _print_sweep_summary(study, added, args, smoke, time.perf_counter() - started)
    return 0


def _load_train_data(args: argparse.Namespace, n_train: int | None, seed: int) -> data.ImageData:
    """The training set only (its first ``n_train`` images): a sweep chooses on its
    validation split and never opens the test set."""
    try:
        return data.cifar10(
            "train", source=args.data, n=n_train, seed=seed, check_counts=args.check_counts
        )
    except (data.DataNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None


def _print_trial(study, trial) -> None:
    """One line per finished trial: number, outcome, validation accuracy, settings."""
    value = "-" if trial.value is None else f"{100 * trial.value:.2f}%"
    settings_text = ", ".join(f"{key} {_short(value)}" for key, value in trial.params.items())
    epochs = len(trial.intermediate_values)
    print(
        f"trial {trial.number:>3}  {trial.state.name.lower():<8} validation {value:>7} after "
        f"{epochs} epoch(s)  {settings_text}"
    )


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _print_sweep_summary(study, added: list, args: argparse.Namespace, smoke: bool, wall: float):
    """The study's state after this worker's trials, its best trial and how to test it."""
    states = pd.Series([trial.state.name.lower() for trial in study.trials]).value_counts()
    mine = pd.Series([trial.state.name.lower() for trial in added]).value_counts()
    rows = {
        "study": f"{study.study_name} in {sweep.where(args.storage)}",
        "this worker": f"added {len(added)} trial(s) ("
        + ", ".join(f"{n} {state}" for state, n in mine.items())
        + f") in {wall:.1f} s",
        "the study": f"{len(study.trials)} trial(s): "
        + ", ".join(f"{n} {state}" for state, n in states.items()),
    }
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        flags = " ".join(
            f"--{key.replace('_', '-')} {value:.6g}" for key, value in best.params.items()
        )
        rows["best trial"] = (
            f"#{best.number}: validation accuracy {100 * best.value:.2f}% "
            f"({', '.join(f'{k} {_short(v)}' for k, v in best.params.items())})"
        )
        named = [f"--{flag} {getattr(args, flag)}" for flag in ("recipe", "model")]
        recipe = " ".join(name for name in named if not name.endswith(" None"))
        fixed = [
            f"{words.flag_of(key)} {shlex.quote(str(getattr(args, key)))}"
            for key in CONFIG_FLAGS
            if getattr(args, key) is not None and key not in best.params
        ]
        if args.train_images:
            fixed.append(f"--train-images {args.train_images}")
        fixed.append(f"--data {shlex.quote(args.data)}")
        if not args.check_counts:
            fixed.append("--no-check-counts")
        folder = Path("runs") / f"{study.study_name}-best"  # its own, not the recipe's runs/NAME
        fixed.append(f"--out {shlex.quote(str(folder))}")
        extra = " ".join(fixed + (["--smoke"] if smoke else []))
        rows["test it once"] = f"python -m course_utils train {recipe} {flags} {extra}"
    else:
        rows["best trial"] = "none complete yet"
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
