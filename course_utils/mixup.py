"""Mixup (Zhang et al. 2017) and CutMix (Yun et al. 2019): a batch mixed with a shuffled copy."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MixResult = tuple[Tensor, Tensor, Tensor, float]  # mixed x, y, the y mixed in, the weight of y
Rng = torch.Generator | None  # None draws from torch's global generator


def _random_int(high: int, generator: Rng) -> int:
    device = generator.device if generator is not None else None
    return int(torch.randint(high, (1,), generator=generator, device=device))


def sample_lambda(alpha: float, generator: Rng = None) -> float:
    """Draw the mixing weight from Beta(alpha, alpha); ``alpha = 0`` means no mixing (1.0).
    alpha = 1 is uniform on [0, 1]; small alpha gives weights near 0 or 1 (mild mixing)."""
    if alpha == 0:
        return 1.0
    # torch's Beta sampler takes no generator: a seed from the torch generator drives NumPy's.
    return float(np.random.default_rng(_random_int(2**62, generator)).beta(alpha, alpha))


def mixup(
    x: Tensor, y: Tensor, alpha: float = 1.0, lam: float | None = None, generator: Rng = None
) -> MixResult:
    """Mixup: ``(lam * x + (1 - lam) * x[perm], y, y[perm], lam)``, lam ~ Beta(alpha, alpha)."""
    lam = sample_lambda(alpha, generator) if lam is None else float(lam)
    if lam == 1.0:
        return x, y, y, 1.0
    perm = torch.randperm(x.shape[0], device=x.device, generator=generator)
    return lam * x + (1.0 - lam) * x[perm], y, y[perm], lam


def cutmix(
    x: Tensor, y: Tensor, alpha: float = 1.0, lam: float | None = None, generator: Rng = None
) -> MixResult:
    """CutMix: paste one random box of about ``1 - lam`` of the image from a permuted batch into
    every image. Returns (mixed_x, y, y[perm], lam), lam the exact unpasted fraction."""
    lam = sample_lambda(alpha, generator) if lam is None else float(lam)
    height, width = x.shape[-2:]
    box_h, box_w = (round(size * math.sqrt(1.0 - lam)) for size in (height, width))
    center_y, center_x = _random_int(height, generator), _random_int(width, generator)
    top, bottom = max(center_y - box_h // 2, 0), min(center_y + box_h - box_h // 2, height)
    left, right = max(center_x - box_w // 2, 0), min(center_x + box_w - box_w // 2, width)
    if bottom <= top or right <= left:
        return x, y, y, 1.0
    perm = torch.randperm(x.shape[0], device=x.device, generator=generator)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, y, y[perm], lam


def mixed_loss(criterion: Callable, logits: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
    """``lam * criterion(logits, y_a) + (1 - lam) * criterion(logits, y_b)``; lam 1: one call."""
    if lam == 1.0:
        return criterion(logits, y_a)
    return lam * criterion(logits, y_a) + (1.0 - lam) * criterion(logits, y_b)


def mixed_accuracy(logits: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
    """Training accuracy on a mixed batch (0-dim): a prediction earns lam for the first label,
    1 - lam for the second, so it stays below clean accuracy by design."""
    predicted = logits.argmax(dim=1)
    correct_a = (predicted == y_a).float().mean()
    if lam == 1.0:
        return correct_a
    return lam * correct_a + (1.0 - lam) * (predicted == y_b).float().mean()


def soft_targets(y_a: Tensor, y_b: Tensor, lam: float, num_classes: int) -> Tensor:
    """The mixed labels as probability vectors [N, num_classes]: lam on y_a, 1 - lam on y_b."""
    one_hot_a, one_hot_b = F.one_hot(y_a, num_classes).float(), F.one_hot(y_b, num_classes).float()
    return lam * one_hot_a + (1.0 - lam) * one_hot_b


MIXERS: dict[str, Callable[..., MixResult]] = {"mixup": mixup, "cutmix": cutmix}  # Mixer kinds


@dataclass
class Mixer:
    """Mix each training batch with ``kind`` ("mixup" or "cutmix") at Beta(alpha, alpha),
    with probability ``prob`` per batch; ``fit()`` calls it as ``mixer(x, y)``."""

    kind: str = "mixup"
    alpha: float = 1.0
    prob: float = 1.0

    def __call__(self, x: Tensor, y: Tensor) -> MixResult:
        """Return (x, y_a, y_b, lam) for one batch; unmixed batches come back with lam = 1."""
        if self.prob < 1.0 and float(torch.rand(())) >= self.prob:
            return x, y, y, 1.0
        return MIXERS[self.kind](x, y, alpha=self.alpha)
