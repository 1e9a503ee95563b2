"""Training subprocess for test_checkpoint.py's kill-and-resume test (not a test itself).

    python tests/_resume_worker.py OUT [--hang-in-epoch E] [--resume]

Trains a tiny ResNet for 4 epochs on tiny synthetic data, on one CPU thread in
deterministic mode, with a checkpoint after every epoch; every source of randomness a run
has is on (shuffling, crop/flip/cutout, dropout, mixup), and so is every piece of optimizer
state (Nesterov momentum, Lookahead, one-cycle schedule, EMA weights). Writes OUT/final.pt
(the weights) and OUT/history.json at the end. With --hang-in-epoch the run stops in the
middle of that epoch, writes OUT/hanging and waits there to be killed.
"""

import argparse
import time
from pathlib import Path

import torch

from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.settings import seed_everything
from course_utils.train import fit

EPOCHS = 4


class HangingLoader:
    """Wraps a loader; two batches into epoch ``hang_epoch`` it writes ``marker`` and sleeps,
    as a process killed mid-epoch would stop."""

    def __init__(self, loader: DeviceLoader, hang_epoch: int, marker: Path) -> None:
        self.loader = loader
        self.hang_epoch = hang_epoch
        self.marker = marker
        self.epoch = 0

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.epoch += 1
        for step, batch in enumerate(self.loader):
            if self.epoch == self.hang_epoch and step == 2:
                self.marker.touch()
                time.sleep(600)
            yield batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--hang-in-epoch", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    seed_everything(0, deterministic=True)
    train_data = synthetic_cifar10(160, seed=0, split="train")
    test_data = synthetic_cifar10(64, seed=0, split="test")
    model = ResNet([1, 1], [8, 16], dropout=0.2)
    augment = ["crop", "flip", {"name": "cutout", "size": 8}, "jitter"]
    train_loader = DeviceLoader(train_data, batch_size=32, device="cpu", augment=augment)
    if args.hang_in_epoch:
        train_loader = HangingLoader(train_loader, args.hang_in_epoch, args.out / "hanging")
    test_loader = DeviceLoader(test_data, batch_size=64, train=False, device="cpu")
    history = fit(
        model,
        train_loader,
        test_loader,
        epochs=EPOCHS,
        optimizer="nesterov",
        lookahead={"k": 5, "alpha": 0.5},
        lr=0.05,
        schedule="onecycle",
        mixup=0.4,
        ema=0.9,
        seed=3,
        checkpoint=args.out / "checkpoint.pt",
        resume=args.resume,
        progress=False,
    )
    torch.save(model.state_dict(), args.out / "final.pt")
    history.save(args.out / "history.json")


if __name__ == "__main__":
    main()
