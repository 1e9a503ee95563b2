"""Images per second: the reports' DataLoader + PIL pipeline against DeviceLoader on the CPU.

    python benchmarks/loader.py [--pipeline crop-flip|rout] [--images N] [--epochs E]
                                [--data auto|synthetic|PATH] [--threads T]

Both pipelines read the same uint8 images and produce the same kind of batch, augmented the
same way, normalised float32. ``crop-flip`` is the usual RandomCrop(32, padding=4) + flip;
``rout`` adds that report's RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.1) and
RandomErasing(p=0.5). The last line printed is ``speedup: <ratio>x``, DeviceLoader (batch
128) over the DataLoader. On a machine shared with other jobs, ``--threads 1`` keeps torch's
threads from waiting on each other.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm.auto import tqdm

from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, cifar10
from course_utils.loader import DeviceLoader


class PILDataset(Dataset):
    """The usual per-image pipeline: each uint8 image becomes a PIL image, then a transform."""

    def __init__(self, data: ImageData, transform: transforms.Compose) -> None:
        self.images = data.images.permute(0, 2, 3, 1).numpy()  # [N, H, W, 3], what PIL expects
        self.labels = data.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def images_per_second(batches: Iterable, epochs: int, name: str) -> float:
    """Run ``epochs`` passes over ``batches``, touching every batch; return images per second."""
    count = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for x, _ in tqdm(batches, desc=f"{name} epoch {epoch + 1}", leave=False):
            x.sum()  # forces the batch to be materialised, as a model would
            count += len(x)
    rate = count / (time.perf_counter() - start)
    print(f"{name:<32} {rate:>10,.0f} images/s")
    return rate


def main() -> None:
    """Parse the arguments, time both pipelines on the same data and print the speedup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="training images to use")
    parser.add_argument("--epochs", type=int, default=2, help="passes over the images")
    parser.add_argument("--data", default="auto", help="auto, synthetic, or a path")
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), default="crop-flip")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = cifar10("train", source=args.data, n=args.images)
    print(
        f"{len(data)} {data.source} images, {args.epochs} epochs, {torch.get_num_threads()} "
        f"threads, pipeline {args.pipeline}"
    )
    per_image, batched = PIPELINES[args.pipeline]
    pipeline = transforms.Compose(
        [*per_image[:-1], transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
        + [step for step in per_image[-1:] if step is not None]
    )
    reports = DataLoader(PILDataset(data, pipeline), batch_size=128, shuffle=True, num_workers=2)
    baseline = images_per_second(reports, args.epochs, "DataLoader+PIL (batch 128, 2 w)")
    rates = {}
    for batch_size in (128, 512):
        loader = DeviceLoader(data, batch_size, device="cpu", augment=batched)
        rates[batch_size] = images_per_second(
            loader, args.epochs, f"DeviceLoader cpu (batch {batch_size})"
        )
    print(f"speedup: {rates[128] / baseline:.1f}x")


CROP = {"name": "crop", "padding": 4, "padding_mode": "constant"}
PIPELINES = {
    # name: (torchvision's per-image transforms, the last one applied after normalisation;
    #        the same augmentations as DeviceLoader specs)
    "crop-flip": (
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), None],
        [CROP, "flip"],
    ),
    "rout": (
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.RandomRotation(15),
            transforms.ColorJitter(0.2, 0.2, 0.2, 0.1),
            transforms.RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3)),
        ],
        [CROP, "flip", "rotate", "jitter", "erase"],
    ),
}
"""The pipelines compared: torchvision per image (PIL, then tensor) and DeviceLoader batched."""


if __name__ == "__main__":
    main()
