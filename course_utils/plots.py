"""Every figure a notebook shows more than once: training curves, learning-rate schedules,
a confusion matrix, per-class accuracy and image grids.

Each function returns the matplotlib Figure and draws on ``ax`` when given one. Histories
are read by their fields only (see ``train.History``); runs on the synthetic stand-in
data say so in their panel titles, so no stand-in curve is mistaken for CIFAR-10.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from course_utils import settings
from course_utils.support.checkpoint import check_history_dict

SYNTHETIC_NOTE = "synthetic stand-in data"

# How each per-epoch metric is titled, labelled (with its unit) and scaled for display.
METRIC_DISPLAY: dict[str, tuple[str, str, float]] = {
    "loss": ("Loss", "loss", 1.0),
    "acc": ("Accuracy", "accuracy (%)", 100.0),
    "lr": ("Learning rate", "learning rate", 1.0),
    "images_per_sec": ("Throughput", "training images / s", 1.0),
    "seconds": ("Epoch time", "seconds per epoch (s)", 1.0),
}


def log_loss_axis(ax: Axes) -> None:
    """Show a loss on a log scale with plain-number ticks (1, 1.5, 2, 3, 4, ...): early jumps
    and slow late decreases stay readable in one panel (lectures 01 and 01b)."""
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_locator(LogLocator(base=2, subs=(1.0, 1.5)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("loss (log scale)")


def source_note(source: str | None, max_steps: int | None = None) -> str | None:
    """The note a figure carries: a warning for the synthetic stand-in, and the cap of a dry
    run (``max_steps``, default ``settings.MAX_STEPS``), whose numbers measure nothing."""
    notes = [SYNTHETIC_NOTE if source == "synthetic" else None, settings.dry_run_note(max_steps)]
    return "; ".join(note for note in notes if note) or None


def titled(title: str, source: str | None) -> str:
    """A figure title, with a second line naming the synthetic stand-in when the data is it,
    and a dry run's cap (every lecture titles its figures this way)."""
    return _with_note(title, source_note(source))


def _with_note(title: str | None, note: str | None) -> str:
    return "\n".join(part for part in (title, f"({note})" if note else None) if part)


def _histories(history_or_list: Any) -> list[Any]:
    """A list of histories; a dict from ``History.to_dict()`` is read by its fields."""
    single = hasattr(history_or_list, "epochs") or isinstance(history_or_list, Mapping)
    histories = [history_or_list] if single else list(history_or_list)
    if not histories:
        raise ValueError("Nothing to plot: pass a History or a list of Histories.")
    histories = [
        SimpleNamespace(**check_history_dict(dict(h)))
        if isinstance(h, Mapping) and "epochs" in h
        else h
        for h in histories
    ]
    for history in histories:
        if not hasattr(history, "epochs"):
            raise TypeError(f"Expected History objects (from fit()), got {type(history).__name__}.")
    return histories


def _check_records(history: Any, x: str) -> None:
    """Every epoch record has the key the x axis reads: ``epoch``, or ``elapsed`` for time."""
    key = "epoch" if x == "epoch" else "elapsed"
    missing = [i for i, epoch in enumerate(history.epochs, 1) if epoch.get(key) is None]
    if missing:
        fix = "records from fit() have it" if x == "epoch" else "plot with x='epoch'"
        raise ValueError(
            f"History {history.name!r}: epoch record {missing[0]} has no {key!r} to plot "
            f"against x={x!r}; {fix}."
        )


def _runs_note(histories: list[Any]) -> str | None:
    """The stand-in's note if any run used it, and the cap any of them recorded as a dry run."""
    sources = [getattr(history, "source", None) for history in histories]
    caps = [(getattr(history, "run", None) or {}).get("max_steps") or 0 for history in histories]
    return source_note("synthetic" if "synthetic" in sources else None, max(caps))


def _axes_for(ax: Axes | Iterable[Axes] | None, rows: int, cols: int, figsize) -> list[Axes]:
    """``rows * cols`` axes: new ones in a new figure, or the first of those passed in."""
    if ax is None:
        _, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
        return list(axes.ravel())
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) < rows * cols:
        raise ValueError(f"This figure needs {rows * cols} axes, got {len(axes)}.")
    return axes[: rows * cols]


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _epoch_values(history: Any, key: str, scale: float = 1.0) -> np.ndarray:
    return np.array(
        [np.nan if epoch.get(key) is None else epoch[key] * scale for epoch in history.epochs],
        dtype=float,
    )


def _x_axis(history: Any, x: str) -> tuple[np.ndarray, str]:
    if x == "epoch":
        return _epoch_values(history, "epoch"), "epoch"
    seconds = _epoch_values(history, "elapsed")
    if np.nanmax(seconds) > 300:
        return seconds / 60, "training time (min)"
    return seconds, "training time (s)"


def _metric_lines(history: Any, metric: str) -> list[tuple[str, str | None, str]]:
    """(epoch key, split label, line style) for each curve of ``metric`` in this history: the
    held-out curve is labelled with the split it was measured on (``History.eval_split``)."""
    first = history.epochs[0]
    held_out = getattr(history, "eval_split", None) or "held-out"
    lines = [
        (f"{split}_{metric}", label, style)
        for split, label, style in (("train", "train", "--"), ("val", held_out, "-"))
        if any(epoch.get(f"{split}_{metric}") is not None for epoch in history.epochs)
    ]
    if not lines and metric in first:
        lines = [(metric, None, "-")]
    if not lines:
        raise ValueError(
            f"History {history.name!r} has no metric {metric!r}; "
            f"its epochs have {', '.join(first)}."
        )
    return lines


def plot_history(
    history_or_list: Any,
    metrics: str | Sequence[str] = ("loss", "acc"),
    x: str = "epoch",
    title: str | None = None,
    ax: Axes | Iterable[Axes] | None = None,
) -> Figure:
    """Train (dashed) and held-out (solid, labelled with its split: validation or test)
    curves per metric, one panel per metric and one colour per run; ``x="time"`` plots
    against training wall-clock time instead of epochs. Every training lecture draws it."""
    histories = _histories(history_or_list)
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics:
        raise ValueError("metrics is empty: name at least one, e.g. metrics=('loss', 'acc').")
    if x not in ("epoch", "time"):
        raise ValueError(f"x must be 'epoch' or 'time', got {x!r}.")
    for history in histories:
        if not history.epochs:
            raise ValueError(f"History {history.name!r} has no finished epoch to plot.")
        _check_records(history, x)
    axes = _axes_for(ax, 1, len(metrics), figsize=(5.5 * len(metrics), 4))
    note = _runs_note(histories)
    colors = sns.color_palette(n_colors=len(histories))
    for axis, metric in zip(axes, metrics, strict=True):
        panel_title, y_label, scale = METRIC_DISPLAY.get(metric, (metric, metric, 1.0))
        for history, color in zip(histories, colors, strict=True):
            xs, x_label = _x_axis(history, x)
            for key, split, style in _metric_lines(history, metric):
                label = f"{history.name} {split}" if split else history.name
                ys = _epoch_values(history, key, scale)
                axis.plot(xs, ys, linestyle=style, color=color, marker=".", label=label)
        axis.set_title(_with_note(panel_title, note))
        if x == "epoch":
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(x_label)
        axis.set_ylabel(y_label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure = axes[0].figure
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_lr(history_or_list: Any, title: str | None = None, ax: Axes | None = None) -> Figure:
    """The learning rate at every optimizer step, one line per run (the schedule's shape)."""
    histories = _histories(history_or_list)
    (axis,) = _axes_for(ax, 1, 1, figsize=(6, 3.5))
    for history in histories:
        if not history.step_lr:
            raise ValueError(f"History {history.name!r} recorded no learning rates (step_lr).")
        steps = np.arange(1, len(history.step_lr) + 1)
        axis.plot(steps, history.step_lr, label=history.name)
    axis.set_title(_with_note(title or "Learning-rate schedule", _runs_note(histories)))
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("learning rate")
    axis.grid(alpha=0.3)
    axis.legend()
    return axis.figure


def plot_confusion(
    matrix: Any,
    classes: Sequence[str],
    normalize: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
    note: str | None = None,
) -> Figure:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted); ``normalize``
    shows each row as fractions of that true class, so the diagonal is per-class recall."""
    if classes is None or isinstance(classes, str):
        raise TypeError(
            f"plot_confusion needs the class names (classes=...), one per row, got {classes!r}."
        )
    counts = _to_numpy(matrix).astype(float)
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(
            f"A confusion matrix for {len(classes)} classes must be "
            f"{len(classes)}x{len(classes)}, got shape {counts.shape}."
        )
    if normalize:
        row_totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    else:
        values = counts
    (axis,) = _axes_for(ax, 1, 1, figsize=(7.5, 6))
    sns.heatmap(
        values,
        ax=axis,
        annot=len(classes) <= 20,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        square=True,
        xticklabels=classes,
        yticklabels=classes,
        cbar_kws={"label": "fraction of the true class" if normalize else "images"},
    )
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.tick_params(axis="x", labelrotation=45)
    axis.set_title(_with_note(title or "Confusion matrix", note))
    return axis.figure


def plot_per_class(
    accuracies: Any,
    classes: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    note: str | None = None,
) -> Figure:
    """Horizontal bars of per-class accuracy (fractions in [0, 1], or a class -> accuracy
    mapping), with the mean as a dashed line, so the hardest classes stand out."""
    if isinstance(accuracies, Mapping):
        classes = list(accuracies) if classes is None else classes
        accuracies = [accuracies[name] for name in classes]
    if classes is None:
        raise ValueError("Pass the class names (classes=...) along with the accuracies.")
    values = _to_numpy(accuracies).astype(float).ravel()
    if len(values) != len(classes):
        raise ValueError(f"Got {len(values)} accuracies for {len(classes)} classes.")
    if not len(values):
        raise ValueError("Nothing to plot: accuracies is empty.")
    if np.isnan(values).any():
        absent = list(classes)[int(np.flatnonzero(np.isnan(values))[0])]
        raise ValueError(
            f"the accuracy of class {absent!r} is NaN (no images of it in the set?); leave "
            "such classes out."
        )
    if values.min() < 0 or values.max() > 1:
        raise ValueError("Accuracies must be fractions in [0, 1]; divide percentages by 100.")
    percent = values * 100
    (axis,) = _axes_for(ax, 1, 1, figsize=(6, 0.35 * len(classes) + 1.2))
    bars = axis.barh(list(classes), percent, color=sns.color_palette(n_colors=len(classes)))
    axis.bar_label(bars, fmt="%.1f", padding=2)
    axis.axvline(
        percent.mean(),
        color="0.3",
        linestyle="--",
        label=f"mean over classes {percent.mean():.1f}%",
    )
    axis.invert_yaxis()
    axis.set_xlim(0, 108)
    axis.set_xlabel("accuracy (%)")
    axis.set_ylabel("class")
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    axis.set_title(_with_note(title or "Accuracy per class", note))
    return axis.figure


def _displayable(images: Any, mean: Sequence[float] | None, std: Sequence[float] | None):
    """Images as float [N, H, W, C] in [0, 1], undoing a normalisation when mean/std given."""
    images = torch.as_tensor(_to_numpy(images))
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"Expected images [N, 3, H, W] (or [N, 1, H, W]), got {tuple(images.shape)}; "
            "channels-last arrays need .permute(0, 3, 1, 2) first."
        )
    if (mean is None) != (std is None):
        raise ValueError("Pass both mean and std to undo a normalisation, or neither.")
    if images.dtype == torch.uint8:
        if mean is not None:
            raise ValueError("uint8 images are not normalised; drop mean and std.")
        images = images.float() / 255
    else:
        images = images.float()
        if mean is not None:
            shape = (1, -1, 1, 1)
            images = images * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _image_titles(count: int, labels: Any, classes: Sequence[str] | None, titles) -> list[str]:
    if titles is not None:
        if len(titles) != count:
            raise ValueError(f"Got {len(titles)} titles for {count} images.")
        return [str(title) for title in titles]
    if labels is None:
        return [""] * count
    indices = [int(label) for label in _to_numpy(labels).ravel()]
    outside = [i for i in indices if classes is not None and not 0 <= i < len(classes)]
    if outside:
        raise ValueError(
            f"label {outside[0]} has no class name: classes has {len(classes)} (labels "
            f"0..{len(classes) - 1})."
        )
    return [classes[i] if classes is not None else str(i) for i in indices]


def show_images(
    images: Any,
    labels: Any = None,
    classes: Sequence[str] | None = None,
    nrow: int = 8,
    titles: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ax: Iterable[Axes] | None = None,
    note: str | None = None,
) -> Figure:
    """A grid of images ([N, 3, H, W], uint8 or float in [0, 1]) with ``nrow`` per row,
    titled by ``titles`` or by class names of ``labels``; ``mean``/``std`` undo a
    normalisation. ``ax``: at least N axes to draw into (e.g. from plt.subplots)."""
    if isinstance(nrow, bool) or not isinstance(nrow, numbers.Integral):
        raise TypeError(f"nrow is the number of images per row, a whole number; got {nrow!r}.")
    if nrow < 1:
        raise ValueError(f"nrow is the number of images per row, at least 1; got {nrow}.")
    pictures = _displayable(images, mean, std)
    count = len(pictures)
    if count == 0:
        raise ValueError("Nothing to show: the batch of images is empty.")
    names = _image_titles(count, labels, classes, titles)
    if ax is None:
        cols = min(nrow, count)
        rows = math.ceil(count / cols)
        axes = _axes_for(None, rows, cols, figsize=(1.6 * cols, 2.0 * rows + 0.3))
    else:
        axes = _axes_for(ax, 1, count, figsize=None)
    for axis in axes:
        axis.axis("off")
    for axis, picture, name in zip(axes, pictures, names, strict=False):
        if picture.shape[-1] == 1:
            axis.imshow(picture[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            axis.imshow(picture)
        axis.set_title(name, fontsize=9)
    figure = axes[0].figure
    if note:
        figure.suptitle(f"({note})", fontsize=10)
    figure.tight_layout()
    return figure


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix), creating missing folders."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        raise ValueError(
            f"save_figure needs a file name with a format suffix, e.g. {path / 'figure.png'}; "
            f"got {'the folder ' if path.is_dir() else ''}{path}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
