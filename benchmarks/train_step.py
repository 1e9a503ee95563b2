"""Two costs of a training step, each measured side by side against its baseline.

    python benchmarks/train_step.py [--images 2048] [--batch-size 128] [--rounds 5] [--threads N]
    python benchmarks/train_step.py --compare channels-last [--model capstone] [--batch-size 256]

``--compare overhead`` (the default): how much ``train.fit`` costs on top of the plain loop it
wraps. The same 16-32-64 ResNet on the same DeviceLoader data, the same optimizer and
one-cycle schedule, one epoch at a time, alternately with ``fit(progress=False)`` and with a
minimal hand-written loop (forward, loss, zero_grad, backward, step, schedule step). The last
line is ``overhead: <percent>%`` (positive: fit is slower). Goal: under 5%.

``--compare channels-last``: ``fit`` with ``channels_last=True`` (the default, NHWC
activations) against ``channels_last=False`` (NCHW), for a zoo ``--model``. The last line is
``channels_last speed-up: <ratio>x`` (above 1: channels_last is faster here).

In both, the first round of each side is a warm-up and is not counted; rates are medians
over the rest, the two sides alternating so that a noisy machine slows both.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from course_utils import zoo
from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.optim import make_optimizer, make_scheduler
from course_utils.params import count_parameters
from course_utils.settings import get_device
from course_utils.train import fit

LR = 0.05
WEIGHT_DECAY = 5e-4


def hand_written_epoch(model: nn.Module, loader: DeviceLoader) -> None:
    """One epoch of the textbook loop, with the same optimizer and schedule fit builds."""
    optimizer = make_optimizer("nesterov", model.parameters(), LR, WEIGHT_DECAY)
    schedule = make_scheduler("onecycle", optimizer, epochs=1, steps_per_epoch=len(loader))
    criterion = nn.CrossEntropyLoss()
    model.train()
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


def fit_epoch(model: nn.Module, loader: DeviceLoader, channels_last: bool = True) -> None:
    """The same epoch through ``train.fit``."""
    fit(
        model, loader, epochs=1, optimizer="nesterov", lr=LR, weight_decay=WEIGHT_DECAY,
        schedule="onecycle", progress=False, channels_last=channels_last,
    )  # fmt: skip


def nchw_epoch(model: nn.Module, loader: DeviceLoader) -> None:
    """One epoch through ``train.fit`` in the NCHW layout."""
    fit_epoch(model, loader, channels_last=False)


def images_per_second(run, model: nn.Module, loader: DeviceLoader) -> float:
    """Training images per second of one epoch by ``run``, on a fresh copy of ``model``."""
    fresh = copy.deepcopy(model)
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(fresh, loader)
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    return len(loader) * loader.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", choices=["overhead", "channels-last"], default="overhead")
    parser.add_argument("--model", help="zoo key for --compare channels-last [capstone]")
    parser.add_argument("--images", type=int, help="training images per epoch [2048; 1024]")
    parser.add_argument("--batch-size", type=int, help="[128; 256 for channels-last]")
    parser.add_argument("--rounds", type=int, help="measured rounds after a warm-up [5; 3]")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    layout = args.compare == "channels-last"
    if args.model is not None and not layout:
        parser.error("--model goes with --compare channels-last")
    if args.threads:
        torch.set_num_threads(args.threads)
    images = args.images or (1024 if layout else 2048)
    batch_size = args.batch_size or (256 if layout else 128)
    rounds = args.rounds or (3 if layout else 5)

    torch.manual_seed(0)
    device = get_device()
    if layout:
        model_name = args.model or "capstone"
        model = zoo.build(model_name).to(device)
        runs = {"NCHW (channels_last=False)": nchw_epoch, "channels_last=True": fit_epoch}
    else:
        model_name = "ResNet 16-32-64"
        model = ResNet([1, 1, 1], [16, 32, 64]).to(device)
        runs = {"hand-written loop": hand_written_epoch, "fit(progress=False)": fit_epoch}
    loader = DeviceLoader(synthetic_cifar10(images, seed=0), batch_size=batch_size, device=device)
    print(
        f"device {device}, {torch.get_num_threads()} CPU threads; {model_name} "
        f"({count_parameters(model):,} parameters); {len(loader)} steps of {batch_size} "
        f"images per epoch; warm-up + {rounds} alternating rounds"
    )
    rates: dict[str, list[float]] = {label: [] for label in runs}
    for round_index in range(rounds + 1):
        for label, run in runs.items():
            rate = images_per_second(run, model, loader)
            if round_index > 0:  # round 0 warms up allocators and caches
                rates[label].append(rate)
    medians = {label: statistics.median(values) for label, values in rates.items()}
    for label, rate in medians.items():
        spread = ", ".join(f"{value:.0f}" for value in rates[label])
        print(f"{label:<20} {rate:8.1f} images/s  (rounds: {spread})")
    baseline, measured = medians.values()
    if layout:
        print(f"channels_last speed-up: {measured / baseline:.2f}x")
    else:
        print(f"overhead: {100 * (baseline / measured - 1):.1f}%")


if __name__ == "__main__":
    main()
