"""The recipes race on real CIFAR-10 images: each report's training recipe against fast94's,
on the same images, the same small networks and the same number of epochs.

    python benchmarks/real_data.py [--quick] [--source PATH] [--epochs E] [--threads T]

Every run uses ``recipes.run``: its recipe's optimizer, learning rate, schedule, batch size,
mixup, label smoothing, clipping and augmentation, on the same training images with the same
held-out validation split, and the test set evaluated once at the end (no TTA for anyone:
this compares training recipes). Two nets: ResNet-8 (one basic block per stage, widths
16-32-64) and ResNet-9 narrowed to widths 16-32-64-96. The default run (10,000 training
images, 2,000 of them for validation, 6 epochs, both nets) takes about 40 minutes on a
2-core CPU; ``--quick`` (ResNet-8, 5,000 images, 1,000 for validation, 3 epochs) about 5.
The last line is ``fast94 vs best report recipe: <+/-X.X> points``: fast94's test accuracy
minus that of the report recipe that scored best on validation, each averaged over the nets.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from course_utils import data, params
from course_utils.models import ResNet, ResNet9
from course_utils.recipes import RECIPES, run

NETS: dict[str, Callable[[], nn.Module]] = {
    "resnet8": lambda: ResNet(blocks=(1, 1, 1), widths=(16, 32, 64)),
    "resnet9-narrow": lambda: ResNet9(widths=(16, 32, 64, 96)),
}
REPORTS = ("pillai", "merabishvili", "rout", "sudrik", "wang")


def main() -> None:
    """Parse the arguments, run every (recipe, net) pair and print the table and verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-8, 5,000 images, 3 epochs")
    parser.add_argument("--source", help="CIFAR-10 copy (default: ../shared/data's JPEG archive)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default 6, quick 3)")
    parser.add_argument("--images", type=int, help="training images (default 10,000, quick 5,000)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    source = args.source or data.shared_cifar10_archive()
    if source is None:
        parser.exit(2, "error: no CIFAR-10 copy found; pass --source PATH (folder or archive)\n")
    images = args.images or (5_000 if args.quick else 10_000)
    epochs = args.epochs or (3 if args.quick else 6)
    nets = {"resnet8": NETS["resnet8"]} if args.quick else NETS

    train_data = data.cifar10("train", source=str(source), n=images)
    test_data = data.cifar10("test", source=str(source))
    val_split = 0.2  # the same held-out images for every recipe: 20% of the training images
    print(
        f"{images:,} training images ({round(images * val_split):,} held out for validation), "
        f"{len(test_data):,} test images, {epochs} epochs, {torch.get_num_threads()} threads; "
        f"data: {train_data.provenance}"
    )
    rows = []
    for name in (*REPORTS, "fast94"):
        for net_name, build in nets.items():
            recipe = RECIPES[name].replace(epochs=epochs, val_split=val_split, tta=False)
            torch.manual_seed(recipe.config.seed)
            model = build()
            start = time.perf_counter()
            result = run(recipe, train_data, test_data, model=model, progress=False)
            seconds = time.perf_counter() - start
            seen = result.history.run["train_images"] * epochs
            rows.append(
                {
                    "recipe": name,
                    "net": net_name,
                    "val": result.history.final["val_acc"],
                    "test": result.test.accuracy,
                    "pflops": params.training_flops(model, seen) / 1e15,
                    "seconds": seconds,
                }
            )
            print_row(rows[-1])
    print_verdict(rows)


def print_row(row: dict) -> None:
    """One line of the table, printed as soon as its run is done."""
    print(
        f"{row['recipe']:<13} {row['net']:<15} val {100 * row['val']:5.1f}%  "
        f"test {100 * row['test']:5.1f}%  {row['pflops']:.4f} PFLOPs  {row['seconds']:6.0f} s"
    )


def print_verdict(rows: list[dict]) -> None:
    """fast94's mean test accuracy against the report recipe best on validation."""

    def mean(recipe: str, key: str) -> float:
        values = [row[key] for row in rows if row["recipe"] == recipe]
        return sum(values) / len(values)

    best = max(REPORTS, key=lambda name: mean(name, "val"))
    print(
        f"best report recipe on validation: {best} ({100 * mean(best, 'val'):.1f}% val, "
        f"{100 * mean(best, 'test'):.1f}% test); fast94: {100 * mean('fast94', 'val'):.1f}% val, "
        f"{100 * mean('fast94', 'test'):.1f}% test"
    )
    gap = 100 * (mean("fast94", "test") - mean(best, "test"))
    print(f"fast94 vs best report recipe: {gap:+.1f} points")


if __name__ == "__main__":
    main()
