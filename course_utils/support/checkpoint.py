"""Save and resume training: model, optimizer, schedule, random states and history in one file.

Checkpoints hold only tensors, dicts, lists, numbers and strings, so they load with
``torch.load(weights_only=True)`` (no arbitrary code runs when a file is opened). They are
written atomically: a crash while saving never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_utils import augment, optim, settings
from course_utils.support import words

FORMAT_VERSION = 2
"""2: the full TrainConfig, and the gradient scaler's state for fp16 runs, are saved."""
_MAX_LISTED = 8
TEXT_BAR_SECONDS = 5.0
"""How often a progress bar redraws off a terminal, where each redraw is kept (a notebook, a log
file) or the bar is a widget: a few redraws a run instead of one every 0.1 s."""
ENTRIES = ("format_version", "epoch", "model", "optimizer", "scheduler", "history", "config")
"""What every checkpoint holds (``rng`` and ``extra`` may be None)."""


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's weights do not fit the model (saved from a different architecture)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, folder gone); the previous one is kept."""


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    epoch: int = 0,
    history: dict | None = None,
    config: dict | None = None,
    rng: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write everything needed to resume training after ``epoch`` finished epochs to ``path``.

    ``history`` and ``config`` must be plain dicts; ``extra`` holds any other plain state
    (e.g. a loader's or an EMA model's). Returns the path written.
    """
    path = Path(path).expanduser()
    if hasattr(history, "to_dict"):  # a History: stored as its plain dict
        history = history.to_dict()
    broken = [name for name, t in model.state_dict().items() if not torch.isfinite(t).all()]
    if broken:
        raise ValueError(
            f"{len(broken)} weight or BatchNorm tensor(s) are not finite (e.g. {broken[0]}): "
            "a checkpoint of a diverged model could not be resumed; nothing was written."
        )
    content = {
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history,
        "config": config,
        "rng": rng_state() if rng else None,
        "extra": extra,
    }
    atomic_save(content, path)
    return path


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place, so
    readers only ever see the old file or the complete new one. Temporary files left by a
    process killed while writing are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    tmp_name = None
    try:
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp_name, 0o644)  # readable like the run's other files (mkstemp gives 0600)
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as RuntimeError
        _remove(tmp_name)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "disk full?"
        raise CheckpointWriteError(
            f"could not write {path} ({reason}): free some disk space or choose another "
            "folder; the previous checkpoint, if any, is unchanged."
        ) from None
    except BaseException:
        _remove(tmp_name)
        raise


def _remove(name: str | None) -> None:
    if name is not None:
        Path(name).unlink(missing_ok=True)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The checkpoint at ``path`` as a dict (``epoch``, ``model``, ``history``, ``config``,
    ``rng``, ``extra``...), after checking that it is one of ours, of this format. A damaged
    or foreign file gets one line of its own (it is never loaded with weights_only=False)."""
    path = Path(path).expanduser()
    if isinstance(map_location, (str, torch.device)):
        map_location = settings.check_device(map_location)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}: check the path or train without resume.")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, empty, garbage, or holding code: never unpickled
        raise CheckpointMismatchError(
            f"{path} is not a readable course_utils checkpoint ({type(error).__name__}): give the "
            "run's checkpoint.pt; if this is one, it is truncated or damaged: move it away and "
            "train afresh."
        ) from None
    if not isinstance(content, dict) or "format_version" not in content:
        raise CheckpointMismatchError(
            f"{path} is not a course_utils checkpoint (no format_version entry)."
        )
    version = content["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointMismatchError(
            f"{path} is not a course_utils checkpoint (format_version {version!r})."
        )
    if version != FORMAT_VERSION:
        advice = "update course_utils" if version > FORMAT_VERSION else "train the run afresh"
        raise CheckpointMismatchError(
            f"{path} has checkpoint format {version}, this course_utils reads format "
            f"{FORMAT_VERSION}: {advice}."
        )
    missing = sorted(set(ENTRIES) - set(content))
    if missing:
        raise CheckpointMismatchError(
            f"{path} lacks {', '.join(missing)}: it is not a whole course_utils checkpoint; "
            "train afresh."
        )
    _check_entries(path, content)
    return content


def _check_entries(path: Path, content: dict) -> None:
    """The entries have their kinds and the weights are finite (``fit`` never saves others):
    a damaged file is named here, not by a raw error halfway through restoring it."""
    kinds = {"model": dict, "optimizer": (dict, type(None)), "scheduler": (dict, type(None)),
             "history": (dict, type(None)), "config": (dict, type(None))}  # fmt: skip
    wrong = [key for key, kind in kinds.items() if not isinstance(content[key], kind)]
    epoch = content["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        wrong.append("epoch")
    if not wrong and not all(isinstance(t, torch.Tensor) for t in content["model"].values()):
        wrong.append("model")
    if wrong:
        raise CheckpointMismatchError(
            f"{path} is damaged or not written by course_utils (its {', '.join(wrong)} "
            "entry is not what a checkpoint holds): move it away and train afresh."
        )
    broken = [key for key, t in content["model"].items() if not torch.isfinite(t).all()]
    if broken:
        raise CheckpointMismatchError(
            f"{path} holds non-finite weights (e.g. {broken[0]}), which fit never saves: it is "
            "damaged; move it away and train afresh."
        )


def restore(
    content: dict,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    source: str = "the checkpoint",
) -> None:
    """Put a checkpoint's weights (and optimizer/scheduler state when given) into the objects;
    :class:`CheckpointMismatchError` when the weights, the optimizer's kind or the schedule's
    kind do not fit (checked before anything is loaded)."""
    if not isinstance(content, dict) or not isinstance(content.get("model"), dict):
        raise TypeError("restore takes a checkpoint dict (read_checkpoint's) with its model.")
    check_compatible(model.state_dict(), content["model"], source=source)
    saved_optimizer, saved_schedule = content.get("optimizer"), content.get("scheduler")
    if optimizer is not None and saved_optimizer is not None:
        _check_same_kind(optimizer.state_dict(), saved_optimizer, "optimizer", source)
    if scheduler is not None and saved_schedule is not None:
        _check_same_kind(scheduler.state_dict(), saved_schedule, "learning-rate schedule", source)
    model.load_state_dict(content["model"])
    if optimizer is not None and saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer)
    if scheduler is not None and saved_schedule is not None:
        scheduler.load_state_dict(saved_schedule)
    if content.get("rng") is not None:
        restore_rng_state(content["rng"])


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    map_location: str | torch.device | None = None,
    rng: bool = False,
    averaged: bool = False,
) -> dict:
    """Load weights (and optimizer/scheduler state when given) from ``path`` into the objects
    and return the whole checkpoint dict; ``rng=True`` also continues its random streams.
    ``averaged=True`` loads the EMA weights of a run trained with ``ema`` (the weights its
    validation and test numbers measured) instead of the raw ones. Lecture 06 reloads its
    capstone this way."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"load_checkpoint loads into a model (nn.Module), got {type(model).__name__}."
        )
    content = read_checkpoint(path, map_location or settings.model_device(model))
    if averaged:
        ema = (content.get("extra") or {}).get("ema")
        if ema is None:
            raise CheckpointMismatchError(
                f"{path} holds no EMA weights: it was trained without ema."
            )
        weights = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
        content = {**content, "model": weights}
    restore(content if rng else {**content, "rng": None}, model, optimizer, scheduler, str(path))
    return content


_SET_BY_SCHEDULES = {"params", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum"}
"""Optimizer-group entries a learning-rate schedule adds (compared with the schedule)."""


def _check_same_kind(mine: dict, saved: dict, what: str, source: str) -> None:
    """The saved state has the entries this object's state has (Adam's betas are not in an
    SGD state, a Lookahead state is not a plain optimizer's, a cosine's not a one-cycle's)."""
    if "param_groups" in mine:  # an optimizer: compare the settings in its first group
        mine = mine["param_groups"][0] if mine["param_groups"] else {}
        groups = saved.get("param_groups") if isinstance(saved, dict) else None
        saved = groups[0] if groups else {}
    missing = sorted(set(mine) - set(saved) - _SET_BY_SCHEDULES)
    if missing:
        raise CheckpointMismatchError(
            f"{source}'s {what} state is of another kind or damaged (it lacks "
            f"{', '.join(missing)}): build the {what} it was saved with, or load only the weights."
        )


def check_compatible(expected: dict, saved: dict, source: str = "the checkpoint") -> None:
    """Raise :class:`CheckpointMismatchError` listing missing, unexpected and mis-shaped keys
    when the state dict ``saved`` does not fit a model whose state dict is ``expected``."""
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    misshaped = [
        f"{key} (checkpoint {tuple(saved[key].shape)}, model {tuple(expected[key].shape)})"
        for key in expected
        if key in saved and saved[key].shape != expected[key].shape
    ]
    if not (missing or unexpected or misshaped):
        return
    parts = [
        f"{label}: {_listing(keys)}"
        for label, keys in (
            ("missing from the checkpoint", missing),
            ("unexpected in the checkpoint", unexpected),
            ("shape mismatches", misshaped),
        )
        if keys
    ]
    raise CheckpointMismatchError(
        f"{source} does not match this model (was the architecture changed since it was saved?). "
        + "; ".join(parts)
        + ". Rebuild the model the checkpoint came from, or delete it and train from scratch."
    )


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} (and {more} more)" if more > 0 else shown


def rng_state() -> dict:
    """The Python, NumPy and torch (CPU and CUDA) random states as plain, loadable values."""
    version, keys, gauss = random.getstate()
    kind, np_keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "keys": torch.tensor(keys), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    """Put back random states captured by :func:`rng_state` so training continues the same
    random streams as an uninterrupted run."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["keys"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ----------------------------------------------------------------------------------------------
# fit's bookkeeping: the History it fills, what identifies the run, a checkpoint after every
# epoch, exact resume, and a clear stop when the loss diverges.
# ----------------------------------------------------------------------------------------------

HISTORY_FORMAT = 2
"""Version of the saved history layout (2: ``val_*`` metrics and a full ``TrainConfig``)."""

RUN_IDENTITY = ("model", "parameters", "architecture", "train_images", "data", "augment_code",
                "loss", "mixer", "max_steps")  # fmt: skip
"""What a resumed run must share with the saved one, besides its config (a dry run's cap too:
a capped run and a full one never mix in one history)."""

DIVERGED_RATIO = 10
"""A run whose training loss ends this many times above its first step's is called diverged."""


def named(key: str, value: float) -> str:
    """A setting with a value to try, as the tool in use spells it: ``--grad-clip 1`` on the
    command line, ``grad_clip=1`` from Python (``support.words`` chooses)."""
    if words.in_command_line():
        return f"{words.flag_of(key)} {value:g}"
    return f"{key}={value:g}"


class TrainingDiverged(RuntimeError):
    """The training loss (or the weights) became NaN or infinite; the run stopped before
    saving that state."""

    def __init__(self, message: str, epoch: int, step: int, history: Any) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.history = history


def check_history_dict(values: Any) -> dict:
    """``values`` as History's fields, or one line saying why it is not a History."""
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
    return values


def read_history_json(path: str | os.PathLike) -> Any:
    """The JSON of a history file, or one line saying the file is not one."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(
            f"{path} is not a history JSON file (a run's history.json): give that file."
        ) from None


def stop_if_diverged(history: Any, losses: list[float], epoch: int, first_step: int) -> None:
    """Raise TrainingDiverged at the first non-finite loss of ``losses`` (the steps after
    ``history.step_loss``), keeping the history up to that step."""
    for offset, value in enumerate(losses):
        if not math.isfinite(value):
            history.step_loss.extend(losses[: offset + 1])
            del history.step_lr[len(history.step_loss) :]
            step = len(history.step_loss) - first_step
            raise TrainingDiverged(
                f"Training diverged: the loss became {value} at epoch {epoch + 1}, step {step} "
                f"(learning rate {history.step_lr[-1]:.3g}). Lower the learning rate "
                f"({named('lr', float(history.config['lr']) / 10)}) or clip the gradients "
                f"({named('grad_clip', 1)}); the last checkpoint, if any, is from before.",
                epoch=epoch + 1,
                step=step,
                history=history,
            )


def run_warnings(history: Any, classes: int | None, val_images: int | None) -> list[str]:
    """One line for each sign that a run learned nothing, with its likely cause and what to
    try: a last validation accuracy not above chance by more than two standard errors of the
    validation set, or a training loss that ended ``DIVERGED_RATIO`` times above its first."""
    found = []
    final, lr, epochs = history.epochs[-1], float(history.config["lr"]), history.config["epochs"]
    accuracy = final.get("val_acc")
    if classes and val_images and accuracy is not None:
        chance = 1 / classes
        margin = 2 * math.sqrt(chance * (1 - chance) / val_images)
        if accuracy <= chance + margin:
            found.append(
                f"Learned nothing: validation accuracy {accuracy:.2%} is not above chance "
                f"({chance:.0%}) by more than two standard errors ({100 * margin:.1f} points on "
                f"{val_images:,} images). Likely cause: a learning rate far too high or too low, "
                f"or too few steps ({len(history.step_loss):,}); try {named('lr', lr / 10)} or "
                f"{named('lr', lr * 10)}, or more epochs ({named('epochs', 2 * epochs)})."
            )
    first, last = (history.step_loss or [None])[0], final["train_loss"]
    if first and last >= DIVERGED_RATIO * first:
        found.append(
            f"Diverged: the training loss ended at {last:.3g}, {last / first:.0f}x its first "
            f"value ({first:.3g}). Likely cause: the learning rate ({lr:g}) is too high; try "
            f"{named('lr', lr / 10)}, or clip the gradients ({named('grad_clip', 1)})."
        )
    return found


def evaluated_images(count: int | None, batch_size: int | None) -> int | None:
    """How many of ``count`` images an evaluation in batches of ``batch_size`` sees: all, or
    in a dry run (``settings.MAX_STEPS``) the first batches' only (None when not known)."""
    if count and batch_size and settings.MAX_STEPS:
        return min(count, settings.MAX_STEPS * batch_size)
    return count


def _images_in(loader: Any) -> int | None:
    return getattr(loader, "num_images", None) or _length(getattr(loader, "dataset", None))


def missing_folders(folder: str | os.PathLike | None) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: what a run
    creates, and removes again (``remove_if_empty``) when it ends before writing into them."""
    if folder is None:
        return []
    folder = Path(folder).expanduser()
    return [path for path in (folder, *folder.parents) if not path.exists()]


def remove_if_empty(folders: Sequence[Path]) -> None:
    """Remove the folders ``missing_folders`` listed, deepest first, as long as they are
    empty: never a folder holding anything, and never one that existed before the run."""
    for path in folders:
        if not path.exists():
            continue
        try:
            path.rmdir()  # only ever removes an empty folder
        except OSError:  # it holds something: keep it, and so its parents
            return


def postfix(record: dict) -> dict:
    """What the progress bar shows after the step counts: epoch, loss and accuracies."""
    shown = {"epoch": record["epoch"], "loss": f"{record['train_loss']:.3f}"}
    shown["acc"] = f"{record['train_acc']:.3f}"
    if record.get("val_acc") is not None:
        shown["val_acc"] = f"{record['val_acc']:.3f}"
    return shown


def code_fingerprint(pipeline: Sequence[Callable]) -> str | None:
    """A short digest of the code of a pipeline's own functions (not the course's
    augmentations, whose specs say everything): ``fit`` records it so that resuming after
    editing a function of the same name is refused. None when there is none."""
    codes = [_step_code(step) for step in pipeline if not isinstance(step, augment.Augmentation)]
    return hashlib.sha1(b"".join(codes)).hexdigest()[:12] if codes else None


def _step_code(step: Callable) -> bytes:
    """What a custom step runs: its code and constants, and the values it closes over, was
    given (``functools.partial``) or holds (a callable object's attributes); memory
    addresses in their text are dropped, so the same step gives the same bytes next time."""
    if isinstance(step, functools.partial):
        settings = repr((step.args, sorted(step.keywords.items())))
        return _step_code(step.func) + settings.encode()
    function = getattr(step, "__func__", step)
    code = getattr(function, "__code__", None)
    if code is not None:
        cells = [cell.cell_contents for cell in function.__closure__ or ()]
        held = repr((code.co_consts, cells))
    else:  # a callable object: its class's __call__ and its attributes
        code = getattr(type(step).__call__, "__code__", None)
        held = repr(sorted(vars(step).items())) if hasattr(step, "__dict__") else ""
    raw = code.co_code if code is not None else b""
    return raw + re.sub(r" at 0x[0-9a-fA-F]+", "", held).encode()


def data_fingerprint(loader: Any) -> str | None:
    """A short digest of a DeviceLoader's images and labels in their order, so a resume on
    other images of the same size is refused (None for other loaders)."""
    if not (hasattr(loader, "images") and hasattr(loader, "labels")):
        return None
    sums = loader.images.reshape(len(loader.images), -1).sum(1, dtype=torch.int64)
    digest = hashlib.sha1(loader.labels.cpu().numpy().tobytes())
    digest.update(sums.cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


class Run:
    """What ``fit`` records besides the step: a History naming the config, model and data
    (with fingerprints, so a resume can tell a changed run), a checkpoint after every epoch,
    resuming from one, the progress bar and ``on_epoch``."""

    def __init__(self, history_class: type, name: str | None, config: Any, model: nn.Module,
                 train_loader: Any, val_loader: Any, loss: Any, mixer: Any, optimizer: Any,
                 checkpoint: str | os.PathLike | None, precision: str,
                 memory_format: torch.memory_format) -> None:  # fmt: skip
        device = settings.model_device(model)  # where fit has just put it
        self.classes = getattr(train_loader, "classes", None)
        self.default_loss = loss is None
        self.checkpoint = Path(checkpoint).expanduser() if checkpoint is not None else None
        self.first_epoch = 0
        self.state: dict = {}
        val_size = (_images_in(val_loader), getattr(val_loader, "batch_size", None))
        run = {
            "model": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "architecture": hashlib.sha1(repr(model).encode()).hexdigest()[:12],
            "train_images": _images_in(train_loader),
            "data": data_fingerprint(train_loader),
            "augment_code": code_fingerprint(getattr(train_loader, "pipeline", ())),
            "loss": repr(loss) if loss is not None else None,
            "mixer": (getattr(mixer, "__qualname__", None) or repr(mixer)) if mixer else None,
            "device": str(device),
            "precision": precision,
            "channels_last": memory_format == torch.channels_last,
            "max_steps": settings.MAX_STEPS or None,  # a dry run's cap on every epoch
            "val_images": evaluated_images(*val_size),  # the images each val_acc measured
        }
        self.history = history_class(
            name=name or type(model).__name__,
            config=config.to_dict(),
            run=run,
            source=getattr(train_loader, "source", None),
            provenance=getattr(train_loader, "provenance", None),
            eval_split=getattr(val_loader, "split", None),
        )
        if optimizer is not None:  # a ready-built optimizer: record what it really uses
            group = optimizer.param_groups[0]
            self.history.config |= {"optimizer": f"{type(optimizer).__name__} (ready-built)"}
            self.history.config |= {k: group.get(k) for k in ("lr", "weight_decay", "momentum")}

    def start(self, resume: bool, model: nn.Module, optimizer: Any, schedule: Any, scaler: Any,
              ema: Any, loader: Any) -> Any:  # fmt: skip
        """Hold the run's objects for checkpoints; with ``resume``, restore the checkpoint's
        state into them. Returns the History to fill."""
        self.state = {"model": model, "optimizer": optimizer, "schedule": schedule,
                      "scaler": scaler, "ema": ema, "loader": loader}  # fmt: skip
        if resume:
            self.first_epoch = _resume(self.checkpoint, self.state, self.history)
        return self.history

    def progress_bar(self, steps: int, progress: bool) -> tqdm:
        """One bar for the whole run (a widget in Jupyter with ipywidgets, as on Colab), redrawn
        every ``TEXT_BAR_SECONDS`` unless a terminal overwrites its line."""
        epochs = self.history.config["epochs"]
        return tqdm(
            total=epochs * steps,
            initial=self.first_epoch * steps,
            desc=self.history.name,
            disable=not progress,
            mininterval=0.1 if sys.stderr.isatty() else TEXT_BAR_SECONDS,
        )

    def end_epoch(self, epoch: int, record: dict, bar: tqdm, on_epoch: Any) -> bool:
        """Show the epoch, note in the history whether the run so far learned anything, write
        the checkpoint, and ask ``on_epoch`` whether to stop."""
        bar.set_postfix(postfix(record))
        classes = len(self.classes) if self.classes else None
        self.history.warnings = run_warnings(self.history, classes, self.history.run["val_images"])
        if self.checkpoint is not None:
            _save(self.checkpoint, epoch + 1, self.state, self.history)
        if on_epoch is None:
            return False
        answer = on_epoch(epoch + 1, record)
        if answer is not None and not isinstance(answer, bool):
            raise TypeError(f"on_epoch must return True (stop), False or None, got {answer!r}.")
        return bool(answer)


def _save(path: Path, epochs_done: int, state: dict, history: Any) -> None:
    """Write the checkpoint after ``epochs_done`` epochs, once every tensor is finite."""
    model = state["model"]
    broken = [name for name, t in model.state_dict().items() if not torch.isfinite(t).all()]
    if broken:
        raise TrainingDiverged(
            f"Training diverged: after epoch {epochs_done} {len(broken)} weight or BatchNorm "
            f"tensor(s) are not finite (e.g. {broken[0]}), so no checkpoint was written; the "
            f"last checkpoint, if any, is from before. Lower the learning rate "
            f"({named('lr', float(history.config['lr']) / 10)}) or clip the gradients "
            f"({named('grad_clip', 1)}).",
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
    save_checkpoint(
        path,
        model,
        state["optimizer"],
        state["schedule"],
        epoch=epochs_done,
        history=history.to_dict(),
        config=history.config,
        extra=extra,
    )


def _resume(path: Path, state: dict, history: Any) -> int:
    """Load the checkpoint at ``path`` into the run's objects and ``history``; return the
    number of finished epochs (0, with a printed note, when there is no checkpoint yet)."""
    if not path.is_file():
        print(f"No checkpoint at {path} yet: starting from scratch.")
        return 0
    saved = read_checkpoint(path, map_location=settings.model_device(state["model"]))
    try:
        return _continue(path, saved, state, history)
    except CheckpointMismatchError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        first_line = (str(error).splitlines() or [""])[0]
        raise CheckpointMismatchError(
            f"{path} is damaged or was not written by fit ({type(error).__name__}: "
            f"{first_line}); move it away and train afresh."
        ) from None


def _continue(path: Path, saved: dict, state: dict, history: Any) -> int:
    """``_resume`` once the file is read: compare the saved run with this one (only more
    epochs, for a schedule that does not depend on them, may change), then restore the
    history, weights, optimizer, schedule and random states."""
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
        raise CheckpointMismatchError(
            f"{path} was saved by a different run; resuming it with other settings would mix "
            f"two runs ({'; '.join(changed)}). Resume with the same settings, or train afresh "
            "in a new folder."
        )
    epochs = history.config["epochs"]
    if epochs < saved["epoch"]:
        raise CheckpointMismatchError(
            f"{path} has {saved['epoch']} finished epochs, more than the {epochs} asked for: "
            "resume with at least as many epochs."
        )
    if epochs != planned["epochs"] and planned["schedule"] not in optim.EXTENSIBLE_SCHEDULES:
        raise CheckpointMismatchError(
            f"{path} was planned for {planned['epochs']} epochs with the {planned['schedule']} "
            f"schedule, whose shape depends on the number of epochs, so it cannot be extended "
            f"to {epochs}; train a new run with epochs={epochs}."
        )
    restored = type(history).from_dict(saved["history"])  # before any weight is touched
    if len(restored.epochs) != saved["epoch"]:
        raise ValueError(f"epoch {saved['epoch']} but {len(restored.epochs)} epochs recorded")
    restore(saved, state["model"], state["optimizer"], state["schedule"], source=str(path))
    extra = saved["extra"] or {}
    for key in ("loader", "ema", "scaler"):
        if key in extra and state[key] is not None and hasattr(state[key], "load_state_dict"):
            state[key].load_state_dict(extra[key])
    history.epochs = restored.epochs
    history.step_lr = restored.step_lr
    history.step_loss = restored.step_loss
    history.warnings = restored.warnings
    print(f"Resumed from {path} after epoch {saved['epoch']}.")
    return saved["epoch"]
