"""The door checks of ``course_utils.data``: an ``ImageData`` built from a student's tensors,
its ``subset`` and ``holdout``, ``cifar10``'s and the stand-in's arguments, normalisation
statistics and ``channel_stats``. Each raises one line saying what to do. This module imports
nothing of the package (an ImageData is recognised by its ``images`` attribute)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

SOURCES = ("cifar10", "synthetic")  # the values of ImageData.source
SPLITS = ("train", "validation", "test")  # the values of ImageData.split


def _whole(name: str, value: Any) -> None:
    """Raise a TypeError naming ``name`` unless ``value`` is a whole number (an int)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")


def check_split(split: Any, hint: str = "") -> None:
    """A split to load is "train" or "test"."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}{hint}.")


def check_cifar10(split: Any, n: Any) -> None:
    """``cifar10(split, n=...)``: a split to load and, when given, a number of images."""
    check_split(
        split, "; a validation set comes from cifar10('train', ...).holdout(fraction, seed)"
    )
    if n is not None and n < 1:
        raise ValueError(f"n is the number of images to keep and must be at least 1, got {n}.")


def check_synthetic(n: Any, split: Any) -> None:
    """``synthetic_cifar10(n, split=...)``."""
    check_split(split)
    _whole("n", n)
    if n < 1:
        raise ValueError(f"n is the number of images to generate and must be at least 1, got {n}.")


def check_image_data(images: Any, labels: Any, classes: Any, source: Any, split: Any) -> None:
    """The fields of an ``ImageData``: uint8 images [N, 3, H, W], one int64 label per image
    within the class names (each named once), a known source and split."""
    if isinstance(classes, str):
        raise TypeError(
            f"classes must be a list of class names, got the string {classes!r}; "
            f"write e.g. ({classes!r},) for a single class."
        )
    classes = tuple(classes)
    repeated = sorted({name for name in classes if classes.count(name) > 1})
    if repeated:
        raise ValueError(
            f"classes must name each class once, but {', '.join(map(repr, repeated))} "
            "appears more than once."
        )
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        raise TypeError(
            f"images must be a uint8 tensor of shape [N, 3, H, W], got "
            f"{getattr(images, 'dtype', type(images).__name__)}; "
            "convert with (x * 255).round().to(torch.uint8)."
        )
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape [N, 3, H, W], got {list(images.shape)}; "
            "put the colour channels second (x.permute(0, 3, 1, 2) for [N, H, W, 3])."
        )
    if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
        raise TypeError(
            f"labels must be a 1-D int64 tensor, got "
            f"{getattr(labels, 'dtype', type(labels).__name__)} with shape "
            f"{list(getattr(labels, 'shape', []))}; convert with labels.long()."
        )
    if len(labels) != len(images):
        raise ValueError(
            f"images and labels disagree in length ({len(images)} vs {len(labels)}); "
            "pass one label per image."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(
            f"labels must lie in 0..{len(classes) - 1} (one per class name), "
            f"found {int(labels.min())}..{int(labels.max())}."
        )
    if source not in SOURCES:
        raise ValueError(f"source must be 'cifar10' or 'synthetic', got {source!r}.")
    if not isinstance(split, str) or split not in SPLITS:
        hint = " (the old train=True/False flag is now split='train'/'test')"
        raise ValueError(
            f"split must be 'train', 'validation' or 'test', got {split!r}"
            f"{hint if isinstance(split, bool) else ''}."
        )


def check_subset(n: Any, size: int) -> None:
    """``ImageData.subset(n)`` of a set of ``size`` images."""
    _whole("subset(n)", n)
    if not 1 <= n <= size:
        raise ValueError(f"subset(n) needs 1 <= n <= {size} (the set's size), got {n}.")


def check_holdout(split: str, fraction: Any, seed: Any, size: int) -> None:
    """``ImageData.holdout(fraction, seed)`` of a set of ``size`` images."""
    if split != "train":
        raise ValueError(
            f"holdout carves a validation set out of the training split, but this is the "
            f"{split} split; call it on cifar10('train', ...)."
        )
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"holdout's fraction must be a number in (0, 1), got {fraction!r}.")
    _whole("holdout's seed", seed)
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"fraction is the share to hold out and must be between 0 and 1, got {fraction}."
        )
    if not 0 < round(size * fraction) < size:
        raise ValueError(
            f"holding out {fraction} of {size} images leaves one part empty; "
            "use more images or a fraction nearer 0.5."
        )


def check_statistics(mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
    """Host values (tensors are left alone: checking them would sync a GPU) must be one
    finite number per channel in [0, 1] units, like CIFAR10_MEAN and CIFAR10_STD."""
    for name, values in (("mean", mean), ("std", std)):
        if isinstance(values, Tensor):
            continue
        if (
            isinstance(values, (str, bytes))
            or not isinstance(values, Sequence)
            or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values)
        ):
            raise ValueError(
                f"{name} must be one finite number per channel, e.g. CIFAR10_{name.upper()}; "
                f"got {values!r}."
            )
        positive = name == "std"  # a std of 0 would divide by zero
        if not all((v > 0 if positive else v >= 0) and v <= 1 for v in values):
            raise ValueError(
                f"{name} must be in [0, 1] units (pixel / 255){', above 0,' * positive} in "
                f"every channel, got {list(values)}; divide 0-255 statistics by 255."
            )


def check_normalize(images: Tensor, mean: Any, std: Any) -> None:
    """``normalize``'s batch of images and statistics."""
    if images.dim() != 4:
        raise ValueError(
            f"normalize expects a batch of images [B, C, H, W], got shape {list(images.shape)}; "
            "for a single image use image.unsqueeze(0)."
        )
    check_statistics(mean, std)
    if images.is_floating_point() and images.numel():
        low, high = float(images.amin()), float(images.amax())
        if low < 0 or high > 2:
            raise ValueError(
                f"float images must be pixels in [0, 1], these span [{low:.3g}, {high:.3g}]: "
                + (
                    "already normalised? normalise once"
                    if low < 0
                    else "divide 0-255 pixels by 255"
                )
                + ", or pass the uint8 images themselves."
            )
    channels = images.shape[1]
    counts = [
        values.numel() if isinstance(values, Tensor) else len(values) for values in (mean, std)
    ]
    if counts != [channels, channels]:
        raise ValueError(
            f"mean and std need one value per channel ({channels}), got {counts[0]} "
            f"and {counts[1]}."
        )


def check_channel_stats(images: Any, batch_size: Any) -> None:
    """``channel_stats``' uint8 images [N, C, H, W] (not an ImageData) and batch size."""
    if hasattr(images, "images"):
        raise TypeError("channel_stats takes the images tensor: channel_stats(data.images).")
    if not isinstance(images, Tensor):
        raise TypeError(
            f"channel_stats expects uint8 images [N, C, H, W] (a tensor), got "
            f"{type(images).__name__}."
        )
    _whole("batch_size", batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(
            f"channel_stats expects uint8 images [N, C, H, W], got {images.dtype} with shape "
            f"{list(images.shape)}."
        )
    channels = images.shape[1]
    if channels > 4 and images.shape[-1] in (1, 3, 4):
        raise ValueError(
            f"channel_stats got shape {list(images.shape)}: {channels} channels looks like "
            "[N, H, W, C]; put the channels second with images.permute(0, 3, 1, 2)."
        )
    if images.numel() == 0:
        raise ValueError(
            f"channel_stats got no pixels (shape {list(images.shape)}): give at least one image."
        )
