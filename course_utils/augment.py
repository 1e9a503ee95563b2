"""Batched augmentations of uint8 images [B, C, H, W] on the batch's own device: each draws
random parameters per image (``sample``) and applies them to the whole batch (``apply``), giving
what torchvision's v2.functional gives image by image. Your own augmentation is any callable
``(images, generator) -> images``. Arguments are checked at the doors (support/config_checks)."""

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

MEAN_PIXEL = (125, 123, 114)  # round(255 * data.CIFAR10_MEAN): erasing's and cutout's fill
Fill = int | tuple[int, ...]  # one 0-255 value for every channel, or one per channel
Device = torch.device | str
Rng = torch.Generator | None  # None draws from torch's global generator
Params = dict[str, Tensor]


def _uniform(low: float, high: float, size: tuple, generator: Rng, device: Device) -> Tensor:
    """Float32 numbers uniform in [low, high] on ``device``, drawn where the generator lives."""
    u = torch.rand(size, generator=generator, device=generator.device if generator else device)
    return (low + (high - low) * u).to(device)


def _randint(high: int | Tensor, size: tuple, generator: Rng, device: Device) -> Tensor:
    """Integers uniform in 0..high-1 on ``device``; ``high`` may differ per element."""
    source = generator.device if generator else device
    u = torch.rand(size, dtype=torch.float64, generator=generator, device=source).to(device)
    high = torch.as_tensor(high, device=device)
    return torch.minimum((u * high).long(), high - 1)  # u * high may round up to high


def _fill_boxes(images: Tensor, top: Tensor, left: Tensor, height, width, fill: Fill) -> Tensor:
    """Fill each image's box (``top``, ``left`` [B]; sizes [B] or an int) with ``fill``."""
    rows = torch.arange(images.shape[2], device=images.device) - top.view(-1, 1)  # [B, H]
    cols = torch.arange(images.shape[3], device=images.device) - left.view(-1, 1)  # [B, W]
    height, width = (torch.as_tensor(s, device=images.device).view(-1, 1) for s in (height, width))
    box = ((rows >= 0) & (rows < height)).unsqueeze(2) & ((cols >= 0) & (cols < width)).unsqueeze(1)
    color = torch.tensor(fill, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return torch.where(box.unsqueeze(1), color, images)


class Augmentation:
    """A batched random augmentation: ``sample`` draws per-image parameters, ``apply`` uses
    them, so each can be tested against a reference with the same fixed parameters."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        # Lists (a JSON spec's) become tuples, so a rebuilt augmentation equals the original.
        for field in dataclasses.fields(self):
            if isinstance(getattr(self, field.name), list):
                setattr(self, field.name, tuple(getattr(self, field.name)))

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        """Random parameters for ``batch`` images of ``height`` x ``width``, tensors [B, ...]."""
        raise NotImplementedError(f"{type(self).__name__} must define sample()")

    def apply(self, images: Tensor, params: Params) -> Tensor:
        """The augmented uint8 batch, same shape; the same params give the same output."""
        raise NotImplementedError(f"{type(self).__name__} must define apply()")

    def __call__(self, images: Tensor, generator: Rng = None) -> Tensor:
        """Augment a uint8 batch [B, C, H, W] with fresh random parameters for every image."""
        batch, _, height, width = images.shape
        return self.apply(images, self.sample(batch, height, width, generator, images.device))

    def spec(self) -> dict:
        """``{"name": ..., **arguments}`` in JSON values; ``build(spec)`` rebuilds it."""
        fields = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        lists = {key: list(value) for key, value in fields.items() if isinstance(value, tuple)}
        return {"name": self.name, **fields, **lists}


@dataclass
class RandomCrop(Augmentation):
    """Shift each image by up to ``padding`` pixels: pad ("constant" 0 or "reflect"), cut."""

    padding: int = 4
    padding_mode: str = "reflect"
    name: ClassVar[str] = "crop"

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        """``top``, ``left``: where the window starts in the padded image, 0..2*padding."""
        top, left = (_randint(2 * self.padding + 1, (batch,), generator, device) for _ in range(2))
        return {"top": top, "left": left}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        if self.padding == 0:
            return images
        batch, _, height, width = images.shape
        padded = F.pad(images, [self.padding] * 4, mode=self.padding_mode)
        # Every height x width window of the padded images, [B, C, 2p+1, 2p+1, H, W], no copy;
        # one indexing step picks window (top, left) of each image.
        windows = padded.unfold(2, height, 1).unfold(3, width, 1)
        return windows[torch.arange(batch, device=images.device), :, params["top"], params["left"]]


@dataclass
class HorizontalFlip(Augmentation):
    """Mirror each image left-right with probability ``p``."""

    p: float = 0.5
    name: ClassVar[str] = "flip"

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        return {"flip": _uniform(0.0, 1.0, (batch,), generator, device) < self.p}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        return torch.where(params["flip"].view(-1, 1, 1, 1), images.flip(3), images)


def _rotation_grid(angle: Tensor, height: int, width: int) -> Tensor:
    """The ``grid_sample`` grid [B, H, W, 2] that turns each image by ``angle`` degrees
    counter-clockwise: pixel (x, y) reads R(-angle)(x, y), computed as torchvision does."""
    radians = torch.deg2rad(-(angle.double() % 360))
    cos, sin = radians.cos().float(), radians.sin().float()
    zero = torch.zeros_like(cos)
    # Pixel centres relative to the image centre, as (x, y, 1) rows: [1, H * W, 3].
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=angle.device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=angle.device)
    xs, ys = xs.expand(height, width), ys.view(-1, 1).expand(height, width)
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, height * width, 3)
    # The transposed inverse rotation, [B, 3, 2], in grid_sample's [-1, 1] units.
    half_size = torch.tensor([0.5 * width, 0.5 * height], device=angle.device)
    theta = torch.stack([cos, -sin, sin, cos, zero, zero], dim=1).view(-1, 3, 2) / half_size
    return base.expand(len(angle), -1, -1).bmm(theta).view(-1, height, width, 2)


@dataclass
class RandomRotation(Augmentation):
    """Rotate each image by a random angle in [-degrees, degrees], nearest-neighbour."""

    degrees: float = 15.0
    fill: Fill = 0
    name: ClassVar[str] = "rotate"

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        return {"angle": _uniform(-self.degrees, self.degrees, (batch,), generator, device)}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        grid = _rotation_grid(params["angle"], *images.shape[-2:])
        # Like torchvision, rotate a channel of ones along: 0 marks pixels from outside.
        stacked = torch.cat(
            [images.float(), torch.ones_like(images[:, :1], dtype=torch.float32)], 1
        )
        rotated = F.grid_sample(stacked, grid, mode="nearest", align_corners=False)
        pixels, inside = rotated[:, :-1], rotated[:, -1:]
        fill = torch.tensor(self.fill, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        return torch.where(inside < 0.5, fill, pixels).to(torch.uint8)  # exact whole pixels


def _grayscale(images: Tensor) -> Tensor:
    """Float32 luma [B, 1, H, W] of uint8 RGB images, rounded down as torchvision does."""
    red, green, blue = images.float().unbind(1)
    return red.mul(0.2989).add_(green, alpha=0.587).add_(blue, alpha=0.114).floor_().unsqueeze(1)


def _blend(images: Tensor, reference: Tensor, factor: Tensor) -> Tensor:
    """``factor * images + (1 - factor) * reference`` in uint8, fused to round as torchvision."""
    blended = torch.addcmul(images.float().mul_(factor), reference, 1 - factor)
    return blended.clamp_(0, 255).to(torch.uint8)


def _adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Turn each uint8 RGB image's hue by ``shift`` [B] turns, via HSV, as torchvision does."""
    rgb = images.float().mul_(1.0 / 255)
    # RGB -> hue (in turns, 0..1), saturation and value [B, H, W]; grey pixels get hue 0.
    red, green, blue = rgb.unbind(1)
    value, low = rgb.amax(1), rgb.amin(1)
    spread = value - low
    gray, ones = spread == 0, torch.ones_like(value)
    saturation = spread / torch.where(gray, ones, value)
    spread = torch.where(gray, ones, spread)
    r, g, b = (value - red) / spread, (value - green) / spread, (value - blue) / spread
    hue = torch.where(value == red, b - g, torch.where(value == green, r + 2.0 - b, g + 4.0 - r))
    hue = ((hue * (1.0 / 6.0) + 1.0).fmod_(1.0) + shift.view(-1, 1, 1)).remainder_(1.0)
    # HSV -> RGB: in each of the six hue sectors, three of (value, p, q, t) are red, green, blue.
    sector = (hue * 6).floor()
    s_within = saturation * (hue * 6 - sector)  # position inside the sector, 0..1
    q = ((1.0 - s_within) * value).clamp_(0.0, 1.0)
    t = ((s_within + (1.0 - saturation)) * value).clamp_(0.0, 1.0)
    p = ((1.0 - saturation) * value).clamp_(0.0, 1.0)
    candidates = torch.stack([value, p, q, t], dim=1)  # [B, 4, H, W]
    table = [(0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2)]  # per sector
    pick = torch.tensor(table, device=hue.device)[sector.long() % 6].movedim(-1, 1)
    return candidates.gather(1, pick).mul_(256.0 - 1e-3).to(torch.uint8)  # torchvision's uint8


@dataclass
class ColorJitter(Augmentation):
    """Random brightness, contrast, saturation (factors in [1 - x, 1 + x]), hue (in turns)."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    name: ClassVar[str] = "jitter"
    BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # the ops, as numbered in ``order``

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        """Factors (1 when off), the hue shift and ``order`` [B, 4], each image's op order."""
        params = {}
        for op in ("brightness", "contrast", "saturation"):
            amount = getattr(self, op)
            params[op] = _uniform(max(0.0, 1.0 - amount), 1.0 + amount, (batch,), generator, device)
        params["hue"] = _uniform(-self.hue, self.hue, (batch,), generator, device)
        # Sorting random keys gives a uniformly random permutation per row.
        params["order"] = _uniform(0.0, 1.0, (batch, 4), generator, device).argsort(dim=1)
        return params

    def apply(self, images: Tensor, params: Params) -> Tensor:
        """Four rounds, each image applying its k-th op in round k: one blend with a per-image
        factor (1 for hue) and reference (black, mean grey, grey image), then hue where picked."""
        blends = [params["brightness"], params["contrast"], params["saturation"]]
        factors = torch.stack([*blends, torch.ones_like(params["hue"])], dim=1)  # [B, 4]
        for op in params["order"].T:  # [B]: each image's op of this round
            factor = factors.gather(1, op.view(-1, 1)).view(-1, 1, 1, 1)
            gray = _grayscale(images)
            mean = gray.mean(dim=(1, 2, 3), keepdim=True)
            reference = torch.where(op.view(-1, 1, 1, 1) == self.CONTRAST, mean, 0.0)
            reference = torch.where(op.view(-1, 1, 1, 1) == self.SATURATION, gray, reference)
            images = _blend(images, reference, factor)
            if self.hue > 0:  # hue costs more than the rest: only for the images that pick it
                chosen = (op == self.HUE).nonzero().view(-1)
                turned = _adjust_hue(images[chosen], params["hue"][chosen])
                images = images.index_copy(0, chosen, turned)
        return images


@dataclass
class RandomErasing(Augmentation):
    """With probability ``p`` fill a box of area ``scale``, aspect ``ratio`` (Zhong et al. 2017)."""

    p: float = 0.5
    scale: tuple[float, float] = (0.02, 0.33)
    ratio: tuple[float, float] = (0.3, 3.3)
    fill: Fill = MEAN_PIXEL
    name: ClassVar[str] = "erase"
    attempts: ClassVar[int] = 10

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        """``erase`` and the box ``top``, ``left``, ``height``, ``width`` (0 x 0 if none fits)."""
        tries = (batch, self.attempts)
        area = height * width * _uniform(*self.scale, tries, generator, device).double()
        aspect = _uniform(*map(math.log, self.ratio), tries, generator, device).double().exp()
        box_height = (area * aspect).sqrt().round().long()
        box_width = (area / aspect).sqrt().round().long()
        fits = (box_height < height) & (box_width < width)
        first = fits.byte().argmax(dim=1, keepdim=True)  # each image's first try that fits
        found = fits.any(dim=1)
        box_height = torch.where(found, box_height.gather(1, first).view(-1), 0)
        box_width = torch.where(found, box_width.gather(1, first).view(-1), 0)
        erase = found & (_uniform(0.0, 1.0, (batch,), generator, device) < self.p)
        top = _randint(height - box_height + 1, (batch,), generator, device)
        left = _randint(width - box_width + 1, (batch,), generator, device)
        return {"erase": erase, "top": top, "left": left, "height": box_height, "width": box_width}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        box = params | {"height": torch.where(params["erase"], params["height"], 0)}
        return _fill_boxes(images, box["top"], box["left"], box["height"], box["width"], self.fill)


@dataclass
class Cutout(Augmentation):
    """Fill a ``size`` x ``size`` square at a random centre (DeVries & Taylor 2017)."""

    size: int = 8
    fill: Fill = MEAN_PIXEL
    name: ClassVar[str] = "cutout"

    def sample(self, batch: int, height: int, width: int, generator: Rng, device: Device) -> Params:
        y, x = (_randint(size, (batch,), generator, device) for size in (height, width))
        return {"center_y": y, "center_x": x}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        if self.size == 0:
            return images
        top = params["center_y"] - self.size // 2
        left = params["center_x"] - self.size // 2
        return _fill_boxes(images, top, left, self.size, self.size, self.fill)


# Every augmentation class by its ``name``: the names ``build`` understands.
AUGMENTATIONS: dict[str, type[Augmentation]] = {
    cls.name: cls
    for cls in (RandomCrop, HorizontalFlip, RandomRotation, ColorJitter, RandomErasing, Cutout)
}


def build(spec: str | dict | Callable) -> Callable:
    """An augmentation from a name ("crop") or a spec dict ({"name": "cutout", "size": 12});
    an augmentation or callable of your own is returned as it is."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        arguments = dict(spec)
        return AUGMENTATIONS[arguments.pop("name")](**arguments)
    return spec


def build_pipeline(specs: Sequence) -> list[Callable]:
    """``build`` each spec, keeping the order: the order the loader applies them in."""
    return [build(spec) for spec in specs]


def qualified_name(step: Callable) -> str:
    """``module.qualname`` of a function, or of the class of a callable object."""
    target = step if hasattr(step, "__qualname__") else type(step)
    return f"{target.__module__}.{target.__qualname__}"


def describe(pipeline: Sequence[Callable]) -> list:
    """A JSON-able record of a pipeline: each augmentation's ``spec()``, any other callable by
    its qualified name (a record of what ran: it cannot be rebuilt from JSON)."""
    return [s.spec() if isinstance(s, Augmentation) else qualified_name(s) for s in pipeline]


def apply_pipeline(pipeline: Sequence[Callable], images: Tensor, generator: Rng = None) -> Tensor:
    """Run each augmentation of ``pipeline`` in order on a uint8 batch."""
    for step in pipeline:
        images = step(images, generator)
    return images
