"""Tests for course_utils.data: real-CIFAR loading from files in the official on-disk format,
the cache, the clear errors, the dispatcher, image folders (tiny ones built here), the
synthetic stand-in and channel statistics. tests/test_real_data.py checks the real images."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.io import encode_jpeg, encode_png

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
    load_image_folder,
    synthetic_cifar10,
)
from course_utils.support import image_folder, sources, words

PER_BATCH = 12  # images per fake batch file (the real ones hold 10,000)


@pytest.fixture(autouse=True)
def no_network(refuse_network):
    """No test here uses the network (conftest's refuse_network)."""


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
    folder = tmp_path / "build" / sources.BATCH_FOLDER
    folder.mkdir(parents=True)
    expected = {}
    for batch, name in enumerate(sources.TRAIN_BATCHES + sources.TEST_BATCHES):
        expected[name] = _fake_batch(folder / name, batch)
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump({b"label_names": [name.encode() for name in CIFAR10_CLASSES]}, file)
    tarball = tmp_path / "build" / sources.TARBALL
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname=sources.BATCH_FOLDER)
    monkeypatch.setattr(sources, "BATCH_MD5", {name: _md5(folder / name) for name in expected})
    monkeypatch.setattr(sources, "TARBALL_MD5", _md5(tarball))
    monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
    return tarball, expected


def _expected_split(expected, train: bool):
    names = sources.TRAIN_BATCHES if train else sources.TEST_BATCHES
    images = np.concatenate([expected[name][0] for name in names])
    labels = np.concatenate([expected[name][1] for name in names])
    return torch.from_numpy(images), torch.from_numpy(labels)


def _root_with_tarball(tmp_path: Path, tarball: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(tarball, root / sources.TARBALL)
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
        assert (root / sources._cache_name(train)).is_file()


def test_cache_is_used_once_written(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    first = load_cifar10(root, train=False, download=False)
    (root / sources.TARBALL).unlink()
    shutil.rmtree(root / sources.BATCH_FOLDER)
    again = load_cifar10(root, train=False, download=False)  # only the cache is left
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_damaged_cache_is_rebuilt_not_used(tmp_path, fake_cifar, capsys):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    load_cifar10(root, train=True, download=False)
    cache = root / sources._cache_name(True)
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the stored images
    cache.write_bytes(bytes(raw))
    images, labels = load_cifar10(root, train=True, download=False)
    assert "damaged cache" in capsys.readouterr().out
    assert torch.equal(images, _expected_split(expected, True)[0])
    assert sources._read_cache(cache, sources.TRAIN_BATCHES) is not None  # rewritten intact


def test_damaged_cache_without_sources_raises(tmp_path, fake_cifar):
    root = tmp_path / "data"
    root.mkdir()
    (root / sources._cache_name(False)).write_bytes(b"not a zip file")
    with pytest.raises(DataNotFoundError, match="CIFAR10_SOURCE"):
        load_cifar10(root, train=False, download=False)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_local_tarball_source_is_used(tmp_path, fake_cifar, monkeypatch, how):
    tarball, expected = fake_cifar
    root, source = tmp_path / "empty", str(tarball)
    if how == "environment":
        monkeypatch.setenv(sources.SOURCE_ENV, source)
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
    assert not (root / sources.TARBALL).exists()  # the partial file is not kept
    assert not (root / sources._cache_name(True)).exists()


def test_truncated_tarball_gives_clear_error_and_no_cache(tmp_path, fake_cifar):
    tarball, _ = fake_cifar
    root = tmp_path / "data"
    root.mkdir()
    (root / sources.TARBALL).write_bytes(tarball.read_bytes()[:-200])
    with pytest.raises(DataCorruptedError, match="md5"):
        load_cifar10(root, train=True, download=False)
    assert not (root / sources._cache_name(True)).exists()
    assert not (root / sources.BATCH_FOLDER).exists()


def test_damaged_batch_file_without_tarball_is_reported(tmp_path, fake_cifar):
    root = tmp_path / "data"
    shutil.copytree(tmp_path / "build" / sources.BATCH_FOLDER, root / sources.BATCH_FOLDER)
    batch = root / sources.BATCH_FOLDER / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DataCorruptedError, match="data_batch_3"):
        load_cifar10(root, train=True, download=False)
    assert not (root / sources._cache_name(True)).exists()


def test_unreadable_batch_file_is_reported(tmp_path, fake_cifar, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(tmp_path / "build" / sources.BATCH_FOLDER, root / sources.BATCH_FOLDER)
    batch = root / sources.BATCH_FOLDER / "test_batch"
    batch.write_bytes(b"\x80\x04garbage that is not a pickle")
    # Even a file that passes the md5 check must still unpickle into a CIFAR-10 batch.
    monkeypatch.setitem(sources.BATCH_MD5, "test_batch", _md5(batch))
    with pytest.raises(DataCorruptedError, match="not a readable CIFAR-10 batch"):
        load_cifar10(root, train=False, download=False)
    assert not (root / sources._cache_name(False)).exists()


def test_offline_with_nothing_on_disk_says_what_to_do(tmp_path, fake_cifar, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(sources, "download_url", no_network)
    root = tmp_path / "data"
    with pytest.raises(DataNotFoundError) as caught:
        load_cifar10(root, train=True, download=True)
    message = str(caught.value)
    for hint in (sources.TARBALL, str(root), sources.SOURCE_ENV, "source='synthetic'"):
        assert hint in message
    assert caught.value.__suppress_context__  # no urllib traceback chained underneath
    with pytest.raises(DataNotFoundError, match="no cifar-10-python.tar.gz on disk"):
        load_cifar10(root, train=True, download=False)


# --------------------------------------------------------------------------- dispatcher


def test_auto_uses_real_data_on_disk(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    root = _root_with_tarball(tmp_path, tarball)
    test = cifar10("test", source="auto", n=5, root=root)
    assert test.source == "cifar10" and test.split == "test" and test.classes == CIFAR10_CLASSES
    assert torch.equal(test.labels, _expected_split(expected, False)[1][:5])


def test_auto_falls_back_to_synthetic_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
    monkeypatch.setattr(sources, "reachable", lambda url: False)
    train = cifar10("train", source="auto", n=30, root=tmp_path)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "synthetic stand-in" in printed[0]
    assert train.source == "synthetic" and len(train) == 30 and train.classes == SYNTHETIC_CLASSES


def test_auto_falls_back_when_the_download_fails(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def broken_download(*args, **kwargs):
        raise urllib.error.URLError("connection reset")

    monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "reachable", lambda url: True)
    monkeypatch.setattr(sources, "download_url", broken_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken_download)  # the Hub mirror
    test = cifar10("test", source="auto", n=10, root=tmp_path)
    assert test.source == "synthetic" and "download failed" in capsys.readouterr().out


def test_dispatcher_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        cifar10("validation", source="synthetic")
    with pytest.raises(ValueError, match="CIFAR10_SOURCE"):
        cifar10("train", source="https://example.org/cifar.tar.gz")


# --------------------------------------------------------------------------- image folders

PER_CLASS = 3  # images per class in each split of the tiny image folders
TINY_COUNTS = {"train": PER_CLASS, "test": PER_CLASS}


def _flat_image(label: int, index: int, size: int = 32, channels: int = 3) -> torch.Tensor:
    """A flat image whose red value spells its label and green value its index, so a loaded
    image can be traced back to its class folder (JPEG keeps flat colours within +-2)."""
    colour = torch.tensor([20 * label + 10, 40 * index + 20, 128][:channels], dtype=torch.uint8)
    return colour.view(channels, 1, 1).expand(channels, size, size).contiguous()


def _encode(image: torch.Tensor, kind: str) -> bytes:
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its encoders for TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = encode_png(image) if kind == "png" else encode_jpeg(image, quality=95)
    return encoded.numpy().tobytes()


def _tiny_folder(base: Path, kind: str = "png", top: str | None = None) -> Path:
    """A tiny image folder in CIFAR-10's layout, PER_CLASS images per class and split;
    returns ``base`` (the splits are in ``base/top`` when ``top`` is given)."""
    root = base / top if top else base
    for split in ("train", "test"):
        for label, name in enumerate(CIFAR10_CLASSES):
            (root / split / name).mkdir(parents=True)
            for index in range(PER_CLASS):
                path = root / split / name / f"{index:04d}.{kind.replace('jpeg', 'jpg')}"
                path.write_bytes(_encode(_flat_image(label, index), kind))
    return base


def _tar(folder: Path, archive: Path) -> Path:
    """Pack the contents of ``folder`` (not the folder itself) into ``archive``."""
    mode = "w:gz" if archive.name.endswith(".gz") else "w"
    with tarfile.open(archive, mode) as packed:
        for entry in sorted(folder.iterdir()):
            packed.add(entry, arcname=entry.name)
    return archive


def _spelled_labels(images: torch.Tensor) -> torch.Tensor:
    """The labels the red channel of ``_flat_image`` images spells."""
    return ((images[:, 0].float().mean(dim=(1, 2)) - 10) / 20).round().long()


@pytest.mark.parametrize(
    "kind, packing",
    [("png", "folder"), ("jpeg", "folder"), ("jpeg", "tar.gz"), ("png", "tar")],
)
def test_image_folder_loads_with_labels_from_the_folder_names(tmp_path, kind, packing):
    source = _tiny_folder(tmp_path / "images", kind, top="cifar10-tiny")
    if packing != "folder":
        source = _tar(source, tmp_path / f"cifar10-tiny.{packing}")
    for split in ("train", "test"):
        loaded = load_image_folder(source, split, TINY_COUNTS, root=tmp_path / "cache")
        assert loaded.split == split and loaded.source == "cifar10"
        assert loaded.classes == CIFAR10_CLASSES and len(loaded) == 10 * PER_CLASS
        assert loaded.images.shape == (30, 3, 32, 32) and loaded.images.dtype == torch.uint8
        assert torch.bincount(loaded.labels).tolist() == [PER_CLASS] * 10
        assert torch.equal(_spelled_labels(loaded.images), loaded.labels)  # labels stay aligned
        assert not torch.equal(loaded.labels, loaded.labels.sort().values)  # shuffled
        assert loaded.provenance.startswith(f"image folder {source} (")
        jpeg = "JPEG copy: pixels differ slightly from the official release"
        assert (jpeg in loaded.provenance) == (kind == "jpeg")
    if kind == "png":  # lossless: every pixel is the one written
        exact = torch.stack([_flat_image(int(y), 0)[:2] for y in loaded.labels])
        assert torch.equal(loaded.images[:, 0], exact[:, 0])


def test_image_folder_order_is_fixed_and_the_same_for_every_load(tmp_path):
    source = _tiny_folder(tmp_path / "images")
    first = load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "one")
    again = load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "two")  # no cache
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    copy = shutil.copytree(source, tmp_path / "elsewhere")  # same files, another path
    moved = load_image_folder(copy, "train", TINY_COUNTS, root=tmp_path / "one")
    assert torch.equal(first.images, moved.images)


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded the images although a valid cache exists")


@pytest.mark.parametrize("packing", ["folder", "tar.gz"])
def test_image_folder_cache_is_used_and_rebuilt_when_the_source_changes(
    tmp_path, monkeypatch, capsys, packing
):
    folder = _tiny_folder(tmp_path / "images")
    source = folder if packing == "folder" else _tar(folder, tmp_path / "tiny.tar.gz")
    cache_root = tmp_path / "cache"
    first = load_image_folder(source, "test", TINY_COUNTS, root=cache_root)
    assert len(list(cache_root.glob("cifar10-images-*-test.npz"))) == 1
    if packing == "tar.gz":  # one pass over the archive cached both splits
        assert len(list(cache_root.glob("cifar10-images-*-train.npz"))) == 1

    with monkeypatch.context() as patched:
        patched.setattr(image_folder, "_decode_images", _no_decoding)
        cached = load_image_folder(source, "test", TINY_COUNTS, root=cache_root)
        assert torch.equal(cached.images, first.images) and cached.provenance == first.provenance
        if packing == "tar.gz":
            load_image_folder(source, "train", TINY_COUNTS, root=cache_root)
        # Touching the source (new mtime, same bytes) invalidates the cache: it decodes again.
        touched = source if packing == "tar.gz" else source / "test" / "cat" / "0001.png"
        stat = touched.stat()
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        with pytest.raises(AssertionError, match="decoded the images"):
            load_image_folder(source, "test", TINY_COUNTS, root=cache_root)
    assert "changed since" in capsys.readouterr().out

    # A changed image shows up after the rebuild, in the same place of the fixed order.
    changed = folder / "test" / "cat" / "0001.png"
    changed.write_bytes(_encode(_flat_image(3, 5), "png"))
    if packing == "tar.gz":
        time.sleep(0.01)  # a new mtime even on coarse-grained filesystems
        _tar(folder, source)
    rebuilt = load_image_folder(source, "test", TINY_COUNTS, root=cache_root)
    differs = (rebuilt.images != first.images).flatten(1).any(1)
    assert differs.sum() == 1 and rebuilt.labels[differs].item() == 3
    assert rebuilt.images[differs][0, 1, 0, 0] == 40 * 5 + 20
    assert len(list(cache_root.glob("cifar10-images-*-test.npz"))) == 1  # replaced, not added


def _truncate(path: Path, kind: str) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _replace_with_text(path: Path, kind: str) -> None:
    path.write_text("not an image")


def _shrink(path: Path, kind: str) -> None:
    path.write_bytes(_encode(_flat_image(0, 0, size=16), kind))


def _make_grayscale(path: Path, kind: str) -> None:
    path.write_bytes(_encode(_flat_image(0, 0, channels=1), kind))


@pytest.mark.parametrize(
    "damage, match",
    [
        (_truncate, r"train/dog/0001\.(png|jpg) in .* cannot be decoded \([^/]+\); replace"),
        (_replace_with_text, r"train/dog/0001\.(png|jpg) in .* is not a PNG or JPEG image"),
        (_shrink, r"train/dog/0001\.(png|jpg) in .* is a 16x16 image with 3 channels"),
        (_make_grayscale, r"train/dog/0001\.(png|jpg) in .* is a 32x32 image with 1 channel;"),
    ],
)
@pytest.mark.parametrize(
    "kind, packing", [("png", "folder"), ("png", "tar.gz"), ("jpeg", "folder")]
)
def test_a_bad_image_file_is_named(tmp_path, damage, match, kind, packing):
    folder = _tiny_folder(tmp_path / "images", kind)
    damage(next((folder / "train" / "dog").glob("0001.*")), kind)
    source = folder if packing == "folder" else _tar(folder, tmp_path / "tiny.tar.gz")
    with pytest.raises(DataCorruptedError, match=match) as caught:
        load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "cache")
    assert str(source) in str(caught.value) and "\n" not in str(caught.value)
    assert not list((tmp_path / "cache").glob("*train*"))  # nothing cached from a bad split


def test_a_folder_may_mix_png_and_jpeg_files(tmp_path):
    folder = _tiny_folder(tmp_path / "images", "png")
    for path in sorted((folder / "train").glob("*/0001.png")):  # one JPEG in every class
        label = CIFAR10_CLASSES.index(path.parent.name)
        path.with_suffix(".jpg").write_bytes(_encode(_flat_image(label, 1), "jpeg"))
        path.unlink()
    loaded = load_image_folder(folder, "train", TINY_COUNTS, root=tmp_path / "cache")
    assert torch.equal(_spelled_labels(loaded.images), loaded.labels)
    assert "(JPEG and PNG files: pixels differ slightly" in loaded.provenance
    _truncate(folder / "train" / "bird" / "0001.jpg", "jpeg")  # JPEG files scattered in order
    with pytest.raises(DataCorruptedError, match=r"train/bird/0001\.jpg in .* cannot be decoded"):
        load_image_folder(folder, "train", TINY_COUNTS, root=tmp_path / "cache")


def _remove_a_class(folder: Path) -> None:
    shutil.rmtree(folder / "train" / "cat")


def _empty_a_class(folder: Path) -> None:
    for path in (folder / "train" / "cat").iterdir():
        path.unlink()


def _add_an_unknown_class(folder: Path) -> None:
    shutil.copytree(folder / "train" / "cat", folder / "train" / "kitten")


def _add_an_image(folder: Path) -> None:
    shutil.copy(folder / "train" / "frog" / "0000.png", folder / "train" / "frog" / "0099.png")


def _misplace_an_image(folder: Path) -> None:
    shutil.move(folder / "train" / "frog" / "0000.png", folder / "train" / "0000.png")


@pytest.mark.parametrize(
    "change, match",
    [
        (_remove_a_class, r"no images in train/cat \(class folder missing or empty\)"),
        (_empty_a_class, r"no images in train/cat \(class folder missing or empty\)"),
        (_add_an_unknown_class, r"class folders train/kitten that are not CIFAR-10 classes"),
        (
            _add_an_image,
            r"should hold 3 train images per class \(30 in all\), but train/frog has 4:",
        ),
        (_misplace_an_image, r"train/0000\.png in the CIFAR-10 image folder .* is not at"),
    ],
)
@pytest.mark.parametrize("packing", ["folder", "tar.gz"])
def test_a_wrong_layout_or_count_is_named(tmp_path, change, match, packing):
    folder = _tiny_folder(tmp_path / "images")
    change(folder)
    source = folder if packing == "folder" else _tar(folder, tmp_path / "tiny.tar.gz")
    with pytest.raises(DataCorruptedError, match=match) as caught:
        load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "cache")
    assert str(source) in str(caught.value)


def test_full_cifar10_counts_are_expected_by_default(tmp_path):
    source = _tiny_folder(tmp_path / "images")
    with pytest.raises(
        DataCorruptedError, match=r"5,000 train .* each class folder holds 3:"
    ) as caught:
        load_image_folder(source, "train", root=tmp_path / "cache")
    assert str(caught.value).endswith("load it with check_counts=False (load_image_folder: "
                                      "expected_counts=None).")  # fmt: skip
    with words.command_line(), pytest.raises(DataCorruptedError, match="with --no-check-counts.$"):
        load_image_folder(source, "train", root=tmp_path / "cache")
    loaded = load_image_folder(source, "test", expected_counts=None, root=tmp_path / "cache")
    assert len(loaded) == 30
    # The counts are checked on cached loads too, not only when decoding.
    with pytest.raises(DataCorruptedError, match=r"should hold 1,000 test images per class"):
        load_image_folder(source, "test", root=tmp_path / "cache")


def test_a_split_missing_from_the_folder_is_named(tmp_path):
    folder = _tiny_folder(tmp_path / "images")
    shutil.rmtree(folder / "test")
    assert len(load_image_folder(folder, "train", TINY_COUNTS, root=tmp_path / "cache")) == 30
    with pytest.raises(DataCorruptedError, match=r"has no test/ folder"):
        load_image_folder(folder, "test", TINY_COUNTS, root=tmp_path / "cache")


def test_a_bad_split_in_an_archive_does_not_block_the_other(tmp_path):
    folder = _tiny_folder(tmp_path / "images")
    _truncate(folder / "test" / "ship" / "0002.png", "png")
    archive = _tar(folder, tmp_path / "tiny.tar.gz")
    assert len(load_image_folder(archive, "train", TINY_COUNTS, root=tmp_path / "cache")) == 30
    with pytest.raises(DataCorruptedError, match=r"test/ship/0002\.png"):
        load_image_folder(archive, "test", TINY_COUNTS, root=tmp_path / "cache")


def test_hidden_files_and_files_beside_the_splits_are_ignored(tmp_path):
    folder = _tiny_folder(tmp_path / "images", top="copy")
    (folder / "copy" / "README.txt").write_text("where these images come from")
    (folder / "LICENSE").write_text("a licence next to the top folder")
    (folder / "copy" / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (folder / "copy" / "train" / ".hidden").mkdir()
    for source in (folder, _tar(folder, tmp_path / "tiny.tar")):
        loaded = load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "cache")
        assert torch.bincount(loaded.labels).tolist() == [PER_CLASS] * 10


@pytest.mark.parametrize(
    "contents, match",
    [
        ("empty archive", r"is not a CIFAR-10 image folder: it has no train/<class>/<image>"),
        ("empty file", r"is neither a folder nor a readable \.tar/\.tar\.gz archive"),
        ("text file", r"is neither a folder nor a readable \.tar/\.tar\.gz archive"),
        ("official layout", r"it holds cifar-10-batches-py, so it looks like the official"),
        ("empty folder", r"is not a CIFAR-10 image folder"),
    ],
)
def test_a_source_that_is_not_an_image_folder_is_named(tmp_path, contents, match):
    source = tmp_path / "source.tar.gz"
    if contents == "empty archive":
        tarfile.open(source, "w:gz").close()
    elif contents == "empty file":
        source.write_bytes(b"")
    elif contents == "text file":
        source.write_text("hello")
    elif contents == "official layout":
        (tmp_path / "release" / sources.BATCH_FOLDER).mkdir(parents=True)
        (tmp_path / "release" / sources.BATCH_FOLDER / "data_batch_1").write_bytes(b"\0" * 10)
        _tar(tmp_path / "release", source)
    else:
        source = tmp_path / "empty"
        source.mkdir()
    with pytest.raises(DataCorruptedError, match=match) as caught:
        load_image_folder(source, "train", TINY_COUNTS, root=tmp_path / "cache")
    assert str(source) in str(caught.value)


def test_a_named_missing_source_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "cifar10-jpeg.tar.gz"
    with pytest.raises(DataNotFoundError, match=r"image folder .*nowhere.* does not exist"):
        load_image_folder(missing, "train", root=tmp_path)
    with pytest.raises(DataNotFoundError, match=rf"source {missing} \(named by source="):
        cifar10("train", source=missing, root=tmp_path)
    monkeypatch.setattr(sources, "reachable", lambda url: False)  # offline: auto would fall back
    monkeypatch.setenv(sources.SOURCE_ENV, str(missing))
    for source in ("auto", "cifar10"):
        with pytest.raises(DataNotFoundError, match=r"named by CIFAR10_SOURCE=.*unset"):
            cifar10("test", source=source, root=tmp_path)


@pytest.mark.parametrize("how", ["CIFAR10_SOURCE auto", "CIFAR10_SOURCE cifar10", "argument"])
def test_dispatcher_loads_an_image_folder_and_announces_it_once(tmp_path, monkeypatch, capsys, how):
    folder = _tiny_folder(tmp_path / "images", "jpeg", top="cifar10-tiny")
    archive = _tar(folder, tmp_path / "cifar10-tiny.tar.gz")
    monkeypatch.setattr(data, "IMAGE_FOLDER_COUNTS", TINY_COUNTS)  # what cifar10() expects
    monkeypatch.setattr(data, "_ANNOUNCED", set())
    monkeypatch.setattr(sources, "reachable", lambda url: False)
    if how == "argument":
        monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
        source = archive  # a Path; a str works the same
    else:
        monkeypatch.setenv(sources.SOURCE_ENV, str(archive))
        source = how.split()[1]
    train = cifar10("train", source=source, root=tmp_path / "data")
    test = cifar10("test", source=source, n=7, root=tmp_path / "data")
    assert (train.source, train.split, len(train)) == ("cifar10", "train", 30)
    assert (test.split, len(test)) == ("test", 7)
    assert torch.equal(_spelled_labels(train.images), train.labels)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [
        f"CIFAR-10: image folder {archive} (JPEG copy: pixels differ slightly from the "
        "official release)"
    ]
    assert test.provenance == printed[0].removeprefix("CIFAR-10: ")


@pytest.fixture
def tiny_archive(tmp_path, monkeypatch):
    """A tiny JPEG archive in CIFAR-10's layout, offline, with cifar10() expecting its size."""
    folder = _tiny_folder(tmp_path / "images", "jpeg", top="cifar10-tiny")
    monkeypatch.setattr(data, "IMAGE_FOLDER_COUNTS", TINY_COUNTS)
    monkeypatch.setattr(data, "_ANNOUNCED", set())
    monkeypatch.setattr(sources, "reachable", lambda url: False)
    monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
    return _tar(folder, tmp_path / "cifar10-tiny.tar.gz")


@pytest.mark.parametrize("size", ["cpu", "full", "smoke"])
def test_auto_finds_a_copy_read_before_except_at_smoke_size(tmp_path, monkeypatch, capsys,
                                                            tiny_archive, size):  # fmt: skip
    root = tmp_path / "data"
    named = cifar10("train", source=tiny_archive, root=root)  # read once: cached in root
    capsys.readouterr()
    monkeypatch.setattr(data, "_ANNOUNCED", set())  # as in a new process
    monkeypatch.setattr(data.settings, "SIZE", size)
    found = cifar10("train", source="auto", root=root)
    printed = capsys.readouterr().out
    if size == "smoke":  # CI and the tests stay on the stand-in unless a source is named
        assert found.source == "synthetic" and "synthetic stand-in" in printed
        return
    assert found.source == "cifar10" and torch.equal(found.images, named.images)
    assert f"image folder {tiny_archive}" in printed and "read before" in printed
    test = cifar10("test", source="cifar10", n=5, root=root)  # the other split, the same copy
    assert (test.source, len(test)) == ("cifar10", 5)
    tiny_archive.unlink()  # a copy that is gone is not found again
    assert cifar10("train", source="auto", root=root).source == "synthetic"


def test_the_stand_in_line_says_how_to_name_a_copy_in_the_words_of_the_tool(tmp_path, monkeypatch,
                                                                           capsys):  # fmt: skip
    monkeypatch.delenv(sources.SOURCE_ENV, raising=False)
    monkeypatch.setattr(sources, "reachable", lambda url: False)
    cifar10("train", source="auto", n=10, root=tmp_path)
    assert "name a copy of CIFAR-10 with CIFAR10_SOURCE=PATH or source=PATH" in (
        capsys.readouterr().out
    )
    with words.command_line():
        cifar10("train", source="auto", n=10, root=tmp_path)
    printed = capsys.readouterr().out
    assert "name a copy of CIFAR-10 with --data PATH" in printed and "source=" not in printed


def test_a_relative_source_is_found_from_the_repository_root_too(tmp_path, monkeypatch,
                                                                tiny_archive):  # fmt: skip
    checkout = tmp_path / "checkout"
    (checkout / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(data.settings, "repo_root", lambda: checkout)
    monkeypatch.chdir(checkout / "notebooks")  # where a notebook's kernel runs
    monkeypatch.setenv(sources.SOURCE_ENV, "../cifar10-tiny.tar.gz")  # relative to the checkout
    train = cifar10("train", source="auto", root=tmp_path / "data")
    assert train.source == "cifar10" and len(train) == 30
    monkeypatch.setenv(sources.SOURCE_ENV, "../cifar10-tiny.tar")  # a near miss
    with pytest.raises(DataNotFoundError) as caught:
        cifar10("train", source="auto", root=tmp_path / "data")
    message = str(caught.value)
    assert f"(looked for {checkout / 'cifar10-tiny.tar'} and {tmp_path / 'cifar10-tiny.tar'})" in (
        message
    )
    assert message.endswith(f"Did you mean {tmp_path / 'cifar10-tiny.tar.gz'}?")


def test_a_folder_holding_the_archive_points_at_the_archive(tmp_path, monkeypatch, tiny_archive):
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.move(tiny_archive, shared / tiny_archive.name)
    with pytest.raises(DataNotFoundError) as caught:
        cifar10("train", source=shared, root=tmp_path / "data")
    assert str(caught.value).endswith(
        f"is a folder holding {tiny_archive.name}, not an image folder: name the archive itself, "
        f"source={str(shared / tiny_archive.name)!r}."
    )
    monkeypatch.setenv(sources.SOURCE_ENV, str(shared))
    with pytest.raises(DataNotFoundError, match=f"itself, {sources.SOURCE_ENV}={shared}/cifar10"):
        cifar10("train", source="auto", root=tmp_path / "data")


def test_a_named_official_release_is_md5_checked_not_read_as_images(tmp_path, fake_cifar):
    tarball, expected = fake_cifar
    renamed = shutil.copy(tarball, tmp_path / "my-copy.tgz")  # md5-matching: the release
    holder = tmp_path / "holder"  # holds cifar-10-batches-py and no tarball
    shutil.copytree(tarball.parent / sources.BATCH_FOLDER, holder / sources.BATCH_FOLDER)
    candidates = (tarball, renamed, tarball.parent, holder, holder / sources.BATCH_FOLDER)
    for number, source in enumerate(candidates):
        test = cifar10("test", source=source, root=tmp_path / f"data-{number}")
        assert test.provenance == "official CIFAR-10 python release (md5-checked)"
        assert torch.equal(test.labels, _expected_split(expected, False)[1])
    damaged = tmp_path / "damaged" / sources.TARBALL  # named like the release: never images
    damaged.parent.mkdir()
    damaged.write_bytes(tarball.read_bytes()[:-200])
    with pytest.raises(DataCorruptedError, match="md5"):
        cifar10("train", source=damaged, root=tmp_path / "data-damaged")
    (holder / sources.BATCH_FOLDER / "test_batch").write_bytes(b"cut short")
    with pytest.raises(DataCorruptedError, match=r"test_batch in .*holder.* md5 check"):
        cifar10("test", source=holder, root=tmp_path / "data-broken")


def test_shared_archive_is_found_from_the_variable_or_next_to_the_checkout(tmp_path, monkeypatch):
    archive = tmp_path / sources.SHARED_ARCHIVE
    archive.write_bytes(b"stand-in")
    monkeypatch.setenv(sources.SHARED_DATA_ENV, str(archive))
    assert data.shared_cifar10_archive() == archive
    monkeypatch.setenv(sources.SHARED_DATA_ENV, str(tmp_path))  # a folder holding it
    assert data.shared_cifar10_archive() == archive
    monkeypatch.setenv(sources.SHARED_DATA_ENV, str(tmp_path / "missing.tar.gz"))
    assert data.shared_cifar10_archive() is None
    monkeypatch.delenv(sources.SHARED_DATA_ENV)
    checkout = tmp_path / "checkout"
    monkeypatch.setattr(data.settings, "repo_root", lambda: checkout)
    assert data.shared_cifar10_archive() is None
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    shutil.copy(archive, shared)
    assert data.shared_cifar10_archive() == shared / sources.SHARED_ARCHIVE


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


def test_the_support_leaves_copies_of_the_release_names_agree():
    """hub and image_folder import nothing of the package, so they spell a few of the
    release's names themselves: they must be the ones sources uses."""
    from course_utils.support import hub

    assert image_folder.RELEASE_FOLDER == sources.BATCH_FOLDER
    assert image_folder.RELEASE_TARBALL == sources.TARBALL
    assert dict(hub.SPLIT_BATCHES) == {"train": sources.TRAIN_BATCHES, "test": sources.TEST_BATCHES}
    assert hub.PNG_MAGIC == image_folder.PNG_MAGIC
