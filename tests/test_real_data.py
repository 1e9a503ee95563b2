"""Checks on the real CIFAR-10 images: the shared JPEG copy of all 60,000 (see
``course_utils.data.shared_cifar10_archive``), loaded once for the module through the same
``cifar10()`` call the course makes. Without the copy these tests skip and say why; with the
``CI`` environment variable set, a missing copy fails them, so CI cannot pass without them.
The image-folder code itself is tested on tiny folders in tests/test_data.py."""

from __future__ import annotations

import os
import shutil
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import (
    CIFAR10_CLASSES,
    CIFAR10_JPEG_MEAN,
    CIFAR10_JPEG_PER_IMAGE_STD,
    CIFAR10_JPEG_STD,
    CIFAR10_PER_IMAGE_STD,
    channel_stats,
    cifar10,
    load_image_folder,
)
from course_utils.support import image_folder


@pytest.fixture(scope="module")
def archive(shared_archive):
    return shared_archive


@pytest.fixture(scope="module")
def real(archive, tmp_path_factory):
    """Both splits, decoded once into a temporary data folder (nothing lands in the repo)."""
    root = tmp_path_factory.mktemp("cifar10-data")
    start = time.perf_counter()
    train = cifar10("train", source=archive, root=root)
    test = cifar10("test", source=archive, root=root)  # from the cache the first call wrote
    return SimpleNamespace(
        archive=archive, root=root, train=train, test=test, seconds=time.perf_counter() - start
    )


def test_every_image_is_there(real):
    assert (len(real.train), len(real.test)) == (50_000, 10_000)
    assert torch.bincount(real.train.labels, minlength=10).tolist() == [5_000] * 10
    assert torch.bincount(real.test.labels, minlength=10).tolist() == [1_000] * 10
    for split, loaded in (("train", real.train), ("test", real.test)):
        assert (loaded.source, loaded.split, loaded.classes) == ("cifar10", split, CIFAR10_CLASSES)
        assert loaded.images.shape[1:] == (3, 32, 32) and loaded.images.dtype == torch.uint8
        assert loaded.provenance == (
            f"image folder {real.archive} (JPEG copy: pixels differ slightly from the "
            "official release)"
        )


def test_channel_statistics_match_the_measured_ones(real):
    mean, std = channel_stats(real.train.images)
    _, per_image_std = channel_stats(real.train.images, per_image=True)
    torch.testing.assert_close(mean, torch.tensor(CIFAR10_JPEG_MEAN).double(), rtol=0, atol=2e-3)
    torch.testing.assert_close(std, torch.tensor(CIFAR10_JPEG_STD).double(), rtol=0, atol=2e-3)
    jpeg_per_image = torch.tensor(CIFAR10_JPEG_PER_IMAGE_STD).double()
    torch.testing.assert_close(per_image_std, jpeg_per_image, rtol=0, atol=2e-3)
    # The widely copied "std" is this per-image value, not the pixel std (about 0.05 larger).
    copied = torch.tensor(CIFAR10_PER_IMAGE_STD).double()
    torch.testing.assert_close(per_image_std, copied, rtol=0, atol=3e-3)
    assert torch.all(std > per_image_std + 0.04)


def test_the_order_is_shuffled_and_fixed(real):
    for loaded in (real.train, real.test):
        assert len(loaded.labels[:500].unique()) == 10  # subset(500) holds every class
        counts = torch.bincount(loaded.labels[:1000], minlength=10)
        assert counts.min() > 60 and counts.max() < 140  # near 100 each: shuffled, not sorted
    again = cifar10("train", source=real.archive, root=real.root)
    assert torch.equal(again.images, real.train.images)
    assert torch.equal(again.labels, real.train.labels)


def test_later_loads_come_from_the_cache(real, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("read the archive although its cache is valid")

    monkeypatch.setattr(image_folder, "_read_archive", fail)
    monkeypatch.setattr(image_folder, "_decode_images", fail)
    start = time.perf_counter()
    train = cifar10("train", source=real.archive, root=real.root)
    test = cifar10("test", source=real.archive, root=real.root)
    cached_seconds = time.perf_counter() - start
    assert torch.equal(train.images, real.train.images)
    assert torch.equal(test.labels, real.test.labels)
    print(f"first load {real.seconds:.1f} s, cached load of both splits {cached_seconds:.2f} s")


def test_a_copy_decodes_to_the_same_images_and_a_touched_copy_is_decoded_again(
    real, tmp_path, monkeypatch
):
    decoded = []
    decode = image_folder._decode_images

    def counting(source, files):
        decoded.append(len(files))
        return decode(source, files)

    monkeypatch.setattr(image_folder, "_decode_images", counting)
    copy = shutil.copy(real.archive, tmp_path / "copy.tar.gz")
    train = load_image_folder(copy, "train", root=tmp_path)  # an independent decode
    assert decoded == [50_000, 10_000]  # one pass over the archive decodes both splits
    assert torch.equal(train.images, real.train.images)  # the same fixed order
    assert torch.equal(train.labels, real.train.labels)
    stat = os.stat(copy)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    test = load_image_folder(copy, "test", root=tmp_path)
    assert decoded == [50_000, 10_000, 10_000, 50_000]  # decoded again, the asked split first
    assert torch.equal(test.images, real.test.images)


def test_labels_belong_to_their_images(real):
    """A small CNN trained briefly on real images is far above chance on real test images,
    which it could not be if labels were shuffled against the images."""
    torch.manual_seed(0)
    mean = torch.tensor(CIFAR10_JPEG_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_JPEG_STD).view(1, 3, 1, 1)

    def normalised(images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255 - mean) / std

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    model = nn.Sequential(
        *block(3, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2), *block(16, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) < 10_000
    steps = 250
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    # A learning rate falling linearly to zero: the last steps settle instead of jumping
    # around, so the accuracy varies little with the seed (0.43-0.46 over six seeds).
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        index = torch.randint(len(real.train), (128,))
        loss = F.cross_entropy(
            model(normalised(real.train.images[index])), real.train.labels[index]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        predictions = model(normalised(real.test.images[:2000])).argmax(1)
    accuracy = (predictions == real.test.labels[:2000]).float().mean().item()
    seconds = time.perf_counter() - start
    print(f"small CNN: {accuracy:.1%} test accuracy after {steps} steps, {seconds:.1f} s")
    assert accuracy > 0.35  # chance is 0.10
