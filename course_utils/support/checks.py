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

from course_utils.support.data_checks import check_statistics
from course_utils.support.validate import ConfigError, require_bool, require_int

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
    if type(loader).__name__ == "TrainConfig" or isinstance(loader, dict):
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
    config: Any,
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

    return Checked(loss, step_loss)


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

    return Checked(mixer, mix)


class Checked:
    """A student's loss or mixer behind its check: called through ``check``, shown and
    recorded (``repr``, ``__qualname__``) as the original, so a resume compares the same."""

    def __init__(self, original: Callable, check: Callable) -> None:
        self.original, self.check = original, check
        self.__qualname__ = getattr(original, "__qualname__", None)

    def __call__(self, *args: Any) -> Any:
        return self.check(*args)

    def __repr__(self) -> str:
        return repr(self.original)


# ----------------------------------------------------------------------------------------------
# The doors of train.py: fit, its loop's first batch and step, evaluate, predict, History.best
# ----------------------------------------------------------------------------------------------

OPTIMIZER_FIELDS = ("optimizer", "lr", "weight_decay", "momentum", "optimizer_kwargs", "lookahead")
LOADER_FIELDS = ("batch_size", "augment")  # a loader's own settings, recorded from it


def check_fit(
    model: Any, train_loader: Any, val_loader: Any, config: Any, default: Any, overrides: dict,
    optimizer: Any, loss: Any, mixer: Any, checkpoint: Any, resume: Any, on_epoch: Any,
    progress: Any, check_config: Callable[[Any, Any], None],
) -> tuple[Any, Any, Callable | None, Callable | None]:  # fmt: skip
    """``fit``'s door: the model, the loaders and every argument, before anything runs.
    Returns the run's config (``config`` or ``default`` with ``overrides`` and the loader's
    own settings), the ready-built optimizer (None for one given by name), and the loss and
    mixer wrapped in their checks. ``check_config(config, mixer)`` is
    ``support.config_checks.check_config``, handed in so that the two check modules stay on
    one import floor."""
    if isinstance(optimizer, str):  # a name is the config's field, not a built optimizer
        overrides["optimizer"], optimizer = optimizer, None
    check_model(model)
    check_loaders(train_loader, val_loader)
    config = run_config(config, default, overrides, train_loader, optimizer, check_config, mixer)
    check_run_arguments(
        config, overrides, checkpoint=checkpoint, resume=resume, loss=loss, mixer=mixer,
        on_epoch=on_epoch, progress=progress,
    )  # fmt: skip
    own_optimizer(optimizer, model)
    checked = (checked_loss(loss) if loss else None, checked_mixer(mixer) if mixer else None)
    return config, optimizer, *checked


def run_config(
    config: Any, default: Any, overrides: dict, train_loader: Any, optimizer: Any,
    check_config: Callable[[Any, Any], None], mixer: Any = None,
) -> Any:  # fmt: skip
    """The run's TrainConfig: ``config`` (a dict of its fields too) with ``overrides``, and
    the loader's own batch size and augmentations recorded. Settings that something else
    decides are refused, not ignored."""
    kind = type(default)
    if isinstance(config, dict):
        config = kind.from_dict(config)
    if config is not None and not isinstance(config, kind):
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
        unused = [
            f"{key}={getattr(config, key)!r}"
            for key in OPTIMIZER_FIELDS
            if config is not None and getattr(config, key) != getattr(default, key)
        ]
        if unused:  # e.g. a recipe's config with a student's own optimizer: allowed, and said
            print(
                "Note: the ready-built optimizer's own settings are used, not the config's "
                f"{', '.join(unused)}."
            )
    config = (config or default).replace(**overrides)
    check_config(config, mixer)
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


def own_optimizer(optimizer: Any, model: nn.Module) -> None:
    """A ready-built optimizer must be a torch optimizer updating this model's parameters."""
    if optimizer is None:
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
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


def clip_settings(grad_clip: float | dict) -> dict:
    """``grad_clip`` as keyword arguments for ``optim.clip_gradients``."""
    return dict(grad_clip) if isinstance(grad_clip, dict) else {"norm": float(grad_clip)}


def check_loader_batch(batch: Any, model: nn.Module, first: bool) -> None:
    """Every batch is an (images, labels) pair; the first of a pass is checked in full."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"a loader must yield (images, labels) pairs, got a {type(batch).__name__}"
            f"{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}."
        )
    if first:
        check_batch(*batch, channels=input_channels(model))


def check_step_output(logits: Any, y: torch.Tensor, classes: Any, default_loss: bool) -> None:
    """The model's output on an epoch's first step (its shape, classes and gradient)."""
    check_logits(logits, y, classes, training=True)
    if default_loss:
        check_not_probabilities(logits)


def check_epoch_length(batches: int, steps: int) -> None:
    """An epoch of other than the ``steps`` the schedule was planned for (a loader whose
    len() is wrong) is an error: the schedule would end early or never."""
    if batches != steps:
        raise ValueError(
            f"The training loader yielded {batches} batches, but its len() is {steps}, "
            "which the schedule was planned for: make len() match the batches."
        )


def check_evaluate(model: Any, loader: Any, tta: Any, num_classes: Any) -> None:
    """``evaluate``'s door: a model, an evaluation loader, a bool ``tta``, a class count."""
    require_bool("tta", tta, error=TypeError)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a whole number >= 1, got {num_classes!r}.")
    check_model(model, training=False)
    check_loader(loader, "evaluate's loader")
    check_evaluation_loader(loader, "evaluate's loader")


def check_scores_shape(scores: Any) -> None:
    """A model's output in evaluation is class scores [batch, classes]."""
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        got = list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"The model must return class scores [batch, classes], got {got}.")


def check_some_batches(outputs: list) -> None:
    """An evaluation needs at least one batch."""
    if not outputs:
        raise ValueError("The evaluation loader yielded no batch: give it at least one image.")


def check_scores(log_probs: Any, targets: Any, classes: Any, num_classes: int | None) -> int:
    """Every label has its class score; returns the number of classes."""
    told = "num_classes=" if num_classes else "the data has "
    num_classes = num_classes or (len(classes) if classes else log_probs.shape[1])
    if int(targets.max()) >= num_classes or log_probs.shape[1] != num_classes:
        raise ValueError(
            f"The model gives {log_probs.shape[1]} class scores, but {told}{num_classes} "
            f"classes (labels up to {int(targets.max())}): every label needs its class score."
        )
    return num_classes


def check_predict(images: Any, loader: Any, tta: Any) -> None:
    """``predict``'s door: uint8 images [N, 3, H, W] or one [3, H, W], and the loader the
    model was trained with (for its mean and std)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"predict takes a uint8 tensor of images [N, 3, H, W] (e.g. data.images[:8]), got "
            f"{type(images).__name__}."
        )
    if tta is not None:
        require_bool("tta", tta, error=TypeError)
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


def check_best(history: Any, metric: str) -> None:
    """``History.best`` never chooses an epoch on the test set, and needs the metric."""
    if metric.startswith("val_") and history.eval_split == "test":
        raise ValueError(
            f"History {history.name!r} measured val_* on the test set; choosing the best "
            "epoch there reports a number chosen on the test set. Hold out a validation "
            "split (ImageData.holdout) and evaluate the test set once at the end."
        )
    if not any(row.get(metric) is not None for row in history.epochs):
        known = sorted(history.epochs[0]) if history.epochs else "none yet"
        raise ValueError(f"History {history.name!r} has no value for {metric!r}; it has: {known}.")


# ----------------------------------------------------------------------------------------------
# The door of loader.py: DeviceLoader's arguments
# ----------------------------------------------------------------------------------------------


def check_loader_arguments(
    data: Any, batch_size: Any, train: Any, augment: Any, mean: Any, std: Any, drop_last: Any
) -> None:
    """``DeviceLoader``'s door: an ImageData, a batch size it can fill, bool flags, an
    augmentation list only for training, statistics in [0, 1] units."""
    if type(data).__name__ != "ImageData":
        raise TypeError(
            f"DeviceLoader expects an ImageData (e.g. from course_utils.data.cifar10()), "
            f"got {type(data).__name__}."
        )
    require_int("batch_size", batch_size, error=ValueError)
    for name, flag in (("train", train), ("drop_last", drop_last)):
        if not isinstance(flag, bool) and not (name == "drop_last" and flag is None):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    if not train and drop_last:
        raise ValueError(
            "an evaluation loader (train=False) keeps every image: drop drop_last=True."
        )
    if (train if drop_last is None else drop_last) and len(data) < batch_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {len(data)} images, so dropping "
            "the last incomplete batch leaves nothing; lower batch_size or pass "
            "drop_last=False."
        )
    if not train and augment:
        raise ValueError(
            "an evaluation loader (train=False) does not augment: drop augment=, or use "
            "train=True for a training loader."
        )
    if isinstance(augment, (str, dict)):
        raise TypeError(
            f"augment must be a list of augmentations, e.g. augment=['crop', 'flip'], got "
            f"{augment!r}."
        )
    check_statistics(mean, std)


def check_loader_state(state: Any) -> None:
    """A DeviceLoader's saved state is its epoch and seed."""
    if not isinstance(state, dict) or set(state) != {"epoch", "seed"}:
        raise ValueError(f"a DeviceLoader state is {{'epoch': ..., 'seed': ...}}, got {state!r}.")
