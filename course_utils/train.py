"""Training and evaluation: ``fit`` trains a model and returns its ``History``; ``evaluate``
measures it (loss, accuracy, confusion matrix, probabilities); ``predict`` classifies images.

``fit`` is one loop you can read top to bottom: the classic five lines of a training step
(forward, loss, zero_grad, backward, step) and what a real run needs around them: autocast
in the precision the GPU does best, a learning-rate schedule, mixup, gradient clipping, a
progress bar, checkpoints that resume exactly, and a clear stop when the loss diverges.
Every setting comes from a ``config.TrainConfig``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from course_utils import settings
from course_utils.config import ConfigError, TrainConfig
from course_utils.data import normalize
from course_utils.mixup import Mixer, mixed_accuracy, mixed_loss
from course_utils.optim import (
    EXTENSIBLE_SCHEDULES,
    clip_gradients,
    make_optimizer,
    make_scheduler,
)
from course_utils.params import count_parameters
from course_utils.support import augment_checks, checks
from course_utils.support import checkpoint as ckpt

SYNC_EVERY = 25
"""Training steps between host syncs, where the loss is checked for NaN/inf and the
progress bar is updated. Syncing every step would stall a GPU; never would stop late."""

HISTORY_FORMAT = 2
"""Version of the saved history layout (2: ``val_*`` metrics and a full ``TrainConfig``)."""

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
OPTIMIZER_FIELDS = ("optimizer", "lr", "weight_decay", "momentum", "optimizer_kwargs", "lookahead")
LOADER_FIELDS = ("batch_size", "augment")  # a loader's own settings, recorded from it
RUN_IDENTITY = ("model", "parameters", "architecture", "train_images", "data", "augment_code",
                "loss", "mixer")  # fmt: skip
"""What a resumed run must share with the saved one, besides its config."""


class TrainingDiverged(RuntimeError):
    """The training loss (or the weights) became NaN or infinite; the run stopped before
    saving that state."""

    def __init__(self, message: str, epoch: int, step: int, history: History) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.history = history


@dataclass
class History:
    """Everything one training run recorded (``plots.plot_history`` draws it): per-epoch
    metrics (``train_*`` and ``val_*``), per-step loss and learning rate, the run's
    ``TrainConfig`` as a dict, what the run resolved (``run``: model, device, precision...),
    the data's source and the split ``val_*`` was measured on (``eval_split``)."""

    name: str
    config: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    source: str | None = None
    provenance: str | None = None
    eval_split: str | None = None
    epochs: list[dict] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    test: dict | None = None  # the final test evaluation, when recipes.run made one
    format_version: int = HISTORY_FORMAT

    def to_dict(self) -> dict:
        """The history as plain Python values (for JSON files and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        """Rebuild a history from :meth:`to_dict`'s output; older layouts are refused."""
        if not isinstance(values, dict) or not {"name", "epochs"} <= set(values):
            raise ValueError(
                "this is not a History (no name and epochs): give a run's history.json, or "
                "History.to_dict()'s output."
            )
        version = values.get("format_version")
        if version != HISTORY_FORMAT:
            raise ValueError(
                f"this history has format {version or 1}, this course_utils reads format "
                f"{HISTORY_FORMAT} (val_* metrics, a full TrainConfig): train the run again."
            )
        return cls(**values)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON to ``path``, creating its folder."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read a history written by :meth:`save`."""
        try:
            values = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(
                f"{path} is not a history JSON file (a run's history.json): give that file."
            ) from None
        return cls.from_dict(values)

    def best(self, metric: str = "val_acc") -> dict:
        """The epoch with the best ``metric`` (lowest loss, highest otherwise). Choosing an
        epoch on the test set is refused: that is picking the result you report."""
        if metric.startswith("val_") and self.eval_split == "test":
            raise ValueError(
                f"History {self.name!r} measured val_* on the test set; choosing the best "
                "epoch there reports a number chosen on the test set. Hold out a validation "
                "split (ImageData.holdout) and evaluate the test set once at the end."
            )
        scored = [row for row in self.epochs if row.get(metric) is not None]
        if not scored:
            known = sorted(self.epochs[0]) if self.epochs else "none yet"
            raise ValueError(f"History {self.name!r} has no value for {metric!r}; it has: {known}.")
        choose = min if "loss" in metric else max
        return choose(scored, key=lambda row: row[metric])

    @property
    def final(self) -> dict:
        """The last finished epoch's record."""
        if not self.epochs:
            raise ValueError(f"History {self.name!r} has no finished epoch yet.")
        return self.epochs[-1]


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    config: TrainConfig | None = None,
    *,
    optimizer: Optimizer | str | None = None,
    loss: nn.Module | None = None,
    mixer: Callable[[torch.Tensor, torch.Tensor], tuple] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    name: str | None = None,
    on_epoch: Callable[[int, dict], bool | None] | None = None,
    **overrides: Any,
) -> History:
    """Train ``model`` on ``train_loader`` as ``config`` says and return its History.

    ``overrides`` are TrainConfig fields (``fit(model, loader, epochs=3, lr=0.05)``). The
    rest are run-time objects: a ready-built ``optimizer`` (then lr and the like are its
    own; a name such as "adam" is the config's field), a custom ``loss``, a ``mixer`` (a
    ``Mixer`` such as ``Mixer("cutmix", 1.0)``, or any ``(x, y) -> (x, y, y_mixed, lam)``), a
    ``checkpoint`` file written after every epoch (``resume=True`` continues it exactly),
    and ``on_epoch(epoch, record)``, called after each epoch, which stops the run by
    returning True. Lectures 01-07 train with it.
    """
    if isinstance(optimizer, str):  # a name is the config's field, not a built optimizer
        overrides["optimizer"], optimizer = optimizer, None
    checks.check_model(model)
    checks.check_loaders(train_loader, val_loader)
    config = _run_config(config, overrides, train_loader, optimizer)
    checks.check_run_arguments(
        config, overrides, checkpoint=checkpoint, resume=resume, loss=loss, mixer=mixer,
        on_epoch=on_epoch, progress=progress,
    )  # fmt: skip
    augment_checks.check_mixer(mixer)
    checkpoint = Path(checkpoint).expanduser() if checkpoint is not None else None
    settings.seed_everything(config.seed)
    if hasattr(train_loader, "set_seed"):
        train_loader.set_seed(config.seed)  # one seed for the shuffle and augmentation too
    device = settings.check_device(
        getattr(train_loader, "device", None) or settings.model_device(model)
    )
    precision, _ = settings.choose_precision(device, config.precision)
    channels_last = config.channels_last and device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    ready_built = optimizer is not None
    optimizer = _own_optimizer(optimizer, model) or make_optimizer(
        config.optimizer, model, config.lr, config.weight_decay, config.momentum,
        config.lookahead, **config.optimizer_kwargs,
    )  # fmt: skip
    history = _new_history(name, config, model, (train_loader, val_loader), (loss, mixer))
    history.run |= {"device": str(device), "precision": precision, "channels_last": channels_last}
    if ready_built:  # before the schedule sets its own starting rate
        _record_optimizer(history, optimizer)
    steps = min(len(train_loader), settings.MAX_STEPS or len(train_loader))
    schedule = make_scheduler(
        config.schedule, optimizer, config.epochs, steps, **config.schedule_kwargs
    )
    criterion, mixer = _loss_and_mixer(config, loss, mixer)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    averaged = _ema(model, config.ema)
    forward = _compiled(model, config.compile, device)
    state = {"model": model, "optimizer": optimizer, "schedule": schedule, "scaler": scaler,
             "ema": averaged, "loader": train_loader}  # fmt: skip
    start = _resume(checkpoint, state, history) if resume else 0

    autocast_dtype, autocast_on = AUTOCAST_DTYPES[precision], precision != "fp32"
    bar = tqdm(
        total=config.epochs * steps, initial=start * steps, desc=history.name, disable=not progress
    )
    with bar:
        for epoch in range(start, config.epochs):
            model.train()
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)
            tally = _EpochTally(history, epoch, bar)
            for x, y in _batches(train_loader, model):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                x, y, y_mixed, lam = mixer(x, y) if mixer else (x, y, y, 1.0)
                with torch.autocast(device.type, autocast_dtype, enabled=autocast_on):
                    logits = forward(x)
                    if not tally.batch_sizes:  # each epoch's first step
                        _check_output(y, logits, train_loader, loss is None)
                    step_loss = mixed_loss(criterion, logits, y, y_mixed, lam)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(step_loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    clip_gradients(model, **_clip_settings(config.grad_clip))
                history.step_lr.append(optimizer.param_groups[0]["lr"])
                scaler.step(optimizer)
                scaler.update()
                if schedule.per_step:
                    schedule.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                tally.add(step_loss, logits.detach(), y, y_mixed, lam)
            record = tally.finish(steps)
            evaluated = averaged.module if averaged is not None else model
            result = evaluate(evaluated, val_loader, precision=precision) if val_loader else None
            record["val_loss"] = result.loss if result else None
            record["val_acc"] = result.accuracy if result else None
            history.epochs.append(record)
            if not schedule.per_step:
                schedule.step(record["val_acc"] if result else record["train_acc"])
            bar.set_postfix(_postfix(record))
            if checkpoint is not None:
                _save(checkpoint, epoch + 1, state, history)
            if checks.stop_requested(on_epoch, epoch + 1, record):
                break
    if averaged is not None:
        # Hand back the averaged weights: they are what the history's val numbers measured.
        model.load_state_dict(averaged.module.state_dict())
    return history


class _EpochTally:
    """One epoch's running loss and accuracy, kept on the device and copied to the host
    every ``SYNC_EVERY`` steps, where a NaN/inf loss stops the run."""

    def __init__(self, history: History, epoch: int, bar: Any) -> None:
        self.history, self.epoch, self.bar = history, epoch, bar
        self.first_step = len(history.step_loss)
        self.pending: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []
        self.correct: torch.Tensor | float = 0.0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, logits, y, y_mixed, lam: float) -> None:
        """Count one step's loss, correct predictions (mixup-weighted) and batch size."""
        self.correct = self.correct + mixed_accuracy(logits, y, y_mixed, lam) * len(y)
        self.pending.append(loss.detach().float())
        self.batch_sizes.append(len(y))
        self.bar.update()
        if len(self.pending) == SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Copy the pending step losses to the host (one sync) and stop on NaN/inf."""
        if not self.pending:
            return
        history = self.history
        losses = torch.stack(self.pending).tolist()
        self.pending.clear()
        for offset, value in enumerate(losses):
            if not math.isfinite(value):
                history.step_loss.extend(losses[: offset + 1])
                del history.step_lr[len(history.step_loss) :]
                step = len(history.step_loss) - self.first_step
                raise TrainingDiverged(
                    f"Training diverged: the loss became {value} at epoch {self.epoch + 1}, "
                    f"step {step} (learning rate {history.step_lr[-1]:.3g}). Lower the learning "
                    "rate or clip gradients (grad_clip=...); the last checkpoint, if any, is "
                    "from before.",
                    epoch=self.epoch + 1,
                    step=step,
                    history=history,
                )
        history.step_loss.extend(losses)
        if not self.bar.disable:
            self.bar.set_postfix(_postfix(self._train_metrics() | {"epoch": self.epoch + 1}))

    def _train_metrics(self) -> dict:
        images = sum(self.batch_sizes)
        losses = self.history.step_loss[self.first_step :]
        loss = sum(v * n for v, n in zip(losses, self.batch_sizes, strict=True)) / images
        return {"train_loss": loss, "train_acc": float(self.correct) / images}

    def finish(self, steps: int) -> dict:
        """The epoch's record: train metrics, final learning rate and timing. An epoch of
        other than the ``steps`` the schedule was planned for (a loader whose len() is
        wrong) is an error: the schedule would end early or never."""
        self.sync()
        if len(self.batch_sizes) != steps:
            raise ValueError(
                f"The training loader yielded {len(self.batch_sizes)} batches, but its len() is "
                f"{steps}, which the schedule was planned for: make len() match the batches."
            )
        seconds = time.perf_counter() - self.start
        previous = self.history.epochs[-1]["elapsed"] if self.history.epochs else 0.0
        return {
            "epoch": self.epoch + 1,
            **self._train_metrics(),
            "lr": self.history.step_lr[-1],
            "seconds": seconds,
            "images_per_sec": sum(self.batch_sizes) / seconds,
            "elapsed": previous + seconds,
        }


def _run_config(
    config: TrainConfig | dict | None, overrides: dict, train_loader: Iterable, optimizer: Any
) -> TrainConfig:
    """The run's TrainConfig: ``config`` (or a dict of its fields) with ``overrides``, and the
    loader's own batch size and augmentations recorded. Settings that something else decides
    are refused, not ignored."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig (or a dict of its fields), got {type(config).__name__}."
        )
    if optimizer is not None:
        conflicts = [key for key in OPTIMIZER_FIELDS if key in overrides]
        if conflicts:
            raise ConfigError(
                f"a ready-built optimizer has its own {', '.join(conflicts)}: set them when you "
                "build it, or give the optimizer by name (optimizer='adam', lr=...)."
            )
        defaults = TrainConfig()
        unused = [
            f"{key}={getattr(config, key)!r}"
            for key in OPTIMIZER_FIELDS
            if config is not None and getattr(config, key) != getattr(defaults, key)
        ]
        if unused:  # e.g. a recipe's config with a student's own optimizer: allowed, and said
            print(
                "Note: the ready-built optimizer's own settings are used, not the config's "
                f"{', '.join(unused)}."
            )
    config = (config or TrainConfig()).replace(**overrides)
    from_loader = {key: getattr(train_loader, key, None) for key in LOADER_FIELDS}
    if not hasattr(train_loader, "augment"):  # e.g. a DataLoader: its dataset's transforms
        if "augment" in overrides:
            raise ConfigError(
                f"augment cannot be applied by a {type(train_loader).__name__}: put the "
                "augmentations in its dataset's transform, or use a DeviceLoader(augment=...)."
            )
        loader_class = type(train_loader)
        from_loader["augment"] = (f"{loader_class.__module__}.{loader_class.__qualname__}",)
    for key, value in from_loader.items():
        if key in overrides and value is not None and config.replace(**{key: value}) != config:
            raise ConfigError(
                f"{key} belongs to the training loader ({value!r}); build the loader with "
                f"{key}=... instead of passing it to fit."
            )
    return config.replace(**{key: value for key, value in from_loader.items() if value is not None})


def _check_output(y, logits, loader: Iterable, default_loss: bool) -> None:
    """The checks of ``checks`` on a step's output (each epoch's first step)."""
    checks.check_logits(logits, y, getattr(loader, "classes", None), training=True)
    if default_loss:
        checks.check_not_probabilities(logits)


def _loss_and_mixer(
    config: TrainConfig, loss: Callable | None, mixer: Callable | None
) -> tuple[Callable, Callable | None]:
    """The step's loss (a student's, checked on every call, else cross-entropy with the
    config's label smoothing) and mixer (a student's, checked, else mixup when configured)."""
    criterion = (
        checks.checked_loss(loss)
        if loss
        else nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    )
    if mixer:
        return criterion, checks.checked_mixer(mixer)
    return criterion, Mixer("mixup", config.mixup) if config.mixup else None


def _own_optimizer(optimizer: Optimizer | None, model: nn.Module) -> Optimizer | None:
    """A ready-built optimizer, after checking that it updates this model's parameters."""
    if optimizer is None:
        return None
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer= takes a torch optimizer built on model.parameters(), got "
            f"{type(optimizer).__name__}; to choose one by name, pass optimizer='adam' etc."
        )
    mine = {id(p) for p in model.parameters()}
    theirs = [p for group in optimizer.param_groups for p in group["params"]]
    if not theirs or any(id(p) not in mine for p in theirs):
        raise ValueError(
            "This optimizer was built on other parameters than this model's: build it on "
            "model.parameters() of the model you train (after moving it to its device)."
        )
    return optimizer


def _new_history(
    name: str | None,
    config: TrainConfig,
    model: nn.Module,
    loaders: tuple[Iterable, Iterable | None],
    custom: tuple[Callable | None, Callable | None],
) -> History:
    """An empty History carrying the config, the model and data it trains (with fingerprints
    of its layers and images, so a resume can tell a changed run), the split its val_*
    numbers come from, and a loss or mixer given by hand (the config has neither)."""
    train_loader, val_loader = loaders
    loss, mixer = custom
    run = {
        "model": type(model).__name__,
        "parameters": count_parameters(model),
        "architecture": hashlib.sha1(repr(model).encode()).hexdigest()[:12],
        "train_images": getattr(train_loader, "num_images", None)
        or _length(getattr(train_loader, "dataset", None)),
        "data": getattr(train_loader, "fingerprint", None),
        "augment_code": augment_checks.code_fingerprint(getattr(train_loader, "pipeline", ())),
        "loss": repr(loss) if loss is not None else None,
        "mixer": (getattr(mixer, "__qualname__", None) or repr(mixer)) if mixer else None,
    }
    return History(
        name=name or type(model).__name__,
        config=config.to_dict(),
        run=run,
        source=getattr(train_loader, "source", None),
        provenance=getattr(train_loader, "provenance", None),
        eval_split=getattr(val_loader, "split", None),
    )


def _record_optimizer(history: History, optimizer: Optimizer) -> None:
    """Record what a ready-built optimizer really uses, not the config's defaults."""
    group = optimizer.param_groups[0]
    history.config |= {"optimizer": f"{type(optimizer).__name__} (ready-built)"}
    history.config |= {key: group.get(key) for key in ("lr", "weight_decay", "momentum")}


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def _ema(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights (and BatchNorm buffers), or None."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _compiled(model: nn.Module, compile: bool, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` on CUDA when asked; the model itself otherwise."""
    if compile and device.type != "cuda":
        print(f"compile=True skipped: torch.compile is used on CUDA GPUs only (device {device}).")
    return torch.compile(model) if compile and device.type == "cuda" else model


def _clip_settings(grad_clip: float | dict) -> dict:
    """``grad_clip`` as keyword arguments for ``optim.clip_gradients``."""
    return dict(grad_clip) if isinstance(grad_clip, dict) else {"norm": float(grad_clip)}


def _postfix(record: dict) -> dict:
    """What the progress bar shows after the step counts: epoch, loss and accuracies."""
    shown = {"epoch": record["epoch"], "loss": f"{record['train_loss']:.3f}"}
    shown["acc"] = f"{record['train_acc']:.3f}"
    if record.get("val_acc") is not None:
        shown["val_acc"] = f"{record['val_acc']:.3f}"
    return shown


def _batches(loader: Iterable, model: nn.Module) -> Iterator:
    """The loader's (images, labels) batches, the first checked against what ``model`` takes;
    only the first ``settings.MAX_STEPS`` when that is set, for a dry run of a full-size
    lecture on a machine too slow to train it."""
    for index, batch in enumerate(itertools.islice(loader, settings.MAX_STEPS or None)):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(
                f"a loader must yield (images, labels) pairs, got a {type(batch).__name__}"
                f"{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}."
            )
        if index == 0:  # one look per pass at what the loader yields
            checks.check_batch(*batch, channels=checks.input_channels(model))
        yield batch


def _save(path: str | os.PathLike, epochs_done: int, state: dict, history: History) -> None:
    """Write the checkpoint after ``epochs_done`` epochs, once every tensor is finite."""
    model = state["model"]
    broken = [name for name, t in model.state_dict().items() if not torch.isfinite(t).all()]
    if broken:
        raise TrainingDiverged(
            f"Training diverged: after epoch {epochs_done} {len(broken)} weight or BatchNorm "
            f"tensor(s) are not finite (e.g. {broken[0]}), so no checkpoint was written; the "
            "last checkpoint, if any, is from before. Lower the learning rate or clip gradients.",
            epoch=epochs_done,
            step=0,
            history=history,
        )
    extra = {}
    if hasattr(state["loader"], "state_dict"):
        extra["loader"] = state["loader"].state_dict()
    if state["ema"] is not None:
        extra["ema"] = state["ema"].state_dict()
    if state["scaler"].is_enabled():
        extra["scaler"] = state["scaler"].state_dict()
    ckpt.save_checkpoint(
        path,
        model,
        state["optimizer"],
        state["schedule"],
        epoch=epochs_done,
        history=history.to_dict(),
        config=history.config,
        extra=extra,
    )


def _resume(path: str | os.PathLike, state: dict, history: History) -> int:
    """Load the checkpoint at ``path`` into the run's objects and ``history``; return the
    number of finished epochs (0, with a printed note, when there is no checkpoint yet).
    Only one change is allowed against the saved run: more epochs, for a schedule that does
    not depend on the number of epochs."""
    if not Path(path).is_file():
        print(f"No checkpoint at {path} yet: starting from scratch.")
        return 0
    saved = ckpt.read_checkpoint(path, map_location=settings.model_device(state["model"]))
    try:
        return _continue(path, saved, state, history)
    except ckpt.CheckpointMismatchError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        first_line = (str(error).splitlines() or [""])[0]
        raise ckpt.CheckpointMismatchError(
            f"{path} is damaged or was not written by fit ({type(error).__name__}: "
            f"{first_line}); move it away and train afresh."
        ) from None


def _continue(path: str | os.PathLike, saved: dict, state: dict, history: History) -> int:
    """``_resume`` once the file is read: compare the saved run with this one, then restore
    the history, weights, optimizer, schedule and random states."""
    planned, before = saved["config"], saved["history"]
    if set(planned) != set(history.config) or not isinstance(planned["epochs"], int):
        raise ValueError("its config is not a whole TrainConfig")
    changed = [
        f"{key}: {planned.get(key)!r} -> {value!r}"
        for key, value in history.config.items()
        if key != "epochs" and planned.get(key) != value
    ]
    changed += [  # the run's name, model, data, loss and mixer must be the saved run's too
        f"{key} changed" if key in ("architecture", "data", "augment_code") else
        f"{key}: {before['run'].get(key)!r} -> {value!r}"
        for key, value in history.run.items()
        if key in RUN_IDENTITY and before["run"].get(key) != value
    ]  # fmt: skip
    changed += [
        f"{key}: {before.get(key)!r} -> {getattr(history, key)!r}"
        for key in ("name", "source", "provenance")
        if before.get(key) != getattr(history, key)
    ]
    if changed:
        raise ckpt.CheckpointMismatchError(
            f"{path} was saved by a different run; resuming it with other settings would mix "
            f"two runs ({'; '.join(changed)}). Resume with the same settings, or train afresh "
            "in a new folder."
        )
    epochs = history.config["epochs"]
    if epochs < saved["epoch"]:
        raise ckpt.CheckpointMismatchError(
            f"{path} has {saved['epoch']} finished epochs, more than the {epochs} asked for: "
            "resume with at least as many epochs."
        )
    if epochs != planned["epochs"] and planned["schedule"] not in EXTENSIBLE_SCHEDULES:
        raise ckpt.CheckpointMismatchError(
            f"{path} was planned for {planned['epochs']} epochs with the {planned['schedule']} "
            f"schedule, whose shape depends on the number of epochs, so it cannot be extended "
            f"to {epochs}; train a new run with epochs={epochs}."
        )
    restored = History.from_dict(saved["history"])  # before any weight is touched
    if len(restored.epochs) != saved["epoch"]:
        raise ValueError(f"epoch {saved['epoch']} but {len(restored.epochs)} epochs recorded")
    ckpt.restore(saved, state["model"], state["optimizer"], state["schedule"], source=str(path))
    extra = saved["extra"] or {}
    for key in ("loader", "ema", "scaler"):
        if key in extra and state[key] is not None and hasattr(state[key], "load_state_dict"):
            state[key].load_state_dict(extra[key])
    history.epochs, history.step_lr, history.step_loss = (
        restored.epochs,
        restored.step_lr,
        restored.step_loss,
    )
    print(f"Resumed from {path} after epoch {saved['epoch']}.")
    return saved["epoch"]


@dataclass
class Evaluation:
    """A model's results on one data set; ``confusion[i, j]`` counts images of true class
    ``i`` predicted as ``j``. Tensors are on the CPU, in the loader's order."""

    loss: float
    accuracy: float
    confusion: torch.Tensor
    per_class_accuracy: torch.Tensor
    predictions: torch.Tensor
    targets: torch.Tensor
    probabilities: torch.Tensor
    classes: Sequence[str] | None = None
    split: str | None = None

    @property
    def confidences(self) -> torch.Tensor:
        """The probability of each image's predicted class."""
        return self.probabilities.max(dim=1).values

    def most_confident_mistakes(self, k: int = 8) -> torch.Tensor:
        """Indices of the ``k`` wrong predictions made with the highest confidence (lecture 06)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k is a number of images (a whole number >= 0), got {k!r}.")
        wrong = (self.predictions != self.targets).nonzero().flatten()
        order = self.confidences[wrong].argsort(descending=True)
        return wrong[order[:k]]


def evaluate(
    model: nn.Module,
    loader: Iterable,
    tta: bool | None = None,
    num_classes: int | None = None,
    precision: str | None = None,
) -> Evaluation:
    """Run ``model`` over ``loader`` (eval mode, no gradients; batches moved to the model's
    device) and collect loss, accuracy, confusion matrix and probabilities. ``tta``
    averages the softmax of each image and its mirror (test-time augmentation, lecture 06);
    ``tta`` and ``precision`` default to TrainConfig's (off, "auto")."""
    defaults = TrainConfig()
    tta = defaults.tta if tta is None else tta
    if not isinstance(tta, bool):
        raise TypeError(f"tta must be True or False, got {tta!r}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a whole number >= 1, got {num_classes!r}.")
    checks.check_model(model, training=False)
    checks.check_loader(loader, "evaluate's loader")
    checks.check_evaluation_loader(loader, "evaluate's loader")
    device = settings.model_device(model)
    precision, _ = settings.choose_precision(device, precision or defaults.precision)
    was_training = model.training
    model.eval()
    log_probs, targets = [], []
    try:
        autocast = torch.autocast(device.type, AUTOCAST_DTYPES[precision], precision != "fp32")
        with torch.no_grad(), autocast:
            for x, y in _batches(loader, model):
                log_probs.append(_log_probabilities(model, x.to(device, non_blocking=True), tta))
                targets.append(y)
    finally:
        model.train(was_training)
    if not log_probs:
        raise ValueError("The evaluation loader yielded no batch: give it at least one image.")
    log_probs = torch.cat(log_probs).cpu()
    targets = torch.cat(targets).cpu()
    classes = getattr(loader, "classes", None)
    told = "num_classes=" if num_classes else "the data has "
    num_classes = num_classes or (len(classes) if classes else log_probs.shape[1])
    if int(targets.max()) >= num_classes or log_probs.shape[1] != num_classes:
        raise ValueError(
            f"The model gives {log_probs.shape[1]} class scores, but {told}{num_classes} "
            f"classes (labels up to {int(targets.max())}): every label needs its class score."
        )
    predictions = log_probs.argmax(dim=1)
    confusion = torch.bincount(
        targets * num_classes + predictions, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    return Evaluation(
        loss=F.nll_loss(log_probs, targets).item(),
        accuracy=(predictions == targets).float().mean().item(),
        confusion=confusion,
        per_class_accuracy=confusion.diag() / confusion.sum(dim=1),
        predictions=predictions,
        targets=targets,
        probabilities=log_probs.exp(),
        classes=tuple(classes) if classes else None,
        split=getattr(loader, "split", None),
    )


def _log_probabilities(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """Log-softmax of the model's outputs (float32); with ``tta``, of the average of the
    softmax of ``x`` and of its horizontal mirror."""
    scores = model(x)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        got = list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"The model must return class scores [batch, classes], got {got}.")
    log_p = F.log_softmax(scores.float(), dim=1)
    if not tta:
        return log_p
    log_p_flipped = F.log_softmax(model(x.flip(3)).float(), dim=1)
    return torch.logaddexp(log_p, log_p_flipped) - math.log(2)


def predict(
    model: nn.Module, images: torch.Tensor, loader: Any, tta: bool | None = None
) -> torch.Tensor:
    """Class probabilities [N, C] (on the CPU) for uint8 images [N, 3, H, W] or one [3, H, W],
    normalised with ``loader``'s mean and std, as the model saw in training (lecture 06);
    ``.argmax(1)`` gives the predicted classes."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"predict takes a uint8 tensor of images [N, 3, H, W] (e.g. data.images[:8]), got "
            f"{type(images).__name__}."
        )
    if tta is not None and not isinstance(tta, bool):
        raise TypeError(f"tta must be True or False, got {tta!r}.")
    if images.dtype != torch.uint8:
        raise TypeError(
            f"predict expects uint8 images as stored in ImageData (0-255), got {images.dtype}; "
            "for an already normalised batch call the model directly."
        )
    if not (hasattr(loader, "mean") and hasattr(loader, "std")):
        raise TypeError("predict needs the loader the model was trained with (its mean and std).")
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    if batch.dim() != 4 or (batch.shape[1] != 3 and batch.shape[-1] == 3):
        raise ValueError(
            f"predict takes images [N, 3, H, W] (or one [3, H, W]), got {list(images.shape)}; "
            "for colours last use images.permute(0, 3, 1, 2)."
        )
    if batch.shape[1] != len(loader.mean):
        raise ValueError(
            f"the images have {batch.shape[1]} channel(s), the loader's statistics (and the "
            f"model) {len(loader.mean)}: give images like the ones it was trained on."
        )
    device = settings.model_device(model)
    x = normalize(batch.to(device), loader.mean, loader.std)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probabilities = _log_probabilities(model, x, bool(tta)).exp()
    finally:
        model.train(was_training)
    return probabilities.cpu()
