"""Batched augmentations of uint8 images [B, 3, H, W], run on the batch's own device (CPU or GPU).

The device-resident loader runs them as an ordered pipeline on each batch, before
normalisation; lecture 01 shows writing your own: any callable ``(images, generator) -> images``
that returns a uint8 batch of the same shape can join the pipeline.

Each augmentation draws its own random parameters per image (``sample``) and applies them to the
whole batch with a few tensor operations (``apply``): there is no Python loop over images. Given
the same parameters, each gives on every image what torchvision.transforms.v2.functional gives
(pad + crop, horizontal_flip, rotate, the adjust_* ops, erase); torchvision has no cutout.

Classes (registry name in brackets):
    Augmentation        the base class: sample, apply, __call__ and spec
    RandomCrop          ("crop")    pad and cut a random window of the original size
    HorizontalFlip      ("flip")    mirror left-right with probability p
    RandomRotation      ("rotate")  rotate by a random angle, nearest-neighbour
    ColorJitter         ("jitter")  brightness, contrast, saturation and hue in a random order
    RandomErasing       ("erase")   fill one random rectangle (Zhong et al. 2017)
    Cutout              ("cutout")  fill a square at a random centre (DeVries & Taylor 2017)
Functions: build, build_pipeline, describe, apply_pipeline.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from course_utils.data import CIFAR10_MEAN

MEAN_PIXEL: tuple[int, int, int] = tuple(round(255 * m) for m in CIFAR10_MEAN)  # (125, 123, 114)
"""The CIFAR-10 mean colour in 0-255 units: the default fill for erasing and cutout."""

Fill = int | tuple[int, ...]
"""A fill colour: one 0-255 value for every channel, or one per channel."""
Device = torch.device | str


# ----------------------------------------------------------------------------------------------
# Checks and random numbers shared by all augmentations
# ----------------------------------------------------------------------------------------------


def _check_images(images: Any, who: str) -> None:
    """Raise one clear error unless ``images`` is a uint8 batch [B, C, H, W]."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        got = f"{images.dtype} tensor" if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(
            f"{who} expects uint8 images [B, C, H, W] (augment before normalising), got a {got}."
        )
    if images.ndim != 4:
        raise ValueError(
            f"{who} expects a batch of images [B, C, H, W], got shape {list(images.shape)}; "
            "for a single image use image.unsqueeze(0)."
        )


def _check_number(name: str, value: Any, low: float, high: float = math.inf) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a finite number in [low, high]."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not low <= value <= high:
        allowed = f"at least {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}.")


def _check_range(name: str, value: Any, low: float, high: float = math.inf) -> tuple[float, float]:
    """A (min, max) pair with ``low <= min <= max <= high``, as a tuple of floats."""
    pair = isinstance(value, (tuple, list)) and len(value) == 2
    if pair:
        for bound in value:
            _check_number(f"{name} bounds", bound, low, high)
    if not pair or value[0] > value[1]:
        allowed = f"at least {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(
            f"{name} must be a pair (min, max) with min <= max, {allowed}, got {value!r}."
        )
    return float(value[0]), float(value[1])


def _check_int(name: str, value: Any, low: int) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is an int of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}.")


def _check_fill(name: str, fill: Any) -> Fill:
    """A fill colour: one int 0-255 for every channel, or one per channel; lists become tuples."""
    values = list(fill) if isinstance(fill, (tuple, list)) else [fill]
    valid = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)
    if not valid or not values:
        raise ValueError(
            f"{name} must be an int 0-255 or a tuple of them (one per channel), got {fill!r}."
        )
    return tuple(values) if isinstance(fill, (tuple, list)) else fill


def _fill_tensor(fill: Fill, channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``fill`` as a [1, C, 1, 1] tensor that broadcasts over a batch."""
    values = list(fill) if isinstance(fill, tuple) else [fill]
    if len(values) not in (1, channels):
        raise ValueError(
            f"fill {fill} has {len(values)} values but the images {channels} channels."
        )
    return torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)


def _check_generator(generator: Any, who: str) -> None:
    """Raise one clear error unless ``generator`` is a torch.Generator or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{who}'s generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) "
            f"or None for torch's global one, got {generator!r}."
        )


def _source(generator: torch.Generator | None, device: Device) -> torch.device:
    """Random numbers are made where the generator lives (a CUDA generator only draws on CUDA)."""
    return generator.device if generator is not None else torch.device(device)


def _uniform(
    low: float,
    high: float,
    size: tuple[int, ...],
    generator: torch.Generator | None,
    device: Device,
) -> Tensor:
    """Float32 numbers uniform in [low, high], on ``device``."""
    u = torch.rand(size, generator=generator, device=_source(generator, device))
    return (low + (high - low) * u).to(device)


def _randint(
    high: int | Tensor,
    size: tuple[int, ...],
    generator: torch.Generator | None,
    device: Device,
) -> Tensor:
    """Integers uniform in 0..high-1 (int64, on ``device``); ``high`` may differ per element."""
    u = torch.rand(
        size, dtype=torch.float64, generator=generator, device=_source(generator, device)
    )
    high = torch.as_tensor(high, device=device)
    # min() guards against u * high rounding up to high itself.
    return torch.minimum((u.to(device) * high).long(), high - 1)


def _fill_boxes(
    images: Tensor,
    top: Tensor,
    left: Tensor,
    height: Tensor | int,
    width: Tensor | int,
    fill: Fill,
) -> Tensor:
    """Fill rows top..top+height-1 and columns left..left+width-1 of each image with ``fill``.
    ``top`` and ``left`` are [B] tensors, the sizes [B] or one int; parts outside are ignored."""
    _, channels, rows, cols = images.shape
    height, width = (torch.as_tensor(size, device=images.device) for size in (height, width))
    row = torch.arange(rows, device=images.device) - top.view(-1, 1)  # [B, H], 0 at the top
    col = torch.arange(cols, device=images.device) - left.view(-1, 1)  # [B, W]
    in_rows = (row >= 0) & (row < height.view(-1, 1))
    in_cols = (col >= 0) & (col < width.view(-1, 1))
    box = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)  # [B, H, W]
    color = _fill_tensor(fill, channels, images.dtype, images.device)
    return torch.where(box.unsqueeze(1), color, images)


# ----------------------------------------------------------------------------------------------
# The base class
# ----------------------------------------------------------------------------------------------


class Augmentation:
    """A batched random augmentation: ``sample`` draws per-image parameters, ``apply`` uses them.
    Splitting the two makes every augmentation testable against a reference with fixed parameters.
    A subclass defines both (or ``__call__`` itself); its fields are checked again when it is
    built into a pipeline and when it is called, so a field changed afterwards is caught too.
    """

    name: ClassVar[str] = ""

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """Random parameters for ``batch`` images of ``height`` x ``width``: [B] tensors on
        ``device``, drawn from ``generator`` (the global generator if None)."""
        raise NotImplementedError(_missing(type(self), "sample"))

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The augmented uint8 batch of the same shape; deterministic: same params, same output."""
        raise NotImplementedError(_missing(type(self), "apply"))

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment a uint8 batch [B, C, H, W] with fresh random parameters for every image."""
        _check_images(images, type(self).__name__)
        _check_generator(generator, type(self).__name__)
        self._check_fields()
        batch, _, height, width = images.shape
        return self.apply(images, self.sample(batch, height, width, generator, images.device))

    def _check_fields(self) -> None:
        """Validate the fields again (a dataclass's ``__post_init__``): a value set after
        construction, such as ``flip.p = 5``, is refused like one given to the constructor."""
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def spec(self) -> dict:
        """A JSON-able description, ``{"name": ..., **arguments}``; ``build(spec)`` rebuilds it."""
        arguments = {}
        if dataclasses.is_dataclass(self):
            for field in dataclasses.fields(self):
                value = getattr(self, field.name)
                arguments[field.name] = list(value) if isinstance(value, tuple) else value
        return {"name": self.name, **arguments}


def _missing(cls: type[Augmentation], method: str) -> str:
    return (
        f"{cls.__name__} must define {method}(): an Augmentation subclass defines "
        "sample(batch, height, width, generator, device) -> its random parameters and "
        "apply(images, params) -> the augmented images (see RandomCrop), or __call__ itself."
    )


# ----------------------------------------------------------------------------------------------
# Geometry: crop, flip, rotate
# ----------------------------------------------------------------------------------------------


@dataclass
class RandomCrop(Augmentation):
    """Pad by ``padding`` pixels and cut a random window of the original size, i.e. shift each
    image by up to ``padding`` pixels; the border is 0 ("constant") or mirrored ("reflect")."""

    padding: int = 4
    padding_mode: str = "reflect"
    name: ClassVar[str] = "crop"

    def __post_init__(self) -> None:
        _check_int("padding", self.padding, 0)
        if self.padding_mode not in ("constant", "reflect"):
            raise ValueError(
                f"padding_mode must be 'constant' or 'reflect', got {self.padding_mode!r}."
            )

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``top``, ``left``: where the window starts in the padded image, 0..2*padding."""
        offsets = 2 * self.padding + 1
        return {
            "top": _randint(offsets, (batch,), generator, device),
            "left": _randint(offsets, (batch,), generator, device),
        }

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Cut each image's window out of its padded copy."""
        if self.padding == 0:
            return images
        batch, _, height, width = images.shape
        if self.padding >= min(height, width):  # constant: most crops would be border only
            raise ValueError(
                f"{self.padding_mode} padding must be smaller than the images ({height}x{width}), "
                f"got padding={self.padding}; 4 is usual for 32x32."
            )
        p = self.padding
        padded = F.pad(images, (p, p, p, p), mode=self.padding_mode)
        # Every height x width window of the padded images: [B, C, 2p+1, 2p+1, H, W], no copy.
        windows = padded.unfold(2, height, 1).unfold(3, width, 1)
        # One indexing step picks window (top, left) of each image: [B, C, H, W].
        return windows[torch.arange(batch, device=images.device), :, params["top"], params["left"]]


@dataclass
class HorizontalFlip(Augmentation):
    """Mirror each image left-right with probability ``p``."""

    p: float = 0.5
    name: ClassVar[str] = "flip"

    def __post_init__(self) -> None:
        _check_number("p", self.p, 0.0, 1.0)

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``flip``: bool, True for the images to mirror."""
        return {"flip": _uniform(0.0, 1.0, (batch,), generator, device) < self.p}

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The mirrored image where ``flip`` is True, the original elsewhere."""
        return torch.where(params["flip"].view(-1, 1, 1, 1), images.flip(3), images)


def _rotation_grid(angle: Tensor, height: int, width: int) -> Tensor:
    """The ``grid_sample`` grid [B, H, W, 2] that rotates each image by ``angle`` degrees
    counter-clockwise about its centre, computed exactly as torchvision's ``rotate`` does."""
    # Each output pixel (x, y), measured from the image centre, reads the input at R(-angle)(x, y).
    # torchvision first brings the angle into [0, 360) and works in double precision.
    radians = torch.deg2rad(-(angle.double() % 360))
    cos, sin = radians.cos().float(), radians.sin().float()
    zero = torch.zeros_like(cos)
    inverse = torch.stack([cos, sin, zero, -sin, cos, zero], dim=1).view(-1, 2, 3)
    # Pixel centres relative to the image centre, as (x, y, 1) rows: [1, H * W, 3].
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=angle.device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=angle.device)
    base = torch.ones(height, width, 3, device=angle.device)
    base[..., 0] = xs
    base[..., 1] = ys.view(-1, 1)
    base = base.view(1, height * width, 3)
    # Input positions in grid_sample's [-1, 1] units: divide pixels by half the size.
    half_size = torch.tensor([0.5 * width, 0.5 * height], device=angle.device)
    theta = inverse.transpose(1, 2) / half_size  # [B, 3, 2]
    return base.expand(len(angle), -1, -1).bmm(theta).view(-1, height, width, 2)


@dataclass
class RandomRotation(Augmentation):
    """Rotate each image about its centre by an angle uniform in [-degrees, degrees]
    (positive = counter-clockwise), nearest-neighbour; corners from outside get ``fill``."""

    degrees: float = 15.0
    fill: Fill = 0
    name: ClassVar[str] = "rotate"

    def __post_init__(self) -> None:
        _check_number("degrees", self.degrees, 0.0, 180.0)
        self.fill = _check_fill("fill", self.fill)

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``angle``: float32 degrees in [-degrees, degrees]."""
        return {"angle": _uniform(-self.degrees, self.degrees, (batch,), generator, device)}

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Sample every output pixel from its nearest source pixel, in one ``grid_sample``."""
        _, channels, height, width = images.shape
        grid = _rotation_grid(params["angle"], height, width)
        # Like torchvision, rotate a channel of ones along: where it reads 0 the pixel came from
        # outside the image and gets the fill colour.
        ones = torch.ones_like(images[:, :1], dtype=torch.float32)
        stacked = torch.cat([images.float(), ones], dim=1)
        rotated = F.grid_sample(
            stacked, grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        pixels, inside = rotated[:, :-1], rotated[:, -1:]
        fill = _fill_tensor(self.fill, channels, torch.float32, images.device)
        # Nearest-neighbour sampling copies whole pixels, so the values are exact integers.
        return torch.where(inside < 0.5, fill, pixels).to(torch.uint8)


# ----------------------------------------------------------------------------------------------
# Colour: brightness, contrast, saturation and hue, as torchvision computes them on uint8
# ----------------------------------------------------------------------------------------------


def _grayscale(images: Tensor) -> Tensor:
    """Float32 luma [B, 1, H, W] of uint8 RGB images, rounded down to whole grey levels
    (torchvision's formula and rounding for uint8 images)."""
    red, green, blue = images.float().unbind(1)
    gray = red.mul(0.2989).add_(green, alpha=0.587).add_(blue, alpha=0.114)
    return gray.floor_().unsqueeze(1)


def _blend(images: Tensor, reference: Tensor, factor: Tensor) -> Tensor:
    """``factor * images + (1 - factor) * reference``, clamped and truncated back to uint8.
    Factor 0 gives the reference, 1 the images, above 1 pushes the images away from it."""
    # torchvision adds reference * (1 - factor) to the float32 images * factor in one fused
    # multiply-add, rounding once; addcmul does the same, so the truncation to uint8 agrees
    # pixel for pixel.
    blended = torch.addcmul(images.float().mul_(factor), reference, 1 - factor)
    return blended.clamp_(0, 255).to(torch.uint8)


def _rgb_to_hsv(rgb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hue (in turns, 0..1), saturation and value [B, H, W] of float RGB images in [0, 1]."""
    red, green, blue = rgb.unbind(1)
    value, low = rgb.amax(1), rgb.amin(1)
    spread = value - low
    gray = spread == 0  # no hue: avoid dividing by zero, the result is hue 0, saturation 0
    ones = torch.ones_like(value)
    saturation = spread / torch.where(gray, ones, value)
    spread = torch.where(gray, ones, spread)
    r, g, b = (value - red) / spread, (value - green) / spread, (value - blue) / spread
    hue = torch.where(value == red, b - g, torch.where(value == green, r + 2.0 - b, g + 4.0 - r))
    hue = (hue * (1.0 / 6.0) + 1.0).fmod_(1.0)
    return hue, saturation, value


# For each of the six hue sectors, which of (value, p, q, t) become red, green and blue.
_SECTOR_CHANNELS = ((0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2))


def _hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """Float RGB images [B, 3, H, W] in [0, 1] from hue (turns), saturation and value [B, H, W]."""
    hue6 = hue * 6
    sector = hue6.floor()
    within = hue6 - sector  # position inside the sector, 0..1
    s_within = saturation * within
    one_minus_s = 1.0 - saturation
    q = ((1.0 - s_within) * value).clamp_(0.0, 1.0)
    t = ((s_within + one_minus_s) * value).clamp_(0.0, 1.0)
    p = (one_minus_s * value).clamp_(0.0, 1.0)
    candidates = torch.stack([value, p, q, t], dim=1)  # [B, 4, H, W]
    table = torch.tensor(_SECTOR_CHANNELS, device=hue.device)
    pick = table[sector.long() % 6].movedim(-1, 1)  # [B, 3, H, W]: index into candidates
    return candidates.gather(1, pick)


def _adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Turn the hue of each uint8 RGB image by ``shift`` [B] turns (-0.5..0.5), via HSV."""
    hue, saturation, value = _rgb_to_hsv(images.float().mul_(1.0 / 255))
    hue = (hue + shift.view(-1, 1, 1)).remainder_(1.0)
    # torchvision's float -> uint8 conversion: scale by just under 256 and truncate.
    return _hsv_to_rgb(hue, saturation, value).mul_(256.0 - 1e-3).to(torch.uint8)


@dataclass
class ColorJitter(Augmentation):
    """Change brightness, contrast and saturation by random factors in [max(0, 1 - x), 1 + x]
    and turn the hue by up to ``hue`` (at most 0.5 turn), in a random order per image; 0 = off."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    name: ClassVar[str] = "jitter"

    # The four operations, numbered as in ``order``.
    BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)

    def __post_init__(self) -> None:
        _check_number("brightness", self.brightness, 0.0)
        _check_number("contrast", self.contrast, 0.0)
        _check_number("saturation", self.saturation, 0.0)
        _check_number("hue", self.hue, 0.0, 0.5)

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``brightness``, ``contrast``, ``saturation``: factors (1 when off); ``hue``: shift in
        turns; ``order`` [B, 4]: each image's permutation of the ops 0-3 (brightness..hue)."""

        def factor(amount: float) -> Tensor:
            return _uniform(max(0.0, 1.0 - amount), 1.0 + amount, (batch,), generator, device)

        return {
            "brightness": factor(self.brightness),
            "contrast": factor(self.contrast),
            "saturation": factor(self.saturation),
            "hue": _uniform(-self.hue, self.hue, (batch,), generator, device),
            # Sorting random keys gives a uniformly random permutation per row.
            "order": _uniform(0.0, 1.0, (batch, 4), generator, device).argsort(dim=1),
        }

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Four rounds; in round k every image applies its k-th op. Brightness, contrast and
        saturation are all one blend (with black, the mean grey, the grey image), so a round
        is one blend with a per-image factor (1 for a hue round), then hue for those it picks."""
        if images.shape[1] != 3:
            raise ValueError(f"ColorJitter needs RGB images, got {images.shape[1]} channels.")
        # Blend factor of each op per image [B, 4]; hue does not blend, so its factor is 1.
        factors = torch.stack(
            [
                params["brightness"],
                params["contrast"],
                params["saturation"],
                torch.ones_like(params["brightness"]),
            ],
            dim=1,
        )
        for step in range(4):
            op = params["order"][:, step]
            factor = factors.gather(1, op.view(-1, 1)).view(-1, 1, 1, 1)
            gray = _grayscale(images)
            mean = gray.mean(dim=(1, 2, 3), keepdim=True)
            op = op.view(-1, 1, 1, 1)
            reference = torch.where(
                op == self.SATURATION, gray, torch.where(op == self.CONTRAST, mean, 0.0)
            )
            images = _blend(images, reference, factor)
            if self.hue > 0:
                # Hue costs more than the rest together: compute it only for the chosen images.
                # (On a GPU, finding them makes the CPU wait for the GPU once per round.)
                chosen = (op.view(-1) == self.HUE).nonzero().view(-1)
                turned = _adjust_hue(images[chosen], params["hue"][chosen])
                images = images.index_copy(0, chosen, turned)
        return images


# ----------------------------------------------------------------------------------------------
# Occlusion: random erasing and cutout
# ----------------------------------------------------------------------------------------------


@dataclass
class RandomErasing(Augmentation):
    """With probability ``p`` fill one rectangle covering a ``scale`` fraction of the image with
    aspect ratio in ``ratio`` (Zhong et al. 2017); as in torchvision, 10 tries to fit one."""

    p: float = 0.5
    scale: tuple[float, float] = (0.02, 0.33)
    ratio: tuple[float, float] = (0.3, 3.3)
    fill: Fill = MEAN_PIXEL
    name: ClassVar[str] = "erase"
    attempts: ClassVar[int] = 10

    def __post_init__(self) -> None:
        _check_number("p", self.p, 0.0, 1.0)
        self.scale = _check_range("scale", self.scale, 0.0, 1.0)
        self.ratio = _check_range("ratio", self.ratio, 0.0)
        if self.ratio[0] == 0:
            raise ValueError(f"ratio must be positive (an aspect ratio), got {self.ratio}.")
        self.fill = _check_fill("fill", self.fill)

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``erase`` bool; the box ``top``, ``left``, ``height``, ``width`` (0 x 0 when none of
        the attempts fitted inside the image: then ``erase`` is False)."""
        tries = (batch, self.attempts)
        area = height * width * _uniform(*self.scale, tries, generator, device).double()
        log_ratio = _uniform(
            math.log(self.ratio[0]), math.log(self.ratio[1]), tries, generator, device
        )
        aspect = log_ratio.double().exp()
        box_height = (area * aspect).sqrt().round().long()
        box_width = (area / aspect).sqrt().round().long()
        fits = (box_height < height) & (box_width < width)
        # Each image keeps its first attempt that fits (argmax returns the first maximum).
        first = fits.byte().argmax(dim=1, keepdim=True)
        found = fits.any(dim=1)
        box_height = torch.where(found, box_height.gather(1, first).view(-1), 0)
        box_width = torch.where(found, box_width.gather(1, first).view(-1), 0)
        return {
            "erase": found & (_uniform(0.0, 1.0, (batch,), generator, device) < self.p),
            "top": _randint(height - box_height + 1, (batch,), generator, device),
            "left": _randint(width - box_width + 1, (batch,), generator, device),
            "height": box_height,
            "width": box_width,
        }

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Fill each erased image's box with ``fill``; the other images pass unchanged."""
        erase = params["erase"]
        height = torch.where(erase, params["height"], 0)
        return _fill_boxes(
            images, params["top"], params["left"], height, params["width"], self.fill
        )


@dataclass
class Cutout(Augmentation):
    """Fill a ``size`` x ``size`` square centred on a random pixel, clipped at the border
    (DeVries & Taylor 2017); the default fill is the mean colour, 0 after normalising."""

    size: int = 8
    fill: Fill = MEAN_PIXEL
    name: ClassVar[str] = "cutout"

    def __post_init__(self) -> None:
        _check_int("size", self.size, 0)
        self.fill = _check_fill("fill", self.fill)

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: Device,
    ) -> dict[str, Tensor]:
        """``center_y``, ``center_x``: the square's centre, any pixel of the image."""
        return {
            "center_y": _randint(height, (batch,), generator, device),
            "center_x": _randint(width, (batch,), generator, device),
        }

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Fill rows and columns ``center - size // 2`` up to ``+ size`` (exclusive) per image."""
        if self.size == 0:
            return images
        if self.size > min(images.shape[-2:]):
            raise ValueError(
                f"cutout size {self.size} is larger than the {images.shape[-2]}x"
                f"{images.shape[-1]} images: it would erase whole images; use at most "
                f"{min(images.shape[-2:])} (8 to 16 is usual for 32x32)."
            )
        top = params["center_y"] - self.size // 2
        left = params["center_x"] - self.size // 2
        return _fill_boxes(images, top, left, self.size, self.size, self.fill)


# ----------------------------------------------------------------------------------------------
# Building and running pipelines
# ----------------------------------------------------------------------------------------------

AUGMENTATIONS: dict[str, type[Augmentation]] = {
    cls.name: cls
    for cls in (RandomCrop, HorizontalFlip, RandomRotation, ColorJitter, RandomErasing, Cutout)
}
"""Every augmentation class by its ``name``: the names ``build`` understands."""


def build(spec: str | dict | Augmentation | Callable) -> Callable:
    """An augmentation from a name ("crop"), a spec dict ({"name": "cutout", "size": 12}) or an
    existing augmentation or callable (passed through), so configs can be plain JSON."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        arguments = dict(spec)
        if "name" not in arguments:
            raise ValueError(
                f"an augmentation spec dict needs a 'name' key, e.g. {{'name': 'cutout', "
                f"'size': 8}}; got {spec!r}."
            )
        name = arguments.pop("name")
        if not isinstance(name, str) or name not in AUGMENTATIONS:
            raise ValueError(
                f"Unknown augmentation {name!r}; the known names are {', '.join(AUGMENTATIONS)}."
            )
        cls = AUGMENTATIONS[name]
        accepted = list(inspect.signature(cls).parameters)
        for key in arguments:
            if key not in accepted:
                raise ValueError(
                    f"Augmentation {name!r} has no argument {key!r}; it accepts "
                    f"{', '.join(accepted) or 'none'}."
                )
        return cls(**arguments)
    if isinstance(spec, type) and issubclass(spec, Augmentation):
        raise TypeError(
            f"build needs an instance such as {spec.__name__}() or the name {spec.name!r}, "
            f"not the class {spec.__name__}."
        )
    if isinstance(spec, Augmentation):
        if type(spec).__call__ is Augmentation.__call__:
            for method in ("sample", "apply"):
                if getattr(type(spec), method) is getattr(Augmentation, method):
                    raise NotImplementedError(_missing(type(spec), method))
        spec._check_fields()
        return spec
    if callable(spec):
        _check_signature(spec)
        return spec
    raise TypeError(
        "An augmentation spec is a name, a dict with a 'name', an Augmentation or a callable "
        f"(images, generator) -> images; got {type(spec).__name__}."
    )


def _check_signature(step: Callable) -> None:
    """A custom augmentation is called as ``step(images, generator)``: say so at build time,
    not as a TypeError in the middle of the first epoch."""
    module = isinstance(step, torch.nn.Module)  # e.g. a torchvision transform: forward(img)
    try:
        signature = inspect.signature(step.forward if module else step)
    except (TypeError, ValueError):  # some built-in callables have none to inspect
        return
    try:
        signature.bind(None, None)
    except TypeError:
        hint = (
            "; a torchvision transform works on one image: use the course's names "
            f"({', '.join(AUGMENTATIONS)})"
            if module
            else " (use the generator for its randomness: torch.rand(..., generator=generator))"
        )
        raise TypeError(
            f"Augmentation {_qualified_name(step)!r} takes {signature}, but augmentations are "
            f"called as step(images, generator): give it both parameters{hint}."
        ) from None


def build_pipeline(specs: Sequence) -> list[Callable]:
    """``build`` each spec, keeping the order: the order the loader applies them in."""
    if isinstance(specs, (str, dict)) or not isinstance(specs, Sequence):
        raise TypeError(f"build_pipeline expects a list of specs, got {type(specs).__name__}.")
    return [build(spec) for spec in specs]


def _qualified_name(step: Callable) -> str:
    """``module.qualname`` of a function, or of the class of a callable object."""
    target = step if hasattr(step, "__qualname__") else type(step)
    return f"{target.__module__}.{target.__qualname__}"


def _label(step: Callable) -> str:
    return step.name if isinstance(step, Augmentation) else _qualified_name(step)


def describe(pipeline: Sequence[Callable]) -> list:
    """A JSON-able record of a pipeline for run configs: each augmentation's ``spec()``, and
    any other callable by its qualified name (it cannot be rebuilt from JSON)."""
    return [
        step.spec() if isinstance(step, Augmentation) else _qualified_name(step)
        for step in pipeline
    ]


def code_fingerprint(pipeline: Sequence[Callable]) -> str | None:
    """A short digest of the code of a pipeline's own functions (not the course's
    augmentations, whose specs say everything): ``fit`` records it so that resuming after
    editing a function of the same name is refused. None when there is none."""
    codes = [_step_code(step) for step in pipeline if not isinstance(step, Augmentation)]
    return hashlib.sha1(b"".join(codes)).hexdigest()[:12] if codes else None


def _step_code(step: Callable) -> bytes:
    """What a custom step runs: its code and constants, and the values it closes over, was
    given (``functools.partial``) or holds (a callable object's attributes); memory
    addresses in their text are dropped, so the same step gives the same bytes next time."""
    if isinstance(step, functools.partial):
        settings = repr((step.args, sorted(step.keywords.items())))
        return _step_code(step.func) + settings.encode()
    function = getattr(step, "__func__", step)
    code = getattr(function, "__code__", None)
    if code is not None:
        cells = [cell.cell_contents for cell in function.__closure__ or ()]
        held = repr((code.co_consts, cells))
    else:  # a callable object: its class's __call__ and its attributes
        code = getattr(type(step).__call__, "__code__", None)
        held = repr(sorted(vars(step).items())) if hasattr(step, "__dict__") else ""
    raw = code.co_code if code is not None else b""
    return raw + re.sub(r" at 0x[0-9a-fA-F]+", "", held).encode()


def apply_pipeline(
    pipeline: Sequence[Callable], images: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Run each augmentation in order, checking after each that it returned a uint8 batch of
    the input's shape, so a faulty custom augmentation is named where it goes wrong."""
    _check_images(images, "apply_pipeline")
    _check_generator(generator, "apply_pipeline")
    shape, device = images.shape, images.device
    for step in pipeline:
        images = step(images, generator)
        if not isinstance(images, Tensor):
            got = f"a {type(images).__name__}"
        elif images.dtype != torch.uint8 or images.shape != shape or images.device != device:
            got = f"a {images.dtype} tensor of shape {list(images.shape)} on {images.device}"
        else:
            continue
        raise ValueError(
            f"Augmentation {_label(step)!r} returned {got}; every augmentation must return "
            f"uint8 images of the input's shape {list(shape)} on {device}."
        )
    return images
