"""``TrainConfig``: the one home of every training default and of the checks on them.

A training run is described by one frozen dataclass of plain, JSON-able values, so that a
history or checkpoint can store it whole and a resumed run can be compared with it field
by field. ``fit`` (every lecture), ``recipes.run`` (lecture 06, the command line) and the
recipes themselves read their defaults from here and nowhere else.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from course_utils import augment, optim, settings
from course_utils.support import augment_checks
from course_utils.support.validate import ConfigError
from course_utils.support.validate import UnknownNameError as UnknownNameError  # re-exported

PRECISIONS = settings.PRECISIONS
"""``precision`` values: "auto" picks bf16 on GPUs that have bf16 tensor cores (compute
capability 8.0 and newer), fp16 with a gradient scaler on older GPUs (T4, V100), fp32 on a CPU."""


MAX_SEED = settings.MAX_SEED


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run, with the course's defaults (SGD with Nesterov momentum
    and a one-cycle schedule). ``config.replace(lr=0.05)`` makes a checked copy."""

    optimizer: str = "nesterov"
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float | None = None  # None: 0.9 for "momentum"/"nesterov", unused by others
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"betas": [0.9, 0.99]}
    lookahead: dict[str, float] | None = None  # e.g. {"k": 5, "alpha": 0.5} (rout)
    schedule: str = "onecycle"
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 512
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) mixup; 0 is off
    grad_clip: float | dict[str, float] | None = None  # a max norm, or {"value": ..., "norm": ...}
    ema: float | None = None  # decay of an exponential moving average of the weights
    augment: tuple = ("crop", "flip")  # augment.build specs, applied in order
    tta: bool = False  # flip test-time augmentation in the final test evaluation
    val_split: float = 0.1  # share of the training images held out for validation
    precision: str = "auto"
    channels_last: bool = True  # on CUDA only; it does not help on a CPU
    compile: bool = False  # torch.compile, on CUDA only
    seed: int = 0

    def __new__(cls, *args: Any, **settings: Any) -> TrainConfig:
        _refuse_unknown(settings)  # one line naming the setting, not Python's TypeError
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if isinstance(self.augment, (str, dict)) or not isinstance(self.augment, (list, tuple)):
            raise ConfigError(
                f"augment must be a list of augmentations ([] for none), got {self.augment!r}."
            )
        for name in ("optimizer_kwargs", "schedule_kwargs"):
            kwargs = getattr(self, name)
            if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
                raise ConfigError(f"{name} must be a dict of arguments by name, got {kwargs!r}.")
        for f in fields(self):  # NumPy numbers (np.int64(32)) become Python's, for JSON
            value = getattr(self, f.name)
            if isinstance(value, numbers.Number) and not isinstance(value, (bool, int, float)):
                plain = int(value) if isinstance(value, numbers.Integral) else float(value)
                object.__setattr__(self, f.name, plain)
        # Lists (e.g. from JSON) become tuples, so equal configs compare equal.
        object.__setattr__(self, "augment", tuple(self.augment))
        self.validate()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=repr))

    def replace(self, *positional: Any, **changes: Any) -> TrainConfig:
        """A checked copy with some fields changed; an unknown field name is an error. A new
        optimizer or schedule starts from its own arguments: unless given too, its kwargs
        (and, for an optimizer without momentum, ``momentum``) are reset."""
        if positional:
            raise TypeError(
                "replace takes settings by name: config.replace(lr=0.05), or "
                "config.replace(**changes) for a dict."
            )
        _refuse_unknown(changes)
        # A new optimizer or schedule starts from its own defaults: the old one's arguments
        # (a recipe's pct_start, Nesterov's momentum) would not fit it.
        if changes.get("schedule", self.schedule) != self.schedule:
            changes.setdefault("schedule_kwargs", {})
        if changes.get("optimizer", self.optimizer) != self.optimizer:
            changes.setdefault("optimizer_kwargs", {})
            if changes["optimizer"] not in optim.MOMENTUM_OPTIMIZERS:
                changes.setdefault("momentum", None)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (``History.config``, checkpoints, JSON files); an
        augmentation object is recorded by its spec, a function by its qualified name."""
        values = asdict(self)
        values["augment"] = [
            spec if isinstance(spec, (str, dict)) else augment.describe([spec])[0]
            for spec in self.augment
        ]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict`'s output (or any dict of its fields)."""
        if not isinstance(values, dict):
            raise TypeError(
                f"from_dict takes a dict of TrainConfig fields, got {type(values).__name__}."
            )
        return cls().replace(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """``"name: mine -> other's"`` for every field where the two configs differ."""
        if not isinstance(other, TrainConfig):
            raise TypeError(f"differences compares two TrainConfigs, got {type(other).__name__}.")
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{key}: {mine[key]!r} -> {theirs[key]!r}" for key in mine if mine[key] != theirs[key]
        ]

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) for the first setting that cannot work."""
        _check_number("lr", self.lr, low=0, low_open=True)
        _check_number("weight_decay", self.weight_decay, low=0)
        _check_int("epochs", self.epochs, low=1)
        _check_int("batch_size", self.batch_size, low=1)
        _check_int("seed", self.seed, low=0, high=MAX_SEED)
        _check_number("label_smoothing", self.label_smoothing, low=0, high=1)
        _check_number("mixup", self.mixup, low=0)
        _check_number("val_split", self.val_split, low=0, high=1)
        if self.ema is not None:
            _check_number("ema", self.ema, low=0, high=1, low_open=True)
        for name in ("tta", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}."
            )
        self._check_optimizer()
        self._check_schedule()
        try:
            optim.check_values(
                self.optimizer, self.lr, self.weight_decay, self.momentum, self.optimizer_kwargs,
                self.schedule, self.schedule_kwargs, self.epochs,
            )  # fmt: skip
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self._check_grad_clip()
        # A student's own augmentation is recorded by its qualified name (module.function):
        # a record of what ran, not something to rebuild, so only named specs are checked.
        named = [spec for spec in self.augment if not (isinstance(spec, str) and "." in spec)]
        try:
            augment_checks.check_specs(named)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"augment: {err}") from None

    def _check_optimizer(self) -> None:
        if self.optimizer not in optim.OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; choose one of: "
                f"{', '.join(optim.OPTIMIZERS)}."
            )
        if self.momentum is not None:
            if self.optimizer not in optim.MOMENTUM_OPTIMIZERS:
                own = (
                    "plain SGD has none: choose optimizer 'momentum' or 'nesterov'"
                    if self.optimizer == "sgd"
                    else f"{self.optimizer} has its own (e.g. Adam's betas in optimizer_kwargs)"
                )
                raise ConfigError(
                    f"momentum is used by {' and '.join(optim.MOMENTUM_OPTIMIZERS)} only; {own}."
                )
            _check_number("momentum", self.momentum, low=0, high=1)
        accepted = optim.accepted_kwargs(self.optimizer)
        unknown = sorted(set(self.optimizer_kwargs) - accepted)
        if unknown:
            raise ConfigError(
                f"optimizer_kwargs {', '.join(unknown)} are not arguments of {self.optimizer}; "
                f"it takes: {', '.join(sorted(accepted))}."
            )
        if self.lookahead is not None:
            if set(self.lookahead) != {"k", "alpha"}:
                raise ConfigError(
                    f"lookahead needs exactly k and alpha, e.g. {{'k': 5, 'alpha': 0.5}}; got "
                    f"{self.lookahead!r}."
                )
            _check_int("lookahead k", self.lookahead["k"], low=1)
            _check_number("lookahead alpha", self.lookahead["alpha"], 0, 1, low_open=True)

    def _check_schedule(self) -> None:
        if self.schedule not in optim.SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.schedule!r}; choose one of: {', '.join(optim.SCHEDULES)}."
            )
        builder = optim.SCHEDULES[self.schedule]
        accepted = optim.accepted_kwargs(builder)
        unknown = sorted(set(self.schedule_kwargs) - accepted)
        if unknown:
            taken = ", ".join(sorted(accepted)) or "nothing"
            raise ConfigError(
                f"schedule_kwargs {', '.join(unknown)} do not apply to the {self.schedule} "
                f"schedule; it takes: {taken}."
            )

    def _check_grad_clip(self) -> None:
        clip = self.grad_clip
        if clip is None:
            return
        if isinstance(clip, dict):
            if not clip or not set(clip) <= {"value", "norm"}:
                raise ConfigError(f"grad_clip takes value and/or norm, got {clip!r}.")
            for key, number in clip.items():
                _check_number(f"grad_clip {key}", number, low=0, low_open=True)
        else:
            _check_number("grad_clip", clip, low=0, low_open=True)


_ALIASES = {"learning_rate": "lr", "wd": "weight_decay", "scheduler": "schedule"}
"""Names from other libraries a student may reach for, and the field each means here."""


def _refuse_unknown(settings: dict[str, Any]) -> None:
    """One line for setting names TrainConfig does not have, with a guess at the meant one."""
    unknown = sorted(set(settings) - set(field_names()))
    if unknown:
        hints = "".join(
            f" ({name}: did you mean {_closest(name)}?)" for name in unknown if _closest(name)
        )
        raise ConfigError(
            f"unknown training setting(s) {', '.join(unknown)}{hints}; TrainConfig has: "
            f"{', '.join(field_names())}."
        )


def _closest(name: str) -> str | None:
    matches = difflib.get_close_matches(name, field_names(), n=1)
    return _ALIASES.get(name) or (matches[0] if matches else None)


def field_names() -> tuple[str, ...]:
    """The names of every TrainConfig field, in order."""
    return tuple(f.name for f in fields(TrainConfig))


def defaults() -> dict[str, Any]:
    """Every field's default value (what the command line's --help shows)."""
    return TrainConfig().to_dict()


def _check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """One line for a setting that is not a finite number in [low, high) (or (low, high))."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}.")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and value >= high
    if below or above:
        left = "(" if low_open else "["
        span = (
            f"in {left}{low}, {high})" if high is not None else f"{'>' if low_open else '>='} {low}"
        )
        raise ConfigError(f"{name} must be {span}, got {value!r}.")


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}.")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be at most {high}, got {value!r}.")
