"""airbench94 as a baseline: Keller Jordan's CIFAR-10 speed-run recipe (its source reports
94.01% mean test accuracy over 1,000 runs, 3.83 s each on an A100, 0.36 PFLOPs), re-written for
this course's benchmarks from its published source (legacy/airbench94.py in
KellerJordan/cifar10-airbench, read to learn, not copied). Not part of the course package.

    python benchmarks/airbench94.py --data ../shared/data/cifar10-jpeg.tar.gz [--epochs 9.9]
        [--seed 0] [--json FILE]

trains it at its own budget on the whole training split (50,000 images, nothing held out, as
its source does) and prints test accuracy without TTA, with the mirror, and with its TTA;
``benchmarks/side_by_side.py`` races it against fast94 at small budgets.

What makes it airbench94, all kept here:
- the network: a frozen 2x2 whitening conv (24 filters: each eigenvector of the covariance of
  2x2 patches of 5,000 training images, over the square root of its eigenvalue, and its
  negative) with a bias trained for the first 3 epochs, GELU, three blocks conv - max-pool -
  BN - GELU - conv - BN - GELU of widths 64/256/256 (no shortcuts), a 3x3 max-pool, a linear
  head without bias and logits x 1/9; every 3x3 conv starts with its first filters as the
  identity (dirac); BatchNorm scales frozen at 1, eps 1e-12, running-statistics momentum 0.4;
- the data: ±2 px reflect-padded translations; flips drawn once per image, then the whole set
  mirrored every other epoch; batch 1024, the last partial batch dropped;
- the training: Nesterov SGD on the summed label-smoothed (0.2) loss, momentum 0.85, learning
  rate 11.5 and weight decay 0.0153 per 1,024 images in its decoupled form, BatchNorm shifts at
  64x the learning rate; warm-up from 0.2x to 1x over 23% of the steps, then down to 0.07x;
  every 5 steps the weights are pulled to an exponential average whose decay ramps as
  0.95^5 x progress^3, and the average is the final network; 9.9 epochs;
- the test: mirror and ±1 px translation averaged (6 views, airbench's "TTA level 2").

What differs: float32 on any device (airbench runs float16 on a GPU, BatchNorm in float32);
``epochs`` is an argument, so a shorter run is airbench94 with a smaller ``train_epochs``; and
the weight average starts from the network as training starts, whitening filters set. The
source starts it one line earlier, before the whitening filters are fitted, so each pull also
drags the frozen filters towards their random initial values: negligible at its own budget
(the first pull, at step 5 of 476, keeps 1e-6 of the old values) but not in a run of a few
steps, where the first pull keeps up to 77%.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.data import cifar10

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Hyper:
    """airbench94's settings, in its own (decoupled, per-1,024-image) units."""

    epochs: float = 9.9
    batch_size: int = 1024
    lr: float = 11.5
    momentum: float = 0.85
    weight_decay: float = 0.0153
    bias_scaler: float = 64.0
    label_smoothing: float = 0.2
    whiten_bias_epochs: int = 3
    whiten_images: int = 5000
    translate: int = 2
    widths: tuple[int, int, int] = (64, 256, 256)
    bn_momentum: float = 0.4  # PyTorch's convention (airbench writes 0.6 = 1 - 0.4)
    logit_scale: float = 1 / 9
    lookahead_every: int = 5
    tta_level: int = 2


def conv(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3x3 'same' conv without bias whose first ``c_in`` filters start as the identity."""
    layer = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
    nn.init.dirac_(layer.weight.data[:c_in])
    return layer


def batch_norm(c: int, momentum: float) -> nn.BatchNorm2d:
    """BatchNorm with its scale frozen at 1: only the shift trains."""
    norm = nn.BatchNorm2d(c, eps=1e-12, momentum=momentum)
    norm.weight.requires_grad_(False)
    return norm


class Block(nn.Module):
    """conv - max-pool - BN - GELU - conv - BN - GELU: halves the size, no shortcut."""

    def __init__(self, c_in: int, c_out: int, momentum: float) -> None:
        super().__init__()
        self.conv1 = conv(c_in, c_out)
        self.norm1 = batch_norm(c_out, momentum)
        self.conv2 = conv(c_out, c_out)
        self.norm2 = batch_norm(c_out, momentum)

    def forward(self, x: Tensor) -> Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class Net(nn.Module):
    """airbench94's network: 1,972,792 parameters (1,971,352 trained), 0.236 GFLOPs/image."""

    def __init__(self, hyper: Hyper = Hyper()) -> None:
        super().__init__()
        w1, w2, w3 = hyper.widths
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad_(False)
        nn.init.zeros_(self.whiten.bias)
        self.blocks = nn.Sequential(
            Block(24, w1, hyper.bn_momentum),
            Block(w1, w2, hyper.bn_momentum),
            Block(w2, w3, hyper.bn_momentum),
        )
        self.head = nn.Linear(w3, 10, bias=False)
        self.logit_scale = hyper.logit_scale

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.gelu(self.whiten(x)))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) * self.logit_scale

    @torch.no_grad()
    def fit_whitening(self, images: Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from the 2x2 patches of ``images`` (normalised)."""
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H', W', 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)  # one row per patch
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).flip(0)
        filters = filters.reshape(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


def normalise(images: Tensor) -> Tensor:
    """uint8 [N, 3, H, W] to float, per channel (airbench's mean and std)."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


class Loader:
    """airbench's training batches: flips drawn once, the whole set mirrored on odd epochs,
    a fresh ±``translate`` px reflect-padded shift per image per epoch, shuffled, full
    batches only."""

    def __init__(self, images: Tensor, labels: Tensor, hyper: Hyper, generator: torch.Generator):
        self.labels = labels
        self.batch_size = hyper.batch_size
        self.translate = hyper.translate
        self.generator = generator
        flip = torch.rand(len(images), generator=generator) < 0.5
        flipped = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        pad = (hyper.translate,) * 4
        self.padded = F.pad(flipped, pad, mode="reflect")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def shifted(self) -> Tensor:
        """Each image cut from its padded copy at a random offset in [-r, r] on each axis."""
        r, size = self.translate, self.padded.shape[-1] - 2 * self.translate
        shifts = torch.randint(0, 2 * r + 1, (len(self.labels), 2), generator=self.generator)
        out = torch.empty(len(self.labels), 3, size, size)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[chosen] = self.padded[chosen, :, dy : dy + size, dx : dx + size]
        return out

    def __iter__(self):
        images = self.shifted()
        if self.epoch % 2 == 1:
            images = images.flip(-1)
        self.epoch += 1
        order = torch.randperm(len(self.labels), generator=self.generator)
        for i in range(len(self)):
            batch = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield images[batch].contiguous(memory_format=torch.channels_last), self.labels[batch]


def total_steps(images: int, epochs: float, hyper: Hyper = Hyper()) -> int:
    """Optimizer steps in a run: ``epochs`` times the full batches of ``images``."""
    return math.ceil(images // hyper.batch_size * epochs)


def lr_factor(step: int, total: int) -> float:
    """0.2x rising linearly to 1x over 23% of the steps, then falling linearly to 0.07x."""
    warmup = max(1, int(0.23 * total))
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / max(1, total - warmup)


@torch.no_grad()
def pull_to_average(model: nn.Module, average: dict[str, Tensor], decay: float) -> None:
    """Lookahead: move the average ``1 - decay`` of the way to the weights, then set the
    weights to the average (floating-point entries of the state dict, BN statistics too)."""
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            average[name].lerp_(value, 1 - decay)
            value.copy_(average[name])


def train(
    images: Tensor, labels: Tensor, epochs: float | None = None, seed: int = 0,
    hyper: Hyper = Hyper(), progress: bool = False,
) -> Net:  # fmt: skip
    """Train airbench94 on uint8 ``images`` [N, 3, 32, 32] and ``labels`` for ``epochs``
    (default the recipe's 9.9; fractions allowed) and return the final (averaged) network;
    ``progress`` prints a line per epoch."""
    epochs = hyper.epochs if epochs is None else epochs
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = normalise(images)
    model = Net(hyper)
    model.fit_whitening(x[: hyper.whiten_images])
    model = model.to(memory_format=torch.channels_last)
    loader = Loader(x, labels, hyper, generator)
    total = total_steps(len(labels), epochs, hyper)

    # Decoupled units to PyTorch's: with Nesterov momentum m the step is 1 + 1/(1-m) times
    # the gradient, so both are divided by that; the loss is summed over a batch of 1,024.
    per_kilostep = 1024 * (1 + 1 / (1 - hyper.momentum))
    lr = hyper.lr / per_kilostep
    decay = hyper.weight_decay * hyper.batch_size / per_kilostep
    shifts = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad]
    bias_lr = lr * hyper.bias_scaler
    optimizer = torch.optim.SGD(
        [dict(params=shifts, lr=bias_lr, weight_decay=decay / bias_lr),
         dict(params=others, lr=lr, weight_decay=decay / lr)],
        momentum=hyper.momentum, nesterov=True,
    )  # fmt: skip
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total))
    average = {name: value.clone() for name, value in model.state_dict().items()}
    criterion = nn.CrossEntropyLoss(label_smoothing=hyper.label_smoothing, reduction="sum")

    step, start = 0, time.perf_counter()
    model.train()
    for epoch in range(math.ceil(epochs)):
        model.whiten.bias.requires_grad_(epoch < hyper.whiten_bias_epochs)
        if progress:
            print(f"epoch {epoch + 1}/{math.ceil(epochs)}, step {step}/{total}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        for inputs, targets in loader:
            loss = criterion(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % hyper.lookahead_every == 0:
                pull_to_average(model, average, 0.95**5 * (step / total) ** 3)
            if step >= total:
                break
    pull_to_average(model, average, 1.0)  # the network is the average
    return model


@torch.no_grad()
def view_logits(model: nn.Module, images: Tensor, batch_size: int = 1000) -> dict[str, Tensor]:
    """Logits of each test view, for uint8 ``images``: as is, mirrored, and the mirror pair
    shifted 1 px up-left and 1 px down-right (reflect padding)."""
    model.eval()
    views: dict[str, list[Tensor]] = {"plain": [], "mirror": [], "up_left": [], "down_right": []}
    for chunk in normalise(images).split(batch_size):
        chunk = chunk.contiguous(memory_format=torch.channels_last)
        padded = F.pad(chunk, (1,) * 4, mode="reflect")
        up_left, down_right = padded[..., :-2, :-2], padded[..., 2:, 2:]
        views["plain"].append(model(chunk))
        views["mirror"].append(model(chunk.flip(-1)))
        views["up_left"].append((model(up_left) + model(up_left.flip(-1))) / 2)
        views["down_right"].append((model(down_right) + model(down_right.flip(-1))) / 2)
    return {name: torch.cat(parts) for name, parts in views.items()}


def tta_logits(views: dict[str, Tensor], level: int) -> Tensor:
    """airbench's test-time augmentation: 0 none, 1 mirror, 2 mirror and translation."""
    mirrored = (views["plain"] + views["mirror"]) / 2
    if level == 0:
        return views["plain"]
    if level == 1:
        return mirrored
    return mirrored / 2 + (views["up_left"] + views["down_right"]) / 4


def main() -> None:
    parser = argparse.ArgumentParser(description="airbench94 at its own budget, as published")
    parser.add_argument("--data", required=True, help="CIFAR-10: a path to the release or JPEGs")
    parser.add_argument("--epochs", type=float, default=Hyper.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    train_data, test = cifar10("train", args.data), cifar10("test", args.data)
    threads = torch.get_num_threads()
    print(
        f"airbench94: {len(train_data):,} training images, {args.epochs:g} epochs, seed "
        f"{args.seed}, {threads} threads; {train_data.provenance}",
        flush=True,
    )
    start = time.perf_counter()
    model = train(train_data.images, train_data.labels, args.epochs, args.seed, progress=True)
    seconds = time.perf_counter() - start
    views = view_logits(model, test.images)
    record = {
        "recipe": "airbench94 (benchmarks/airbench94.py, float32)",
        "epochs": args.epochs,
        "seed": args.seed,
        "train_images": len(train_data),
        "test_images": len(test),
        "data": train_data.provenance,
        **{
            f"test_acc_tta{level}": (tta_logits(views, level).argmax(1) == test.labels)
            .float()
            .mean()
            .item()
            for level in (0, 1, 2)
        },
        "training_seconds": seconds,
        "images_per_sec": total_steps(len(train_data), args.epochs) * Hyper.batch_size / seconds,
        "torch": torch.__version__,
        "threads": threads,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    print(json.dumps(record, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
