"""Mixup (Zhang et al. 2017) and CutMix (Yun et al. 2019) on a batch, and the matching loss.

Both mix a batch with a shuffled copy of itself, so every function works on whole batches
on the batch's device. ``sudrik`` trained with mixup; lecture 05 measures what it buys.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MixResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]
"""(mixed images, labels, labels of the images mixed in, weight of the first labels)."""


def _check_alpha(alpha: Any) -> None:
    """Raise unless ``alpha`` is a finite number >= 0 (TypeError when it is no number)."""
    message = f"alpha must be a number >= 0 (0 turns mixing off), e.g. 1.0; got {alpha!r}."
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(message)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(message)


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """Draw the mixing weight from Beta(alpha, alpha); ``alpha = 0`` means no mixing (1.0).
    alpha = 1 is uniform on [0, 1]; small alpha gives weights near 0 or 1 (mild mixing)."""
    _check_alpha(alpha)
    if alpha == 0:
        return 1.0
    # torch's Beta sampler takes no generator, so a seed drawn from the (global or given)
    # torch generator drives NumPy's: torch.manual_seed still makes runs repeatable.
    device = generator.device if generator is not None else None
    seed = int(torch.randint(2**62, (1,), generator=generator, device=device))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _check_batch(x: torch.Tensor, y: torch.Tensor, lam: float) -> None:
    if not x.is_floating_point():
        raise TypeError(f"Mixing needs float images, got {x.dtype}; convert and normalise first.")
    if x.ndim != 4 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"Expected images [N, C, H, W] and labels [N], got {tuple(x.shape)} and "
            f"{tuple(y.shape)}."
        )
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"The mixing weight lam must lie in [0, 1], got {lam}.")


def _permutation(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randperm(n, device=device, generator=generator)


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 1.0,
    lam: float | None = None,
    generator: torch.Generator | None = None,
) -> MixResult:
    """Mixup: ``lam * x + (1 - lam) * x[perm]`` for a random permutation of the batch.
    Returns (mixed_x, y, y[perm], lam); ``lam`` is drawn from Beta(alpha, alpha) unless given."""
    lam = sample_lambda(alpha, generator) if lam is None else float(lam)
    _check_batch(x, y, lam)
    if lam == 1.0:
        return x, y, y, 1.0
    perm = _permutation(x.shape[0], x.device, generator)
    return lam * x + (1.0 - lam) * x[perm], y, y[perm], lam


def _random_index(high: int, generator: torch.Generator | None) -> int:
    device = generator.device if generator is not None else None
    return int(torch.randint(high, (1,), generator=generator, device=device))


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 1.0,
    lam: float | None = None,
    generator: torch.Generator | None = None,
) -> MixResult:
    """CutMix: paste one random box, covering about ``1 - lam`` of the image, from a permuted
    batch into every image. Returns (mixed_x, y, y[perm], lam) with ``lam`` recomputed as the
    exact unpasted fraction, since boxes that cross the border are cropped."""
    lam = sample_lambda(alpha, generator) if lam is None else float(lam)
    _check_batch(x, y, lam)
    height, width = x.shape[-2:]
    box_h = round(height * math.sqrt(1.0 - lam))
    box_w = round(width * math.sqrt(1.0 - lam))
    center_y, center_x = _random_index(height, generator), _random_index(width, generator)
    top, bottom = max(center_y - box_h // 2, 0), min(center_y + box_h - box_h // 2, height)
    left, right = max(center_x - box_w // 2, 0), min(center_x + box_w - box_w // 2, width)
    if bottom <= top or right <= left:
        return x, y, y, 1.0
    perm = _permutation(x.shape[0], x.device, generator)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, y, y[perm], lam


def mixed_loss(
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    y_a: torch.Tensor,
    y_b: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """The loss for a mixed batch: ``lam * criterion(logits, y_a) + (1 - lam) * criterion(logits,
    y_b)``; for cross-entropy this equals the loss against the mixed soft targets. An unmixed
    batch (lam 1) costs one criterion call."""
    if lam == 1.0:
        return criterion(logits, y_a)
    return lam * criterion(logits, y_a) + (1.0 - lam) * criterion(logits, y_b)


def mixed_accuracy(
    logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float
) -> torch.Tensor:
    """Training accuracy on a mixed batch, as a 0-dim tensor fraction: a prediction earns lam
    if it names the first label and 1 - lam if it names the second (what the loss rewards).
    It stays below clean accuracy by design: no single prediction can earn both labels.
    (``sudrik``'s ~60% training accuracy used another measure, the first label only.)"""
    predicted = logits.argmax(dim=1)
    if lam == 1.0:
        return (predicted == y_a).float().mean()
    correct_a = (predicted == y_a).float().mean()
    correct_b = (predicted == y_b).float().mean()
    return lam * correct_a + (1.0 - lam) * correct_b


def soft_targets(
    y_a: torch.Tensor, y_b: torch.Tensor, lam: float, num_classes: int
) -> torch.Tensor:
    """The mixed labels as probability vectors [N, num_classes]: lam on y_a, 1 - lam on y_b."""
    one_hot_a = F.one_hot(y_a, num_classes).float()
    one_hot_b = F.one_hot(y_b, num_classes).float()
    return lam * one_hot_a + (1.0 - lam) * one_hot_b


MIXERS: dict[str, Callable[..., MixResult]] = {"mixup": mixup, "cutmix": cutmix}
"""Mixing kinds by name, as ``Mixer(kind=...)`` accepts them."""


@dataclass
class Mixer:
    """Mix each training batch with ``kind`` ("mixup" or "cutmix") at Beta(alpha, alpha),
    with probability ``prob`` per batch; ``fit()`` calls it as ``mixer(x, y)``."""

    kind: str = "mixup"
    alpha: float = 1.0
    prob: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in MIXERS:
            raise ValueError(
                f"Unknown mixing kind {self.kind!r}; choose one of {', '.join(MIXERS)}."
            )
        _check_alpha(self.alpha)
        if isinstance(self.prob, bool) or not isinstance(self.prob, numbers.Real):
            raise TypeError(f"prob is a probability in [0, 1], e.g. 0.5; got {self.prob!r}.")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob is a probability in [0, 1], got {self.prob}.")

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> MixResult:
        """Return (x, y_a, y_b, lam) for one batch; unmixed batches come back with lam = 1."""
        if self.prob < 1.0 and float(torch.rand(())) >= self.prob:
            return x, y, y, 1.0
        return MIXERS[self.kind](x, y, alpha=self.alpha)
