"""CIFAR-10 from a folder or archive of PNG/JPEG images laid out as ``train/<class>/<image>``
and ``test/<class>/<image>``: the layout, the decoding, the per-class counts and the .npz
cache of each split.

This module imports nothing of the package: ``course_utils.data.load_image_folder`` passes
in the class names, the expected counts, the data folder and the cache writer, and wraps
what ``load`` returns in an ``ImageData``. There are no md5 sums for an image folder, so its
structure is checked instead; anything wrong raises ``ImageFolderError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

SHUFFLE_SEED = 10  # fixes the one shuffled order of an image folder's images
CACHE_VERSION = 2  # in every cache's fingerprint: bump to rebuild (2: the cache records its source)
DECODE_CHUNK = 4096  # JPEG files handed to one batched decode_jpeg call
# The official release's names (support.sources.BATCH_FOLDER and TARBALL), for the hint
# given when a folder of it is named as an image folder; tests/test_data.py ties them.
RELEASE_FOLDER = "cifar-10-batches-py"
RELEASE_TARBALL = "cifar-10-python.tar.gz"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageFolderError(RuntimeError):
    """An image folder or archive with a wrong layout, file, image or count (raised by
    ``course_utils.data`` as ``DataCorruptedError``)."""


class _ImageFile(NamedTuple):
    """One image of an image folder: where it is (as the user would find it), its class
    label, its file name (the sort key within a class) and its bytes."""

    where: str
    label: int
    file_name: str
    content: bytes


def load(
    source: Path,
    split: str,
    classes: tuple[str, ...],
    expected_counts: Mapping[str, int] | None,
    root: Path,
    save: Callable[..., None],
    fewer: str,
) -> tuple[Tensor, Tensor, str]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N], provenance) of ``split`` of the image
    folder or archive ``source``, whose class folders are named as ``classes`` (the label is
    the index). Both splits of an archive are decoded in one pass; each split is cached in
    ``root`` with ``save(path, **arrays)``. ``fewer`` says how to load a smaller copy, in the
    words of the tool in use. See ``course_utils.data.load_image_folder``."""
    resolved = source.resolve()
    listing = _folder_listing(source) if source.is_dir() else None
    fingerprint = _fingerprint(resolved, listing)
    cache = root / _image_cache_name(resolved, split)
    files = None if listing is None else sum(split in rel.split("/")[:2] for rel, _, _ in listing)
    cached = _read_image_cache(cache, fingerprint, source, classes, files)
    if cached is None:
        if listing is None:  # an archive: one pass reads both splits, so decode both
            splits = _split_files(source, _read_archive(source), classes)
        else:
            layout = _layout(source, [name for name, _, _ in listing])
            wanted = sorted(name for name, parts in layout.items() if parts[0] == split)
            splits = _split_files(source, _read_files(source, wanted), classes) if wanted else {}
        if split not in splits:
            raise ImageFolderError(
                f"the CIFAR-10 image folder {source} has no {split}/ folder (expected "
                f"{split}/<class>/<image>, optionally inside one top folder)."
            )
        for name in sorted(splits, key=lambda name: name != split):  # the asked-for split first
            try:
                built = _build_split(source, name, splits[name], classes, expected_counts, fewer)
            except ImageFolderError:
                if name == split:
                    raise
                continue  # the other split's problem is reported when it is asked for
            save(
                root / _image_cache_name(resolved, name),
                images=built[0],
                labels=built[1],
                formats=np.str_(built[2]),
                fingerprint=np.str_(fingerprint),
                source=np.str_(str(resolved)),  # how read_before finds the copy again
            )
            if name == split:
                cached = built
    images, labels, formats = cached
    counts = np.bincount(labels, minlength=len(classes)).tolist()
    _check_counts(source, split, classes, counts, expected_counts, fewer)
    return torch.from_numpy(images), torch.from_numpy(labels), _image_provenance(source, formats)


def _image_provenance(source: Path, formats: str) -> str:
    """The provenance sentence of an image folder whose files are ``formats``."""
    if formats == "PNG":
        return f"image folder {source} (PNG files: not checked against the official release)"
    what = "JPEG copy" if formats == "JPEG" else "JPEG and PNG files"
    return f"image folder {source} ({what}: pixels differ slightly from the official release)"


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _folder_listing(source: Path) -> list[tuple[str, int, int]]:
    """(path relative to ``source``, size, mtime in ns) of every visible file in the
    ``train/`` and ``test/`` folders of an image folder, sorted: its fingerprint's input."""
    top = _layout_root(source)
    listing = []
    for split in ("train", "test"):
        for directory, subdirectories, files in os.walk(top / split, followlinks=True):
            subdirectories[:] = sorted(name for name in subdirectories if not _hidden(name))
            for name in files:
                if _hidden(name):
                    continue
                path = Path(directory, name)
                try:
                    stat = path.stat()
                except OSError as error:
                    raise ImageFolderError(
                        f"cannot read {path} in the CIFAR-10 image folder {source} ({error})."
                    ) from None
                listing.append(
                    (path.relative_to(source).as_posix(), stat.st_size, stat.st_mtime_ns)
                )
    return sorted(listing)


def _layout_root(source: Path) -> Path:
    """The folder holding ``train/`` and ``test/``: ``source`` or its one visible subfolder."""
    if (source / "train").is_dir() or (source / "test").is_dir():
        return source
    try:
        subfolders = [
            entry for entry in source.iterdir() if entry.is_dir() and not _hidden(entry.name)
        ]
    except OSError as error:
        raise ImageFolderError(
            f"cannot read the CIFAR-10 image folder {source} ({error})."
        ) from None
    if len(subfolders) == 1 and any(
        (subfolders[0] / split).is_dir() for split in ("train", "test")
    ):
        return subfolders[0]
    raise _no_layout(source)


def _no_layout(source: Path, names: list[str] | None = None) -> ImageFolderError:
    official = names is not None and any(RELEASE_FOLDER in name.split("/") for name in names)
    hint = (
        f"; it holds {RELEASE_FOLDER}, so it looks like the official release, but its md5 does "
        f"not match {RELEASE_TARBALL}'s: copy the tarball again"
        if official
        else ""
    )
    return ImageFolderError(
        f"{source} is not a CIFAR-10 image folder: it has no train/<class>/<image> or "
        f"test/<class>/<image> files (optionally inside one top folder){hint}."
    )


def _layout(source: Path, names: list[str]) -> dict[str, tuple[str, str, str]]:
    """(split, class folder, file name) of each image path of an image-folder layout; paths
    outside ``train/`` and ``test/`` and hidden ones are left out."""
    parts = {}
    for name in names:
        pieces = tuple(piece for piece in name.split("/") if piece not in ("", "."))
        if pieces and not any(_hidden(piece) for piece in pieces):
            parts[name] = pieces
    tops = {pieces[0] for pieces in parts.values() if len(pieces) > 1}
    if tops & {"train", "test"}:
        strip = 0
    elif len(tops) == 1 and any(len(p) > 2 and p[1] in ("train", "test") for p in parts.values()):
        strip = 1
    else:
        raise _no_layout(source, names)
    layout = {}
    for name, pieces in parts.items():
        pieces = pieces[strip:]
        if not pieces or pieces[0] not in ("train", "test"):
            continue  # a README or licence next to the splits
        if len(pieces) != 3:
            raise ImageFolderError(
                f"{name} in the CIFAR-10 image folder {source} is not at "
                "<split>/<class>/<image>: move it into its class folder or delete it."
            )
        layout[name] = pieces
    if not layout:
        raise _no_layout(source, names)
    return layout


def _read_archive(source: Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every file in a tar archive, read in one sequential pass
    (random access into a compressed archive would decompress it again for every member)."""
    files = {}
    try:
        with tarfile.open(source, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    files[member.name] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ImageFolderError(
            f"{source} is neither a folder nor a readable .tar/.tar.gz archive ({error}); "
            "copy it again, or give the path of the unpacked folder."
        ) from None
    return list(files.items())


def _read_files(source: Path, names: list[str]) -> list[tuple[str, bytes]]:
    files = []
    for name in names:
        try:
            files.append((name, (source / name).read_bytes()))
        except OSError as error:
            raise ImageFolderError(
                f"cannot read {name} in the CIFAR-10 image folder {source} ({error})."
            ) from None
    return files


def _split_files(
    source: Path, files: list[tuple[str, bytes]], classes: tuple[str, ...]
) -> dict[str, dict[str, list]]:
    """The images of each split, grouped by class folder name (not yet checked)."""
    layout = _layout(source, [name for name, _ in files])
    splits: dict[str, dict[str, list[_ImageFile]]] = {}
    for name, content in files:
        if name not in layout:
            continue
        split, class_name, file_name = layout[name]
        label = classes.index(class_name) if class_name in classes else -1
        group = splits.setdefault(split, {}).setdefault(class_name, [])
        group.append(_ImageFile(name, label, file_name, content))
    return splits


def _build_split(
    source: Path,
    split: str,
    files: dict[str, list[_ImageFile]],
    classes: tuple[str, ...],
    expected_counts: Mapping[str, int] | None,
    fewer: str,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Check one split's class folders and counts, then decode it in the fixed shuffled
    order: (images uint8 [N, 3, 32, 32], labels int64 [N], "JPEG", "PNG" or "JPEG+PNG")."""
    unknown = sorted(set(files) - set(classes))
    if unknown:
        folders = ", ".join(f"{split}/{name}" for name in unknown)
        raise ImageFolderError(
            f"the CIFAR-10 image folder {source} has class folders {folders} that are not "
            f"CIFAR-10 classes; the ten must be named {', '.join(classes)}."
        )
    for group in files.values():  # a stray README is named, not counted as an image
        for image in group:
            _image_kind(source, image)
    counts = [len(files.get(name, ())) for name in classes]
    _check_counts(source, split, classes, counts, expected_counts, fewer)
    ordered = sorted(
        (image for group in files.values() for image in group),
        key=lambda image: (image.label, image.file_name),
    )
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(ordered))
    shuffled = [ordered[index] for index in order]
    images, formats = _decode_images(source, shuffled)
    labels = np.array([image.label for image in shuffled], dtype=np.int64)
    return images, labels, formats


def _check_counts(
    source: Path,
    split: str,
    classes: tuple[str, ...],
    counts: Sequence[int],
    expected_counts: Mapping[str, int] | None,
    fewer: str,
) -> None:
    """Every class has images, and as many as ``expected_counts[split]`` when it is given."""
    missing = [name for name, count in zip(classes, counts, strict=True) if count == 0]
    if missing:
        folders = ", ".join(f"{split}/{name}" for name in missing)
        raise ImageFolderError(
            f"the CIFAR-10 image folder {source} has no images in {folders} (class folder "
            "missing or empty); every split needs all ten class folders."
        )
    expected = None if expected_counts is None else expected_counts.get(split)
    if expected is None or all(count == expected for count in counts):
        return
    if len(set(counts)) == 1:
        found = f"each class folder holds {counts[0]:,}"
    else:
        found = ", ".join(
            f"{split}/{name} has {count:,}"
            for name, count in zip(classes, counts, strict=True)
            if count != expected
        )
    raise ImageFolderError(
        f"the CIFAR-10 image folder {source} should hold {expected:,} {split} images per class "
        f"({expected * len(classes):,} in all), but {found}: an incomplete or mixed-up "
        f"copy? Copy it again; if it is meant to be smaller, load it with {fewer}."
    )


@contextmanager
def _quiet_image_io() -> Iterator[None]:
    """torchvision 0.29 deprecates its image decoders (for TorchCodec) with a warning on
    every call; it is addressed to library authors, not to the course's readers."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The image decoding and encoding capabilities",
            category=DeprecationWarning,
        )
        yield


def _image_kind(source: Path, image: _ImageFile) -> str:
    """The file's format, "JPEG" or "PNG", from its first bytes; any other file is an error."""
    if image.content.startswith(JPEG_MAGIC):
        return "JPEG"
    if image.content.startswith(PNG_MAGIC):
        return "PNG"
    raise ImageFolderError(
        f"{image.where} in the CIFAR-10 image folder {source} is not a PNG or JPEG "
        f"image ({len(image.content):,} bytes); replace it or copy the folder again."
    )


def _decode_images(source: Path, files: list[_ImageFile]) -> tuple[np.ndarray, str]:
    """Decode image files into one uint8 array [N, 3, 32, 32], JPEG files in batched calls.
    Raises ImageFolderError naming the first file that is not a 32x32 RGB PNG or JPEG."""
    kinds = [_image_kind(source, image) for image in files]
    jpeg = [index for index, kind in enumerate(kinds) if kind == "JPEG"]
    png = [index for index, kind in enumerate(kinds) if kind == "PNG"]
    images = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
    with _quiet_image_io():
        for start in range(0, len(jpeg), DECODE_CHUNK):
            chunk = jpeg[start : start + DECODE_CHUNK]
            encoded = [_as_tensor(files[index].content) for index in chunk]
            try:
                decoded = decode_jpeg(encoded, mode=ImageReadMode.UNCHANGED)
            except RuntimeError:  # find the file that failed, to name it
                decoded = [
                    _decode_one(source, files[index], tensor)
                    for index, tensor in zip(chunk, encoded, strict=True)
                ]
            for index, image in zip(chunk, decoded, strict=True):
                _check_shape(source, files[index], image)
            images[chunk] = torch.stack(decoded).numpy()
        for index in png:
            image = _decode_one(source, files[index], _as_tensor(files[index].content))
            _check_shape(source, files[index], image)
            images[index] = image.numpy()
    formats = "+".join(name for name, indices in (("JPEG", jpeg), ("PNG", png)) if indices)
    return images, formats


def _as_tensor(content: bytes) -> Tensor:
    return torch.frombuffer(bytearray(content), dtype=torch.uint8)


def _decode_one(source: Path, image: _ImageFile, encoded: Tensor) -> Tensor:
    try:
        return decode_image(encoded, mode=ImageReadMode.UNCHANGED)
    except RuntimeError as error:
        # torchvision's messages start with the C++ function and source line: drop them.
        reason = re.sub(r"^.*\.cpp:\d+, ", "", str(error).strip().splitlines()[0])
        raise ImageFolderError(
            f"{image.where} in the CIFAR-10 image folder {source} cannot be decoded ({reason}); "
            "replace it or copy the folder again."
        ) from None


def _check_shape(source: Path, image: _ImageFile, decoded: Tensor) -> None:
    if decoded.shape != (3, 32, 32):
        channels, height, width = decoded.shape
        raise ImageFolderError(
            f"{image.where} in the CIFAR-10 image folder {source} is a {width}x{height} image "
            f"with {channels} channel{'s' if channels != 1 else ''}; CIFAR-10 images are 32x32 "
            "RGB."
        )


def _fingerprint(resolved: Path, listing: list[tuple[str, int, int]] | None) -> str:
    """sha256 of what an image-folder cache depends on: the source's resolved path and its
    size and mtime (an archive) or every file's (a folder), the shuffle seed, the format."""
    if listing is None:
        stat = resolved.stat()
        content: object = [stat.st_size, stat.st_mtime_ns]
    else:
        content = listing
    key = [CACHE_VERSION, SHUFFLE_SEED, str(resolved), content]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _image_cache_name(resolved: Path, split: str) -> str:
    """One cache file per source path and split; a changed source overwrites its own."""
    return f"cifar10-images-{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}-{split}.npz"


def _read_image_cache(
    cache: Path, fingerprint: str, source: Path, classes: tuple[str, ...], files: int | None
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """A split's cached (images, labels, formats), or None when there is none, or it is
    damaged, stale or holds another number of images than the folder's ``files`` (then it
    is rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            if str(stored["fingerprint"]) != fingerprint:
                print(f"{source} changed since {cache} was written; decoding it again.")
                return None
            images, labels, formats = stored["images"], stored["labels"], str(stored["formats"])
        in_range = len(labels) == 0 or 0 <= labels.min() <= labels.max() < len(classes)
        valid = (
            in_range
            and images.dtype == np.uint8
            and images.shape[1:] == (3, 32, 32)
            and labels.dtype == np.int64
            and labels.shape == (len(images),)
        )
    except Exception as error:  # any unreadable cache (zip CRC, truncation) is rebuilt
        print(f"Ignoring the damaged cache {cache} ({error}); rebuilding it.")
        return None
    if not valid:
        print(f"Ignoring the cache {cache}: its arrays are not CIFAR-10 images; rebuilding it.")
        return None
    if files is not None and len(labels) != files:
        print(
            f"Ignoring the cache {cache}: {len(labels):,} images for {files:,} files; "
            "rebuilding it."
        )
        return None
    return images, labels, formats


def read_before(root: Path, split: str) -> list[Path]:
    """The image folders and archives whose cache of ``split`` is in the data folder ``root``
    and that still exist, the most recently cached first: the copies ``cifar10("auto")``
    finds again without being told (each is still checked against its cache when loaded)."""
    found: list[Path] = []
    for cache in sorted(root.glob(f"cifar10-images-*-{split}.npz"), key=_newest_first):
        try:
            with np.load(cache) as stored:
                source = Path(str(stored["source"]))
        except Exception:  # a cache from before sources were recorded, or a damaged one
            continue
        if source.exists() and source not in found:
            found.append(source)
    return found


def _newest_first(path: Path) -> float:
    """A sort key: the most recently written file first, one that cannot be read last."""
    try:
        return -path.stat().st_mtime
    except OSError:
        return float("inf")
