"""The synthetic stand-in's drawing: ten classes of shapes and textures at a random position
and size, in random colours on a random shaded background, with noise. ``course_utils.data.
synthetic_cifar10`` seeds it and wraps the result; this module imports nothing of the package.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NOISE_BANK = 1024  # distinct noise tiles the synthetic generator draws from


def draw(n: int, classes: tuple[str, ...], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` images uint8 [n, 3, 32, 32] of the named shape ``classes`` (disc, ring, plus,
    x-mark, frame, triangle, h-stripes, v-stripes, checker, dots), and their labels."""
    labels = (torch.arange(n) % len(classes))[torch.randperm(n, generator=generator)]
    # Offsets of every pixel from each image's shape centre, and each shape's size (pixels).
    grid = torch.arange(32, dtype=torch.float32) + 0.5
    dx = grid.view(1, 1, 32) - _uniform(9, 23, n, generator)
    dy = grid.view(1, 32, 1) - _uniform(9, 23, n, generator)
    size = _uniform(4.4, 11, n, generator)
    mask = torch.empty(n, 32, 32)
    for label in range(len(classes)):
        index = (labels == label).nonzero().squeeze(1)
        mask[index] = _shape_mask(classes[label], dx[index], dy[index], size[index], generator)
    # Painting in chunks keeps the float intermediates small (50,000 images would need ~2 GB).
    images = torch.cat([_paint(chunk, generator) for chunk in mask.split(8192)])
    return images, labels


def _uniform(low: float, high: float, count: int, generator: torch.Generator) -> Tensor:
    """``count`` uniform draws in [low, high), shaped [count, 1, 1] to broadcast over pixels."""
    return (low + (high - low) * torch.rand(count, generator=generator)).view(count, 1, 1)


def _paint(mask: Tensor, generator: torch.Generator) -> Tensor:
    """Colour the masks [N, 32, 32] into uint8 images: random shaded background, a contrasting
    foreground (0.24-0.76 away in every channel, wrapping around), then pixel noise."""
    count = len(mask)
    grid = torch.arange(32, dtype=torch.float32) - 15.5
    angle = _uniform(0, 2 * math.pi, count, generator)
    slope = _uniform(0, 0.3 * 255 / 16, count, generator)
    shading = slope * (grid.view(1, 1, 32) * angle.cos() + grid.view(1, 32, 1) * angle.sin())
    background = 255 * torch.rand(count, 3, 1, 1, generator=generator)
    offset = 255 * (0.24 + 0.52 * torch.rand(count, 3, 1, 1, generator=generator))
    foreground = (background + offset) % 255
    image = torch.lerp(background + shading.unsqueeze(1), foreground, mask.unsqueeze(1))
    # Noise tiles reused from a small bank: the classes are not about noise, and it is cheaper.
    bank = torch.randn(NOISE_BANK, 3, 32, 32, generator=generator)
    pick = torch.randint(NOISE_BANK, (count,), generator=generator)
    strength = _uniform(0.03 * 255, 0.2 * 255, count, generator).unsqueeze(1)
    image.addcmul_(bank[pick], strength)
    return image.clamp_(0, 255).round_().to(torch.uint8)


def _soft(signed_distance: Tensor) -> Tensor:
    """Anti-aliased inside-mask from a signed distance in pixels (negative inside)."""
    return (0.5 - signed_distance).clamp(0, 1)


def _shape_mask(
    name: str, dx: Tensor, dy: Tensor, size: Tensor, generator: torch.Generator
) -> Tensor:
    """The foreground mask of one class, given offsets from each shape's centre and its size."""
    count = len(size)
    width = size * _uniform(0.22, 0.32, count, generator)
    if name == "disc":
        return _soft(torch.hypot(dx, dy) - size)
    if name == "ring":
        return _soft((torch.hypot(dx, dy) - size).abs() - width / 2)
    if name in ("plus", "x-mark"):
        if name == "x-mark":  # the plus turned by 45 degrees
            dx, dy = (dx + dy) / math.sqrt(2), (dx - dy) / math.sqrt(2)
        horizontal = torch.maximum(dx.abs() - size, dy.abs() - width / 2)
        vertical = torch.maximum(dx.abs() - width / 2, dy.abs() - size)
        return _soft(torch.minimum(horizontal, vertical))
    if name == "frame":
        box = torch.maximum(dx.abs(), dy.abs()) - size
        return _soft((box + width / 2).abs() - width / 2)
    if name == "triangle":  # apex up, symmetric under a horizontal flip
        base = dy - 0.8 * size
        sides = (1.8 * dx.abs() - (dy + size)) / math.hypot(1.8, 1.0)
        return _soft(torch.maximum(base, sides))
    # Textures: a periodic pattern filling a disc or a square patch around the centre.
    radius = size + 3
    disc_patch = torch.rand(count, 1, 1, generator=generator) < 0.5
    patch = torch.where(
        disc_patch, torch.hypot(dx, dy) - radius, torch.maximum(dx.abs(), dy.abs()) - radius
    )
    frequency = 2 * math.pi / _uniform(4, 8, count, generator)
    phase_x = _uniform(0, 2 * math.pi, count, generator)
    phase_y = _uniform(0, 2 * math.pi, count, generator)
    wave_x, wave_y = torch.sin(frequency * dx + phase_x), torch.sin(frequency * dy + phase_y)
    pattern = {
        "h-stripes": wave_y,
        "v-stripes": wave_x,
        "checker": wave_x * wave_y,
        "dots": wave_x + wave_y - 1,
    }[name]
    return _soft(patch) * (0.5 + 2 * pattern).clamp(0, 1)
