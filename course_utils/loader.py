"""A loader that keeps the whole dataset on the training device (CIFAR-10 is 180 MB as uint8)
and augments whole batches there, instead of a ``DataLoader`` that decodes, augments and copies
one PIL image at a time; and the ``Loader`` protocol: what ``fit`` uses of any loader."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from course_utils import augment as augmentations
from course_utils import settings
from course_utils.config import TrainConfig
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, normalize
from course_utils.support import checks, config_checks


@runtime_checkable
class Loader(Protocol):
    """What ``fit`` and ``evaluate`` need of a loader: batches ``(x, y)`` and their number (a
    ``DataLoader`` qualifies). They also use, when present: ``device``, ``classes``,
    ``source``, ``split``, ``batch_size``, ``num_images``, ``augment``, ``mean``/``std``,
    ``set_seed``, ``set_epoch`` and ``state_dict``/``load_state_dict`` (exact resume)."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]: ...

    def __len__(self) -> int: ...


class DeviceLoader:
    """Batches ``(x, y)`` of ``data`` straight from the training device: x float32
    [B, 3, H, W] normalised by ``mean``/``std``, y int64 [B].

    ``train=True`` shuffles every epoch and runs ``augment`` on each uint8 batch before
    normalising: a list of ``augment.build`` specs ("crop", {"name": "cutout", "size": 8}) or
    your own ``(images, generator) -> images``. Epoch e is drawn from (seed, e), so a seed
    replays the same epochs; ``fit`` sets it. ``train=False`` yields the images in order.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int | None = None,
        train: bool = True,
        augment: Sequence[str | dict | Callable] | None = None,
        device: torch.device | str | None = None,
        mean: Sequence[float] | Tensor = CIFAR10_MEAN,
        std: Sequence[float] | Tensor = CIFAR10_STD,
        drop_last: bool | None = None,
    ) -> None:
        batch_size = TrainConfig.batch_size if batch_size is None else batch_size
        checks.check_loader_arguments(data, batch_size, train, augment, mean, std, drop_last)
        augment = TrainConfig.augment if augment is None else augment
        if train:  # an evaluation loader never augments (refused above when asked to)
            config_checks.check_augment(augment, data.images[:2])
        self.pipeline = augmentations.build_pipeline(augment)
        self.device = settings.check_device(device) if device is not None else settings.get_device()
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = int(batch_size)  # a NumPy integer too
        self.train = train
        self.drop_last = train if drop_last is None else drop_last
        self.num_images = len(data)
        self.classes, self.source, self.split = data.classes, data.source, data.split
        self.provenance = data.provenance
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        # On the device once: building them from tuples every batch would copy and sync.
        self._mean = torch.tensor(self.mean, device=self.device)
        self._std = torch.tensor(self.std, device=self.device)
        normalize(self.images[:1], self.mean, self.std)  # check mean and std now, not mid-epoch
        self.seed = 0
        self.epoch = 0
        self.generator = torch.Generator(device=self.device)

    @property
    def augment(self) -> list:
        """The augmentations a training batch goes through, as JSON-able descriptions."""
        return augmentations.describe(self.pipeline) if self.train else []

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_images // self.batch_size
        return math.ceil(self.num_images / self.batch_size)

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        return (
            f"DeviceLoader({self.source} {self.split}, {self.num_images} images, "
            f"batch_size={self.batch_size}, {len(self)} batches, {mode}, device={self.device})"
        )

    def set_seed(self, seed: int) -> None:
        """Draw every epoch's shuffle and augmentation from ``seed`` (``fit`` calls this)."""
        self.seed = settings.check_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch`` (its shuffle and augmentation)."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint needs to resume the same sequence of epochs."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore ``state_dict()``: the next ``iter()`` continues where that run stopped."""
        checks.check_loader_state(state)
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
        """Augment (train only) the uint8 pixels, then normalise one batch."""
        if self.train:
            images = augmentations.apply_pipeline(self.pipeline, images, self.generator)
        return normalize(images, self._mean, self._std), labels
