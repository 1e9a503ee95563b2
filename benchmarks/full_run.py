"""The full fast94 run, end to end on real CIFAR-10, on whatever machine runs it.

    python benchmarks/full_run.py --data ../shared/data/cifar10-jpeg.tar.gz --probe
    nohup python benchmarks/full_run.py --data ../shared/data/cifar10-jpeg.tar.gz > full.log &

``--probe`` times a few training steps of the recipe's network at its batch size and says how
long the whole run would take; nothing is trained or written. Without it, ``recipes.run``
trains the recipe as defined (45,000 training images, 5,000 held out, a checkpoint every
epoch in ``--out``, resumed from there when a checkpoint exists), then scores the held-out
and test sets with and without flip TTA, and writes ``--json`` (the figures, history,
timing, machine and commit) and the curves PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import torch
from torch import nn

from course_utils import recipes, zoo
from course_utils.data import cifar10
from course_utils.loader import DeviceLoader
from course_utils.params import count_parameters, flops
from course_utils.settings import get_device
from course_utils.train import evaluate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def probe(recipe: recipes.Recipe, steps: int, warmup: int = 2) -> float:
    """Training images per second of the recipe's network: ``steps`` timed SGD steps on
    random images at the recipe's batch size (after ``warmup`` untimed ones)."""
    config = recipe.config
    device = get_device()
    model = zoo.build(recipe.model).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(config.batch_size, 3, 32, 32, device=device)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (config.batch_size,), device=device)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * config.batch_size / (time.perf_counter() - start)


def machine() -> dict:
    """What ran it: CPU model, threads, torch version, device, commit."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, cwd=HERE,
    ).stdout.strip()  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "device": str(get_device()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CIFAR-10: a path to the release or JPEGs")
    parser.add_argument("--recipe", default="fast94")
    parser.add_argument("--out", default="runs/fast94-full", help="checkpoint folder (resumed)")
    parser.add_argument("--json", default=str(RESULTS / "fast94-full-cpu.json"))
    parser.add_argument("--probe", action="store_true", help="time a few steps and stop")
    parser.add_argument("--probe-steps", type=int, default=6)
    args = parser.parse_args()
    recipe = recipes.get_recipe(args.recipe)
    config = recipe.config
    model = zoo.build(recipe.model)
    gflops = flops(model) / 1e9
    train_images = round(50_000 * (1 - config.val_split))
    planned = 3 * gflops * 1e9 * train_images * config.epochs / 1e15
    print(
        f"{recipe.name}: {recipe.model} ({count_parameters(model):,} parameters, {gflops:.3f} "
        f"GFLOPs per image), {config.epochs} epochs x {train_images:,} images, batch "
        f"{config.batch_size}: {planned:.3f} PFLOPs of training; {torch.get_num_threads()} "
        f"threads on {get_device()}",
        flush=True,
    )
    if args.probe:
        rate = probe(recipe, args.probe_steps)
        hours = train_images * config.epochs / rate / 3600
        print(
            f"probe: {rate:.0f} images/s ({3 * gflops * rate:.0f} GFLOP/s) over "
            f"{args.probe_steps} steps of {config.batch_size}; the training would take about "
            f"{hours:.2f} h (evaluation not counted)"
        )
        return

    folder = Path(args.out)
    resume = (folder / recipes.FILES["checkpoint"]).is_file()
    if (folder / recipes.FILES["history"]).is_file():
        raise SystemExit(f"{folder} holds a finished run: choose another --out, or delete it.")
    train = cifar10("train", args.data)
    test = cifar10("test", args.data)
    started = time.perf_counter()
    result = recipes.run(recipe, train, test, out=folder, resume=resume, progress=True)
    session_seconds = time.perf_counter() - started
    history = result.history

    # The held-out part, rebuilt exactly as run() split it, and the test set, each scored with
    # and without flip TTA (the recipe's test number is the TTA one).
    _, val_part = train.holdout(config.val_split, seed=config.seed)
    scores = {}
    for name, data in (("val", val_part), ("test", test)):
        loader = DeviceLoader(data, config.batch_size, train=False)
        for tta in (False, True):
            score = evaluate(result.model, loader, tta=tta)
            scores[f"{name}_acc{'_tta' if tta else ''}"] = score.accuracy
            scores[f"{name}_loss{'_tta' if tta else ''}"] = score.loss
    assert abs(scores["test_acc_tta"] - history.test["accuracy"]) < 1e-9

    train_seconds = sum(row["seconds"] for row in history.epochs)
    images = sum(row["images_per_sec"] * row["seconds"] for row in history.epochs)
    record = {
        "what": f"the whole {recipe.name} recipe, trained once, scored once on the test set",
        "command": "python benchmarks/full_run.py --data " + args.data,
        "recipe": recipe.name,
        "model": recipe.model,
        "parameters": count_parameters(result.model),
        "gflops_per_image": gflops,
        "planned_training_pflops": 3
        * gflops
        * 1e9
        * (len(train) - len(val_part))
        * config.epochs
        / 1e15,
        "data": train.provenance,
        "test_data": test.provenance,
        "images": {"train": len(train) - len(val_part), "val": len(val_part), "test": len(test)},
        "seed": config.seed,
        **scores,
        "timing": {
            "training_seconds": train_seconds,
            "training_images_per_sec": images / train_seconds,
            "training_gflop_per_sec": 3 * gflops * images / train_seconds,
            "epoch_seconds": [row["seconds"] for row in history.epochs],
            "wall_seconds_last_sitting": session_seconds,
            "resumed": resume,
        },
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "config": history.config,
        "history": history.epochs,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    shutil.copy(folder / recipes.FILES["curves"], path.with_suffix(".png"))
    print(json.dumps({k: v for k, v in record.items() if k not in ("config", "history")}, indent=1))
    print(f"wrote {path} and {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
