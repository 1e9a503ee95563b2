"""Hyper-parameter sweeps on Optuna: lecture 07 and ``python -m course_utils sweep``.

A sweep is an Optuna *study*: a list of *trials*, each of which trains a recipe with a few
settings drawn from a *search space* and returns its validation accuracy (never a test
number). After every epoch a trial reports its validation accuracy, so a *pruner* can stop
one that is clearly behind the others. The study lives in *storage*, by default the SQLite
file ``runs/sweeps.db``; any number of workers (processes, machines, Colab sessions) that
open the same study in the same storage share its trials, and a sweep that was interrupted
continues where it stopped.

- ``search_space`` / ``default_space``: the settings a sweep draws, from a dict;
- ``Objective``: one trial = ``fit`` on the recipe's train part, scored on its validation
  part, pruned through fit's ``on_epoch`` callback;
- ``open_storage``, ``open_study``, ``add_trials``: where the study lives, and running it;
- ``trials_table``, ``best_recipe``, ``importance_evaluator``: reading the results.

Optuna is imported inside these functions only: the rest of ``course_utils`` trains
without it.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

from course_utils import settings, zoo
from course_utils.config import ConfigError, TrainConfig, field_names
from course_utils.data import ImageData
from course_utils.loader import DeviceLoader
from course_utils.recipes import Recipe, get_recipe
from course_utils.support import config_checks, words
from course_utils.support.config_checks import check_config
from course_utils.support.validate import is_number
from course_utils.train import TrainingDiverged, fit

if TYPE_CHECKING:  # only for type hints: optuna is imported lazily
    import optuna

DEFAULT_STORAGE = "sqlite:///runs/sweeps.db"
"""Where a study lives unless told otherwise: one SQLite file, relative to the working folder."""

SAMPLERS = ("grid", "random", "tpe")
"""How trials choose their settings: every combination of a grid, independent random
draws, or TPE (a Bayesian method that draws more often where good trials were)."""

PRUNERS = ("median", "halving", "none")
"""When a trial is stopped early: below the median of the other trials at the same epoch,
outside the top third at each successive-halving rung, or never."""

JOURNAL_SUFFIXES = (".log", ".journal")
"""A storage given as a file path with one of these endings is an Optuna journal file."""

GRID_POINTS = 3
"""Points per numeric dimension when the grid sampler is used and no grid is given."""

HEARTBEAT_SECONDS = 60
"""How often a running trial writes "still alive" into a database storage (SQLite, PostgreSQL,
MySQL). Optuna has no heartbeat for journal files."""

GRACE_SECONDS = 180
"""A trial silent this long in a database storage (its worker was killed: a Colab session that
dropped) is marked failed, and the next worker to start a trial runs it again from its first
epoch with the same settings."""

MAX_RETRIES = 2
"""Times a dead worker's trial is run again: one that kills every worker (out of memory) stops."""


class SweepError(ValueError):
    """A sweep that cannot start (bad storage, search space or study), in one line."""


@dataclass(frozen=True)
class Dimension:
    """One swept TrainConfig field: a range ``low``..``high`` (``log``: uniform in the
    logarithm; ``integer``: whole numbers), or a list of ``choices``. ``grid`` holds the
    values the grid sampler tries."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple | None = None
    grid: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this setting for ``trial`` (the sampler decides how)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def values(self) -> tuple:
        """The values to check against a config: the two ends, the choices, the grid."""
        ends = self.choices if self.choices is not None else (self.low, self.high)
        return tuple(ends) + tuple(self.grid)

    def describe(self) -> str:
        """In words, e.g. ``lr: log-uniform 0.025 to 0.4 (grid 0.025, 0.1, 0.4)``."""
        if self.choices is not None:
            return f"{self.name}: one of {', '.join(map(_short, self.choices))}"
        kind = ("log-uniform" if self.log else "uniform") + (" integer" if self.integer else "")
        grid = ", ".join(map(_short, self.grid))
        return f"{self.name}: {kind} {_short(self.low)} to {_short(self.high)} (grid {grid})"


def search_space(spec: Mapping[str, Mapping | Sequence]) -> dict[str, Dimension]:
    """A search space from a dict of TrainConfig fields (lecture 07), for example::

        {"lr": {"low": 0.01, "high": 1.0, "log": True},       # log-uniform
         "label_smoothing": {"low": 0.0, "high": 0.3},         # uniform
         "batch_size": [128, 256, 512]}                        # one of these

    A range may carry its own ``"grid": [...]`` for the grid sampler (otherwise three
    points: both ends and the middle, the geometric middle on a log scale); integer fields
    (batch_size, epochs) are drawn as whole numbers. Mistakes raise ``SweepError``.
    """
    if not isinstance(spec, Mapping):
        raise SweepError(
            f"a search space is a dict of TrainConfig fields, e.g. {{'lr': [0.05, 0.1]}}, got "
            f"{spec!r}."
        )
    known = field_names()
    space = {}
    for name, entry in spec.items():
        if name not in known:
            raise SweepError(
                f"cannot sweep {name!r}: it is not a TrainConfig field ({', '.join(known)})."
            )
        space[name] = _dimension(name, entry)
    if not space:
        raise SweepError("the search space is empty: give at least one setting to sweep.")
    return space


def _dimension(name: str, entry: Mapping | Sequence) -> Dimension:
    if not isinstance(entry, Mapping):
        entry = {"choices": entry}
    if "choices" in entry and not _is_list(entry["choices"]):
        raise SweepError(
            f"{name}: give a list of choices, e.g. [{entry['choices']!r}], or a range "
            f"{{'low': ..., 'high': ...}}; got {entry['choices']!r}."
        )
    unknown = sorted(set(entry) - {"low", "high", "log", "choices", "grid"})
    if unknown:
        raise SweepError(f"{name}: unknown key(s) {', '.join(unknown)} in its search space.")
    if "choices" in entry:
        choices = tuple(entry["choices"])
        if not choices or not all(isinstance(c, (str, int, float, bool)) for c in choices):
            raise SweepError(f"{name}: choices must be a non-empty list of numbers or strings.")
        return Dimension(name, choices=choices, grid=choices)
    try:
        low, high = entry["low"], entry["high"]
    except KeyError:
        raise SweepError(f"{name}: give low and high (a range) or a list of choices.") from None
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SweepError(f"{name}: log must be True or False, got {log!r}.")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
        raise SweepError(f"{name}: low and high must be finite numbers, got {low!r}, {high!r}.")
    if not low < high:
        raise SweepError(f"{name}: low must be below high, got {low!r} and {high!r}.")
    if log and low <= 0:
        raise SweepError(f"{name}: a log-uniform range must start above 0, got low={low!r}.")
    default = TrainConfig().to_dict()[name]
    integer = isinstance(default, int) and not isinstance(default, bool)  # batch_size, epochs
    if integer and not (float(low).is_integer() and float(high).is_integer()):
        raise SweepError(f"{name} takes whole numbers: low and high must be integers.")
    if "grid" in entry and not (_is_list(entry["grid"]) and all(map(is_number, entry["grid"]))):
        raise SweepError(f"{name}: grid must be a list of numbers, got {entry['grid']!r}.")
    grid = tuple(entry.get("grid") or _grid(low, high, log, integer))
    if not all(low <= value <= high for value in grid):
        raise SweepError(f"{name}: every grid value must lie in [{low}, {high}], got {grid}.")
    return Dimension(name, low, high, log, integer, None, grid)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _grid(low: float, high: float, log: bool, integer: bool) -> tuple:
    """``GRID_POINTS`` evenly spaced values from low to high (on a log scale when log)."""
    steps = range(GRID_POINTS)
    if log:
        points = [low * (high / low) ** (i / (GRID_POINTS - 1)) for i in steps]
    else:
        points = [low + (high - low) * i / (GRID_POINTS - 1) for i in steps]
    points = [float(f"{p:.3g}") for p in points]
    points[0], points[-1] = low, high  # the ends exactly
    return tuple(sorted({round(p) for p in points})) if integer else tuple(points)


def default_space(recipe: Recipe | TrainConfig | str) -> dict[str, Dimension]:
    """The search space a recipe (or a recipe name) is swept over unless you give one: the
    one place it is defined (``python -m course_utils sweep --help`` prints it for every
    recipe).

    - ``lr``: log-uniform from a quarter to four times the recipe's (grid: x1/4, x1, x4);
    - ``weight_decay``: log-uniform from a tenth to ten times the recipe's, or 1e-6 to 1e-3
      for a recipe without weight decay;
    - ``label_smoothing``: uniform from 0 to 0.3 (grid 0, 0.15, 0.3);
    - ``batch_size``: half, the same or twice the recipe's.
    """
    config = _as_recipe(recipe).config
    lr, decay, batch = config.lr, config.weight_decay, config.batch_size
    decay_range = (decay / 10, decay * 10) if decay > 0 else (1e-6, 1e-3)
    return search_space(
        {
            "lr": {"low": lr / 4, "high": lr * 4, "log": True},
            "weight_decay": {"low": decay_range[0], "high": decay_range[1], "log": True},
            "label_smoothing": {"low": 0.0, "high": 0.3},
            "batch_size": sorted({max(1, batch // 2), batch, batch * 2}),
        }
    )


def _as_recipe(recipe: Recipe | TrainConfig | str) -> Recipe:
    """A Recipe from a Recipe, a recipe name or a bare TrainConfig (named "custom")."""
    if isinstance(recipe, str):
        return get_recipe(recipe)
    if isinstance(recipe, TrainConfig):
        return Recipe(name="custom", model="", config=recipe)
    if not isinstance(recipe, Recipe):
        raise SweepError(
            f"recipe must be a Recipe, a TrainConfig or a recipe name such as 'wang', got "
            f"{type(recipe).__name__}."
        )
    return recipe


def _as_space(space: Mapping) -> dict[str, Dimension]:
    """A space of Dimensions as it is, or a dict spec through ``search_space``."""
    if (
        isinstance(space, Mapping)
        and space
        and all(isinstance(d, Dimension) for d in space.values())
    ):
        return dict(space)
    return search_space(space)


def describe_space(space: Mapping[str, Dimension]) -> list[str]:
    """One line per dimension (``Dimension.describe``; lecture 07 and ``sweep --help``)."""
    return [dimension.describe() for dimension in space.values()]


class Objective:
    """One trial of a sweep (lecture 07): train ``recipe`` with the trial's settings and
    return the validation accuracy after the last epoch.

    The training set is split once, as ``recipes.run`` splits it (``val_split`` held out
    with the recipe's seed), so every trial is scored on the same validation images; the
    test set never reaches an objective. Each trial seeds with the recipe's seed before
    building its model, so trials differ only in the swept settings. After every epoch
    fit's ``on_epoch`` reports the validation accuracy to Optuna and stops the trial when
    the pruner says so (``optuna.TrialPruned``). A trial whose loss diverges scores 0.

    ``recipe`` may be a recipe name; ``space`` a dict for ``search_space``. ``model`` is a
    zoo key (default: the recipe's), a function that builds a fresh network, or a built
    network (every trial starts from a copy of its weights); ``augment`` replaces the
    recipe's augmentation list. The model is tried once on a blank image here, so one
    that cannot score the data is refused before any trial.
    """

    def __init__(
        self,
        recipe: Recipe | TrainConfig | str,
        train_data: ImageData,
        *,
        space: Mapping[str, Dimension] | Mapping[str, Mapping | Sequence] | None = None,
        model: str | Callable[[], nn.Module] | nn.Module | None = None,
        augment: Sequence | None = None,
        progress: bool = False,
    ) -> None:
        recipe = _as_recipe(recipe)
        self.recipe = recipe
        self.space = _as_space(space) if space is not None else default_space(recipe)
        self.model = model
        self.augment = augment
        self.progress = progress
        config = recipe.config
        check_config(config)
        if not 0 < config.val_split < 1:
            raise SweepError(
                f"a sweep chooses on a validation split: val_split must be in (0, 1), got "
                f"{config.val_split}."
            )
        if model is None and not recipe.model:
            raise SweepError("a TrainConfig has no model: give model= (a zoo key or a builder).")
        try:
            zoo.check_choice(model)
        except TypeError as err:
            raise SweepError(str(err)) from None
        if augment is not None:
            try:
                config_checks.check_specs(augment)
            except (TypeError, ValueError) as err:
                raise SweepError(f"augment: {err}") from None
        if not isinstance(train_data, ImageData):
            raise SweepError(
                f"train_data must be the ImageData training split (e.g. cifar10('train')), got "
                f"{type(train_data).__name__}; the objective makes its own loaders."
            )
        self.train_part, self.val_part = train_data.holdout(config.val_split, seed=config.seed)
        self._check_space()
        self._check_model()

    def _check_space(self) -> None:
        """Every value the space can produce must make a valid config and a non-empty epoch."""
        for dimension in self.space.values():
            for value in dimension.values():
                try:
                    check_config(self.recipe.config.replace(**{dimension.name: value}))
                except ConfigError as err:
                    raise SweepError(f"search space: {err}") from None
        batches = self.space.get("batch_size")
        largest = max(batches.values()) if batches else self.recipe.config.batch_size
        if largest > len(self.train_part):
            raise SweepError(
                f"the search space's batch size {largest} is larger than the "
                f"{len(self.train_part)} training images left after the validation split; "
                "use more images or smaller batches."
            )

    def _check_model(self) -> None:
        """Build the network once (the random state left as it was) and score one blank
        image, so a model that cannot run on this data fails here and not in every trial."""
        try:
            with torch.random.fork_rng(devices=[]):
                network = self.model if isinstance(self.model, nn.Module) else self._new_network()
        except TypeError as err:  # e.g. model=ResNet, a class that needs its arguments
            raise SweepError(
                f"model={self._model_name()} cannot be called with no arguments ({err}): give "
                "a function that builds the network, e.g. model=lambda: ResNet([2, 2], [32, 64])."
            ) from None
        if not isinstance(network, nn.Module):
            raise SweepError(
                f"the model builder {self._model_name()} returned a {type(network).__name__}, "
                "not a network (an nn.Module)."
            )
        classes = len(self.train_part.classes)
        blank = torch.zeros(
            1, *self.train_part.images.shape[1:], device=settings.model_device(network)
        )
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                logits = network(blank)
        except Exception as err:  # any failure of the model is reported the same way
            raise SweepError(
                f"the model ({self._model_name()}) fails on one blank image of this data: "
                f"{_first_line(err)}"
            ) from None
        finally:
            network.train(was_training)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (1, classes):
            shape = (
                tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            )
            raise SweepError(
                f"the model ({self._model_name()}) gives {shape} for one image, but the data "
                f"has {classes} classes: build it with num_classes={classes}."
            )

    def setup(self) -> dict:
        """What the study's trials must share (stored in the study; a resumed study with
        another setup is refused): recipe, base config, model, space, data."""
        return {
            "recipe": self.recipe.name,
            "config": self.recipe.config.to_dict(),
            "model": self._model_name(),
            "space": describe_space(self.space),
            "data": f"{self.train_part.source}: {len(self.train_part)} train / "
            f"{len(self.val_part)} validation images",
        }

    def _model_name(self) -> str:
        if isinstance(self.model, nn.Module):
            return type(self.model).__name__
        if callable(self.model):
            return getattr(self.model, "__qualname__", type(self.model).__name__)
        return self.model or self.recipe.model

    def build_model(self) -> nn.Module:
        """A fresh network for one trial (seeded with the recipe's seed first)."""
        settings.seed_everything(self.recipe.config.seed)
        if isinstance(self.model, nn.Module):
            return copy.deepcopy(self.model)
        return self._new_network()

    def _new_network(self) -> nn.Module:
        if callable(self.model):
            return self.model()
        return zoo.build(self.model or self.recipe.model)

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        changes = {name: dimension.suggest(trial) for name, dimension in self.space.items()}
        config = self.recipe.config.replace(**changes)
        check_config(config)  # swept values can clash (eta_min above a swept lr)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        network = self.build_model()
        pipeline = config.augment if self.augment is None else self.augment
        train_loader = DeviceLoader(self.train_part, config.batch_size, augment=pipeline)
        val_loader = DeviceLoader(self.val_part, config.batch_size, train=False)
        seen = {"train_images": 0, "seconds": 0.0}

        def on_epoch(epoch: int, record: dict) -> None:
            seen["train_images"] += len(self.train_part)  # epochs x images, as every bill
            seen["seconds"] += record["seconds"]
            trial.report(record["val_acc"], step=epoch)
            if trial.should_prune():
                _record(trial, seen)
                raise optuna.TrialPruned(
                    f"validation accuracy {record['val_acc']:.4f} after epoch {epoch} is "
                    "behind the other trials"
                )

        try:
            history = fit(
                network,
                train_loader,
                val_loader,
                config,
                progress=self.progress,
                name=f"trial {trial.number}",
                on_epoch=on_epoch,
            )
        except TrainingDiverged as err:
            _record(trial, seen, diverged=str(err).split(". ")[0])
            return 0.0
        _record(trial, seen)
        return history.final["val_acc"]


def _record(trial: optuna.Trial, seen: dict, **more: Any) -> None:
    """Store what a trial trained (the training images of the epochs it ran, counted as every
    compute bill counts them, and seconds), read by ``trials_table`` and the compute ledger."""
    for key, value in {**seen, **more}.items():
        trial.set_user_attr(key, round(value, 3) if isinstance(value, float) else value)


def open_storage(url: str | os.PathLike = DEFAULT_STORAGE) -> optuna.storages.BaseStorage:
    """The storage a study lives in (lecture 07), opened and checked; ``SweepError`` in one
    line when it cannot be used.

    - an RDB URL: ``sqlite:///runs/sweeps.db`` (a file; its folder is created),
      ``postgresql://user:password@host/database`` or ``mysql://...`` (a server many
      machines reach; needs that database's Python driver);
    - a file path ending in ``.log`` or ``.journal``: an Optuna journal file, for workers
      that share a file system but no database server. It is locked with a lock file next
      to it (``JournalFileOpenLock``), which works where symbolic links do not.

    A database storage keeps a heartbeat of every running trial, so the trial of a worker
    that died is marked failed and run again (``GRACE_SECONDS``); in a journal file it stays
    "running", and ``finished_trials`` leaves it out.
    """
    optuna = require_optuna()
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if not isinstance(url, (str, os.PathLike)):
        raise SweepError(
            f"storage must be a database URL or a journal file path (a string), e.g. "
            f"{DEFAULT_STORAGE!r}, got {url!r}."
        )
    text = os.fspath(url)
    if "://" not in text:
        if not text.endswith(JOURNAL_SUFFIXES):
            raise SweepError(
                f"storage {text!r} is neither a database URL (sqlite:///runs/sweeps.db, "
                "postgresql://user:password@host/database) nor a journal file ending in "
                f"{' or '.join(JOURNAL_SUFFIXES)}."
            )
        path = Path(text).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(
                JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
            )
        except OSError as err:
            raise SweepError(f"cannot use journal file {text}: {err.strerror or err}.") from None
    return _open_rdb(text)


def _open_rdb(text: str) -> optuna.storages.RDBStorage:
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    shown = where(text)
    try:
        address = sqlalchemy.engine.make_url(text)
        address.get_dialect()  # an unknown database kind fails here, before connecting
    except (SQLAlchemyError, ValueError) as err:
        raise SweepError(f"storage {shown!r} is not a database URL: {_first_line(err)}") from None
    sqlite = address.get_backend_name() == "sqlite"
    in_memory = sqlite and address.database in (None, "", ":memory:")
    if sqlite and not in_memory:
        folder = Path(address.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SweepError(f"cannot create {folder} for {shown}: {err.strerror}.") from None
    try:
        return _rdb_storage(text, heartbeat=not in_memory)
    except ImportError:
        raise SweepError(
            f"storage {shown} needs the {address.get_backend_name()} driver "
            f"{address.get_driver_name()!r}, which is not installed: pip install it, or name an "
            "installed one in the URL (e.g. postgresql+psycopg2://...)."
        ) from None
    except Exception as err:  # a server that does not answer, a file that cannot be written
        raise SweepError(f"cannot open storage {shown}: {_first_line(err)}") from None


def require_optuna():
    """The optuna module, or ``SweepError`` in one line saying how to install it (the rest of
    course_utils runs without it)."""
    try:
        import optuna
    except ImportError:
        raise SweepError("sweeps need Optuna, which is not installed: pip install optuna") from None
    return optuna


def _rdb_storage(
    text: str, heartbeat: bool = True, attempts: int = 5
) -> optuna.storages.RDBStorage:
    """``RDBStorage(text)``, with a heartbeat (``_heartbeat``) unless told not to (an in-memory
    SQLite database: one worker, and the heartbeat's thread would see another, empty one),
    tried again a few times when another worker is creating the same new database at this
    moment ("table ... already exists", "database is locked")."""
    import warnings

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # Optuna calls the heartbeat experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(text, **(_heartbeat() if heartbeat else {}))
        except SQLAlchemyError as err:
            busy = any(sign in str(err) for sign in ("already exists", "locked", "UNIQUE"))
            if not busy or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _heartbeat() -> dict:
    """RDBStorage's heartbeat arguments: a running trial beats every ``HEARTBEAT_SECONDS``;
    one silent for ``GRACE_SECONDS`` is failed and queued again (``MAX_RETRIES`` times)."""
    import inspect

    from optuna import storages

    accepted = inspect.signature(storages.RDBStorage).parameters
    stale = "heartbeat_stale_trial_callback"  # Optuna >= 4.9; before: failed_trial_callback
    name = stale if stale in accepted else "failed_trial_callback"
    retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", storages.RetryFailedTrialCallback)
    callback = retry(max_retry=MAX_RETRIES)
    return {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS, name: callback}


def where(url: str | os.PathLike) -> str:
    """Where a storage lives, for printing (lecture 07, the command line): the URL without
    its password, and the full path of a SQLite or journal file."""
    text = os.fspath(url)
    if "://" not in text:
        return f"journal file {Path(text).expanduser().resolve()}"
    try:
        import sqlalchemy

        address = sqlalchemy.engine.make_url(text)
    except Exception:
        return text
    if address.get_backend_name() == "sqlite" and address.database not in (None, "", ":memory:"):
        return f"{text} (SQLite file {Path(address.database).expanduser().resolve()})"
    return address.render_as_string(hide_password=True)


def make_sampler(
    name: str,
    space: Mapping[str, Dimension],
    seed: int | None = None,
    startup_trials: int = 10,
) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name (lecture 07): ``grid`` (every combination of each
    dimension's grid, in a shuffled order), ``random``, or ``tpe`` (random for the first
    ``startup_trials`` trials, then Bayesian). Workers sharing a study should leave ``seed``
    None for random and TPE (two workers with one seed would draw the same settings); the
    grid sampler is always seeded (0 by default), so that all workers share its order."""
    import optuna

    if seed is not None and not (_is_whole(seed) and seed >= 0):
        raise SweepError(f"seed must be a whole number >= 0 or None, got {seed!r}.")
    if name == "grid":
        grid = {dimension.name: list(dimension.grid) for dimension in _as_space(space).values()}
        return optuna.samplers.GridSampler(grid, seed=seed or 0)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    raise SweepError(words.unknown("sampler", name, SAMPLERS))


def make_pruner(
    name: str = "median", startup_trials: int | None = None, warmup_epochs: int | None = None
) -> optuna.pruners.BasePruner:
    """An Optuna pruner by name (lecture 07): ``median`` stops a trial whose validation
    accuracy after an epoch is below the median of the earlier trials at that epoch (once
    ``startup_trials`` trials have finished, default 3, and after ``warmup_epochs`` epochs,
    default 0); ``halving`` is successive halving (keep the top third at epochs 1, 3, 9,
    ...); ``none`` never prunes. Only ``median`` takes the two numbers."""
    import optuna

    if name != "median" and (startup_trials is not None or warmup_epochs is not None):
        raise SweepError(
            f"startup_trials and warmup_epochs belong to the median pruner; {name!r} takes neither."
        )
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=3 if startup_trials is None else startup_trials,
            n_warmup_steps=warmup_epochs or 0,
        )
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SweepError(words.unknown("pruner", name, PRUNERS))


def open_study(
    name: str,
    objective: Objective,
    storage: str | os.PathLike | optuna.storages.BaseStorage = DEFAULT_STORAGE,
    *,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    pruner: str | optuna.pruners.BasePruner = "median",
    seed: int | None = None,
    startup_trials: int = 10,
) -> optuna.Study:
    """Create the study ``name`` in ``storage``, or open it when it exists (lecture 07):
    this is how a second worker joins a sweep and how a dropped session resumes one. The
    study records its objective's setup; opening it with another setup (recipe, config,
    model, space or data) is refused, so trials of two different sweeps never mix."""
    import optuna

    if not isinstance(name, str) or not name:
        raise SweepError(f"a study needs a name (a non-empty string), got {name!r}.")
    if not isinstance(objective, Objective):
        raise SweepError(
            f"open_study needs an Objective (sweep.Objective(recipe, train_data)), got "
            f"{type(objective).__name__}."
        )
    for what, given, kind, names in (
        ("sampler", sampler, optuna.samplers.BaseSampler, SAMPLERS),
        ("pruner", pruner, optuna.pruners.BasePruner, PRUNERS),
    ):
        if not isinstance(given, (str, kind)):
            raise SweepError(
                f"{what} must be one of {', '.join(names)} or an Optuna {what}, got {given!r}."
            )
    if not isinstance(storage, optuna.storages.BaseStorage):
        storage = open_storage(storage)
    if isinstance(sampler, str):
        sampler = make_sampler(sampler, objective.space, seed, startup_trials)
    if isinstance(pruner, str):
        pruner = make_pruner(pruner)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    setup = objective.setup()
    saved = study.user_attrs.get("setup")
    if saved is None:
        study.set_user_attr("setup", setup)
    elif saved != setup:
        changed = [key for key in setup if saved.get(key) != setup[key]]
        data = f": it holds trials on {saved.get('data')}" if "data" in changed else ""
        another = words.pick("--study NAME", "open_study(name=...)")
        raise SweepError(
            f"study {name!r} was created for another sweep (different "
            f"{', '.join(changed)}){data}; name a new study with {another}, or give the same "
            "settings as before."
        )
    return study


def load_study(name: str, storage: str | os.PathLike | optuna.storages.BaseStorage) -> optuna.Study:
    """An existing study, to read and plot without an objective (lecture 07, the tests)."""
    import optuna

    if not isinstance(storage, optuna.storages.BaseStorage):
        storage = open_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SweepError(f"there is no study {name!r} in {where_storage(storage)}.") from None


def where_storage(storage: optuna.storages.BaseStorage) -> str:
    """A short description of an opened storage object."""
    url = getattr(storage, "url", None)
    return where(url) if url else type(storage).__name__


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials that are complete, pruned or failed, less a dead worker's trial
    that was queued again: what lecture 07 tops a study up to its budget with."""
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", ())}
    return [t for t in trials if t.state.is_finished() and t.number not in retried]


def add_trials(
    study: optuna.Study,
    objective: Objective,
    trials: int,
    callbacks: Iterable[Callable] | None = None,
) -> list[optuna.trial.FrozenTrial]:
    """Run ``trials`` more trials of ``study`` here (lecture 07, the command line) and
    return them. Other workers may add trials to the same study at the same time; the grid
    sampler stops early once every grid point has been tried."""
    if not _is_whole(trials):
        raise SweepError(f"trials is how many trials to run, a whole number; got {trials!r}.")
    mine: list[int] = []

    def remember(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        mine.append(trial.number)

    if trials > 0:
        study.optimize(objective, n_trials=trials, callbacks=[remember, *(callbacks or [])])
    return [trial for trial in study.get_trials(deepcopy=False) if trial.number in mine]


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, validation accuracy, epochs trained, settings,
    the worker that ran it and its training seconds (lecture 07)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "val_acc": trial.value,
                "epochs": len(trial.intermediate_values),
                **trial.params,
                "worker": trial.user_attrs.get("worker"),
                "seconds": trial.user_attrs.get("seconds"),
            }
        )
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def best_recipe(study: optuna.Study, recipe: Recipe | TrainConfig | str) -> Recipe:
    """``recipe`` with the best trial's settings (chosen on validation): the one run to
    train again and evaluate on the test set once (lecture 07). It must be the recipe the
    study swept (the settings it did not sweep are compared with the study's)."""
    import optuna

    recipe = _as_recipe(recipe)
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise SweepError(
            f"study {study.study_name!r} has no completed trial yet, so no best recipe: run "
            "add_trials first."
        )
    best = study.best_trial
    saved = study.user_attrs.get("setup", {}).get("config")
    if saved is not None:
        mine = json.loads(json.dumps(recipe.config.to_dict()))
        differ = [key for key in mine if key not in best.params and mine[key] != saved.get(key)]
        if differ:
            raise SweepError(
                f"study {study.study_name!r} swept another recipe (it differs in "
                f"{', '.join(differ)}); pass the recipe the study was opened with."
            )
    return Recipe(
        name=f"{recipe.name}-best",
        model=recipe.model,
        config=recipe.config.replace(**best.params),
        source=f"{recipe.source} Swept: trial {best.number} of study {study.study_name!r}, "
        f"validation accuracy {best.value:.4f}.".strip(),
    )


def importance_evaluator(
    target_quantile: float = 0.25,
) -> optuna.importance.BaseImportanceEvaluator:
    """PED-ANOVA parameter importance (lecture 07): how much each setting matters for
    reaching the best ``target_quantile`` of the completed trials. It needs only NumPy
    (Optuna's fANOVA evaluator needs scikit-learn); a quarter rather than Optuna's 10%
    because the course's sweeps have tens of trials, not hundreds."""
    import inspect

    from optuna.importance import PedAnovaImportanceEvaluator

    if not is_number(target_quantile) or not 0 < target_quantile < 1:
        raise SweepError(
            f"target_quantile is the share of best trials to explain, a number in (0, 1) such "
            f"as 0.25; got {target_quantile!r}."
        )
    accepted = inspect.signature(PedAnovaImportanceEvaluator).parameters
    name = "target_quantile" if "target_quantile" in accepted else "baseline_quantile"  # < 5.0
    return PedAnovaImportanceEvaluator(**{name: target_quantile})


def quiet_optuna() -> None:
    """Keep Optuna to warnings (no line per trial on stderr) and silence its notes that the
    matplotlib plots are experimental."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__).rstrip(".") + "."
