"""Training and evaluation: ``fit`` trains a model and returns its ``History``; ``evaluate``
measures it (loss, accuracy, confusion matrix, probabilities); ``predict`` classifies images.

Each training step is the classic five lines (forward, loss, zero_grad, backward, step);
the rest of ``fit`` is what a real run needs around them: bf16 autocast and channels_last
on a GPU, learning-rate schedules, mixup, gradient clipping, a progress bar, checkpoints
that resume exactly, and a clear stop when the loss diverges.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from course_utils import checkpoint as ckpt
from course_utils import settings
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD
from course_utils.loader import normalize
from course_utils.mixup import Mixer, mixed_accuracy, mixed_loss
from course_utils.optim import clip_gradients, make_optimizer, make_scheduler
from course_utils.params import count_parameters
from course_utils.settings import seed_everything

SYNC_EVERY = 25
"""Training steps between host syncs, where the loss is checked for NaN/inf and the
progress bar is updated. Syncing every step would stall a GPU; never would stop late."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the run stopped before saving that state."""

    def __init__(self, message: str, epoch: int, step: int, history: History) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.history = history


@dataclass
class History:
    """Everything one training run recorded: per-epoch metrics, per-step loss and learning
    rate, the run's settings and its data source (``plots.plot_history`` draws it)."""

    name: str
    config: dict = field(default_factory=dict)
    source: str | None = None
    epochs: list[dict] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per finished epoch, one column per metric."""
        return pd.DataFrame(self.epochs)

    def to_dict(self) -> dict:
        """The history as plain Python values (for JSON files and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        """Rebuild a history from :meth:`to_dict`'s output."""
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
        return cls.from_dict(json.loads(Path(path).read_text()))

    def best(self, metric: str = "test_acc") -> dict:
        """The epoch with the best ``metric``: the lowest for losses, the highest otherwise."""
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


@dataclass
class _Run:
    """The parts of one training run that every epoch and every step needs."""

    model: nn.Module
    forward: nn.Module  # the model, or its torch.compile'd twin
    loader: Iterable
    optimizer: torch.optim.Optimizer
    schedule: Any
    criterion: nn.Module
    mixer: Mixer | None
    clip: dict | None
    averaged: AveragedModel | None
    amp: bool
    channels_last: bool
    device: torch.device
    history: History
    bar: Any = None


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    epochs: int = 1,
    optimizer: str | torch.optim.Optimizer = "nesterov",
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    schedule: Any = "onecycle",
    schedule_kwargs: dict | None = None,
    optimizer_kwargs: dict | None = None,
    loss: nn.Module | None = None,
    label_smoothing: float = 0.0,
    mixup: float | Mixer | None = None,
    grad_clip: float | dict | None = None,
    amp: bool | str = "auto",
    channels_last: bool | str = "auto",
    compile: bool = False,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    seed: int | None = None,
    name: str | None = None,
    ema: float | None = None,
) -> History:
    """Train ``model`` on ``train_loader`` for ``epochs`` epochs and return its History.

    ``optimizer``/``schedule``: names for ``optim.make_optimizer``/``make_scheduler`` (extra
    arguments in ``optimizer_kwargs``/``schedule_kwargs``) or ready-built objects. ``mixup``:
    a Beta alpha or a ``Mixer``. ``grad_clip``: a max gradient norm, or ``dict(value=...,
    norm=...)``. ``amp``/``channels_last`` ("auto": on CUDA only) and ``compile`` speed up GPU
    runs. ``checkpoint``: a file written after every epoch; ``resume=True`` continues from it
    exactly. ``ema``: a decay (e.g. 0.999) to evaluate an exponential moving average of the
    weights; the model ends with those averaged weights. A NaN/inf loss raises
    ``TrainingDiverged``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from.")
    if seed is not None:
        seed_everything(seed)
    device = torch.device(getattr(train_loader, "device", None) or settings.model_device(model))
    use_amp = _gpu_only(amp, "amp", device)
    use_channels_last = _gpu_only(channels_last, "channels_last", device)
    model.to(device)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)

    optimizer_name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__
    if isinstance(optimizer, str):
        optimizer = make_optimizer(
            optimizer, model.parameters(), lr, weight_decay, **(optimizer_kwargs or {})
        )
    base_lr = optimizer.param_groups[0]["lr"]
    # Steps per epoch: the loader's batches, or fewer in a COURSE_MAX_STEPS dry run.
    steps = min(len(train_loader), settings.MAX_STEPS or len(train_loader))
    schedule = schedule or "constant"
    schedule_name = schedule if isinstance(schedule, str) else type(schedule).__name__
    schedule = make_scheduler(  # a name is built; a Schedule or torch scheduler is wrapped
        schedule, optimizer, epochs, steps, **(schedule_kwargs or {})
    )
    criterion = loss if loss is not None else nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    mixer = _make_mixer(mixup)
    clip = _clip_settings(grad_clip)
    averaged = None
    if ema:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
    forward = _maybe_compile(model, compile, device)

    history = History(
        name=name or type(model).__name__,
        source=getattr(train_loader, "source", None),
        config={
            "model": type(model).__name__,
            "parameters": count_parameters(model),
            "optimizer": optimizer_name,
            "optimizer_kwargs": optimizer_kwargs,
            "lr": base_lr,
            "weight_decay": optimizer.param_groups[0].get("weight_decay"),
            "schedule": schedule_name,
            "schedule_kwargs": schedule_kwargs,
            "epochs": epochs,
            "batch_size": getattr(train_loader, "batch_size", None),
            "train_images": getattr(train_loader, "num_images", None),
            "loss": type(criterion).__name__,
            "label_smoothing": label_smoothing if loss is None else None,
            "mixup": _describe_mixer(mixer),
            "grad_clip": clip,
            "amp": use_amp,
            "channels_last": use_channels_last,
            "compile": forward is not model,
            "ema": ema,
            "seed": seed,
            "device": str(device),
        },
    )
    run = _Run(
        model=model,
        forward=forward,
        loader=train_loader,
        optimizer=optimizer,
        schedule=schedule,
        criterion=criterion,
        mixer=mixer,
        clip=clip,
        averaged=averaged,
        amp=use_amp,
        channels_last=use_channels_last,
        device=device,
        history=history,
    )
    start_epoch = _resume(run, checkpoint) if resume else 0

    run.bar = tqdm(
        total=epochs * steps,
        initial=start_epoch * steps,
        desc=run.history.name,
        unit="step",
        disable=not progress,
    )
    with run.bar:
        for epoch in range(start_epoch, epochs):
            record = _train_epoch(run, epoch)
            if test_loader is not None:
                result = evaluate(averaged.module if averaged else model, test_loader, amp=use_amp)
                record.update(test_loss=result.loss, test_acc=result.accuracy)
            else:
                record.update(test_loss=None, test_acc=None)
            run.history.epochs.append(record)
            if not schedule.per_step:
                schedule.step(
                    record["test_acc"] if test_loader is not None else record["train_acc"]
                )
            run.bar.set_postfix(
                _postfix(epoch + 1, record["train_loss"], record["train_acc"], record["test_acc"])
            )
            if checkpoint is not None:
                _save(run, checkpoint, epoch + 1)
    if averaged is not None:
        # Hand back the averaged weights: they are what the history's test numbers measured.
        model.load_state_dict(averaged.module.state_dict())
    return run.history


def _train_epoch(run: _Run, epoch: int) -> dict:
    """Train one epoch; return its record (train metrics, lr and timing)."""
    model, optimizer, history = run.model, run.optimizer, run.history
    model.train()
    if hasattr(run.loader, "set_epoch"):
        run.loader.set_epoch(epoch)
    pending: list[torch.Tensor] = []  # step losses not yet copied to the host
    batch_sizes: list[int] = []
    correct = torch.zeros((), device=run.device)
    epoch_losses_start = len(history.step_loss)
    start = time.perf_counter()
    for x, y in _batches(run.loader):
        if run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if run.mixer is not None:
            x, y_a, y_b, lam = run.mixer(x, y)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.amp):
            logits = run.forward(x)
            if run.mixer is not None:
                loss = mixed_loss(run.criterion, logits, y_a, y_b, lam)
            else:
                loss = run.criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if run.clip:
            clip_gradients(model, **run.clip)
        history.step_lr.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        if run.schedule.per_step:
            run.schedule.step()
        if run.averaged is not None:
            run.averaged.update_parameters(model)

        logits = logits.detach()
        if run.mixer is not None:
            correct += mixed_accuracy(logits, y_a, y_b, lam) * y.shape[0]
        else:
            correct += (logits.argmax(dim=1) == y).sum()
        pending.append(loss.detach().float())
        batch_sizes.append(y.shape[0])
        run.bar.update()
        if len(pending) == SYNC_EVERY:
            _sync(run, epoch, pending, batch_sizes, correct, epoch_losses_start)
    _sync(run, epoch, pending, batch_sizes, correct, epoch_losses_start)
    seconds = time.perf_counter() - start

    images = sum(batch_sizes)
    losses = history.step_loss[epoch_losses_start:]
    elapsed = history.epochs[-1]["elapsed"] if history.epochs else 0.0
    return {
        "epoch": epoch + 1,
        "train_loss": sum(v * n for v, n in zip(losses, batch_sizes, strict=True)) / images,
        "train_acc": correct.item() / images,
        "lr": history.step_lr[-1],
        "seconds": seconds,
        "images_per_sec": images / seconds,
        "elapsed": elapsed + seconds,
    }


def _sync(
    run: _Run,
    epoch: int,
    pending: list[torch.Tensor],
    batch_sizes: list[int],
    correct: torch.Tensor,
    epoch_start: int,
) -> None:
    """Copy the pending step losses to the host (one sync), stop on NaN/inf, and refresh
    the progress bar's running loss and accuracy."""
    if not pending:
        return
    history = run.history
    losses = torch.stack(pending).tolist()
    pending.clear()
    for offset, value in enumerate(losses):
        if not math.isfinite(value):
            del losses[offset + 1 :]
            history.step_loss.extend(losses)
            del history.step_lr[len(history.step_loss) :]
            step = len(history.step_loss) - epoch_start
            raise TrainingDiverged(
                f"Training diverged: the loss became {value} at epoch {epoch + 1}, step {step} "
                f"(learning rate {history.step_lr[-1]:.3g}). Lower the learning rate or clip "
                "gradients (grad_clip=...); the last checkpoint, if any, is from before.",
                epoch=epoch + 1,
                step=step,
                history=history,
            )
    history.step_loss.extend(losses)
    if not run.bar.disable:
        images = sum(batch_sizes)
        seen = history.step_loss[epoch_start:]
        loss = sum(v * n for v, n in zip(seen, batch_sizes, strict=True)) / images
        run.bar.set_postfix(_postfix(epoch + 1, loss, correct.item() / images))


def _postfix(epoch: int, loss: float, acc: float, test_acc: float | None = None) -> dict:
    """What the progress bar shows after the step counts: epoch, loss and accuracies."""
    shown = {"epoch": epoch, "loss": f"{loss:.3f}", "acc": f"{acc:.3f}"}
    if test_acc is not None:
        shown["test_acc"] = f"{test_acc:.3f}"
    return shown


def _save(run: _Run, path: str | os.PathLike, epochs_done: int) -> None:
    """Write the checkpoint after ``epochs_done`` finished epochs."""
    extra = {}
    if hasattr(run.loader, "state_dict"):
        extra["loader"] = run.loader.state_dict()
    if run.averaged is not None:
        extra["ema"] = run.averaged.state_dict()
    ckpt.save_checkpoint(
        path,
        run.model,
        run.optimizer,
        run.schedule,
        epoch=epochs_done,
        history=run.history.to_dict(),
        config=run.history.config,
        extra=extra,
    )


def _resume(run: _Run, path: str | os.PathLike) -> int:
    """Load the checkpoint at ``path`` into the run; return the number of finished epochs
    (0, with a printed note, when there is no checkpoint yet)."""
    if not Path(path).is_file():
        print(f"No checkpoint at {path} yet: starting from scratch.")
        return 0
    saved = ckpt.load_checkpoint(path, run.model, run.optimizer, run.schedule)
    if saved["rng"] is not None:
        ckpt.restore_rng_state(saved["rng"])
    extra = saved["extra"] or {}
    if "loader" in extra and hasattr(run.loader, "load_state_dict"):
        run.loader.load_state_dict(extra["loader"])
    if "ema" in extra and run.averaged is not None:
        run.averaged.load_state_dict(extra["ema"])
    epochs = run.history.config["epochs"]
    run.history = History.from_dict(saved["history"])
    planned = run.history.config.get("epochs")
    print(f"Resumed from {path} after epoch {saved['epoch']}.")
    if planned != epochs:
        print(
            f"Note: that run was planned for {planned} epochs, this one for {epochs}; "
            "the learning-rate schedule continues from its saved state."
        )
        run.history.config["epochs"] = epochs
    return saved["epoch"]


def _batches(loader: Iterable) -> Iterator:
    """The loader's batches; only the first ``settings.MAX_STEPS`` when that is set, for a
    dry run of a full-size lecture on a machine too slow to train it."""
    return itertools.islice(loader, settings.MAX_STEPS or None)


def _gpu_only(value: bool | str, option: str, device: torch.device) -> bool:
    """Resolve a GPU-only switch: "auto" means on for CUDA; True elsewhere prints a note."""
    if value not in ("auto", True, False):
        raise ValueError(f"{option} must be 'auto', True or False, got {value!r}.")
    on_cuda = device.type == "cuda"
    if value is True and not on_cuda:
        print(f"{option}=True skipped: it is used on CUDA GPUs only (device is {device}).")
    return on_cuda and value in ("auto", True)


def _maybe_compile(model: nn.Module, compile: bool, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` on CUDA when asked; the model itself otherwise."""
    if not compile:
        return model
    if device.type != "cuda":
        print(
            f"compile=True skipped: torch.compile is used on CUDA GPUs only (device is {device})."
        )
        return model
    return torch.compile(model)


def _clip_settings(grad_clip: float | dict | None) -> dict | None:
    """Turn ``grad_clip`` into keyword arguments for ``optim.clip_gradients``."""
    if grad_clip is None:
        return None
    if isinstance(grad_clip, (int, float)):
        return {"norm": float(grad_clip)}
    if isinstance(grad_clip, dict) and set(grad_clip) <= {"value", "norm"}:
        return dict(grad_clip)
    raise ValueError(
        f"grad_clip must be a max norm (a number) or dict(value=..., norm=...), got {grad_clip!r}."
    )


def _make_mixer(mixup: float | Mixer | None) -> Mixer | None:
    """A mixup ``Mixer`` for a Beta alpha (None when it is 0), or the given mixer itself."""
    if isinstance(mixup, (int, float)):
        return Mixer("mixup", float(mixup)) if mixup > 0 else None
    return mixup


def _describe_mixer(mixer: Mixer | None) -> dict | None:
    """The mixer's settings, for History.config."""
    if mixer is None:
        return None
    return {
        "kind": getattr(mixer, "kind", type(mixer).__name__),
        "alpha": getattr(mixer, "alpha", None),
    }


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

    @property
    def confidences(self) -> torch.Tensor:
        """The probability of each image's predicted class."""
        return self.probabilities.max(dim=1).values

    def most_confident_mistakes(self, k: int = 8) -> torch.Tensor:
        """Indices of the ``k`` wrong predictions made with the highest confidence."""
        wrong = (self.predictions != self.targets).nonzero().flatten()
        order = self.confidences[wrong].argsort(descending=True)
        return wrong[order[:k]]


def evaluate(
    model: nn.Module,
    loader: Iterable,
    tta_flip: bool = False,
    num_classes: int | None = None,
    amp: bool | str = "auto",
) -> Evaluation:
    """Run ``model`` over ``loader`` (in eval mode, no gradients) and collect loss, accuracy,
    confusion matrix and probabilities. ``tta_flip`` averages the softmax of each image and
    its mirror image (test-time augmentation); ``amp`` ("auto": bf16 on CUDA) as in ``fit``."""
    device = settings.model_device(model)
    use_amp = _gpu_only(amp, "amp", device)
    was_training = model.training
    model.eval()
    log_probs, targets = [], []
    try:
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
            for x, y in _batches(loader):
                log_probs.append(_log_probabilities(model, x, tta_flip))
                targets.append(y)
    finally:
        model.train(was_training)
    log_probs = torch.cat(log_probs).cpu()
    targets = torch.cat(targets).cpu()
    classes = getattr(loader, "classes", None)
    num_classes = num_classes or (len(classes) if classes else log_probs.shape[1])
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
    )


def _log_probabilities(model: nn.Module, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Log-softmax of the model's outputs (float32); with ``tta_flip``, of the average of the
    softmax of ``x`` and of its horizontal mirror."""
    log_p = F.log_softmax(model(x).float(), dim=1)
    if not tta_flip:
        return log_p
    log_p_flipped = F.log_softmax(model(x.flip(3)).float(), dim=1)
    return torch.logaddexp(log_p, log_p_flipped) - math.log(2)


def predict(
    model: nn.Module,
    images: torch.Tensor,
    tta_flip: bool = False,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
) -> torch.Tensor:
    """Class probabilities [N, C] (on the CPU) for uint8 images [N, 3, H, W] or one [3, H, W],
    normalised like the loader does; ``.argmax(1)`` gives the predicted classes."""
    if images.dtype != torch.uint8:
        raise TypeError(
            f"predict expects uint8 images as stored in ImageData (0-255), got {images.dtype}; "
            "for an already normalised batch call the model directly."
        )
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    device = settings.model_device(model)
    x = normalize(batch.to(device), mean, std)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probabilities = _log_probabilities(model, x, tta_flip).exp()
    finally:
        model.train(was_training)
    return probabilities.cpu()
