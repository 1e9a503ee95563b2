"""Where real CIFAR-10 comes from: the official python release (md5-checked tarball, its
batches, the fast .npz cache), a mirror URL or local copy named by ``CIFAR10_SOURCE``, the
quick reachability check, and the shared JPEG copy development machines keep.

This module imports nothing of the package: ``course_utils.data`` passes the data folder in
and wraps the arrays it returns in an ``ImageData``. The three data errors live here and are
re-exported by ``course_utils.data``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import tarfile
import urllib.error
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets.utils import check_integrity, download_url, extract_archive

SOURCE_ENV = "CIFAR10_SOURCE"
HUB_SCHEME = "hf://"  # CIFAR10_SOURCE=hf://uoft-cs/cifar10[@revision] names the Hub mirror
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL = "cifar-10-python.tar.gz"
TARBALL_MB = 170  # its size: 170,498,071 bytes
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
DOWNLOAD_TIMEOUT_S = 30.0  # longest silence tolerated from the server during a download
REACHABLE_TIMEOUT_S = 3.0  # how long source="auto" waits to decide whether we are online
SHARED_DATA_ENV = "COURSE_SHARED_DATA"
SHARED_ARCHIVE = "cifar10-jpeg.tar.gz"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")  # what an image folder may be packed as
SPLITS = ("train", "test")  # the two folders of an image folder's layout


class DataNotFoundError(RuntimeError):
    """CIFAR-10 is not on disk and could not be downloaded, or a named source does not exist."""


class DataCorruptedError(DataNotFoundError):
    """A CIFAR-10 source on disk is truncated, damaged or not in the expected form (md5
    mismatch, unreadable file, an image folder with a wrong layout, image or count), or a
    downloaded copy is refused because it does not match the official release."""


class SourceUnreachableError(DataNotFoundError):
    """A download source cannot be reached (its server refused a quick connection, or
    ``HF_HUB_OFFLINE`` rules the Hub out); nothing was downloaded."""


# --------------------------------------------------------------------------- naming a source
# ``arg`` and ``closest`` below are ``support.words``' (the words of the tool in use, and the
# one did-you-mean): ``course_utils.data`` passes them in, as this module imports nothing of
# the package.


def named_source(
    source: object, hub_repo: str, hub_revision: str, arg: Callable[..., str]
) -> tuple[str, str, str] | None:
    """The source a ``cifar10`` call names, as (kind, value, how it was named): kind "hub"
    (value: the revision; ``hub_repo`` is the only repository accepted), "url" or "path";
    None when none is named."""
    if isinstance(source, str) and source in ("auto", "cifar10"):
        configured = os.environ.get(SOURCE_ENV, "")
        if not configured:
            return None
        return _classify(configured, f"{SOURCE_ENV}={configured}", hub_repo, hub_revision)
    if isinstance(source, str) and source == "hub":
        return "hub", hub_revision, arg("source", "hub")
    text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text or _is_url(text):
        raise ValueError(
            f"{arg('source')} must be 'auto', 'cifar10', 'hub', 'synthetic' or a local path, got "
            f"{source!r}; to download from a mirror of the official tarball, set the "
            f"{SOURCE_ENV} environment variable to its URL."
        )
    return _classify(text, arg("source", text), hub_repo, hub_revision)


def _classify(text: str, named_by: str, hub_repo: str, hub_revision: str) -> tuple[str, str, str]:
    """What a named source is: the Hub (hf://), a URL or a path; see ``data.cifar10``."""
    if text == "hub":  # the same word as source="hub"
        return "hub", hub_revision, named_by
    if not text.startswith(HUB_SCHEME):
        return ("url" if _is_url(text) else "path"), text, named_by
    repository, _, revision = text.removeprefix(HUB_SCHEME).partition("@")
    if repository.strip("/") != hub_repo:
        raise ValueError(
            f"{named_by} names a Hugging Face Hub repository the course cannot read; the "
            f"Hub source is {HUB_SCHEME}{hub_repo}, optionally with @revision."
        )
    return "hub", revision or hub_revision, named_by


def local_path(
    text: str,
    named_by: str,
    repo_root: Path | None,
    arg: Callable[..., str],
    closest: Callable[..., str | None],
) -> Path:
    """The existing path a named local source means: ``text`` from the working folder, else
    (when relative) from the repository root ``repo_root`` (None when installed, as on
    Colab), so a notebook's kernel, which runs in ``notebooks/``, finds the same copy. A
    missing path raises ``DataNotFoundError`` naming each absolute path tried and the nearest
    existing name; a folder that only holds archives, one naming the archive to give."""
    path = Path(text).expanduser()
    tried = [path] if path.is_absolute() or repo_root is None else [path, repo_root / path]
    if len(tried) == 2 and os.path.abspath(tried[0]) == os.path.abspath(tried[1]):
        tried = tried[:1]  # the working folder is the repository root
    found = next((candidate for candidate in tried if candidate.exists()), None)
    if found is None:
        raise _missing_path(path, named_by, tried, arg, closest)
    archives = _archives_instead(found)
    if archives:
        archive = found / archives[0]
        again = f"{SOURCE_ENV}={archive}" if named_by.startswith(SOURCE_ENV) else None
        raise DataNotFoundError(
            f"the CIFAR-10 source {found} (named by {named_by}) is a folder holding "
            f"{', '.join(archives)}, not an image folder: name the archive itself, "
            f"{again or arg('source', archive)}."
        )
    return found


def _missing_path(
    path: Path,
    named_by: str,
    tried: list[Path],
    arg: Callable[..., str],
    closest: Callable[..., str | None],
) -> DataNotFoundError:
    """The error for a named local source that does not exist, with the absolute paths tried
    and the nearest existing folder or archive name."""
    looked = " and ".join(os.path.abspath(candidate) for candidate in tried)
    nearest = next(filter(None, (_nearest(candidate, closest) for candidate in tried)), None)
    guess = f" Did you mean {nearest}?" if nearest else ""
    if named_by.startswith(SOURCE_ENV):
        what, end = f"set {SOURCE_ENV} to the path of", f", or unset {SOURCE_ENV}"
    else:
        what, end = f"{arg('source')} is 'auto', 'cifar10', 'hub', 'synthetic' or the path of", ""
    return DataNotFoundError(
        f"the CIFAR-10 source {path} (named by {named_by}) does not exist (looked for "
        f"{looked}): {what} an image folder, its .tar/.tar.gz archive, or {TARBALL}{end}.{guess}"
    )


def _nearest(path: Path, closest: Callable[..., str | None]) -> str | None:
    """The folder or archive beside a missing ``path`` whose name is nearest to its name."""
    try:
        entries = [entry for entry in path.parent.iterdir() if not entry.name.startswith(".")]
    except OSError:
        return None
    names = [e.name for e in entries if e.is_dir() or e.name.endswith(ARCHIVE_SUFFIXES)]
    match = closest(path.name, names)
    return os.path.abspath(path.parent / match) if match else None


def _archives_instead(folder: Path) -> list[str]:
    """The archives a folder holds when it holds no image-folder layout and no official
    release: the user named the folder of the archive, not the archive."""
    if not folder.is_dir() or is_official_release(folder):
        return []
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    subfolders = [entry for entry in entries if entry.is_dir()]
    if any((base / split).is_dir() for base in [folder, *subfolders] for split in SPLITS):
        return []
    return sorted(e.name for e in entries if e.is_file() and e.name.endswith(ARCHIVE_SUFFIXES))


def is_official_release(path: Path) -> bool:
    """Whether an existing path is (or holds) the official python release; see ``cifar10``."""
    if path.is_dir():
        return (
            path.name == BATCH_FOLDER
            or (path / BATCH_FOLDER).is_dir()
            or (path / TARBALL).is_file()
        )
    if path.name == TARBALL:
        return True
    try:
        return check_integrity(str(path), TARBALL_MD5)
    except OSError as error:
        raise DataCorruptedError(
            f"cannot read the CIFAR-10 source {path} ({error}); check its permissions."
        ) from None


def on_disk(root: Path) -> bool:
    """Whether the official release (cache, extracted batches, tarball) is in the data folder."""
    return (
        any((root / _cache_name(train)).is_file() for train in (True, False))
        or (root / BATCH_FOLDER).is_dir()
        or (root / TARBALL).is_file()
    )


def reachable(url: str, timeout: float = REACHABLE_TIMEOUT_S) -> bool:
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


def shared_archive(repo_root: Path | None) -> Path | None:
    """The shared JPEG copy of CIFAR-10 that development machines and CI keep next to the
    checkout: ``$COURSE_SHARED_DATA`` if set (the archive, or a folder holding
    ``cifar10-jpeg.tar.gz``), else ``<repo_root>/../shared/data/cifar10-jpeg.tar.gz``.
    None when it is not there (always on Colab, which downloads the official release)."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        path = Path(configured).expanduser()
        path = path / SHARED_ARCHIVE if path.is_dir() else path
    elif repo_root is None:
        return None
    else:
        path = repo_root.parent / "shared" / "data" / SHARED_ARCHIVE
    return path if path.is_file() else None


# --------------------------------------------------------------------------- the official release


def load_cifar10(
    folder: Path,
    train: bool = True,
    download: bool = True,
    source: str | None = None,
    *,
    arg: Callable[..., str],
) -> tuple[Tensor, Tensor]:
    """Real CIFAR-10 as (images uint8 [N, 3, 32, 32], labels int64 [N]).

    Looks in the data folder ``folder`` for a cached ``cifar10-<split>.npz``,
    then the extracted ``cifar-10-batches-py`` folder, then ``cifar-10-python.tar.gz``; with
    ``download`` it fetches the tarball. ``source`` (or the ``CIFAR10_SOURCE`` environment
    variable) names a mirror URL or a local copy: the tarball, a folder holding it, or a
    ``cifar-10-batches-py`` folder (or one holding it). The default server is known to
    throttle to tens of kB/s, so a mirror or a copy on your drive is often much faster.
    Every file is md5-checked. The first load writes the fast cache; later loads use it.

    Raises ``DataNotFoundError`` saying what to do when the data is missing and cannot be
    downloaded, and ``DataCorruptedError`` (a subclass) when a file is truncated or damaged.
    ``arg`` words the arguments its messages name (``support.words.arg``).
    """
    cache = folder / _cache_name(train)
    files = TRAIN_BATCHES if train else TEST_BATCHES
    cached = _read_cache(cache, files)
    if cached is not None:
        return cached
    copied = _source_batches(_resolve_source(source))
    batches = copied or folder / BATCH_FOLDER
    unusable = [name for name in files if not _batch_intact(batches / name)]
    if unusable and copied is not None:
        raise DataCorruptedError(
            f"{', '.join(unusable)} in {copied} is missing or failed the md5 check (truncated "
            f"or damaged); copy {BATCH_FOLDER} again, or name {TARBALL} as the source instead."
        )
    if unusable:
        try:
            tarball = _obtain_tarball(folder, _resolve_source(source), download, arg)
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


def _source_batches(source: str) -> Path | None:
    """The ``cifar-10-batches-py`` folder a local source names, if it names one rather than
    a tarball: the folder itself, or a folder holding it (and no tarball)."""
    if _is_url(source):
        return None
    path = Path(source).expanduser()
    if path.is_dir() and path.name == BATCH_FOLDER:
        return path
    if path.is_dir() and not (path / TARBALL).is_file() and (path / BATCH_FOLDER).is_dir():
        return path / BATCH_FOLDER
    return None


def missing_message(root: Path, reason: str, arg: Callable[..., str]) -> str:
    """What to do when CIFAR-10 is not available in the data folder ``root``."""
    # "cifar10" is a source keyword; a folder of that name is only used when named as a path.
    here = Path("cifar10")
    hint = f" (for the folder {here.resolve()}, give its path: ./cifar10)" if here.exists() else ""
    return (
        f"CIFAR-10 is not available in {root} ({reason}): place {TARBALL} in {root}, set "
        f"{SOURCE_ENV} to a mirror URL or a local copy of the tarball, or use the synthetic "
        f"stand-in with {arg('source', 'synthetic')}{hint}."
    )


def _batch_intact(path: Path) -> bool:
    return check_integrity(str(path), BATCH_MD5[path.name])


def _obtain_tarball(root: Path, source: str, download: bool, arg: Callable[..., str]) -> Path:
    """Path of an md5-verified tarball: a local source, the copy in ``root``, or a download."""
    if not _is_url(source):
        path = Path(source).expanduser()
        path = path / TARBALL if path.is_dir() else path
        if not path.is_file():
            raise DataNotFoundError(missing_message(root, f"the source {path} does not exist", arg))
        if not check_integrity(str(path), TARBALL_MD5):
            raise DataCorruptedError(
                f"{path} is truncated or damaged (md5 mismatch); copy the tarball again."
            )
        return path
    local = root / TARBALL
    if check_integrity(str(local), TARBALL_MD5):
        return local
    if local.exists():  # the user's file: never downloaded over, never deleted
        what = "is truncated or damaged (md5 mismatch)" if local.is_file() else "is not a file"
        raise DataCorruptedError(
            f"{local} {what}; it was left as it is: move it away (or replace it with an intact "
            "copy) and run again to download."
        )
    if not download:
        raise DataNotFoundError(missing_message(root, f"no {TARBALL} on disk", arg))
    _download(source, root, arg)
    return local


def _download(url: str, root: Path, arg: Callable[..., str]) -> None:
    """Download the tarball into ``root`` with torchvision (md5-checked, with a progress
    bar), failing clearly. The official server is slow, so its download says how slow and how
    to stop; a download stopped with Ctrl-C leaves no partial tarball behind."""
    if url == CIFAR10_URL:
        print(
            f"CIFAR-10: downloading {TARBALL} ({TARBALL_MB} MB, md5-checked) from the official "
            "server; it has been serving at tens of kB/s: this can take an hour. To stop, press "
            f"Ctrl-C, then place the tarball in {root} or set {SOURCE_ENV} to a mirror "
            "(data/README.md)."
        )
    else:
        print(f"CIFAR-10: downloading {TARBALL} ({TARBALL_MB} MB, md5-checked) from {url}.")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url(url, str(root), filename=TARBALL, md5=TARBALL_MD5)
    except KeyboardInterrupt:
        (root / TARBALL).unlink(missing_ok=True)
        print(
            f"CIFAR-10: download stopped and the partial {TARBALL} deleted. Place the tarball "
            f"in {root}, set {SOURCE_ENV} to a mirror URL or a local copy, or use "
            f"{arg('source', 'hub')} (data/README.md); then run again."
        )
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:
        (root / TARBALL).unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise DataNotFoundError(
            missing_message(root, f"download from {url} failed: {reason}", arg)
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


def _cifar_arrays(images: np.ndarray, labels: np.ndarray) -> bool:
    """Whether cached arrays have CIFAR-10's layout: uint8 [N, 3, 32, 32] and int64 [N]."""
    return (
        images.dtype == np.uint8
        and images.ndim == 4
        and images.shape[1:] == (3, 32, 32)
        and labels.dtype == np.int64
        and labels.shape == (len(images),)
    )


def _read_cache(cache: Path, files: tuple[str, ...]) -> tuple[Tensor, Tensor] | None:
    """The cached split, or None when there is none or it is damaged or stale (then rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            images, labels = stored["images"], stored["labels"]
            checksums = [str(value) for value in stored["md5"]]
        valid = _cifar_arrays(images, labels) and checksums == [BATCH_MD5[n] for n in files]
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
    """Write the split with the md5s of its batch files."""
    write_npz(cache, images=images, labels=labels, md5=[BATCH_MD5[name] for name in files])


def write_npz(cache: Path, **arrays) -> None:
    """Write a cache atomically: a temporary file of this process, then a rename, so a
    reader (or a second process building the same cache) never sees half a file."""
    partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as file:
            np.savez(file, **arrays)
        os.replace(partial, cache)
    except OSError as error:
        with contextlib.suppress(OSError):  # a read-only folder cannot hold the partial file either
            partial.unlink(missing_ok=True)
        print(f"Could not write the cache {cache} ({error.strerror}); loading will stay slower.")
