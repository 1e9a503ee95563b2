"""The recipes race on real CIFAR-10: given the same training compute, which recipe reaches the
most accuracy? Each report's recipe and fast94, each with its own network, all narrowed to the
same cost per image, trained on the same images for the same number of epochs.

    python benchmarks/real_data.py [--quick] [--seeds 0 1] [--epochs E] [--images N]
        [--source PATH] [--json FILE]

How the budget is set. A recipe here is what ``recipes.RECIPES`` holds: a network and its
training settings, so each recipe keeps its own network (the capstone's whitening and
BatchNorm choices are part of fast94; a report's blocks are part of its recipe). Every
network is narrowed, its widths multiplied by one factor found by bisection, to the forward
FLOPs per image of the capstone at half width (about 0.06 GFLOPs: a size this CPU trains in
minutes); the rounding of widths leaves them within a few percent, and each row prints its
PFLOPs. Equal FLOPs per image and the same images and epochs make equal training compute;
each recipe's own schedule is compressed into those epochs, with its own optimizer, learning
rate, batch size, augmentation and regularisation. The same ``val_split`` holds out the same
validation images for all; the test set is evaluated once per run, without test-time
augmentation for anyone (fast94's TTA is printed beside it, not counted).

Default: 8,000 training images (1,600 of them held out), 8 epochs, seeds 0 and 1, the 10,000
test images: about 35 minutes on a 2-core CPU. ``--quick``: 3,000 images (600 held out), 5
epochs, seeds 0 and 1, 5,000 test images: about 8 minutes. The last line is ``fast94 vs best
report recipe: +X.X points (n seeds, +- s)``: fast94's mean test accuracy minus that of the
report recipe best on validation, and s the standard error of that difference over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from course_utils import data, params, zoo
from course_utils.capstone import CapstoneNet
from course_utils.loader import DeviceLoader
from course_utils.models import Bottleneck, ResNet
from course_utils.recipes import RECIPES, run
from course_utils.train import evaluate

REPORTS = ("pillai", "merabishvili", "rout", "sudrik", "wang")
REFERENCE_WIDTH = 0.5  # the capstone at half width sets the cost per image


def rout(m: float) -> nn.Module:
    """rout's bottleneck net at width ``m``, with its dropout after each stage."""
    model = ResNet([3, 3, 3], widths(m, 64, 128, 256), stem_width=widths(m, 32)[0],
                   block=Bottleneck, activation=nn.LeakyReLU)  # fmt: skip
    for stage in model.stages:
        stage.append(nn.Dropout(zoo.ROUT_DROPOUT))
    return model


def widths(m: float, *full: int) -> list[int]:
    return [max(1, round(m * w)) for w in full]


NETS: dict[str, Callable[[float], nn.Module]] = {  # each recipe's network at width factor m
    "pillai": lambda m: ResNet(
        [3, 5, 3], widths(m, 64, 128, 256), stem_width=widths(m, 16)[0], block=zoo.DropoutBlock
    ),  # fmt: skip
    "merabishvili": lambda m: ResNet(
        [3, 4, 3], widths(m, 66, 132, 264), stem_width=widths(m, 66)[0]
    ),  # fmt: skip
    "rout": rout,
    "sudrik": lambda m: ResNet([3, 2, 3, 2], widths(m, 64, 128, 192, 256)),
    "wang": lambda m: ResNet([2, 1, 1, 1], widths(m, 64, 128, 256, 512)),
    "fast94": lambda m: CapstoneNet(widths=widths(m, 64, 256, 256)),
}


def forward_flops(build: Callable[[float], nn.Module], m: float) -> int:
    with torch.device("meta"):
        return params.flops(build(m))


def matching_width(build: Callable[[float], nn.Module], target: float) -> float:
    """The width factor whose network costs ``target`` forward FLOPs per image (bisection)."""
    low, high = 0.02, 2.0
    for _ in range(16):
        middle = (low + high) / 2
        low, high = (middle, high) if forward_flops(build, middle) < target else (low, middle)
    return (low + high) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 images, 5 epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, help="epochs per run (default 8, quick 5)")
    parser.add_argument("--images", type=int, help="training images (default 8,000, quick 3,000)")
    parser.add_argument("--test-images", type=int, help="test images (default 10,000, quick 5,000)")
    parser.add_argument("--source", help="CIFAR-10 copy (default: ../shared/data's JPEG archive)")
    parser.add_argument("--json", help="also write every run and the verdict to this file")
    args = parser.parse_args()
    source = args.source or data.shared_cifar10_archive()
    if source is None:
        parser.exit(2, "error: no CIFAR-10 copy found; pass --source PATH (folder or archive)\n")
    images = args.images or (3_000 if args.quick else 8_000)
    epochs = args.epochs or (5 if args.quick else 8)
    test_images = args.test_images or (5_000 if args.quick else None)
    val_split = 0.2  # the same held-out images for every recipe
    train_data = data.cifar10("train", source=str(source), n=images)
    test_data = data.cifar10("test", source=str(source), n=test_images)
    train_images = images - round(images * val_split)
    target = forward_flops(NETS["fast94"], REFERENCE_WIDTH)
    print(f"{images:,} training images ({images - train_images:,} held out for validation), "
          f"{len(test_data):,} test images, {epochs} epochs, seeds {args.seeds}, "
          f"{torch.get_num_threads()} threads; every network narrowed to {target / 1e9:.3f} "
          f"GFLOPs per image; data: {train_data.provenance}", flush=True)  # fmt: skip
    rows = []
    for name in (*REPORTS, "fast94"):
        m = REFERENCE_WIDTH if name == "fast94" else matching_width(NETS[name], target)
        build = partial(NETS[name], m)
        for seed in args.seeds:
            recipe = RECIPES[name].replace(epochs=epochs, val_split=val_split, seed=seed, tta=False)
            start = time.perf_counter()
            result = run(recipe, train_data, test_data, model=build, progress=False)
            seconds = time.perf_counter() - start
            row = {
                "recipe": name, "seed": seed, "width": round(m, 3),
                "parameters": params.count_parameters(result.model),
                "gflops": forward_flops(NETS[name], m) / 1e9,
                "pflops": params.training_flops(result.model, train_images * epochs) / 1e15,
                "val": result.history.final["val_acc"], "test": result.test.accuracy,
                "seconds": round(seconds, 1),
            }  # fmt: skip
            if RECIPES[name].config.tta:  # fast94's flip TTA: printed beside the race, not in it
                test_loader = DeviceLoader(test_data, 1000, train=False)
                row["test_tta"] = evaluate(result.model, test_loader, tta=True).accuracy
            rows.append(row)
            print_row(row)
    verdict = print_verdict(rows, len(args.seeds))
    if args.json:
        settings = {"images": images, "val_split": val_split, "epochs": epochs,
                    "test_images": len(test_data),
                    "seeds": args.seeds, "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "data": train_data.provenance}  # fmt: skip
        Path(args.json).write_text(
            json.dumps({"settings": settings, "runs": rows, "verdict": verdict}, indent=1)
        )


def print_row(row: dict) -> None:
    """One line of the table, printed as soon as its run is done."""
    tta = f"  (TTA {100 * row['test_tta']:.1f}%)" if row.get("test_tta") else ""
    print(f"{row['recipe']:<13} seed {row['seed']}  width x{row['width']:.2f}  "
          f"{row['parameters']:>9,} params  val {100 * row['val']:5.1f}%  "
          f"test {100 * row['test']:5.1f}%  {row['pflops']:.4f} PFLOPs  {row['seconds']:5.0f} s"
          f"{tta}", flush=True)  # fmt: skip


def summarise(rows: list[dict], recipe: str, key: str) -> tuple[float, float]:
    """Mean and seed standard deviation (0 for one seed) of ``key`` for ``recipe``."""
    values = [100 * row[key] for row in rows if row["recipe"] == recipe]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def print_verdict(rows: list[dict], seeds: int) -> dict:
    """The mean +- std table, each report's gap to fast94, and the verdict line."""
    print("\nrecipe         val % (mean +- std)   test % (mean +- std)   fast94 ahead by")
    fast, fast_std = summarise(rows, "fast94", "test")
    gaps = {}
    for name in (*REPORTS, "fast94"):
        val, val_std = summarise(rows, name, "val")
        test, test_std = summarise(rows, name, "test")
        pooled = ((fast_std**2 + test_std**2) / 2) ** 0.5
        gaps[name] = {"gap": fast - test, "twice_pooled_std": 2 * pooled}
        ahead = "" if name == "fast94" else (
            f"{fast - test:+5.1f} points ({'more' if fast - test > 2 * pooled else 'not more'}"
            f" than 2 x the pooled seed std, {2 * pooled:.1f})")  # fmt: skip
        print(f"{name:<13} {val:6.1f} +- {val_std:4.1f}        {test:6.1f} +- {test_std:4.1f}"
              f"         {ahead}")  # fmt: skip
    best = max(REPORTS, key=lambda name: summarise(rows, name, "val")[0])
    best_test, best_std = summarise(rows, best, "test")
    error = ((fast_std**2 + best_std**2) / seeds) ** 0.5
    print(f"best report recipe on validation: {best}")
    print(f"fast94 vs best report recipe: {fast - best_test:+.1f} points ({seeds} seeds, "
          f"+- {error:.1f})")  # fmt: skip
    return {"best_report": best, "gap": fast - best_test, "standard_error": error,
            "gaps": gaps}  # fmt: skip


if __name__ == "__main__":
    main()
