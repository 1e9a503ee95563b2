"""Tests for the Hugging Face Hub source (course_utils.support.hub) and the order of sources in
cifar10(): a fake Hub serves small Parquet files in the Hub's schema, written here; the
release's facts are computed from the same fake release and injected. Nothing touches the
network: every socket fails at once, and the download functions are replaced."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from course_utils import data, settings
from course_utils.data import (
    CIFAR10_CLASSES,
    DataCorruptedError,
    DataNotFoundError,
    SourceUnreachableError,
    cifar10,
)
from course_utils.support import hub, sources

BATCH = 20  # images per fake batch (the release's hold 10,000)
EXACT = 12  # images per batch whose exact digest the fake facts carry (the release's: 761)
KNOWN = 8  # images per batch known by digest and label (the release's: 100)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OFFICIAL_SERVER = sources.CIFAR10_URL


@pytest.fixture(autouse=True)
def no_network(refuse_network, monkeypatch):
    """No network (conftest's refuse_network), no earlier announcements, no source settings."""
    monkeypatch.setattr(data, "_ANNOUNCED", set())
    for name in (sources.SOURCE_ENV, "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- a fake release


def _fake_batches() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Six batches of random images; labels cover all ten classes in every batch."""
    batches = {}
    for number, name in enumerate(sources.TRAIN_BATCHES + sources.TEST_BATCHES):
        rng = np.random.default_rng(100 + number)
        images = rng.integers(0, 256, size=(BATCH, 3, 32, 32), dtype=np.uint8)
        labels = rng.permutation(np.arange(BATCH) % 10).astype(np.int64)
        batches[name] = images, labels
    return batches


@pytest.fixture
def release():
    """The fake release's batches, its facts injected as the official ones."""
    batches = _fake_batches()
    return batches, hub.release_facts(batches, exact_images=EXACT, known_images=KNOWN)


def _split(batches, split: str, order=None) -> tuple[np.ndarray, np.ndarray]:
    names = hub.SPLIT_BATCHES[split]
    names = [names[index] for index in order] if order is not None else names
    return (
        np.concatenate([batches[name][0] for name in names]),
        np.concatenate([batches[name][1] for name in names]),
    )


def _png(image: np.ndarray) -> bytes:
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its encoders for TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        return encode_png(torch.from_numpy(image)).numpy().tobytes()


def _write_parquet(path: Path, images: np.ndarray, labels: np.ndarray, encode=_png) -> Path:
    """A Parquet file in the Hub's schema: img {bytes, path}, label."""
    img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    rows = [{"bytes": encode(image), "path": None} for image in images]
    table = pa.table(
        {"img": pa.array(rows, type=img_type), "label": pa.array(labels, type=pa.int64())}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


class FakeHub:
    """Stands in for huggingface_hub.hf_hub_download: serves the Parquet files written for
    each split (as the real one lays them out in its cache) and records every call."""

    def __init__(self, tmp_path: Path) -> None:
        self.source = tmp_path / "hub-files"
        self.calls: list[dict] = []
        self.error: Exception | None = None

    def put(self, split: str, images: np.ndarray, labels: np.ndarray, **kwargs) -> None:
        _write_parquet(self.source / hub.HUB_FILES[split], images, labels, **kwargs)

    def __call__(self, **kwargs) -> str:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        snapshot = Path(kwargs["cache_dir"]) / "datasets--uoft-cs--cifar10" / "snapshots" / COMMIT
        target = snapshot / kwargs["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.source / kwargs["filename"], target)
        return str(target)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, release):
    """A Hub holding the fake release in its order; the Hub and the official server count
    as reachable; the official download fails the test unless a test replaces it."""
    import huggingface_hub

    batches, facts = release
    monkeypatch.setattr(hub, "OFFICIAL_FACTS", facts)
    fake = FakeHub(tmp_path)
    for split in ("train", "test"):
        fake.put(split, *_split(batches, split))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    monkeypatch.setattr(sources, "reachable", lambda url: True)
    monkeypatch.setattr(sources, "download_url", _must_not_be_called)
    return fake


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("called where it must not be: the official server or a network check")


@pytest.fixture
def official(tmp_path, monkeypatch, release):
    """The fake release as the official tarball (md5s pointed at it), which a replaced
    official download copies into the data folder; returns the list of its calls."""
    batches, _ = release
    folder = tmp_path / "release" / sources.BATCH_FOLDER
    folder.mkdir(parents=True)
    for name, (images, labels) in batches.items():
        content = {b"data": images.reshape(BATCH, -1), b"labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(content))
    tarball = tmp_path / "release" / sources.TARBALL
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname=sources.BATCH_FOLDER)
    md5s = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in batches}
    monkeypatch.setattr(sources, "BATCH_MD5", md5s)
    monkeypatch.setattr(sources, "TARBALL_MD5", hashlib.md5(tarball.read_bytes()).hexdigest())
    calls = []

    def download_url(url, root, filename, md5):
        calls.append(url)
        Path(root).mkdir(parents=True, exist_ok=True)
        shutil.copy(tarball, Path(root) / filename)

    monkeypatch.setattr(sources, "download_url", download_url)
    return calls


def _tampered_image(images: np.ndarray, index: int) -> np.ndarray:
    images = images.copy()
    images[index, 0, 0, 0] ^= 1  # one pixel off by one
    return images


# --------------------------------------------------------------------------- the facts


def test_the_carried_facts_are_the_shared_facts_file():
    root = settings.repo_root()
    path = root.parent / "shared" / "data" / "cifar10-official-facts.json" if root else None
    if path is None or not path.is_file():
        pytest.skip("the shared facts file is not next to this checkout")
    shared = json.loads(path.read_text())
    facts = hub.OFFICIAL_FACTS
    assert facts.train_labels_sha256 == shared["train_labels_sha256"]
    assert facts.test_labels_sha256 == shared["test_labels_sha256"]
    assert (facts.batch_size, facts.exact_images) == (10_000, 761)
    assert list(facts.batches) == list(shared["batches"])
    for name, batch in shared["batches"].items():
        carried = facts.batches[name]
        assert carried.labels_sha256 == batch["labels_sha256"]
        assert list(carried.label_counts) == batch["label_counts"]
        assert carried.first_images_sha256 == batch["first_761_images_sha256"]
        assert list(carried.known_labels) == batch["first_100_labels"]
        assert list(carried.known_image_sha256) == batch["first_100_image_sha256"]


def test_the_official_facts_describe_cifar10():
    facts = hub.OFFICIAL_FACTS
    train = np.sum([facts.batches[name].label_counts for name in sources.TRAIN_BATCHES], axis=0)
    assert train.tolist() == [5_000] * 10
    assert list(facts.batches["test_batch"].label_counts) == [1_000] * 10
    assert facts.test_labels_sha256 == facts.batches["test_batch"].labels_sha256
    for batch in facts.batches.values():
        assert sum(batch.label_counts) == 10_000
        assert len(batch.known_labels) == len(batch.known_image_sha256) == 100
        assert all(len(digest) == 16 for digest in batch.known_image_sha256)
    # The release's first images are well known: frog, truck, truck, deer, automobile.
    assert facts.batches["data_batch_1"].known_labels[:5] == (6, 9, 9, 4, 1)


# --------------------------------------------------------------------------- decoding


def test_decode_parquet_gives_the_exact_pixels_and_labels(tmp_path, release):
    batches, _ = release
    images, labels = _split(batches, "train")
    decoded, decoded_labels = hub.decode_parquet(
        _write_parquet(tmp_path / "train.parquet", images, labels)
    )
    assert decoded.dtype == np.uint8 and decoded.shape == (5 * BATCH, 3, 32, 32)
    assert decoded_labels.dtype == np.int64
    assert np.array_equal(decoded, images) and np.array_equal(decoded_labels, labels)


def _jpeg(image: np.ndarray) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return encode_jpeg(torch.from_numpy(image), quality=95).numpy().tobytes()


def test_decode_parquet_refuses_what_is_not_the_hub_schema(tmp_path, release):
    images, labels = _split(release[0], "test")
    lossy = _write_parquet(tmp_path / "jpeg.parquet", images, labels, encode=_jpeg)
    with pytest.raises(hub.HubRefusedError, match=r"image 0 of jpeg\.parquet is not a PNG image"):
        hub.decode_parquet(lossy)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"image": [b"x"], "label": [1]}), other)
    with pytest.raises(hub.HubRefusedError, match="is not a Parquet file with img and label"):
        hub.decode_parquet(other)
    text = tmp_path / "text.parquet"
    text.write_text("not parquet")
    with pytest.raises(hub.HubRefusedError, match="text.parquet is not a Parquet file"):
        hub.decode_parquet(text)


# --------------------------------------------------------------------------- verification


def test_verify_accepts_the_release_in_its_order(release):
    batches, facts = release
    for split, count in (("train", 5), ("test", 1)):
        images, labels = _split(batches, split)
        verified = hub.verify(images, labels, split, facts)
        assert verified.how == (
            f"in the release's order, every label and {count * EXACT} checked images identical"
        )
        assert np.array_equal(verified.images, images)


def test_verify_puts_batches_back_in_the_release_order(release):
    batches, facts = release
    images, labels = _split(batches, "train", order=[3, 2, 1, 4, 0])
    verified = hub.verify(images, labels, "train", facts)
    want_images, want_labels = _split(batches, "train")
    assert np.array_equal(verified.images, want_images)
    assert np.array_equal(verified.labels, want_labels)
    assert verified.how.startswith(
        "its batches put back in the release's order (they came as data_batch_4, data_batch_3, "
        "data_batch_2, data_batch_5, data_batch_1)"
    )


def test_verify_accepts_another_order_when_every_known_image_is_there(release):
    batches, facts = release
    images, labels = _split(batches, "train")
    order = np.random.default_rng(0).permutation(len(labels))
    verified = hub.verify(images[order], labels[order], "train", facts)
    assert verified.how == (
        f"in another order than the release's, all {5 * KNOWN} known images found with their labels"
    )
    assert np.array_equal(verified.images, images[order])  # kept in the copy's order


@pytest.mark.parametrize(
    "change, match",
    [
        ("image among the checked ones", r"images 0-19 carry data_batch_1's labels but differ"),
        ("image in the last batch", r"images 80-99 carry data_batch_5's labels but differ"),
        ("two labels swapped", r"images 20-39 are data_batch_2's images with other labels"),
        ("one label changed", r"its images per class \(.*\) differ from the release's"),
        ("a known image, shuffled", r"3 of the 40 images known from the release are missing"),
        ("a known label, shuffled", r"1 of the 40 images known from the release are missing"),
        ("one image missing", r"it holds 99 images .* the release 100"),
        ("a batch twice", r"its batches are data_batch_1, data_batch_1, data_batch_3, "),
    ],
)
def test_verify_refuses_a_changed_copy(release, change, match):
    batches, facts = release
    images, labels = _split(batches, "train")
    labels = labels.copy()
    if change == "image among the checked ones":
        images = _tampered_image(images, EXACT - 1)  # checked, but not among the known
    elif change == "image in the last batch":
        images = _tampered_image(images, 4 * BATCH)
    elif change == "two labels swapped":
        first, second = BATCH + KNOWN, BATCH + KNOWN + 1
        assert labels[first] != labels[second]
        labels[[first, second]] = labels[[second, first]]
    elif change == "one label changed":
        labels[EXACT + 1] = (labels[EXACT + 1] + 1) % 10
    elif change.endswith("shuffled"):
        order = np.random.default_rng(1).permutation(len(labels))
        if change.startswith("a known image"):
            for index in (0, 1, 2 * BATCH):
                images = _tampered_image(images, index)
        else:  # move a known image's label to another image of another class
            other = next(i for i in range(KNOWN, BATCH) if labels[i] != labels[0])
            labels[[0, other]] = labels[[other, 0]]
        images, labels = images[order], labels[order]
    elif change == "one image missing":
        images, labels = images[1:], labels[1:]
    else:  # data_batch_1 in place of data_batch_2 (every fake batch has the same counts)
        images, labels = _split(batches, "train", order=[0, 0, 2, 3, 4])
    with pytest.raises(hub.HubRefusedError, match=match):
        hub.verify(images, labels, "train", facts)


# --------------------------------------------------------------------------- the Hub source


def test_hub_source_decodes_verifies_caches_and_announces(tmp_path, fake_hub, release, capsys):
    batches, _ = release
    root = tmp_path / "data"
    train = cifar10("train", source="hub", root=root)
    test = cifar10("test", source="hub", n=7, root=root)
    want_images, want_labels = _split(batches, "train")
    assert (train.source, train.split, train.classes) == ("cifar10", "train", CIFAR10_CLASSES)
    assert torch.equal(train.images, torch.from_numpy(want_images))  # lossless: exact pixels
    assert torch.equal(train.labels, torch.from_numpy(want_labels))
    assert (test.split, len(test)) == ("test", 7)
    call = fake_hub.calls[0]
    assert (call["repo_id"], call["repo_type"], call["revision"]) == (
        "uoft-cs/cifar10",
        "dataset",
        hub.HUB_REVISION,
    )
    assert [call["filename"] for call in fake_hub.calls] == [
        "plain_text/train-00000-of-00001.parquet",
        "plain_text/test-00000-of-00001.parquet",
    ]
    assert Path(call["cache_dir"]) == root / "huggingface"
    provenance = (
        f"Hugging Face Hub mirror uoft-cs/cifar10 (revision main, commit {COMMIT}), checked "
        f"against the release: in the release's order, every label and {5 * EXACT} checked "
        "images identical"
    )
    assert train.provenance == provenance
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith(
        "CIFAR-10: downloading the train split (120 MB) from the Hugging Face Hub mirror "
        "uoft-cs/cifar10 (revision main); seconds at typical Colab bandwidth"
    )
    assert printed[1] == f"CIFAR-10: from the {provenance}"
    assert printed[2].startswith("CIFAR-10: downloading the test split (24 MB)")
    assert len(printed) == 4  # the test split announces itself too (its own checked count)

    fake_hub.error = OSError("offline now")  # the cache needs no download
    again = cifar10("train", source="hub", root=root)
    assert torch.equal(again.images, train.images) and again.provenance == provenance
    assert hub.cache_path(root, "train").name == "cifar10-hub-main-train.npz"
    assert len(fake_hub.calls) == 2


def test_hub_batches_in_another_order_are_restored_and_said(tmp_path, fake_hub, release, capsys):
    batches, _ = release
    fake_hub.put("train", *_split(batches, "train", order=[4, 3, 2, 1, 0]))
    train = cifar10("train", source="auto", root=tmp_path / "data")
    assert torch.equal(train.labels, torch.from_numpy(_split(batches, "train")[1]))
    assert "its batches put back in the release's order" in capsys.readouterr().out


def test_a_shuffled_copy_is_accepted_and_said(tmp_path, fake_hub, release, capsys):
    images, labels = _split(release[0], "test")
    order = np.random.default_rng(2).permutation(len(labels))
    fake_hub.put("test", images[order], labels[order])
    test = cifar10("test", source="hub", root=tmp_path / "data")
    assert torch.equal(test.labels, torch.from_numpy(labels[order]))
    out = capsys.readouterr().out
    assert f"in another order than the release's, all {KNOWN} known images found" in out
    cached = cifar10("test", source="hub", root=tmp_path / "data")  # verified again from cache
    assert cached.provenance == test.provenance


def test_hub_cache_is_keyed_by_revision_and_verified_when_read(tmp_path, fake_hub, capsys):
    root = tmp_path / "data"
    cifar10("test", source="hub", root=root)
    cifar10("test", source="hf://uoft-cs/cifar10@v2.0", root=root)
    assert [call["revision"] for call in fake_hub.calls] == ["main", "v2.0"]
    assert hub.cache_path(root, "test", "v2.0").is_file()
    cache = hub.cache_path(root, "test")
    with np.load(cache) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["images"] = _tampered_image(arrays["images"], 0)
    with cache.open("wb") as file:
        np.savez(file, **arrays)
    capsys.readouterr()
    cifar10("test", source="hub", root=root)
    assert "Ignoring the cache" in capsys.readouterr().out
    assert len(fake_hub.calls) == 3  # downloaded and verified again
    cache.write_bytes(b"not a zip file")
    cifar10("test", source="hub", root=root)
    assert "Ignoring the damaged cache" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"the Hub source is hf://uoft-cs/cifar10"):
        cifar10("test", source="hf://someone/cifar10", root=root)


def test_a_tampered_hub_copy_is_refused_and_auto_takes_the_official_server(
    tmp_path, fake_hub, official, release, capsys
):
    batches, _ = release
    images, labels = _split(batches, "train")
    fake_hub.put("train", _tampered_image(images, 2 * BATCH + EXACT - 1), labels)
    root = tmp_path / "data"
    train = cifar10("train", source="auto", root=root)
    assert train.provenance == data.OFFICIAL_PROVENANCE
    assert torch.equal(train.images, torch.from_numpy(images))
    assert official == [OFFICIAL_SERVER]
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[1] == (
        "CIFAR-10: refused the train split of the Hugging Face Hub mirror uoft-cs/cifar10 "
        "(revision main): images 40-59 carry data_batch_3's labels but differ from its "
        f"images (the first {EXACT} are checked), so it is not the official release; trying "
        "the official server."
    )
    assert "tens of kB/s: this can take an hour" in printed[2]
    assert printed[3] == "CIFAR-10: official CIFAR-10 python release (md5-checked)"
    assert not hub.cache_path(root, "train").exists()  # a refused copy is never cached


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_named_hub_is_never_skipped(tmp_path, fake_hub, release, monkeypatch, how):
    images, labels = _split(release[0], "test")
    fake_hub.put("test", images, (labels + 1) % 10)
    source = "hub"
    if how == "environment":
        monkeypatch.setenv(sources.SOURCE_ENV, "hf://uoft-cs/cifar10")
        source = "auto"
    with pytest.raises(DataCorruptedError, match=r"refused the test split .*labels"):
        cifar10("test", source=source, root=tmp_path / "data")


class RevisionNotFoundError(Exception):
    """Stands in for huggingface_hub's error of the same name (built from an HTTP answer)."""


@pytest.mark.parametrize(
    "error",
    [
        RevisionNotFoundError("404 Client Error. Revision Not Found for url: https://x.\nmore"),
        ConnectionError("Connection reset by peer"),
    ],
)
def test_a_hub_failure_falls_through_in_auto_and_is_the_error_when_named(
    tmp_path, fake_hub, official, capsys, error
):
    fake_hub.error = error
    root = tmp_path / "data"
    test = cifar10("test", source="auto", root=root)
    assert test.provenance == data.OFFICIAL_PROVENANCE
    printed = capsys.readouterr().out.strip().splitlines()
    first_line = str(error).splitlines()[0]
    assert printed[1] == (
        "CIFAR-10: the Hugging Face Hub mirror uoft-cs/cifar10 (revision main) could not "
        f"deliver plain_text/test-00000-of-00001.parquet: {type(error).__name__}: {first_line}; "
        "trying the official server."
    )
    shutil.rmtree(root)
    with pytest.raises(DataNotFoundError, match=type(error).__name__) as caught:
        cifar10("test", source="hub", root=root)
    assert not isinstance(caught.value, SourceUnreachableError)
    assert official == [OFFICIAL_SERVER]  # only the first, unnamed load used it


def test_an_unreachable_hub_is_skipped_in_seconds_and_said(
    tmp_path, fake_hub, official, monkeypatch, capsys
):
    monkeypatch.setattr(sources, "reachable", lambda url: url == OFFICIAL_SERVER)
    train = cifar10("train", source="cifar10", root=tmp_path / "data")
    assert train.provenance == data.OFFICIAL_PROVENANCE and fake_hub.calls == []
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == (
        "CIFAR-10: the Hugging Face Hub (https://huggingface.co) cannot be reached; trying the "
        "official server."
    )
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example.org")
    with pytest.raises(SourceUnreachableError, match=r"hf-mirror\.example\.org\) cannot be"):
        cifar10("test", source="hub", root=tmp_path / "data")


def test_offline_everywhere_auto_says_one_line_and_cifar10_is_an_error(
    tmp_path, fake_hub, monkeypatch, capsys
):
    reached = []

    def reachable(url):
        reached.append(url)
        return False

    monkeypatch.setattr(sources, "reachable", reachable)
    train = cifar10("train", source="auto", n=20, root=tmp_path / "data")
    assert train.source == "synthetic" and fake_hub.calls == []
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "no internet: using the synthetic stand-in" in printed[0]
    assert reached == ["https://huggingface.co", OFFICIAL_SERVER]
    with pytest.raises(DataNotFoundError, match=r"\(no internet\): place cifar-10-python"):
        cifar10("train", source="cifar10", root=tmp_path / "data")


def test_hf_hub_offline_uses_only_files_already_downloaded(tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sources, "reachable", _must_not_be_called)  # no network check either
    test = cifar10("test", source="hub", root=tmp_path / "data")
    assert fake_hub.calls[0]["local_files_only"] is True and len(test) == BATCH
    fake_hub.error = OSError("not in the cache")
    with pytest.raises(SourceUnreachableError, match="HF_HUB_OFFLINE is set"):
        cifar10("train", source="hub", root=tmp_path / "data")


def test_the_real_hf_hub_download_takes_the_call_and_fails_fast_offline(
    tmp_path, monkeypatch, release
):
    """The installed huggingface_hub accepts the arguments load_hub passes (offline it can
    only look in its empty cache, so it says the file is not there, without the network)."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    real, raised = huggingface_hub.hf_hub_download, []

    def spy(**kwargs):
        try:
            return real(**kwargs)
        except Exception as error:
            raised.append(error)
            raise

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubUnreachableError, match="has no copy of plain_text/test"):
        hub.load_hub(
            "test",
            tmp_path / "data",
            facts=release[1],
            reachable=sources.reachable,
            save=sources.write_npz,
        )
    assert len(raised) == 1 and isinstance(raised[0], LocalEntryNotFoundError), raised


def test_without_huggingface_hub_the_hub_says_what_to_install(tmp_path, monkeypatch, fake_hub):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(DataNotFoundError, match=r"pip install huggingface_hub pyarrow"):
        cifar10("test", source="hub", root=tmp_path / "data")


def test_course_utils_imports_and_falls_back_without_the_hub_packages(tmp_path):
    script = f"""
import sys
sys.modules["huggingface_hub"] = None
sys.modules["pyarrow"] = None
import importlib, pkgutil
import course_utils
for module in pkgutil.iter_modules(course_utils.__path__):
    if module.name != "__main__":
        importlib.import_module(f"course_utils.{{module.name}}")
from course_utils import data
from course_utils.support import sources
sources.reachable = lambda url: url == sources.CIFAR10_URL
sources.download_url = lambda *args, **kwargs: (_ for _ in ()).throw(OSError("no network"))
train = data.cifar10("train", source="auto", n=10, root={str(tmp_path)!r})
assert train.source == "synthetic", train
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs the huggingface_hub and pyarrow packages" in result.stdout
    assert result.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------- order of sources


def test_the_official_release_on_disk_comes_before_the_hub(
    tmp_path, fake_hub, official, release, capsys
):
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(tmp_path / "release" / sources.TARBALL, root / sources.TARBALL)
    for source in ("auto", "cifar10"):
        test = cifar10("test", source=source, root=root)
        assert test.provenance == data.OFFICIAL_PROVENANCE
    assert fake_hub.calls == [] and official == []
    assert capsys.readouterr().out.strip().splitlines() == [
        "CIFAR-10: official CIFAR-10 python release (md5-checked)"
    ]


def test_a_damaged_tarball_on_disk_is_said_and_the_hub_used(tmp_path, fake_hub, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / sources.TARBALL).write_bytes(b"cut short")
    test = cifar10("test", source="auto", root=root)
    assert test.provenance.startswith("Hugging Face Hub mirror")
    out = capsys.readouterr().out
    assert "(md5 mismatch); it was left as it is: move it away" in out
    assert "and run again to download; trying the other sources." in out


def test_the_hub_comes_before_the_official_server_and_its_cache_before_both(
    tmp_path, fake_hub, official
):
    root = tmp_path / "data"
    first = cifar10("train", source="auto", root=root)
    assert first.provenance.startswith("Hugging Face Hub mirror") and official == []
    fake_hub.error = AssertionError("downloaded again")
    again = cifar10("train", source="cifar10", root=root)  # from the Hub's cache
    assert torch.equal(again.images, first.images) and len(fake_hub.calls) == 1


def test_a_named_mirror_url_is_md5_checked_and_never_skipped(
    tmp_path, fake_hub, official, monkeypatch
):
    mirror = "https://mirror.example.org/cifar-10-python.tar.gz"
    monkeypatch.setenv(sources.SOURCE_ENV, mirror)
    test = cifar10("test", source="auto", root=tmp_path / "data")
    assert test.provenance == data.OFFICIAL_PROVENANCE
    assert official == [mirror] and fake_hub.calls == []


# --------------------------------------------------------------------------- the official server


def test_the_official_download_warns_that_it_is_slow_and_ctrl_c_cleans_up(
    tmp_path, monkeypatch, capsys
):
    root = tmp_path / "data"

    def interrupted(url, root, filename, md5):
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / filename).write_bytes(b"the first few kB")
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "download_url", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.load_cifar10(root, train=False)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == (
        "CIFAR-10: downloading cifar-10-python.tar.gz (170 MB, md5-checked) from the official "
        "server; it has been serving at tens of kB/s: this can take an hour. To stop, press "
        f"Ctrl-C, then place the tarball in {root} or set CIFAR10_SOURCE to a mirror "
        "(data/README.md)."
    )
    assert printed[1].startswith("CIFAR-10: download stopped and the partial")
    assert "source='hub'" in printed[1]
    assert not (root / sources.TARBALL).exists()
