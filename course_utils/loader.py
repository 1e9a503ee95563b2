"""A data loader that keeps the whole dataset on the training device, and the ``Loader``
protocol that says what ``fit`` and ``evaluate`` use of any loader.

CIFAR-10 is 180 MB as uint8, small enough to live in GPU memory. So instead of a
``DataLoader`` that decodes, augments and copies one PIL image at a time, ``DeviceLoader``
moves the uint8 images once and augments whole batches with the ordered list of
augmentations from ``course_utils.augment`` (lecture 01), then normalises them.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from course_utils import augment as augmentations
from course_utils import settings
from course_utils.config import TrainConfig
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, _check_statistics, normalize
from course_utils.support import augment_checks


@runtime_checkable
class Loader(Protocol):
    """What ``fit`` and ``evaluate`` need of a loader: batches ``(x, y)`` and their number.

    A plain ``torch.utils.data.DataLoader`` qualifies. A loader may also offer, and the course
    uses when present: ``device`` (where its batches already are), ``classes``, ``source``
    and ``split`` (for labels and provenance), ``batch_size``, ``num_images``, ``augment``
    (a description of its augmentations), ``mean``/``std`` (its normalisation, used by
    ``predict``), ``set_seed(seed)`` (``fit`` calls it, so one seed drives the shuffle and
    the augmentation), ``set_epoch(epoch)``, and ``state_dict()``/``load_state_dict()``,
    which exact resume depends on.
    """

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]: ...

    def __len__(self) -> int: ...


class DeviceLoader:
    """Batches of ``data`` straight from the training device: yields ``(x, y)`` with x float32
    [B, 3, H, W] normalised by ``mean``/``std`` and y int64 [B]. Used by every lecture.

    ``train=True`` shuffles every epoch (each ``iter()``) and runs ``augment`` on each uint8
    batch: a list of ``augment.build`` specs ("crop", {"name": "cutout", "size": 8}, ...) or
    callables ``(images, generator) -> images`` of your own, in order, before normalisation.
    Epoch e is drawn from (seed, e), so the same seed replays the same epochs; ``fit`` sets
    the seed from its config (``set_seed``). ``train=False`` yields the images in order,
    unaugmented.
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
        if not isinstance(data, ImageData):
            raise TypeError(
                f"DeviceLoader expects an ImageData (e.g. from course_utils.data.cifar10()), "
                f"got {type(data).__name__}."
            )
        defaults = TrainConfig()
        batch_size = defaults.batch_size if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
        batch_size = int(batch_size)  # a NumPy integer too
        if batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
        for name, flag in (("train", train), ("drop_last", drop_last)):
            if not isinstance(flag, bool) and not (name == "drop_last" and flag is None):
                raise TypeError(f"{name} must be True or False, got {flag!r}.")
        if not train and drop_last:
            raise ValueError(
                "an evaluation loader (train=False) keeps every image: drop drop_last=True."
            )
        self.drop_last = train if drop_last is None else drop_last
        if self.drop_last and len(data) < batch_size:
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
        augment = defaults.augment if augment is None else augment
        augment_checks.check_augment(augment, data.images[:2])
        self.pipeline = augmentations.build_pipeline(augment)
        self.device = settings.check_device(device) if device is not None else settings.get_device()
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.train = train
        self.num_images = len(data)
        self.classes = data.classes
        self.source = data.source
        self.split = data.split
        self.provenance = data.provenance
        _check_statistics(mean, std)
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        # On the device once: building them from tuples every batch would copy and sync.
        self._mean = torch.tensor(self.mean, device=self.device)
        self._std = torch.tensor(self.std, device=self.device)
        normalize(self.images[:1], self.mean, self.std)  # check mean and std now, not mid-epoch
        self.seed = 0
        self.epoch = 0
        self._fingerprint: str | None = None
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

    @property
    def fingerprint(self) -> str:
        """A short digest of the images and labels in their order (``fit`` records it, so a
        resume on other images of the same size is refused)."""
        if self._fingerprint is None:
            sums = self.images.reshape(self.num_images, -1).sum(1, dtype=torch.int64)
            digest = hashlib.sha1(self.labels.cpu().numpy().tobytes())
            digest.update(sums.cpu().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:12]
        return self._fingerprint

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
        if not isinstance(state, dict) or set(state) != {"epoch", "seed"}:
            raise ValueError(
                f"a DeviceLoader state is {{'epoch': ..., 'seed': ...}}, got {state!r}."
            )
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
