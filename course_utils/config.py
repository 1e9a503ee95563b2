"""``TrainConfig``: every training default, in one frozen dataclass of JSON-able values that a
history or checkpoint stores whole. Building one checks nothing: ``fit``, ``recipes.run``, the
command line and sweeps check it at their door (``support.config_checks.check_config``)."""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from course_utils import augment, optim
from course_utils.support import words
from course_utils.support.validate import ConfigError, UnknownNameError  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run, with the course's defaults (SGD with Nesterov momentum
    and a one-cycle schedule). ``config.replace(lr=0.05)`` makes a changed copy."""

    optimizer: str = "nesterov"  # a name in optim.OPTIMIZERS
    lr: float = 0.1  # the (peak) learning rate
    weight_decay: float = 5e-4
    momentum: float | None = None  # None: 0.9 for "momentum"/"nesterov", unused by others
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"betas": [0.9, 0.99]}
    lookahead: dict[str, float] | None = None  # e.g. {"k": 5, "alpha": 0.5} (rout)
    schedule: str = "onecycle"  # a name in optim.SCHEDULES
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"pct_start": 0.25}
    epochs: int = 10
    batch_size: int = 512
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) mixup; 0 is off
    grad_clip: float | dict[str, float] | None = None  # a max norm, or {"value": ..., "norm": ...}
    ema: float | None = None  # decay of an exponential moving average of the weights
    augment: tuple = ("crop", "flip")  # augment.build specs, applied in order
    tta: bool = False  # flip test-time augmentation in the final test evaluation
    val_split: float = 0.1  # share of the training images held out for validation
    precision: str = "auto"  # auto (bf16 or fp16 on a GPU, fp32 on a CPU), bf16, fp16, fp32
    channels_last: bool = True  # NHWC layout: faster convolutions on GPUs and on CPUs too
    compile: bool = False  # torch.compile, on CUDA only
    seed: int = 0  # seeds Python, NumPy, torch, the loader's order and augmentation, mixup

    def __new__(cls, *args: Any, **settings: Any) -> TrainConfig:
        _refuse_unknown(settings)  # one line naming the setting, not Python's TypeError
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if isinstance(self.augment, list):  # from JSON: a tuple, so equal configs compare equal
            object.__setattr__(self, "augment", tuple(self.augment))
        for f in fields(self):  # NumPy numbers (np.int64(32)) become Python's, for JSON
            value = getattr(self, f.name)
            if isinstance(value, numbers.Number) and not isinstance(value, (bool, int, float)):
                plain = int(value) if isinstance(value, numbers.Integral) else float(value)
                object.__setattr__(self, f.name, plain)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=repr))

    def replace(self, *positional: Any, **changes: Any) -> TrainConfig:
        """A copy with some fields changed. A new optimizer or schedule starts from its own
        arguments: unless given too, its kwargs (and momentum, if it takes none) reset."""
        if positional:
            raise TypeError("replace takes settings by name: config.replace(lr=0.05), or "
                            "config.replace(**changes) for a dict.")  # fmt: skip
        _refuse_unknown(changes)
        if changes.get("schedule", self.schedule) != self.schedule:
            changes.setdefault("schedule_kwargs", {})
        if changes.get("optimizer", self.optimizer) != self.optimizer:
            changes.setdefault("optimizer_kwargs", {})
            if changes["optimizer"] not in optim.MOMENTUM_OPTIMIZERS:
                changes.setdefault("momentum", None)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (``History.config``, checkpoints); an augmentation
        object is recorded by its spec, a function by its qualified name."""
        steps = [augment.describe([s])[0] if callable(s) else s for s in self.augment]
        return asdict(self) | {"augment": steps}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict`'s output (or any dict of its fields)."""
        if not isinstance(values, dict):
            raise TypeError(f"from_dict takes a dict of TrainConfig fields, got "
                            f"{type(values).__name__}.")  # fmt: skip
        return cls().replace(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """``"name: mine -> other's"`` for every field where the two configs differ."""
        if not isinstance(other, TrainConfig):
            raise TypeError(f"differences compares two TrainConfigs, got {type(other).__name__}.")
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]


_ALIASES = {"learning_rate": "lr", "wd": "weight_decay", "scheduler": "schedule"}  # others' names


def _refuse_unknown(settings: dict[str, Any]) -> None:
    """One line for setting names TrainConfig does not have, with a guess at the meant one."""
    if unknown := sorted(set(settings) - set(field_names())):
        hints = "".join(f" ({n}: did you mean {_closest(n)}?)" for n in unknown if _closest(n))
        raise ConfigError(
            f"unknown training setting(s) {', '.join(unknown)}{hints}; TrainConfig has: "
            f"{', '.join(field_names())}."
        )


def _closest(name: str) -> str | None:
    return _ALIASES.get(name) or words.closest(name, field_names())


def field_names() -> tuple[str, ...]:
    """The names of every TrainConfig field, in order."""
    return tuple(f.name for f in fields(TrainConfig))


def defaults() -> dict[str, Any]:
    """Every field's default value (what the command line's --help shows)."""
    return TrainConfig().to_dict()
