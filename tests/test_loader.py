"""Tests for course_utils.loader: the batched augmentations and the device-resident loader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from course_utils.data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, ImageData
from course_utils.loader import DeviceLoader, cutout, horizontal_flip, normalize, random_crop

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


def _decode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and label spelled by each normalised flat-coloured image of ``_encoded_data``."""
    colour = ((x * STD + MEAN) * 255).mean(dim=(2, 3)).round().long()
    return colour[:, 0] + 256 * colour[:, 1], colour[:, 2] // 20


# --------------------------------------------------------------------------- augmentations


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_flip_mirrors_exactly_some_images(dtype):
    images = _random_data(64).images.to(dtype)
    flipped = horizontal_flip(images, generator=torch.Generator().manual_seed(0))
    mirrored = [torch.equal(out, image.flip(2)) for out, image in zip(flipped, images, strict=True)]
    unchanged = [torch.equal(out, image) for out, image in zip(flipped, images, strict=True)]
    assert all(
        m != u for m, u in zip(mirrored, unchanged, strict=True)
    )  # each image: mirror or untouched
    assert 10 < sum(mirrored) < 54
    assert torch.equal(horizontal_flip(images, p=1.0), images.flip(3))
    assert torch.equal(horizontal_flip(images, p=0.0), images)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_is_a_true_window_of_the_padded_image(padding_mode, dtype):
    images = _random_data(48).images[:, :, :12, :16].to(dtype)  # non-square on purpose
    crops = random_crop(images, 3, padding_mode, generator=torch.Generator().manual_seed(1))
    assert crops.shape == images.shape and crops.dtype == dtype
    torch_mode = "constant" if padding_mode == "zeros" else "reflect"
    padded = F.pad(images.float(), (3, 3, 3, 3), mode=torch_mode)
    offsets = set()
    for crop, pad in zip(crops, padded, strict=True):
        matches = [
            (top, left)
            for top in range(7)
            for left in range(7)
            if torch.equal(pad[:, top : top + 12, left : left + 16], crop.float())
        ]
        assert len(matches) == 1, "every crop must be exactly one window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 15  # each image gets its own shift


def test_crop_without_padding_is_identity():
    images = _random_data(4).images
    assert torch.equal(random_crop(images, padding=0), images)


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.ones(200, 3, 32, 32)
    out = cutout(images, 8, generator=torch.Generator().manual_seed(0))
    zero = out[:, 0] == 0
    assert torch.equal(zero.unsqueeze(1).expand_as(out), out == 0)  # same square in all channels
    rows, cols = zero.any(dim=2).sum(dim=1), zero.any(dim=1).sum(dim=1)
    assert torch.equal(zero.sum(dim=(1, 2)), rows * cols)  # a rectangle, no scattered pixels
    assert rows.max() == 8 and cols.max() == 8 and rows.min() >= 4 and cols.min() >= 4
    assert (rows * cols < 64).any()  # squares at the border are clipped
    assert torch.equal(out[out != 0], images[out != 0])


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


# --------------------------------------------------------------------------- DeviceLoader


def test_training_epoch_keeps_labels_and_covers_each_image_once():
    data = _encoded_data(300)
    loader = DeviceLoader(data, batch_size=64, device="cpu", drop_last=False, cutout=0)
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

    def epochs(loader: DeviceLoader, count: int) -> list[list[tuple[torch.Tensor, ...]]]:
        return [list(loader) for _ in range(count)]

    first = epochs(DeviceLoader(data, batch_size=32, device="cpu", cutout=8), 2)
    second = epochs(DeviceLoader(data, batch_size=32, device="cpu", cutout=8), 2)
    for epoch_a, epoch_b in zip(first, second, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][0][0], first[1][0][0])
    other_seed = list(DeviceLoader(data, batch_size=32, device="cpu", seed=1))
    assert not torch.equal(other_seed[0][0], first[0][0][0])


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
    loader = DeviceLoader(data, batch_size=32, train=False, device="cpu", cutout=8)
    assert len(loader) == 3 and not loader.drop_last
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


def test_channels_last_gives_the_same_values_in_that_layout():
    data = _random_data(40)
    plain = list(DeviceLoader(data, batch_size=20, device="cpu"))
    packed = list(DeviceLoader(data, batch_size=20, device="cpu", channels_last=True))
    for (xa, _), (xb, _) in zip(plain, packed, strict=True):
        assert xb.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(xa, xb)


def test_custom_transform_sees_every_batch_after_augmentation():
    data = _random_data(40)
    calls = []

    def negate_and_relabel(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(x.shape)
        return -x, 9 - y

    plain = list(DeviceLoader(data, batch_size=20, device="cpu"))
    custom = list(DeviceLoader(data, batch_size=20, device="cpu", transform=negate_and_relabel))
    assert len(calls) == 2
    for (xa, ya), (xb, yb) in zip(plain, custom, strict=True):
        assert torch.equal(xb, -xa) and torch.equal(yb, 9 - ya)


def test_attributes_and_clear_errors():
    data = _random_data(40)
    loader = DeviceLoader(data, batch_size=16, device="cpu", train=False)
    assert (loader.batch_size, loader.num_images, loader.train) == (16, 40, False)
    assert loader.classes == CIFAR10_CLASSES and loader.source == "cifar10"
    assert loader.device == torch.device("cpu")
    with pytest.raises(TypeError, match="ImageData"):
        DeviceLoader((data.images, data.labels), device="cpu")
    with pytest.raises(ValueError, match="padding_mode"):
        DeviceLoader(data, device="cpu", padding_mode="edge")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loader_runs_on_the_gpu():
    data = _encoded_data(300)
    loader = DeviceLoader(data, batch_size=64, device="cuda", cutout=0, channels_last=True)
    seen = []
    for x, y in loader:
        assert x.is_cuda and y.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
        index, label = _decode(x.cpu())
        assert torch.equal(label, y.cpu())
        seen.append(index)
    assert len(torch.cat(seen).unique()) == len(loader) * 64
    cpu_eval = torch.cat([x for x, _ in DeviceLoader(data, 64, train=False, device="cpu")])
    gpu_eval = torch.cat([x.cpu() for x, _ in DeviceLoader(data, 64, train=False, device="cuda")])
    torch.testing.assert_close(gpu_eval, cpu_eval)
