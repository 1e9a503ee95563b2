"""CIFAR-10 as uint8 tensors: the real dataset (md5-checked, cached) or a synthetic stand-in.

Everything the course trains on comes from ``cifar10(split, source)``, which returns an
``ImageData``: images uint8 [N, 3, 32, 32], labels int64 [N], the class names and where the
data came from. ``source="auto"`` uses real CIFAR-10 when it is on disk or downloadable and
otherwise says so and falls back to ``synthetic_cifar10``, so every notebook runs offline.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import tarfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets.utils import check_integrity, download_url, extract_archive

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
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL = "cifar-10-python.tar.gz"
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


class DataNotFoundError(RuntimeError):
    """CIFAR-10 is not on disk and could not be downloaded."""


class DataCorruptedError(DataNotFoundError):
    """A CIFAR-10 file on disk is truncated or damaged (md5 mismatch or unreadable)."""


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
        self.classes = tuple(self.classes)
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
    source: str = "auto",
    n: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> ImageData:
    """The course's one way to get data: CIFAR-10 ``split`` ("train" or "test") as ImageData.

    ``source``: "cifar10" (real data, downloaded if needed), "synthetic" (the stand-in,
    generated from ``seed``), or "auto" (real data when on disk or downloadable, else the
    stand-in, announced in one printed line). ``n`` keeps the first n images (synthetic:
    generates n; default 50,000 train / 10,000 test). A download mirror or a local tarball is
    chosen with the ``CIFAR10_SOURCE`` environment variable (see ``load_cifar10``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if source not in ("auto", "cifar10", "synthetic"):
        raise ValueError(
            f"source must be 'auto', 'cifar10' or 'synthetic', got {source!r}; to download "
            f"from a mirror or use a local tarball, set the {SOURCE_ENV} environment variable."
        )
    if n is not None and n < 1:
        raise ValueError(f"n is the number of images to keep and must be at least 1, got {n}.")
    folder = Path(root).expanduser() if root is not None else settings.data_root()
    if source == "cifar10" or (source == "auto" and _on_disk(folder)):
        return _real_cifar10(folder, split, n)
    if source == "auto":
        problem = "no internet"
        if _reachable(_resolve_source(None)):
            try:
                return _real_cifar10(folder, split, n)
            except DataNotFoundError:
                problem = "the download failed"
        print(
            f"CIFAR-10 not found in {folder} and {problem}: using the synthetic stand-in "
            "(10 made-up classes); see data/README.md"
        )
    return synthetic_cifar10(n or SYNTHETIC_SIZES[split], seed=seed, split=split)


def _real_cifar10(root: Path, split: str, n: int | None) -> ImageData:
    images, labels = load_cifar10(root, train=split == "train")
    data = ImageData(images, labels, CIFAR10_CLASSES, "cifar10", split, OFFICIAL_PROVENANCE)
    return data.subset(n) if n is not None and n < len(data) else data


def _on_disk(root: Path) -> bool:
    """Whether some form of CIFAR-10 (cache, extracted batches, tarball) is available locally."""
    configured = os.environ.get(SOURCE_ENV, "")
    return (
        any((root / _cache_name(train)).is_file() for train in (True, False))
        or (root / BATCH_FOLDER).is_dir()
        or (root / TARBALL).is_file()
        or (bool(configured) and not _is_url(configured) and Path(configured).expanduser().exists())
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
    variable) names a mirror URL or a local copy of the tarball: the default server is known
    to throttle to tens of kB/s, so a mirror or a copy on your drive is often much faster.
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
    batches = folder / BATCH_FOLDER
    unusable = [name for name in files if not _batch_intact(batches / name)]
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


def _missing_message(root: Path, reason: str) -> str:
    return (
        f"CIFAR-10 is not available in {root} ({reason}): place {TARBALL} in {root}, set "
        f"{SOURCE_ENV} to a mirror URL or a local copy of the tarball, or use the synthetic "
        "stand-in with cifar10(split, source='synthetic')."
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
    if not download:
        if local.is_file():
            raise DataCorruptedError(
                f"{local} is truncated or damaged (md5 mismatch); delete it and download again."
            )
        raise DataNotFoundError(_missing_message(root, "nothing on disk and download=False"))
    _download(source, root)
    return local


def _download(url: str, root: Path) -> None:
    """Download the tarball into ``root`` with torchvision (md5-checked), failing clearly."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url(url, str(root), filename=TARBALL, md5=TARBALL_MD5)
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


def _read_cache(cache: Path, files: tuple[str, ...]) -> tuple[Tensor, Tensor] | None:
    """The cached split, or None when there is none or it is damaged or stale (then rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            images, labels = stored["images"], stored["labels"]
            checksums = [str(value) for value in stored["md5"]]
        valid = (
            images.dtype == np.uint8
            and images.ndim == 4
            and images.shape[1:] == (3, 32, 32)
            and labels.dtype == np.int64
            and labels.shape == (len(images),)
            and checksums == [BATCH_MD5[name] for name in files]
        )
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
    """Write the split atomically (temp file, then rename), with the md5s of its batch files."""
    partial = cache.with_name(cache.name + ".partial")
    try:
        with partial.open("wb") as file:
            np.savez(file, images=images, labels=labels, md5=[BATCH_MD5[name] for name in files])
        os.replace(partial, cache)
    except OSError as error:
        partial.unlink(missing_ok=True)
        print(f"Could not write the cache {cache} ({error}); loading will stay slower.")


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
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(
            f"channel_stats expects uint8 images [N, C, H, W], got {images.dtype} with shape "
            f"{list(images.shape)}."
        )
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
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
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
