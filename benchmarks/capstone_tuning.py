"""Tune the capstone recipe on validation at CPU scale: each variant of ``fast94`` trained on
a subset of the real training images and scored on held-out training images (never the test
set), a few seeds each, one JSON line per run appended to the log.

    python benchmarks/capstone_tuning.py [VARIANT ...] [--seeds 0 1] [--images 10000]
        [--epochs 5] [--log benchmarks/results/capstone-tuning.jsonl] [--list]
    python benchmarks/capstone_tuning.py --table   # the log as a Markdown table

A variant is ``fast94``'s TrainConfig with a few fields changed, or its network with one trick
taken out (see ``VARIANTS``). The validation images are the last ``val_split`` of the subset,
the same for every variant and seed (``ImageData.holdout`` with seed 0).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from course_utils import data, params, zoo
from course_utils.capstone import BatchNorm, CapstoneNet
from course_utils.loader import DeviceLoader
from course_utils.recipes import RECIPES
from course_utils.train import evaluate, fit


def no_whitening(model: CapstoneNet) -> None:
    """The first layer as an ordinary trained conv from PyTorch's default init."""
    model.whiten.ready.fill_(True)
    model.whiten.conv.weight.requires_grad_(True)


def plain_bias_lr(model: CapstoneNet) -> None:
    """BatchNorm shifts learn at the same rate as every other weight."""
    for module in model.modules():
        if isinstance(module, BatchNorm):
            module.bias_scale = 1.0


def trained_bn_scale(model: CapstoneNet) -> None:
    """BatchNorm scales trained, as in a standard net."""
    for module in model.modules():
        if isinstance(module, BatchNorm):
            module.weight.requires_grad_(True)


def no_shortcut(model: CapstoneNet) -> None:
    """Each block without its shortcut, default init (airbench94 starts the first filters of
    each conv of its plain pairs, one per input channel, as the identity instead)."""
    for block in model.blocks:
        block.shortcut = Zero()


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> float:
        return 0.0


PAGE_AUGMENT = ({"name": "crop", "padding": 4, "padding_mode": "reflect"}, "flip",
                {"name": "cutout", "size": 8})  # fmt: skip

VARIANTS: dict[str, tuple[dict, Callable[[CapstoneNet], None] | None]] = {
    "base": ({}, None),
    "lr x0.5": ({"lr_scale": 0.5}, None),
    "lr x2": ({"lr_scale": 2.0}, None),
    "no whitening": ({}, no_whitening),
    "bias lr x1": ({}, plain_bias_lr),
    "trained BN scale": ({}, trained_bn_scale),
    "no shortcut": ({}, no_shortcut),
    "no label smoothing": ({"label_smoothing": 0.0}, None),
    "no lookahead": ({"lookahead": None}, None),
    "lookahead": ({"lookahead": {"k": 5, "alpha": 0.5}}, None),
    "ema 0.9": ({"ema": 0.9}, None),
    "cutout (Page's augmentation)": ({"augment": PAGE_AUGMENT}, None),
    "batch 256": ({"batch_size": 256, "lr_scale": 0.5}, None),
    "batch 1024": ({"batch_size": 1024, "lr_scale": 2.0}, None),
    "momentum 0.9": ({"momentum": 0.9}, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="variant names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--images", type=int, default=10_000, help="training subset")
    parser.add_argument("--val-split", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--log", default="benchmarks/results/capstone-tuning.jsonl")
    parser.add_argument("--round", type=int, default=2, help="tuning round (its own base)")
    parser.add_argument("--source", help="CIFAR-10 copy (default: ../shared/data's archive)")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument("--table", action="store_true", help="print the log as Markdown")
    args = parser.parse_args()
    if args.list:
        print("\n".join(VARIANTS))
        return
    if args.table:
        print(
            markdown_table([json.loads(line) for line in Path(args.log).read_text().splitlines()])
        )
        return
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from: {', '.join(VARIANTS)}")
    source = args.source or data.shared_cifar10_archive()
    subset = data.cifar10("train", source=str(source), n=args.images)
    train_part, val_part = subset.holdout(args.val_split, seed=0)
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    base = RECIPES["fast94"].config.replace(epochs=args.epochs)
    for name in args.variants or VARIANTS:
        changes, tweak = VARIANTS[name]
        changes = dict(changes)
        lr = base.lr * changes.pop("lr_scale", 1.0)
        for seed in args.seeds:
            config = base.replace(lr=lr, seed=seed, **changes)
            torch.manual_seed(seed)
            model = zoo.build("capstone")
            if tweak:
                tweak(model)
            train = DeviceLoader(train_part, config.batch_size, augment=config.augment)
            val = DeviceLoader(val_part, 1000, train=False)
            start = time.perf_counter()
            history = fit(model, train, val, config, progress=False)
            seconds = time.perf_counter() - start
            with_tta = evaluate(model, val, tta=True).accuracy
            row = {
                "variant": name,
                "round": args.round,
                "seed": seed,
                "val_acc": history.final["val_acc"],
                "val_acc_tta": with_tta,
                "train_images": len(train_part),
                "val_images": len(val_part),
                "epochs": args.epochs,
                "pflops": params.training_flops(model, len(train_part) * args.epochs) / 1e15,
                "seconds": round(seconds, 1),
                "config": config.to_dict(),
                "tweak": tweak.__doc__ if tweak else None,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
            with log.open("a") as file:
                file.write(json.dumps(row) + "\n")
            print(f"{name:30s} seed {seed}: val {row['val_acc']:.2%} (TTA "
                  f"{with_tta:.2%}) in {seconds:.0f} s", flush=True)  # fmt: skip


def markdown_table(rows: list[dict]) -> str:
    """One table per tuning round, one line per variant (in the log's order): validation
    accuracy per seed, the mean, and the difference of means to that round's ``base``."""
    tables = []
    for number in sorted({row["round"] for row in rows}):
        by_variant: dict[str, list[dict]] = {}
        for row in rows:
            if row["round"] == number:
                by_variant.setdefault(row["variant"], []).append(row)
        tables.append(f"### Round {number}\n\n" + round_table(by_variant))
    return "\n\n".join(tables)


def round_table(by_variant: dict[str, list[dict]]) -> str:
    def mean(runs: list[dict], key: str) -> float:
        return 100 * sum(run[key] for run in runs) / len(runs)

    base = by_variant["base"]
    lines = [
        "| variant | what changes | seeds | val % per seed | mean | vs base | TTA mean | vs base |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in by_variant.items():
        changes, tweak = VARIANTS.get(name, ({}, None))
        what = tweak.__doc__ if tweak else ", ".join(f"{k} {v}" for k, v in changes.items())
        what = " ".join(what.split())  # one table row, whatever the docstring's line breaks
        seeds = ", ".join(str(run["seed"]) for run in runs)
        per_seed = ", ".join(f"{100 * run['val_acc']:.1f}" for run in runs)
        gap = mean(runs, "val_acc") - mean(base, "val_acc")
        gap_tta = mean(runs, "val_acc_tta") - mean(base, "val_acc_tta")
        lines.append(
            f"| {name} | {what or 'the recipe as it stood'} | {seeds} | {per_seed} | "
            f"{mean(runs, 'val_acc'):.1f} | {gap:+.1f} | {mean(runs, 'val_acc_tta'):.1f} | "
            f"{gap_tta:+.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
