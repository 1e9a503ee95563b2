"""fast94 beside the airbench94 baseline on the same images at the same small budgets.

    python benchmarks/side_by_side.py --data ../shared/data/cifar10-jpeg.tar.gz
        [--images 10000] [--budgets 0.5 1 2] [--seeds 0 1 2] [--test-images N] [--json FILE]

A budget of E epochs means E x ``--images`` training images seen, from the first ``--images``
of the training split. Each recipe is shortened the way it shortens itself: airbench94
(``benchmarks/airbench94.py``) runs with ``train_epochs=E`` (its schedule, lookahead ramp and
whitening-bias epochs follow, as in its source); fast94 runs through ``recipes.run`` with
``epochs=E``, its one-cycle schedule compressed into those steps, and below one epoch it
trains one epoch on a random E share of the images (drawn per seed). Each keeps its own
network, batch size, optimizer and augmentation. Nothing is held out: nothing is chosen
here, and each run scores the test set once, with the recipe's own test-time augmentation
(fast94: mirror; airbench94: mirror and 1 px shifts) and without any.

Per budget the table gives mean +- std over seeds of test accuracy and the difference
fast94 - airbench94 with its standard error (sqrt(var_a/n + var_b/n)). The last line per
budget says whether fast94 is at or above the baseline, within two standard errors, or
further below.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from course_utils import data, recipes
from course_utils.loader import DeviceLoader
from course_utils.train import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the baseline lives beside this file
import airbench94  # noqa: E402

HYPER = airbench94.Hyper()
FAST94 = recipes.get_recipe("fast94")
"""The two recipes as defined (tests swap in smaller networks and batches)."""


def run_airbench(train: data.ImageData, test: data.ImageData, epochs: float, seed: int) -> dict:
    """airbench94 for ``epochs`` on ``train``; test accuracy with its TTA and without."""
    hyper = HYPER
    start = time.perf_counter()
    model = airbench94.train(train.images, train.labels, epochs=epochs, seed=seed, hyper=hyper)
    seconds = time.perf_counter() - start
    views = airbench94.view_logits(model, test.images)
    steps = airbench94.total_steps(len(train), epochs, hyper)
    return {
        "recipe": "airbench94",
        "test_tta": accuracy(airbench94.tta_logits(views, hyper.tta_level), test.labels),
        "test_no_tta": accuracy(airbench94.tta_logits(views, 0), test.labels),
        "test_mirror": accuracy(airbench94.tta_logits(views, 1), test.labels),
        "steps": steps,
        "images_seen": steps * hyper.batch_size,
        "train_seconds": seconds,
    }


def run_fast94(train: data.ImageData, test: data.ImageData, epochs: float, seed: int) -> dict:
    """fast94 for ``epochs`` (below one: one epoch on a random share) on ``train``."""
    if epochs < 1:
        train, _ = train.holdout(1 - epochs, seed=seed)
    whole = max(1, round(epochs))
    result = recipes.run(FAST94, train, test, epochs=whole, seed=seed, val_split=0.0,
                         progress=False)  # fmt: skip
    plain = evaluate(result.model, DeviceLoader(test, 1000, train=False), tta=False)
    steps = whole * len(DeviceLoader(train, FAST94.config.batch_size))
    return {
        "recipe": "fast94",
        "test_tta": result.test.accuracy,
        "test_no_tta": plain.accuracy,
        "test_mirror": result.test.accuracy,
        "steps": steps,
        "images_seen": steps * FAST94.config.batch_size,  # full batches only
        "train_seconds": sum(row["seconds"] for row in result.history.epochs),
    }


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``logits`` whose top class is the label."""
    return (logits.argmax(1) == labels).float().mean().item()


def summary(rows: list[dict], budget: float, key: str = "test_tta") -> dict:
    """Mean and std per recipe at ``budget``, the difference and its standard error."""
    out = {}
    for name in ("airbench94", "fast94"):
        values = [100 * r[key] for r in rows if r["recipe"] == name and r["budget"] == budget]
        out[name] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    n = len([r for r in rows if r["recipe"] == "fast94" and r["budget"] == budget])
    (a, sa), (f, sf) = out["airbench94"], out["fast94"]
    error = ((sa**2 + sf**2) / n) ** 0.5
    diff = f - a
    if diff >= 0:
        verdict = "fast94 at or above the baseline"
    elif -diff <= 2 * error:
        verdict = "fast94 below, within 2 standard errors"
    else:
        verdict = "fast94 below by more than 2 standard errors"
    return {
        "budget": budget, "airbench94": out["airbench94"], "fast94": out["fast94"],
        "difference": diff, "standard_error": error, "seeds": n, "verdict": verdict,
    }  # fmt: skip


def print_table(rows: list[dict], budgets: list[float]) -> list[dict]:
    """The table of test accuracy with each recipe's TTA, and without TTA."""
    tables = []
    for key, label in (
        ("test_tta", "each with its own TTA"),
        ("test_mirror", "both with mirror TTA only"),
        ("test_no_tta", "no TTA"),
    ):
        print(f"\ntest accuracy, {label} (mean +- std over seeds, %)")
        print("epochs  airbench94      fast94          fast94 - airbench94   verdict")
        for budget in budgets:
            s = summary(rows, budget, key)
            print(f"{budget:<6g}  {s['airbench94'][0]:5.1f} +- {s['airbench94'][1]:3.1f}   "
                  f"{s['fast94'][0]:5.1f} +- {s['fast94'][1]:3.1f}   {s['difference']:+5.1f} +- "
                  f"{s['standard_error']:3.1f} (SE)       {s['verdict']}")  # fmt: skip
            tables.append({"metric": key, **s})
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CIFAR-10: a path to the release or JPEGs")
    parser.add_argument("--images", type=int, default=10_000, help="training images")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--test-images", type=int, help="the first N test images [all]")
    parser.add_argument("--json", help="write the runs and the table here")
    args = parser.parse_args()
    for budget in args.budgets:
        if budget <= 0 or (budget > 1 and budget != round(budget)):
            parser.error(f"--budgets: {budget} must be a share of one epoch or whole epochs")

    train = data.cifar10("train", args.data, n=args.images)
    test = data.cifar10("test", args.data, n=args.test_images)
    print(f"{len(train):,} training images, {len(test):,} test images ({train.provenance}); "
          f"budgets {args.budgets} epochs; seeds {args.seeds}; "
          f"{torch.get_num_threads()} threads", flush=True)  # fmt: skip
    rows = []
    for seed in args.seeds:
        for budget in args.budgets:
            for runner in (run_airbench, run_fast94):
                row = {"budget": budget, "seed": seed, **runner(train, test, budget, seed)}
                rows.append(row)
                print(f"{row['recipe']:<10} seed {seed}  {budget:g} epochs  {row['steps']:3d} "
                      f"steps  test {100 * row['test_tta']:5.1f}% (no TTA "
                      f"{100 * row['test_no_tta']:5.1f}%)  {row['train_seconds']:5.0f} s",
                      flush=True)  # fmt: skip
    tables = print_table(rows, args.budgets)
    if args.json:
        record = {"command": " ".join(sys.argv), "images": len(train), "test_images": len(test),
                  "data": train.provenance, "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "rows": rows, "table": tables}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
