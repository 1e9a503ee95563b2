"""Tests for course_utils.loader: the batched augmentations and the device-resident loader."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from course_utils.config import TrainConfig
from course_utils.data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, ImageData
from course_utils.loader import DeviceLoader, Loader, normalize

MEAN = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)


def _random_data(n: int, seed: int = 0) -> ImageData:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return ImageData(images, labels, CIFAR10_CLASSES, "cifar10", "train")


def _encoded_data(n: int) -> ImageData:
    """Flat-coloured images whose colour spells out their index (red, green) and label (blue):
    crops with reflection and flips leave them unchanged, so batches can be decoded."""
    torch.manual_seed(0)
    labels = torch.randint(0, 10, (n,))
    colour = torch.stack([torch.arange(n) % 256, torch.arange(n) // 256, labels * 20], dim=1)
    images = colour.view(n, 3, 1, 1).expand(n, 3, 32, 32).to(torch.uint8).contiguous()
    return ImageData(images, labels, CIFAR10_CLASSES, "cifar10", "train")


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    return (x * STD + MEAN) * 255


def _decode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and label spelled by each normalised flat-coloured image of ``_encoded_data``."""
    colour = ((x * STD + MEAN) * 255).mean(dim=(2, 3)).round().long()
    return colour[:, 0] + 256 * colour[:, 1], colour[:, 2] // 20


# --------------------------------------------------------------------------- normalize


def test_normalize_matches_torchvision():
    images = _random_data(16).images
    reference = v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    )
    ours = normalize(images, CIFAR10_MEAN, CIFAR10_STD)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference(images), rtol=1e-5, atol=1e-5)
    floats = images.float() / 255  # float images are taken to be in [0, 1] already
    untouched = floats.clone()
    torch.testing.assert_close(normalize(floats, CIFAR10_MEAN, CIFAR10_STD), ours)
    assert torch.equal(floats, untouched)  # a new tensor, the input is left alone
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(images, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="above 0, in every channel"):
        normalize(images, CIFAR10_MEAN, (0.2, 0.0, 0.2))


# --------------------------------------------------------------------------- DeviceLoader


def test_training_epoch_keeps_labels_and_covers_each_image_once():
    data = _encoded_data(300)
    loader = DeviceLoader(data, batch_size=64, device="cpu", drop_last=False)
    assert len(loader) == 5
    for _ in range(2):
        seen = []
        for x, y in loader:
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            index, label = _decode(x)
            assert torch.equal(label, y)  # the label still belongs to its image
            assert torch.equal(data.labels[index], y)
            seen.append(index)
        seen = torch.cat(seen)
        assert sorted(seen.tolist()) == list(range(300))
        assert not torch.equal(seen, torch.arange(300))  # shuffled


def test_same_seed_same_epochs_and_epochs_differ():
    data = _random_data(96)
    augment = ["crop", "flip", {"name": "cutout", "size": 8}]

    def epochs(loader: DeviceLoader, count: int) -> list[list[tuple[torch.Tensor, ...]]]:
        return [list(loader) for _ in range(count)]

    first = epochs(DeviceLoader(data, batch_size=32, device="cpu", augment=augment), 2)
    second = epochs(DeviceLoader(data, batch_size=32, device="cpu", augment=augment), 2)
    for epoch_a, epoch_b in zip(first, second, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][0][0], first[1][0][0])
    other = DeviceLoader(data, batch_size=32, device="cpu", augment=augment)
    other.set_seed(1)
    assert not torch.equal(next(iter(other))[0], first[0][0][0])


def test_augmentations_run_in_order_on_uint8_before_normalisation():
    data = _random_data(64)
    seen = []

    def record(name):
        def step(images, generator):
            seen.append((name, images.dtype))
            return images

        return step

    loader = DeviceLoader(data, 32, device="cpu", augment=[record("first"), "flip", record("last")])
    seen.clear()  # the loader's door tried its steps once on two images
    next(iter(loader))
    assert seen == [("first", torch.uint8), ("last", torch.uint8)]
    assert loader.augment[1] == {"name": "flip", "p": 0.5}
    assert loader.augment[0].endswith("record.<locals>.step")


def test_a_student_augmentation_changes_the_batches():
    data = _random_data(64)

    def invert(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return 255 - images

    plain = next(iter(DeviceLoader(data, 64, device="cpu", augment=[])))[0]
    inverted = next(iter(DeviceLoader(data, 64, device="cpu", augment=[invert])))[0]
    torch.testing.assert_close(_unnormalise(inverted), 255 - _unnormalise(plain), atol=1e-3, rtol=0)


def test_an_augmentation_that_changes_the_shape_is_refused():
    data = _random_data(64)

    def shrink(images, generator):
        return images[:, :, :16, :16]

    with pytest.raises(ValueError, match="shrink"):
        next(iter(DeviceLoader(data, 32, device="cpu", augment=[shrink])))


def test_default_augmentations_and_batch_size_come_from_train_config():
    loader = DeviceLoader(_random_data(600), device="cpu")
    defaults = TrainConfig()
    assert loader.batch_size == defaults.batch_size
    assert [spec["name"] for spec in loader.augment] == list(defaults.augment)


def test_resuming_from_state_dict_replays_the_next_epoch():
    data = _random_data(64)
    loader = DeviceLoader(data, batch_size=32, device="cpu")
    list(loader)
    state = loader.state_dict()
    expected = list(loader)
    resumed = DeviceLoader(data, batch_size=32, device="cpu")
    resumed.load_state_dict(state)
    for (xa, ya), (xb, yb) in zip(expected, resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    resumed.set_epoch(0)
    assert torch.equal(next(iter(resumed))[0], next(iter(DeviceLoader(data, 32, device="cpu")))[0])


def test_eval_mode_is_ordered_unaugmented_and_repeatable():
    data = _random_data(70)
    loader = DeviceLoader(data, batch_size=32, train=False, device="cpu")
    with pytest.raises(ValueError, match="does not augment"):
        DeviceLoader(data, batch_size=32, train=False, device="cpu", augment=["cutout"])
    assert len(loader) == 3 and not loader.drop_last and loader.augment == []
    first, second = list(loader), list(loader)
    x = torch.cat([batch[0] for batch in first])
    assert torch.equal(x, normalize(data.images, CIFAR10_MEAN, CIFAR10_STD))
    assert torch.equal(torch.cat([batch[1] for batch in first]), data.labels)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))


def test_drop_last_defaults_to_train_and_rejects_empty_epochs():
    data = _random_data(70)
    assert len(DeviceLoader(data, batch_size=32, device="cpu")) == 2
    assert all(len(y) == 32 for _, y in DeviceLoader(data, batch_size=32, device="cpu"))
    with pytest.raises(ValueError, match="drop_last=False"):
        DeviceLoader(data, batch_size=100, device="cpu")


def test_attributes_and_clear_errors():
    data = _random_data(40)
    loader = DeviceLoader(data, batch_size=16, device="cpu", train=False)
    assert (loader.batch_size, loader.num_images, loader.train) == (16, 40, False)
    assert loader.classes == CIFAR10_CLASSES and loader.source == "cifar10"
    assert loader.split == "train" and loader.device == torch.device("cpu")
    assert isinstance(loader, Loader)
    with pytest.raises(TypeError, match="ImageData"):
        DeviceLoader((data.images, data.labels), device="cpu")
    with pytest.raises(ValueError, match="unknown|Unknown"):
        DeviceLoader(data, 16, device="cpu", augment=["blur"])
    with pytest.raises(ValueError, match="above 0, in every channel"):
        DeviceLoader(data, 16, device="cpu", std=(0.2, 0.0, 0.2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loader_runs_on_the_gpu():
    data = _encoded_data(300)
    loader = DeviceLoader(data, batch_size=64, device="cuda")
    seen = []
    for x, y in loader:
        assert x.is_cuda and y.is_cuda
        index, label = _decode(x.cpu())
        assert torch.equal(label, y.cpu())
        seen.append(index)
    assert len(torch.cat(seen).unique()) == len(loader) * 64
    cpu_eval = torch.cat([x for x, _ in DeviceLoader(data, 64, train=False, device="cpu")])
    gpu_eval = torch.cat([x.cpu() for x, _ in DeviceLoader(data, 64, train=False, device="cuda")])
    torch.testing.assert_close(gpu_eval, cpu_eval)
