"""Training and evaluation: ``fit`` trains a model and returns its ``History``; ``evaluate``
measures it; ``predict`` classifies images.

``fit`` is one loop to read top to bottom: the five lines of a training step (forward, loss,
zero_grad, backward, step) and what a real run adds around them: mixed precision, a
learning-rate schedule, mixup, gradient clipping, an average of the weights, a progress bar
and a checkpoint after every epoch. Lecture 01 writes the same loop by hand.
"""

from __future__ import annotations

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

from course_utils import settings
from course_utils.config import TrainConfig
from course_utils.data import normalize
from course_utils.mixup import Mixer, mixed_accuracy, mixed_loss
from course_utils.optim import clip_gradients, make_optimizer, make_scheduler
from course_utils.support import checkpoint as bookkeeping
from course_utils.support import checks, words
from course_utils.support.checkpoint import TrainingDiverged as TrainingDiverged  # re-exported
from course_utils.support.config_checks import check_config
from course_utils.support.validate import require_int

SYNC_EVERY = 25
"""Steps between host syncs (loss checked for NaN, progress bar updated): syncing every step
would stall a GPU."""

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass
class History:
    """What one run recorded (``plots.plot_history`` draws it): per-epoch ``train_*`` and
    ``val_*`` metrics, per-step loss and learning rate, the config, the data's source and the
    split ``val_*`` was measured on (``eval_split``)."""

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
    warnings: list[str] = field(default_factory=list)  # e.g. "Learned nothing: ..." (one line)
    format_version: int = bookkeeping.HISTORY_FORMAT

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        return cls(**bookkeeping.check_history_dict(values))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON to ``path``, creating its folder."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(bookkeeping.read_history_json(path))

    def best(self, metric: str = "val_acc") -> dict:
        """The epoch with the best ``metric`` (lowest loss, highest otherwise); choosing an
        epoch on the test set is refused, since that picks the number you report."""
        checks.check_best(self, metric)
        scored = [row for row in self.epochs if row.get(metric) is not None]
        choose = min if "loss" in metric else max
        return choose(scored, key=lambda row: row[metric])

    @property
    def final(self) -> dict:
        """The last finished epoch's record."""
        if not self.epochs:
            raise ValueError(f"History {self.name!r} has no finished epoch yet.")
        return self.epochs[-1]


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None,
        config: TrainConfig | None = None, *, optimizer: Optimizer | str | None = None,
        loss: nn.Module | None = None, mixer: Callable | None = None,
        checkpoint: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
        name: str | None = None, on_epoch: Callable[[int, dict], bool | None] | None = None,
        **overrides: Any) -> History:  # fmt: skip
    """Train ``model`` as ``config`` says (``overrides`` are its fields: ``epochs=3``) and
    return its History. Run-time objects: a ready-built ``optimizer``, a custom ``loss``, a
    ``mixer`` (e.g. ``Mixer("cutmix", 1.0)``), a ``checkpoint`` file written after every epoch
    (``resume=True`` continues it exactly) and ``on_epoch(epoch, record)``, which stops the run
    by returning True."""
    config, optimizer, loss, mixer = checks.check_fit(
        model, train_loader, val_loader, config, TrainConfig(), overrides, optimizer, loss, mixer,
        checkpoint, resume, on_epoch, progress, check_config,
    )  # fmt: skip
    device, precision, memory_format, forward = prepare(model, train_loader, config)
    run = bookkeeping.Run(History, name, config, model, train_loader, val_loader, loss, mixer,
                          optimizer, checkpoint, precision, memory_format)  # fmt: skip
    optimizer = optimizer or make_optimizer(
        config.optimizer, model, config.lr, config.weight_decay, config.momentum,
        config.lookahead, **config.optimizer_kwargs,
    )  # fmt: skip
    steps = min(len(train_loader), settings.MAX_STEPS or len(train_loader))
    schedule = make_scheduler(
        config.schedule, optimizer, config.epochs, steps, **config.schedule_kwargs
    )
    criterion = loss or nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    mixer = mixer or (Mixer("mixup", config.mixup) if config.mixup else None)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    ema = average_of(model, config.ema)
    history = run.start(resume, model, optimizer, schedule, scaler, ema, train_loader)
    with run.progress_bar(steps, progress) as bar:
        for epoch in range(run.first_epoch, config.epochs):
            model.train()
            tally = EpochTally(run, epoch, bar)
            for x, y in batches(train_loader, model, epoch):
                x = x.to(device, memory_format=memory_format, non_blocking=True)
                y = y.to(device, non_blocking=True)
                x, y, y_mixed, lam = mixer(x, y) if mixer else (x, y, y, 1.0)
                with torch.autocast(device.type, AUTOCAST_DTYPES[precision], precision != "fp32"):
                    logits = tally.check(forward(x), y)
                    step_loss = mixed_loss(criterion, logits, y, y_mixed, lam)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(step_loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    clip_gradients(model, **checks.clip_settings(config.grad_clip))
                tally.add(step_loss, logits.detach(), y, y_mixed, lam, optimizer)
                scaler.step(optimizer)
                scaler.update()
                if schedule.per_step:
                    schedule.step()
                if ema is not None:
                    ema.update_parameters(model)
            evaluated = ema.module if ema is not None else model
            record = tally.finish(steps) | validate(evaluated, val_loader, precision)
            history.epochs.append(record)
            if not schedule.per_step:
                schedule.step(record["val_acc"] if val_loader else record["train_acc"])
            if run.end_epoch(epoch, record, bar, on_epoch):
                break
    if ema is not None:  # hand back the averaged weights: the val numbers measured them
        model.load_state_dict(ema.module.state_dict())
    return history


def prepare(
    model: nn.Module, loader: Iterable, config: TrainConfig
) -> tuple[torch.device, str, torch.memory_format, nn.Module]:
    """Seed every random number (the loader's shuffle and augmentation too), choose the device
    and precision, move the model there in the memory format it trains in, and return how to
    run it: the model itself, or ``torch.compile(model)`` on a GPU when ``config.compile``."""
    settings.seed_everything(config.seed)
    if hasattr(loader, "set_seed"):
        loader.set_seed(config.seed)
    device = settings.check_device(getattr(loader, "device", None) or settings.model_device(model))
    precision, _ = settings.choose_precision(device, config.precision)
    if config.compile and device.type != "cuda":
        print(f"{words.arg('compile', True)} skipped: torch.compile is for CUDA GPUs ({device}).")
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    model.to(device, memory_format=memory_format)
    forward = torch.compile(model) if config.compile and device.type == "cuda" else model
    return device, precision, memory_format, forward


def batches(loader: Iterable, model: nn.Module, epoch: int | None = None) -> Iterator:
    """The loader's (images, labels) batches for ``epoch``, the first checked against what
    ``model`` takes; only ``settings.MAX_STEPS`` of them in a dry run of a full-size lecture."""
    if epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    for index, batch in enumerate(itertools.islice(loader, settings.MAX_STEPS or None)):
        checks.check_loader_batch(batch, model, first=index == 0)
        yield batch


def average_of(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights and BatchNorm buffers, or None."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def validate(model: nn.Module, loader: Iterable | None, precision: str) -> dict:
    """``val_loss`` and ``val_acc`` of ``model`` on ``loader`` (None without one)."""
    if loader is None:
        return {"val_loss": None, "val_acc": None}
    measured = evaluate(model, loader, precision=precision)
    return {"val_loss": measured.loss, "val_acc": measured.accuracy}


class EpochTally:
    """One epoch's running loss and accuracy, kept on the device and copied to the host every
    ``SYNC_EVERY`` steps, where a NaN or infinite loss stops the run."""

    def __init__(self, run: bookkeeping.Run, epoch: int, bar: Any) -> None:
        self.run, self.history, self.epoch, self.bar = run, run.history, epoch, bar
        self.first_step = len(self.history.step_loss)
        self.pending: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []
        self.correct: torch.Tensor | float = 0.0
        self.start = time.perf_counter()

    def check(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The model's output, checked on the epoch's first step (its shape and classes)."""
        if not self.batch_sizes:
            checks.check_step_output(logits, y, self.run.classes, self.run.default_loss)
        return logits

    def add(self, loss: torch.Tensor, logits, y, y_mixed, lam: float, optimizer) -> None:
        """Count one step: its loss, learning rate and (mixup-weighted) correct predictions."""
        self.history.step_lr.append(optimizer.param_groups[0]["lr"])
        self.correct = self.correct + mixed_accuracy(logits, y, y_mixed, lam) * len(y)
        self.pending.append(loss.detach().float())
        self.batch_sizes.append(len(y))
        self.bar.update()
        if len(self.pending) == SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Copy the pending losses to the host in one sync; stop on NaN or inf."""
        if not self.pending:
            return
        losses = torch.stack(self.pending).tolist()
        self.pending.clear()
        bookkeeping.stop_if_diverged(self.history, losses, self.epoch, self.first_step)
        self.history.step_loss.extend(losses)
        if not self.bar.disable:
            self.bar.set_postfix(bookkeeping.postfix(self.metrics() | {"epoch": self.epoch + 1}))

    def metrics(self) -> dict:
        images = sum(self.batch_sizes)
        losses = self.history.step_loss[self.first_step :]
        loss = sum(v * n for v, n in zip(losses, self.batch_sizes, strict=True)) / images
        return {"train_loss": loss, "train_acc": float(self.correct) / images}

    def finish(self, steps: int) -> dict:
        """The epoch's record: train metrics, last learning rate and timing."""
        self.sync()
        checks.check_epoch_length(len(self.batch_sizes), steps)
        seconds = time.perf_counter() - self.start
        previous = self.history.epochs[-1]["elapsed"] if self.history.epochs else 0.0
        return {
            "epoch": self.epoch + 1,
            **self.metrics(),
            "lr": self.history.step_lr[-1],
            "seconds": seconds,
            "images_per_sec": sum(self.batch_sizes) / seconds,
            "elapsed": previous + seconds,
        }


@dataclass
class Evaluation:
    """A model's results on one data set; ``confusion[i, j]`` counts images of class ``i``
    predicted as ``j``. Tensors are on the CPU, in the loader's order."""

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
        """Indices of the ``k`` wrong predictions made with the highest confidence."""
        require_int("k", k, low=0, error=ValueError)
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
    """Loss, accuracy, confusion matrix and probabilities of ``model`` on ``loader`` (eval
    mode, no gradients). ``tta`` averages each image's softmax with its mirror's (lecture 06);
    ``tta`` and ``precision`` default to TrainConfig's."""
    tta = TrainConfig.tta if tta is None else tta
    checks.check_evaluate(model, loader, tta, num_classes)
    device = settings.model_device(model)
    precision, _ = settings.choose_precision(device, precision or TrainConfig.precision)
    was_training = model.training
    model.eval()
    log_probs, targets = [], []
    autocast = torch.autocast(device.type, AUTOCAST_DTYPES[precision], precision != "fp32")
    try:
        with torch.no_grad(), autocast:
            for x, y in batches(loader, model):
                log_probs.append(log_probabilities(model, x.to(device, non_blocking=True), tta))
                targets.append(y)
    finally:
        model.train(was_training)
    checks.check_some_batches(log_probs)
    log_probs, targets = torch.cat(log_probs).cpu(), torch.cat(targets).cpu()
    classes = getattr(loader, "classes", None)
    num_classes = checks.check_scores(log_probs, targets, classes, num_classes)
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


def log_probabilities(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """Log-softmax of the model's scores (float32); with ``tta``, of the average of the
    softmax of ``x`` and of its horizontal mirror."""
    scores = model(x)
    checks.check_scores_shape(scores)
    log_p = F.log_softmax(scores.float(), dim=1)
    if not tta:
        return log_p
    log_p_flipped = F.log_softmax(model(x.flip(3)).float(), dim=1)
    return torch.logaddexp(log_p, log_p_flipped) - math.log(2)


def predict(
    model: nn.Module, images: torch.Tensor, loader: Any, tta: bool | None = None
) -> torch.Tensor:
    """Class probabilities [N, C] on the CPU for uint8 images [N, 3, H, W] (or one image),
    normalised with ``loader``'s mean and std as in training; ``.argmax(1)`` gives classes."""
    checks.check_predict(images, loader, tta)
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    x = normalize(batch.to(settings.model_device(model)), loader.mean, loader.std)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probabilities = log_probabilities(model, x, bool(tta)).exp()
    finally:
        model.train(was_training)
    return probabilities.cpu()
