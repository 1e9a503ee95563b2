"""How much does ``train.fit`` cost on top of the plain training loop it wraps?

    python benchmarks/train_step.py [--images 2048] [--batch-size 128] [--rounds 5] [--threads N]

Trains the same 16-32-64 ResNet on the same DeviceLoader data with the same optimizer and
one-cycle schedule, one epoch at a time, alternately with ``fit(progress=False)`` and with a
minimal hand-written loop (forward, loss, zero_grad, backward, step, schedule step). The
first round of each is a warm-up and is not counted; the rates are medians over the rest.
The last line is ``overhead: <percent>%`` (positive: fit is slower). Goal: under 5%.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

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


def fit_epoch(model: nn.Module, loader: DeviceLoader) -> None:
    """The same epoch through ``train.fit``."""
    fit(
        model, loader, epochs=1, optimizer="nesterov", lr=LR, weight_decay=WEIGHT_DECAY,
        schedule="onecycle", progress=False,
    )  # fmt: skip


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
    parser.add_argument("--images", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after a warm-up)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    device = get_device()
    model = ResNet([1, 1, 1], [16, 32, 64]).to(device)
    loader = DeviceLoader(
        synthetic_cifar10(args.images, seed=0), batch_size=args.batch_size, device=device
    )
    print(
        f"device {device}, {torch.get_num_threads()} CPU threads; ResNet 16-32-64 "
        f"({count_parameters(model):,} parameters); {len(loader)} steps of {args.batch_size} "
        f"images per epoch; warm-up + {args.rounds} alternating rounds"
    )
    runs = {"hand-written loop": hand_written_epoch, "fit(progress=False)": fit_epoch}
    rates: dict[str, list[float]] = {label: [] for label in runs}
    for round_index in range(args.rounds + 1):
        for label, run in runs.items():
            rate = images_per_second(run, model, loader)
            if round_index > 0:  # round 0 warms up allocators and caches
                rates[label].append(rate)
    medians = {label: statistics.median(values) for label, values in rates.items()}
    for label, rate in medians.items():
        spread = ", ".join(f"{value:.0f}" for value in rates[label])
        print(f"{label:<20} {rate:8.1f} images/s  (rounds: {spread})")
    hand, fitted = medians.values()
    print(f"overhead: {100 * (hand / fitted - 1):.1f}%")


if __name__ == "__main__":
    main()
