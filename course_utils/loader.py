"""A data loader that keeps the whole dataset on the training device.

CIFAR-10 is 180 MB as uint8, small enough to live in GPU memory. So instead of a
``DataLoader`` that decodes, augments and copies one PIL image at a time, ``DeviceLoader``
moves the uint8 images once and augments whole batches with a few tensor operations:
``random_crop``, ``horizontal_flip``, ``normalize`` and ``cutout``, each usable on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from course_utils import settings
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData

BatchTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _check_batch(images: Tensor, name: str) -> None:
    if images.dim() != 4:
        raise ValueError(
            f"{name} expects a batch of images [B, C, H, W], got shape {list(images.shape)}; "
            "for a single image use image.unsqueeze(0)."
        )


def random_crop(
    images: Tensor,
    padding: int = 4,
    padding_mode: str = "zeros",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pad each image by ``padding`` pixels and cut a random crop of the original size:
    every image moves by its own random shift of up to ``padding`` pixels in x and y.

    ``padding_mode`` "zeros" fills the border with 0, "reflect" mirrors the image at its
    edges (like ``torchvision.transforms.RandomCrop``). One padded batch is built; all crops
    of it are a view (``unfold``), and one indexing step picks each image's crop.
    """
    _check_batch(images, "random_crop")
    if padding_mode not in ("zeros", "reflect"):
        raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}.")
    if padding == 0:
        return images
    batch, _, height, width = images.shape
    if padding_mode == "reflect" and padding >= min(height, width):
        raise ValueError(
            f"reflect padding must be smaller than the image ({height}x{width}), got {padding}."
        )
    mode = "constant" if padding_mode == "zeros" else "reflect"
    padded = F.pad(images, (padding, padding, padding, padding), mode=mode)
    # Every height x width window of the padded images: [B, C, 2p+1, 2p+1, H, W], no copy.
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)
    top = torch.randint(2 * padding + 1, (batch,), generator=generator, device=images.device)
    left = torch.randint(2 * padding + 1, (batch,), generator=generator, device=images.device)
    return windows[torch.arange(batch, device=images.device), :, top, left]


def horizontal_flip(
    images: Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Mirror each image left-right with probability ``p`` (independently per image)."""
    _check_batch(images, "horizontal_flip")
    batch = len(images)
    chosen = torch.rand(batch, generator=generator, device=images.device) < p
    # Originals then mirrors in one tensor; pick the mirror for the chosen images. (Faster
    # than torch.where, and unlike images[chosen] it never makes the GPU wait for the CPU.)
    both = torch.cat([images, images.flip(3)])
    return both.index_select(0, torch.arange(batch, device=images.device) + batch * chosen)


def cutout(images: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """Zero a ``size`` x ``size`` square at a random centre in each image (DeVries & Taylor,
    2017); squares near the border are clipped. On normalised images, zero is the mean colour."""
    _check_batch(images, "cutout")
    if size <= 0:
        return images
    batch, _, height, width = images.shape
    device = images.device
    top = torch.randint(height, (batch, 1), generator=generator, device=device) - size // 2
    left = torch.randint(width, (batch, 1), generator=generator, device=device) - size // 2
    rows = torch.arange(height, device=device) - top  # [B, H]: row offset inside the square
    cols = torch.arange(width, device=device) - left
    in_rows, in_cols = (rows >= 0) & (rows < size), (cols >= 0) & (cols < size)
    square = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)  # [B, H, W]
    return images.masked_fill(square.unsqueeze(1), 0)


def normalize(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Float32 images ``(x / 255 - mean) / std`` per channel, from uint8 images (0-255).
    Float images are taken to be in [0, 1] already (torchvision's convention)."""
    _check_batch(images, "normalize")
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


class DeviceLoader:
    """Batches of ``data`` straight from the training device: yields ``(x, y)`` with x float32
    [B, 3, H, W] normalised and y int64 [B].

    ``train=True`` shuffles every epoch (each ``iter()``) and augments each batch: random
    crop with ``crop_padding``, horizontal flip, optional ``cutout``; epoch e is seeded from
    (``seed``, e), so the same seed replays the same epochs. ``train=False`` yields the
    images in order, unaugmented. ``transform(x, y) -> (x, y)``, if given, is applied to every
    normalised batch last (e.g. mixup). ``channels_last`` returns x in that memory format.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int = 512,
        train: bool = True,
        device: torch.device | str | None = None,
        mean: Sequence[float] | Tensor = CIFAR10_MEAN,
        std: Sequence[float] | Tensor = CIFAR10_STD,
        crop_padding: int = 4,
        padding_mode: str = "reflect",
        flip: bool = True,
        cutout: int = 0,
        channels_last: bool = False,
        drop_last: bool | None = None,
        seed: int = 0,
        transform: BatchTransform | None = None,
    ) -> None:
        if not isinstance(data, ImageData):
            raise TypeError(
                f"DeviceLoader expects an ImageData (e.g. from course_utils.data.cifar10()), "
                f"got {type(data).__name__}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}.")
        if crop_padding < 0 or cutout < 0:
            raise ValueError(
                f"crop_padding and cutout are sizes in pixels and cannot be negative, got "
                f"{crop_padding} and {cutout}."
            )
        self.drop_last = train if drop_last is None else drop_last
        if self.drop_last and len(data) < batch_size:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {len(data)} images, so dropping "
                "the last incomplete batch leaves nothing; lower batch_size or pass "
                "drop_last=False."
            )
        self.device = torch.device(device) if device is not None else settings.get_device()
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.train = train
        self.num_images = len(data)
        self.classes = data.classes
        self.source = data.source
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        # On the device once: building them from tuples every batch would copy and sync.
        self._mean = torch.tensor(self.mean, device=self.device)
        self._std = torch.tensor(self.std, device=self.device)
        self.crop_padding, self.padding_mode = crop_padding, padding_mode
        self.flip, self.cutout = flip, cutout
        self.channels_last = channels_last
        self.seed = seed
        self.transform = transform
        self.epoch = 0
        self.generator = torch.Generator(device=self.device)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_images // self.batch_size
        return math.ceil(self.num_images / self.batch_size)

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        return (
            f"DeviceLoader({self.source}, {self.num_images} images, batch_size={self.batch_size}, "
            f"{len(self)} batches, {mode}, device={self.device})"
        )

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch`` (its shuffle and augmentation)."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint needs to resume the same sequence of epochs."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore ``state_dict()``: the next ``iter()`` continues where that run stopped."""
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.train:
            # A distinct seed for every (seed, epoch) pair: seed 1 does not replay seed 0's
            # epochs shifted by one, as seed + epoch would.
            self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
            self.epoch += 1
            order = torch.randperm(self.num_images, generator=self.generator, device=self.device)
        else:
            order = torch.arange(self.num_images, device=self.device)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield self._make_batch(self.images.index_select(0, index), self.labels[index])

    def _make_batch(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Augment (train only) and normalise one batch; crop and flip run on the uint8 pixels."""
        if self.train:
            images = random_crop(images, self.crop_padding, self.padding_mode, self.generator)
            if self.flip:
                images = horizontal_flip(images, generator=self.generator)
        x = normalize(images, self._mean, self._std)
        if self.train and self.cutout:
            x = cutout(x, self.cutout, generator=self.generator)
        if self.transform is not None:
            x, labels = self.transform(x, labels)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels
