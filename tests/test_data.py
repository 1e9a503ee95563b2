"""Tests for course_utils.data: real-CIFAR loading from files in the official on-disk format,
the cache, the clear errors, the dispatcher, the synthetic stand-in and channel statistics."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import data
from course_utils.data import (
    CIFAR10_CLASSES,
    SYNTHETIC_CLASSES,
    DataCorruptedError,
    DataNotFoundError,
    ImageData,
    channel_stats,
    cifar10,
    load_cifar10,
    synthetic_cifar10,
)

PER_BATCH = 12  # images per fake batch file (the real ones hold 10,000)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _fake_batch(path: Path, batch: int) -> tuple[np.ndarray, list[int]]:
    """Write one batch file in CIFAR-10's format; return the images [n, 3, 32, 32] it holds."""
    rng = np.random.default_rng(batch)
    planes = rng.integers(0, 256, size=(PER_BATCH, 3, 32, 32), dtype=np.uint8)
    # Each row: the red plane row-major, then green, then blue.
    rows = np.stack([np.concatenate([image[c].ravel() for c in range(3)]) for image in planes])
    labels = [(batch * 3 + i) % 10 for i in range(PER_BATCH)]
    content = {b"batch_label": b"fake", b"data": rows, b"labels": labels}
    with path.open("wb") as file:
        pickle.dump(content, file)
    return planes, labels


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A small CIFAR-10 in the official layout (folder and tarball), with the expected md5s
    pointed at these fake files. Returns the tarball path and the expected contents."""
    folder = tmp_path / "build" / data.BATCH_FOLDER
    folder.mkdir(parents=True)
    expected = {}
    for batch, name in enumerate(data.TRAIN_BATCHES + data.TEST_BATCHES):
        expected[name] = _fake_batch(folder / name, batch)
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump({b"label_names": [name.encode() for name in CIFAR10_CLASSES]}, file)
    tarball = tmp_path / "build" / data.TARBALL
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname=data.BATCH_FOLDER)
    monkeypatch.setattr(data, "BATCH_MD5", {name: _md5(folder / name) for name in expected})
    monkeypatch.setattr(data, "TARBALL_MD5", _md5(tarball))
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    return tarball, expected


def _expected_split(expected, train: bool):
    names = data.TRAIN_BATCHES if train else data.TEST_BATCHES
    images = np.concatenate([expected[name][0] for name in names])
    labels = np.concatenate([expected[name][1] for name in names])
    return torch.from_numpy(images), torch.from_numpy(labels)


def _root_with_tarball(tmp_path: Path, tarball: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(tarball, root / data.TARBALL)
    return root


# --------------------------------------------------------------------------- real data


def test_load_from_tarball_gives_both_splits_in_order(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    for train, count in ((True, 5 * PER_BATCH), (False, PER_BATCH)):
        images, labels = load_cifar10(root, train=train, download=False)
        assert images.shape == (count, 3, 32, 32) and images.dtype == torch.uint8
        assert labels.shape == (count,) and labels.dtype == torch.int64
        want_images, want_labels = _expected_split(expected, train)
        assert torch.equal(images, want_images)  # R, G, B planes land in channels 0, 1, 2
        assert torch.equal(labels, want_labels)  # batches 1..5 concatenated in order
        assert (root / data._cache_name(train)).is_file()


def test_cache_is_used_once_written(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    first = load_cifar10(root, train=False, download=False)
    (root / data.TARBALL).unlink()
    shutil.rmtree(root / data.BATCH_FOLDER)
    again = load_cifar10(root, train=False, download=False)  # only the cache is left
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_damaged_cache_is_rebuilt_not_used(tmp_path, fake_cifar, capsys):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    load_cifar10(root, train=True, download=False)
    cache = root / data._cache_name(True)
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the stored images
    cache.write_bytes(bytes(raw))
    images, labels = load_cifar10(root, train=True, download=False)
    assert "damaged cache" in capsys.readouterr().out
    assert torch.equal(images, _expected_split(expected, True)[0])
    assert data._read_cache(cache, data.TRAIN_BATCHES) is not None  # rewritten intact


def test_damaged_cache_without_sources_raises(tmp_path, fake_cifar):
    root = tmp_path / "data"
    root.mkdir()
    (root / data._cache_name(False)).write_bytes(b"not a zip file")
    with pytest.raises(DataNotFoundError, match="CIFAR10_SOURCE"):
        load_cifar10(root, train=False, download=False)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_local_tarball_source_is_used(tmp_path, fake_cifar, monkeypatch, how):
    tarball, expected = fake_cifar
    root, source = tmp_path / "empty", str(tarball)
    if how == "environment":
        monkeypatch.setenv(data.SOURCE_ENV, source)
        source = None
    images, labels = load_cifar10(root, train=False, download=False, source=source)
    assert torch.equal(labels, _expected_split(expected, False)[1])


class _FakeResponse(io.BytesIO):
    """What urllib.request.urlopen returns, serving fixed bytes (no network in tests)."""

    def __init__(self, payload: bytes, url: str) -> None:
        super().__init__(payload)
        self.url, self.length = url, len(payload)


def _serve(monkeypatch, payload: bytes) -> None:
    """Make every URL answer with ``payload``; torchvision's real download code still runs."""
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda request, *a, **k: _FakeResponse(payload, request.full_url)
    )


def test_download_from_a_mirror_is_md5_checked(tmp_path, fake_cifar, monkeypatch):
    tarball, expected = fake_cifar
    mirror = "https://mirror.example.org/cifar-10-python.tar.gz"
    _serve(monkeypatch, tarball.read_bytes())
    images, labels = load_cifar10(tmp_path / "data", train=False, source=mirror)
    assert torch.equal(images, _expected_split(expected, False)[0])

    _serve(monkeypatch, tarball.read_bytes()[:-200])  # a download cut short
    root = tmp_path / "other"
    with pytest.raises(DataCorruptedError, match="md5"):
        load_cifar10(root, train=True, source=mirror)
    assert not (root / data.TARBALL).exists()  # the partial file is not kept
    assert not (root / data._cache_name(True)).exists()


def test_truncated_tarball_gives_clear_error_and_no_cache(tmp_path, fake_cifar):
    tarball, _ = fake_cifar
    root = tmp_path / "data"
    root.mkdir()
    (root / data.TARBALL).write_bytes(tarball.read_bytes()[:-200])
    with pytest.raises(DataCorruptedError, match="md5"):
        load_cifar10(root, train=True, download=False)
    assert not (root / data._cache_name(True)).exists()
    assert not (root / data.BATCH_FOLDER).exists()


def test_damaged_batch_file_without_tarball_is_reported(tmp_path, fake_cifar):
    root = tmp_path / "data"
    shutil.copytree(tmp_path / "build" / data.BATCH_FOLDER, root / data.BATCH_FOLDER)
    batch = root / data.BATCH_FOLDER / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DataCorruptedError, match="data_batch_3"):
        load_cifar10(root, train=True, download=False)
    assert not (root / data._cache_name(True)).exists()


def test_unreadable_batch_file_is_reported(tmp_path, fake_cifar, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(tmp_path / "build" / data.BATCH_FOLDER, root / data.BATCH_FOLDER)
    batch = root / data.BATCH_FOLDER / "test_batch"
    batch.write_bytes(b"\x80\x04garbage that is not a pickle")
    # Even a file that passes the md5 check must still unpickle into a CIFAR-10 batch.
    monkeypatch.setitem(data.BATCH_MD5, "test_batch", _md5(batch))
    with pytest.raises(DataCorruptedError, match="not a readable CIFAR-10 batch"):
        load_cifar10(root, train=False, download=False)
    assert not (root / data._cache_name(False)).exists()


def test_offline_with_nothing_on_disk_says_what_to_do(tmp_path, fake_cifar, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(data, "download_url", no_network)
    root = tmp_path / "data"
    with pytest.raises(DataNotFoundError) as caught:
        load_cifar10(root, train=True, download=True)
    message = str(caught.value)
    for hint in (data.TARBALL, str(root), data.SOURCE_ENV, "source='synthetic'"):
        assert hint in message
    assert caught.value.__suppress_context__  # no urllib traceback chained underneath
    with pytest.raises(DataNotFoundError, match="download=False"):
        load_cifar10(root, train=True, download=False)


# --------------------------------------------------------------------------- dispatcher


def test_auto_uses_real_data_on_disk(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    test = cifar10("test", source="auto", n=5, root=root)
    assert test.source == "cifar10" and test.split == "test" and test.classes == CIFAR10_CLASSES
    assert torch.equal(test.labels, _expected_split(expected, False)[1][:5])


def test_auto_falls_back_to_synthetic_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    monkeypatch.setattr(data, "_reachable", lambda url: False)
    train = cifar10("train", source="auto", n=30, root=tmp_path)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "synthetic stand-in" in printed[0]
    assert train.source == "synthetic" and len(train) == 30 and train.classes == SYNTHETIC_CLASSES


def test_auto_falls_back_when_the_download_fails(tmp_path, monkeypatch, capsys):
    def broken_download(*args, **kwargs):
        raise urllib.error.URLError("connection reset")

    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    monkeypatch.setattr(data, "_reachable", lambda url: True)
    monkeypatch.setattr(data, "download_url", broken_download)
    test = cifar10("test", source="auto", n=10, root=tmp_path)
    assert test.source == "synthetic" and "download failed" in capsys.readouterr().out


def test_dispatcher_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        cifar10("validation", source="synthetic")
    with pytest.raises(ValueError, match="CIFAR10_SOURCE"):
        cifar10("train", source="https://example.org/cifar.tar.gz")


# --------------------------------------------------------------------------- ImageData


def _indexed_data(n: int) -> ImageData:
    """Images whose first pixel holds their index, so copies can be traced back."""
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 10, CIFAR10_CLASSES, "cifar10", "train")


def test_image_data_validates_its_fields():
    images, labels = torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(TypeError, match="uint8"):
        ImageData(images.float(), labels, CIFAR10_CLASSES, "cifar10", "train")
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        ImageData(images.permute(0, 2, 3, 1), labels, CIFAR10_CLASSES, "cifar10", "train")
    with pytest.raises(TypeError, match="int64"):
        ImageData(images, labels.int(), CIFAR10_CLASSES, "cifar10", "train")
    with pytest.raises(ValueError, match="length"):
        ImageData(images, labels[:3], CIFAR10_CLASSES, "cifar10", "train")
    with pytest.raises(ValueError, match="0..9"):
        ImageData(images, labels + 10, CIFAR10_CLASSES, "cifar10", "train")
    with pytest.raises(ValueError, match="source"):
        ImageData(images, labels, CIFAR10_CLASSES, "imagenet", True)


def test_subset_takes_the_first_images():
    subset = _indexed_data(50).subset(7)
    assert len(subset) == 7 and subset.images[:, 0, 0, 0].tolist() == list(range(7))
    with pytest.raises(ValueError, match="1 <= n <= 50"):
        _indexed_data(50).subset(51)


def test_image_data_carries_its_split_and_provenance():
    images, labels = torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    data_ = ImageData(images, labels, CIFAR10_CLASSES, "cifar10", "test", "from a test")
    assert repr(data_) == "ImageData(cifar10 test: 4 images of 3x32x32, 10 classes)"
    assert data_.subset(2).split == "test" and data_.subset(2).provenance == "from a test"
    assert ImageData(images, labels, CIFAR10_CLASSES, "cifar10", "train").provenance == ""
    with pytest.raises(ValueError, match="'train', 'validation' or 'test'"):
        ImageData(images, labels, CIFAR10_CLASSES, "cifar10", "val")
    with pytest.raises(ValueError, match="split='train'"):  # the old boolean train flag
        ImageData(images, labels, CIFAR10_CLASSES, "cifar10", True)


def test_holdout_is_a_seeded_partition_into_train_and_validation():
    full = _indexed_data(100)
    full.provenance = "indexed"
    rest, held = full.holdout(0.2, seed=3)
    assert (len(rest), len(held)) == (80, 20)
    assert (rest.split, held.split) == ("train", "validation")
    assert rest.provenance == held.provenance == "indexed"
    ids_rest, ids_held = rest.images[:, 0, 0, 0].long(), held.images[:, 0, 0, 0].long()
    assert sorted(ids_rest.tolist() + ids_held.tolist()) == list(range(100))
    assert torch.equal(held.labels, ids_held % 10)  # labels stay with their images
    assert torch.equal(full.holdout(0.2, seed=3)[1].images, held.images)
    assert not torch.equal(full.holdout(0.2, seed=4)[1].images, held.images)
    with pytest.raises(ValueError, match="between 0 and 1"):
        full.holdout(1.5, seed=0)
    with pytest.raises(ValueError, match="training split"):  # never a validation set from test
        held.holdout(0.5, seed=0)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_names_and_determinism():
    first = synthetic_cifar10(200, seed=5)
    assert first.images.shape == (200, 3, 32, 32) and first.images.dtype == torch.uint8
    assert first.labels.dtype == torch.int64 and first.source == "synthetic"
    assert first.split == "train" and first.provenance == "synthetic stand-in (not CIFAR-10)"
    assert first.classes == SYNTHETIC_CLASSES and not set(first.classes) & set(CIFAR10_CLASSES)
    assert torch.bincount(first.labels).tolist() == [20] * 10
    again = synthetic_cifar10(200, seed=5)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.images, synthetic_cifar10(200, seed=6).images)
    test = synthetic_cifar10(200, seed=5, split="test")
    assert test.split == "test" and not torch.equal(first.images, test.images)
    with pytest.raises(ValueError, match="split"):
        synthetic_cifar10(10, split="validation")


def _normalised(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255 - 0.5) / 0.25


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(steps):
        index = torch.randint(len(x), (64,))
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_synthetic_is_learnable_but_not_linear_and_survives_flips_and_shifts():
    torch.manual_seed(0)
    train, test = synthetic_cifar10(2000, seed=1), synthetic_cifar10(500, seed=1, split="test")
    x, y = _normalised(train.images), train.labels
    x_test, y_test = _normalised(test.images), test.labels

    def block(c_in: int, c_out: int) -> nn.Sequential:
        conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    cnn = nn.Sequential(
        block(3, 16), block(16, 32), block(32, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10),
    )  # fmt: skip
    _train(cnn, x, y, steps=150, lr=0.05)  # no augmentation: flips and shifts stay unseen
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    _train(linear, x, y, steps=150, lr=0.01)

    cnn_accuracy = _accuracy(cnn, x_test, y_test)
    assert cnn_accuracy > 0.4  # chance is 0.1
    assert cnn_accuracy > _accuracy(linear, x_test, y_test) + 0.15
    # A class that changed under a mirror or a 4-pixel shift would lose accuracy here.
    assert _accuracy(cnn, x_test.flip(3), y_test) > cnn_accuracy - 0.08
    shifted = F.pad(x_test, (0, 4, 4, 0), mode="replicate")[:, :, :32, 4:]
    assert _accuracy(cnn, shifted, y_test) > cnn_accuracy - 0.1


# --------------------------------------------------------------------------- statistics


def test_channel_stats_match_a_direct_float64_computation():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (37, 3, 5, 7), dtype=torch.uint8)
    mean, std = channel_stats(images, batch_size=10)  # 4 batches, the last one partial
    pixels = images.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    torch.testing.assert_close(mean, pixels.mean(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(std, pixels.std(1, correction=0), rtol=1e-12, atol=1e-12)

    per_image_mean, per_image_std = channel_stats(images, per_image=True, batch_size=10)
    direct = images.double().div(255).flatten(2).std(2, correction=0).mean(0)
    torch.testing.assert_close(per_image_std, direct, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(per_image_mean, mean, rtol=1e-12, atol=1e-12)


def test_per_image_std_misses_the_spread_between_images():
    torch.manual_seed(0)
    brightness = torch.randint(0, 200, (64, 1, 1, 1))
    images = (brightness + torch.randint(0, 56, (64, 3, 8, 8))).to(torch.uint8)
    _, pixel_std = channel_stats(images)
    _, per_image_std = channel_stats(images, per_image=True)
    assert torch.all(per_image_std < 0.5 * pixel_std)


def test_channel_stats_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        channel_stats(torch.rand(2, 3, 4, 4))
