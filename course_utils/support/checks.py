"""The checks ``fit`` and ``evaluate`` run at the door, so a mistake is one clear line before
any training instead of a traceback from deep inside torch (or a silently wrong number).

Models, loaders and run-time arguments are checked before the first step; the first batch
of every epoch, and what the model makes of it, are checked on that step (labels beyond
the model's classes are an opaque device assert on a GPU). ``checked_loss`` and
``checked_mixer`` wrap a student's own loss or mixer so that a wrong return is named.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.config import ConfigError, TrainConfig

TRAINABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_model(model: Any, training: bool = True) -> None:
    """A built ``nn.Module`` on a real device, with float32 weights to train when
    ``training`` (``evaluate`` also takes a frozen model)."""
    if isinstance(model, type):
        raise TypeError(
            f"model is the class {model.__name__}: build it first, e.g. {model.__name__}(...)."
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}.")
    weights = list(model.parameters())
    if training and not any(p.requires_grad for p in weights):
        raise ValueError(
            "the model has no trainable parameters (none, or all frozen with "
            "requires_grad=False): there is nothing to train."
        )
    if any(p.is_meta for p in weights):
        raise ValueError("the model is on the meta device (no weights yet): build it for real.")
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise ValueError(
            f"the model's weights are not finite (e.g. {broken[0]}): it diverged in an earlier "
            "run; build it afresh (rerun the cell that builds it)."
        )
    odd = sorted({str(p.dtype) for p in weights if p.dtype not in TRAINABLE_DTYPES})
    if training and odd:
        raise TypeError(
            f"the model's weights are {', '.join(odd)}; the course trains float32 weights "
            "(autocast picks the precision): call model.float()."
        )


def check_loaders(train_loader: Any, val_loader: Any) -> None:
    """Both loaders yield batches and have batches; validation is held-out images, measured
    as they are, of the same classes as the training images."""
    for role, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is None and role == "val_loader":
            continue
        check_loader(loader, role)
    if val_loader is None:
        return
    if val_loader is train_loader:
        raise ValueError(
            "val_loader is the training loader: validate on held-out images "
            "(train, val = data.holdout(0.1); DeviceLoader(val, train=False))."
        )
    check_evaluation_loader(val_loader, "val_loader")
    classes = [getattr(loader, "classes", None) for loader in (train_loader, val_loader)]
    if all(classes) and tuple(classes[0]) != tuple(classes[1]):
        raise ValueError(
            f"val_loader has other classes ({len(classes[1])}: {', '.join(classes[1][:3])}...) "
            f"than train_loader ({len(classes[0])}: {', '.join(classes[0][:3])}...)."
        )


def check_loader(loader: Any, role: str) -> None:
    """A loader yields batches and has at least one (an ImageData or a config is named)."""
    if isinstance(loader, (TrainConfig, dict)):
        raise TypeError(
            f"{role} got a {type(loader).__name__}: give the config by name, "
            "fit(model, train_loader, val_loader, config=config)."
        )
    if type(loader).__name__ == "ImageData":
        raise TypeError(
            f"{role} got an ImageData: wrap it in a loader, e.g. DeviceLoader(data, train="
            f"{role == 'train_loader'})."
        )
    if not isinstance(loader, Iterable) or isinstance(loader, (str, bytes)):
        raise TypeError(
            f"{role} must yield (images, labels) batches, e.g. a DeviceLoader; got "
            f"{type(loader).__name__}."
        )
    try:
        batches = len(loader)
    except TypeError:
        raise TypeError(
            f"{role} has no len() ({type(loader).__name__}), which the schedule needs for its "
            "steps per epoch: use a DeviceLoader or a torch DataLoader."
        ) from None
    if batches == 0:
        raise ValueError(f"{role} has no batch: give it at least one image.")


def check_evaluation_loader(loader: Any, role: str) -> None:
    """An evaluation measures the images as they are: a training loader (train=True)
    shuffles, augments and drops the last batch, so its numbers would be off."""
    if getattr(loader, "train", False) or getattr(loader, "drop_last", False):
        raise ValueError(
            f"{role} is a training loader (train=True: shuffled, augmented, last batch "
            "dropped); evaluate on DeviceLoader(data, train=False)."
        )


def check_run_arguments(
    config: TrainConfig,
    overrides: dict,
    *,
    checkpoint: Any,
    resume: Any,
    loss: Any,
    mixer: Any,
    on_epoch: Any,
    progress: Any,
) -> None:
    """``fit``'s run-time arguments: nothing a user made is overwritten, and nothing given is
    silently ignored."""
    for name, flag in (("resume", resume), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    for name in ("val_split", "tta"):
        if name in overrides:
            raise ConfigError(
                f"{name} is used by recipes.run (validation split, test-time flips), not by "
                "fit, which validates on val_loader as it is: set it in the recipe's config."
            )
    _check_checkpoint(checkpoint, resume)
    if loss is not None:
        _check_callable(loss, "loss", "nn.CrossEntropyLoss()")
        if config.label_smoothing:
            raise ConfigError(
                f"label_smoothing={config.label_smoothing} applies to the default loss only: "
                "set it in your loss (nn.CrossEntropyLoss(label_smoothing=...)), or drop loss=."
            )
    if mixer is not None:
        _check_callable(mixer, "mixer", "Mixer('cutmix', 1.0)")
        if config.mixup:
            raise ConfigError(
                f"mixer= and mixup={config.mixup} both mix batches: give one (mixup=alpha is "
                "plain mixup; mixer= takes a Mixer such as Mixer('cutmix', 1.0))."
            )
    if on_epoch is not None:
        _check_callable(on_epoch, "on_epoch", "a function (epoch, record) -> bool")
        try:
            inspect.signature(on_epoch).bind(1, {})
        except TypeError:
            raise TypeError(
                "on_epoch is called as on_epoch(epoch, record): give it those two parameters."
            ) from None
        except ValueError:  # a built-in without a signature to inspect
            pass


def _check_callable(value: Any, role: str, example: str) -> None:
    if isinstance(value, type):
        raise TypeError(f"{role} is the class {value.__name__}: pass an instance, e.g. {example}.")
    if not callable(value):
        raise TypeError(f"{role} must be callable, e.g. {example}; got {value!r}.")


def _check_checkpoint(checkpoint: Any, resume: bool) -> None:
    if checkpoint is None:
        if resume:
            raise ValueError("resume=True needs checkpoint=<path> to resume from.")
        return
    if not isinstance(checkpoint, (str, Path)) or not str(checkpoint).strip():
        raise TypeError(f"checkpoint must be a file path such as 'run.pt', got {checkpoint!r}.")
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        raise ValueError(f"checkpoint={checkpoint} is a folder: give a file path, e.g. run.pt.")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise ValueError(f"checkpoint={checkpoint} lies below a file: choose another path.")
    if path.exists() and not resume:
        raise FileExistsError(
            f"{checkpoint} already exists: pass resume=True to continue that run, or choose "
            "another checkpoint path (nothing was overwritten)."
        )


def input_channels(model: nn.Module) -> set[int]:
    """The input channels of the model's convolutions (the images must match one of them;
    the order modules were registered in need not be the order they run in)."""
    return {m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)}


def check_batch(x: Any, y: Any, channels: set[int] | None = None) -> None:
    """A batch is float images [B, C, H, W] (with as many channels as one of the model's
    convolutions takes) and class indices [B] (int64, >= 0): what a DeviceLoader yields.
    Checked on each pass's first batch."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"a batch must be (images, labels) tensors, got ({type(x).__name__}, "
            f"{type(y).__name__})."
        )
    if not x.is_floating_point() or x.dim() != 4:
        raise TypeError(
            f"images must be a float batch [B, C, H, W] (normalised, as a DeviceLoader gives), "
            f"got {x.dtype} of shape {list(x.shape)}."
        )
    if x.shape[1] != 3 and x.shape[-1] == 3:
        raise ValueError(
            f"images of shape {list(x.shape)} have their colours last: "
            "x.permute(0, 3, 1, 2) gives [B, 3, H, W]."
        )
    if channels and x.shape[1] not in channels:
        raise ValueError(
            f"the images have {x.shape[1]} channel(s), but no convolution of the model takes "
            f"{x.shape[1]} (they take {sorted(channels)}): for grayscale images use "
            "x.expand(-1, 3, -1, -1), or build the model for them."
        )
    if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
        raise TypeError(
            f"labels must be class indices, int64 of shape [{len(x)}], got {y.dtype} of shape "
            f"{list(y.shape)} (for one-hot labels use y.argmax(1))."
        )
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"labels must be class indices >= 0, got {int(y.min())}.")


def check_logits(logits: Any, y: torch.Tensor, classes: Any, training: bool) -> None:
    """The model's output is one float score per class for each image, with a gradient when
    training: a wrong head or a detached output is one clear error here."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != len(y):
        got = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"The model must return class scores of shape [batch, classes] ([{len(y)}, ...]), "
            f"got {got}: end forward() with a linear layer on the flattened features."
        )
    if not logits.is_floating_point():
        raise TypeError(f"The model must return float scores, got {logits.dtype}.")
    if training and torch.is_grad_enabled() and not logits.requires_grad:
        raise ValueError(
            "The model's output has no gradient: forward() detaches it (.detach(), .item(), "
            "torch.no_grad() or a NumPy round trip), so nothing can be trained."
        )
    if classes:
        needed = len(classes)
        wrong = logits.shape[1] != needed
    else:  # no class names: the labels must at least fit
        needed = int(y.max()) + 1
        wrong = logits.shape[1] < needed
    if wrong:
        raise ValueError(
            f"The model gives {logits.shape[1]} class scores, but the data has {needed} "
            f"classes: build it with num_classes={needed} (one output per class)."
        )


def check_not_probabilities(logits: torch.Tensor) -> None:
    """CrossEntropyLoss applies softmax itself: a model that already returns probabilities
    (every row non-negative and summing to 1) trains badly without any error."""
    rows = logits.detach().float()
    if bool((rows >= 0).all()) and bool(
        torch.allclose(rows.sum(1), torch.ones(len(rows)).to(rows))
    ):
        raise ValueError(
            "The model returns probabilities (each row sums to 1): CrossEntropyLoss applies "
            "softmax itself, so end forward() with the linear layer, without softmax."
        )


def checked_loss(loss: Callable) -> Callable:
    """A student's loss whose every result must be one number with a gradient (a tensor of
    shape []): a per-image loss or a Python float is named, not a torch error."""

    def step_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        try:
            value = loss(scores, labels)
        except (RuntimeError, ValueError) as error:  # e.g. MSELoss given class indices
            raise ValueError(
                f"loss {loss!r} failed on class scores {list(scores.shape)} and class indices "
                f"{list(labels.shape)} ({(str(error).splitlines() or [''])[0]}): fit gives a "
                "loss those two, as nn.CrossEntropyLoss takes them."
            ) from error
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"loss must return one number (a tensor of shape []), got {got}: average it "
                "(reduction='mean') and keep it a tensor."
            )
        return value

    return step_loss


def checked_mixer(mixer: Callable) -> Callable:
    """A student's mixer whose every result must be ``(x, y, y_mixed, lam)``, lam in [0, 1]."""

    def mix(x: torch.Tensor, y: torch.Tensor) -> tuple:
        mixed = mixer(x, y)
        if not isinstance(mixed, tuple) or len(mixed) != 4:
            raise TypeError(
                "mixer must return (x, y, y_mixed, lam), got "
                f"{len(mixed) if isinstance(mixed, tuple) else type(mixed).__name__} value(s)."
            )
        for role, labels in (("y", mixed[1]), ("y_mixed", mixed[2])):
            if isinstance(labels, torch.Tensor) and labels.shape != y.shape:
                raise ValueError(
                    f"mixer's {role} must be class indices like y (shape {list(y.shape)}), got "
                    f"shape {list(labels.shape)}; mixed_loss mixes the two losses with lam."
                )
        lam = mixed[3]
        if isinstance(lam, torch.Tensor) and lam.numel() != 1:
            raise ValueError(
                f"mixer's lam must be one number for the batch, got a tensor of shape "
                f"{list(lam.shape)}."
            )
        if isinstance(lam, numbers.Real) and not 0 <= lam <= 1:
            raise ValueError(f"mixer's lam is the share of the first image, in [0, 1]; got {lam}.")
        return mixed

    return mix


def stop_requested(on_epoch: Callable | None, epoch: int, record: dict) -> bool:
    """Call ``on_epoch``; True (and only a bool) stops the run."""
    if on_epoch is None:
        return False
    answer = on_epoch(epoch, record)
    if answer is not None and not isinstance(answer, bool):
        raise TypeError(f"on_epoch must return True (stop), False or None, got {answer!r}.")
    return bool(answer)
