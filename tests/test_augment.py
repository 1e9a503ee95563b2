"""Batched augmentations (course_utils.augment): each one, applied to a whole batch with sampled
parameters, must give what torchvision.transforms.v2.functional gives image by image with the
same parameters; plus parameter ranges, seeding, building pipelines from specs and validation."""

import json

import pytest
import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

from course_utils.augment import (
    AUGMENTATIONS,
    MEAN_PIXEL,
    Augmentation,
    ColorJitter,
    Cutout,
    HorizontalFlip,
    RandomCrop,
    RandomErasing,
    RandomRotation,
    apply_pipeline,
    build,
    build_pipeline,
    describe,
)
from course_utils.data import CIFAR10_MEAN
from course_utils.support.config_checks import check_augment, check_specs

DRAWS = 10_000  # parameter draws for the range tests (sampling only, no images)


def random_images(batch: int = 8, height: int = 32, width: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator)


def sample_and_apply(aug: Augmentation, images: torch.Tensor, seed: int = 1):
    """The batched result and the parameters it used."""
    batch, _, height, width = images.shape
    params = aug.sample(batch, height, width, torch.Generator().manual_seed(seed), images.device)
    return aug.apply(images, params), params


def draw(aug: Augmentation, height: int = 32, width: int = 32, seed: int = 2):
    return aug.sample(DRAWS, height, width, torch.Generator().manual_seed(seed), "cpu")


def max_difference(a: torch.Tensor, b: torch.Tensor) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    return int((a.int() - b.int()).abs().max())


# ----------------------------------------------------------------------------------------------
# Each augmentation against torchvision, image by image
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["constant", "reflect"])
@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_crop_matches_torchvision_pad_then_crop(padding_mode, size):
    images = random_images(height=size[0], width=size[1])
    aug = RandomCrop(padding=4, padding_mode=padding_mode)
    out, params = sample_and_apply(aug, images)
    assert len(set(params["top"].tolist())) > 1  # the images really move differently
    for image, top, left, result in zip(images, params["top"], params["left"], out, strict=True):
        padded = TF.pad(image, [4], padding_mode=padding_mode)
        assert torch.equal(result, TF.crop(padded, int(top), int(left), *size))


def test_crop_without_padding_is_the_identity():
    images = random_images()
    assert torch.equal(RandomCrop(padding=0)(images), images)


def test_flip_matches_torchvision_horizontal_flip():
    images = random_images()
    out, params = sample_and_apply(HorizontalFlip(p=0.5), images)
    assert params["flip"].any() and not params["flip"].all()
    for image, flip, result in zip(images, params["flip"], out, strict=True):
        assert torch.equal(result, TF.horizontal_flip(image) if flip else image)


@pytest.mark.parametrize("fill", [0, (10, 200, 30)])
@pytest.mark.parametrize("size", [(32, 32), (24, 40), (17, 31)])
def test_rotation_matches_torchvision_rotate_nearest(fill, size):
    """Exact, pixel for pixel: the sampling grid is computed the way torchvision computes it.
    (F.affine_grid's mathematically equal grid rounds differently and disagrees with torchvision
    on about one pixel in a million, where a source position falls on a pixel boundary.)"""
    images = random_images(height=size[0], width=size[1])
    aug = RandomRotation(degrees=180.0, fill=fill)
    out, params = sample_and_apply(aug, images)
    torch_fill = list(fill) if isinstance(fill, tuple) else fill
    for image, angle, result in zip(images, params["angle"], out, strict=True):
        expected = TF.rotate(
            image, float(angle), interpolation=InterpolationMode.NEAREST, fill=torch_fill
        )
        assert torch.equal(result, expected)


def test_rotation_by_plus_90_degrees_is_counter_clockwise():
    images = random_images(height=16, width=16)
    out = RandomRotation(degrees=90).apply(images, {"angle": torch.full((8,), 90.0)})
    assert torch.equal(out, torch.rot90(images, k=1, dims=(2, 3)))  # torchvision's fast path


def jitter_reference(image, params, index, aug):
    """torchvision's ColorJitter on one image: its enabled ops in its order, uint8 throughout."""
    ops = [
        (TF.adjust_brightness, "brightness"),
        (TF.adjust_contrast, "contrast"),
        (TF.adjust_saturation, "saturation"),
        (TF.adjust_hue, "hue"),
    ]
    for op in params["order"][index].tolist():
        function, name = ops[op]
        if getattr(aug, name) > 0:  # torchvision skips a disabled op
            image = function(image, float(params[name][index]))
    return image


@pytest.mark.parametrize(
    "amounts", [(0.2, 0.2, 0.2, 0.1), (0.9, 0.9, 1.5, 0.5), (0.4, 0.0, 0.4, 0.0)]
)
def test_color_jitter_matches_torchvision_adjust_ops_in_each_images_order(amounts):
    """At most 1 grey level apart, and nearly always exact. torchvision truncates to uint8 after
    every op, so a float32 sum that lands a hair differently can cost a grey level; the blend
    reproduces torchvision's fused multiply-add to avoid that (exact on this CPU)."""
    images = random_images()
    aug = ColorJitter(*amounts)
    out, params = sample_and_apply(aug, images)
    assert len({tuple(order) for order in params["order"].tolist()}) > 1
    expected = torch.stack([jitter_reference(images[i], params, i, aug) for i in range(8)])
    assert max_difference(out, expected) <= 1
    assert (out == expected).float().mean() > 0.999
    assert max_difference(out, images) > 10  # it did change the images


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() == "DEFAULT",
    reason="torchvision's vectorised CPU kernels fuse the multiply-add; the plain ones may not",
)
def test_saturation_is_exact_like_torchvisions_fused_multiply_add():
    """Saturation blends every pixel with its own grey value; a float32 multiply then add
    (rounding twice) misses torchvision by a grey level on about 1 value in 7,000."""
    images = random_images(batch=32)
    factors = torch.linspace(0.1, 1.9, 32)
    params = {
        "brightness": torch.ones(32),
        "contrast": torch.ones(32),
        "saturation": factors,
        "hue": torch.zeros(32),
        "order": torch.tensor([[2, 0, 1, 3]]).expand(32, 4),
    }
    out = ColorJitter().apply(images, params)
    for image, factor, result in zip(images, factors, out, strict=True):
        assert torch.equal(result, TF.adjust_saturation(image, float(factor)))


def test_erasing_matches_torchvision_erase():
    images = random_images()
    aug = RandomErasing(p=0.5)
    out, params = sample_and_apply(aug, images, seed=3)
    assert params["erase"].any() and not params["erase"].all()
    fill = torch.tensor(MEAN_PIXEL)[:, None, None]
    for i, (image, result) in enumerate(zip(images, out, strict=True)):
        box = [int(params[key][i]) for key in ("top", "left", "height", "width")]
        assert torch.equal(result, TF.erase(image, *box, v=fill) if params["erase"][i] else image)


def test_erasing_leaves_images_alone_when_no_box_fits_like_torchvision():
    images = random_images()
    # A box of 90% of the area with aspect ratio >= 3 is taller than the image every try.
    aug = RandomErasing(p=1.0, scale=(0.9, 1.0), ratio=(3.0, 3.3))
    out, params = sample_and_apply(aug, images)
    assert not params["erase"].any() and torch.equal(out, images)
    torchvision_aug = v2.RandomErasing(p=1.0, scale=(0.9, 1.0), ratio=(3.0, 3.3))
    assert torch.equal(torchvision_aug(images[0]), images[0])


def cutout_reference(image, center_y, center_x, size, fill):
    """The square of side ``size`` starting ``size // 2`` before the centre, clipped."""
    image = image.clone()
    top, left = max(center_y - size // 2, 0), max(center_x - size // 2, 0)
    bottom, right = center_y - size // 2 + size, center_x - size // 2 + size
    image[:, top:bottom, left:right] = torch.tensor(fill, dtype=torch.uint8)[:, None, None]
    return image


@pytest.mark.parametrize("size", [8, 5])
def test_cutout_matches_a_per_image_reference(size):
    images = random_images(batch=16, height=24, width=40)
    out, params = sample_and_apply(Cutout(size=size, fill=(1, 2, 3)), images)
    for i, result in enumerate(out):
        cy, cx = int(params["center_y"][i]), int(params["center_x"][i])
        assert torch.equal(result, cutout_reference(images[i], cy, cx, size, (1, 2, 3)))
    # Some squares hang over the border and are clipped: they cover fewer pixels.
    covered = (out != images).any(dim=1).sum(dim=(1, 2))
    assert covered.max() == size * size and covered.min() < size * size


def test_cutout_of_size_zero_is_the_identity():
    images = random_images()
    assert torch.equal(Cutout(size=0)(images), images)


# ----------------------------------------------------------------------------------------------
# Parameter ranges over many draws
# ----------------------------------------------------------------------------------------------


def test_crop_offsets_cover_exactly_zero_to_twice_the_padding():
    params = draw(RandomCrop(padding=4))
    for key in ("top", "left"):
        assert set(params[key].tolist()) == set(range(9))


def test_flip_rate_is_near_p():
    assert abs(draw(HorizontalFlip(p=0.3))["flip"].float().mean() - 0.3) < 0.02


def test_rotation_angles_spread_over_plus_minus_degrees():
    angle = draw(RandomRotation(degrees=15.0))["angle"]
    assert angle.abs().max() <= 15.0 and angle.min() < -14.5 and angle.max() > 14.5
    counts = torch.histc(angle, bins=10, min=-15.0, max=15.0)
    assert counts.min() > 0.08 * DRAWS  # about 10% in each 3-degree bin


def test_jitter_factors_stay_in_range_and_orders_are_fair_permutations():
    aug = ColorJitter(brightness=0.2, contrast=0.5, saturation=1.5, hue=0.1)
    params = draw(aug)
    ranges = {"brightness": (0.8, 1.2), "contrast": (0.5, 1.5), "saturation": (0.0, 2.5)}
    for name, (low, high) in ranges.items():
        assert low <= params[name].min() < low + 0.01 and high - 0.01 < params[name].max() <= high
    assert params["hue"].abs().max() <= 0.1 and params["hue"].abs().max() > 0.099
    order = params["order"]
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(DRAWS, 4))
    first = torch.bincount(order[:, 0], minlength=4) / DRAWS
    assert (first - 0.25).abs().max() < 0.03


def test_disabled_jitter_ops_get_identity_factors():
    params = draw(ColorJitter(brightness=0.0, contrast=0.0, saturation=0.3, hue=0.0))
    assert (params["brightness"] == 1).all() and (params["contrast"] == 1).all()
    assert (params["hue"] == 0).all() and (params["saturation"] != 1).any()


def test_erasing_rate_and_box_sizes_stay_in_range():
    aug = RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3))
    height, width = 32, 40
    params = draw(aug, height, width)
    erase = params["erase"]
    assert abs(erase.float().mean() - 0.5) < 0.02
    h, w = params["height"][erase].double(), params["width"][erase].double()
    top, left = params["top"][erase], params["left"][erase]
    assert (h < height).all() and (w < width).all()
    assert (top + h <= height).all() and (left + w <= width).all() and (top >= 0).all()
    # Height and width are rounded to whole pixels, so allow half a pixel either way.
    area = height * width
    assert ((h + 0.5) * (w + 0.5) >= 0.02 * area).all()
    assert ((h - 0.5) * (w - 0.5) <= 0.33 * area).all()
    assert ((h + 0.5) / (w - 0.5) >= 0.3).all() and ((h - 0.5) / (w + 0.5) <= 3.3).all()
    # Tall and wide boxes both occur, and large ones too.
    assert (h > 2 * w).any() and (w > 2 * h).any() and (h * w > 0.25 * area).any()


def test_cutout_centres_cover_every_row_and_column():
    params = draw(Cutout(size=8), height=24, width=40)
    assert set(params["center_y"].tolist()) == set(range(24))
    assert set(params["center_x"].tolist()) == set(range(40))


# ----------------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------------

EVERY_AUGMENTATION = ["crop", "flip", "rotate", "jitter", "erase", "cutout"]


def test_same_seed_gives_the_same_batch_and_another_seed_a_different_one():
    pipeline = build_pipeline(EVERY_AUGMENTATION)
    images = random_images()
    first = apply_pipeline(pipeline, images, torch.Generator().manual_seed(7))
    again = apply_pipeline(pipeline, images, torch.Generator().manual_seed(7))
    other = apply_pipeline(pipeline, images, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_without_a_generator_the_global_seed_decides():
    images = random_images()
    aug = RandomRotation()
    torch.manual_seed(3)
    first = aug(images)
    torch.manual_seed(3)
    assert torch.equal(aug(images), first)


# ----------------------------------------------------------------------------------------------
# Building, describing and running pipelines
# ----------------------------------------------------------------------------------------------


def darken(images, generator=None):
    """A student's augmentation: any callable (images, generator) -> images."""
    return images // 2


def shrink(images, generator=None):
    return images[:, :, :16, :16]


def to_float(images, generator=None):
    return images.float()


def to_list(images, generator=None):
    return images.tolist()


def test_registry_names_every_class():
    assert list(AUGMENTATIONS) == EVERY_AUGMENTATION
    assert all(cls.name == name for name, cls in AUGMENTATIONS.items())


def test_build_from_names_and_dicts():
    assert build("crop") == RandomCrop()
    assert build({"name": "cutout", "size": 12}) == Cutout(size=12)
    aug = HorizontalFlip(p=0.1)
    assert build(aug) is aug and build(darken) is darken


@pytest.mark.parametrize(
    "aug",
    [
        RandomCrop(padding=2, padding_mode="constant"),
        HorizontalFlip(p=0.25),
        RandomRotation(degrees=30.0, fill=(1, 2, 3)),
        ColorJitter(brightness=0.5, contrast=0.0, saturation=0.1, hue=0.05),
        RandomErasing(p=0.9, scale=(0.1, 0.2), ratio=(0.5, 2.0), fill=0),
        Cutout(size=12, fill=[9, 8, 7]),
    ],
    ids=lambda aug: aug.name,
)
def test_specs_round_trip_through_json(aug):
    spec = json.loads(json.dumps(aug.spec()))
    assert spec["name"] == aug.name
    rebuilt = build(spec)
    assert rebuilt == aug and rebuilt.spec() == aug.spec()
    images = random_images()
    same = [a(images, torch.Generator().manual_seed(5)) for a in (aug, rebuilt)]
    assert torch.equal(*same)


def test_spec_lists_the_arguments():
    assert RandomCrop().spec() == {"name": "crop", "padding": 4, "padding_mode": "reflect"}
    assert Cutout().spec() == {"name": "cutout", "size": 8, "fill": [125, 123, 114]}


def test_mean_pixel_is_the_cifar10_mean_in_0_to_255_units():
    # augment imports nothing of the package, so the fill is a literal: tied to data's mean here.
    assert tuple(round(255 * m) for m in CIFAR10_MEAN) == MEAN_PIXEL


def test_unknown_name_lists_the_known_ones_in_one_line():
    known = "crop, flip, rotate, jitter, erase, cutout"
    with pytest.raises(ValueError, match=f"'blur'.*{known}") as err:
        check_specs(["blur"])
    assert "\n" not in str(err.value)


def test_unknown_argument_names_it_and_the_accepted_ones():
    with pytest.raises(ValueError, match="'sise'.*size, fill") as err:
        check_specs([{"name": "cutout", "sise": 4}])
    assert "\n" not in str(err.value)


def test_build_rejects_what_is_not_a_spec():
    with pytest.raises(TypeError, match="spec"):
        check_specs([3])
    with pytest.raises(TypeError, match=r"instance such as Cutout\(\) or the name 'cutout'"):
        check_specs([Cutout])
    with pytest.raises(TypeError, match="list of specs"):
        check_specs("crop")


def test_student_callable_joins_the_pipeline_and_is_described_by_qualified_name():
    pipeline = build_pipeline(["flip", {"name": "cutout", "size": 4}, darken])
    assert describe(pipeline) == [
        {"name": "flip", "p": 0.5},
        {"name": "cutout", "size": 4, "fill": [125, 123, 114]},
        f"{darken.__module__}.darken",
    ]
    json.dumps(describe(pipeline))
    images = random_images()
    out = apply_pipeline(pipeline, images, torch.Generator().manual_seed(0))
    assert out.max() <= 127  # darken ran last


@pytest.mark.parametrize(
    "bad, got", [(shrink, r"\[8, 3, 16, 16\]"), (to_float, "float32"), (to_list, "a list")]
)
def test_the_door_names_a_step_that_breaks_the_batch(bad, got):
    with pytest.raises(ValueError, match=f"{bad.__qualname__}'.*{got}.*uint8") as err:
        check_augment(["crop", bad, "flip"], random_images())
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RandomCrop(padding=-1), "padding must be an integer of at least 0, got -1"),
        (lambda: RandomCrop(padding=2.5), "padding .* got 2.5"),
        (lambda: RandomCrop(padding_mode="zeros"), "padding_mode .*'reflect', got 'zeros'"),
        (lambda: HorizontalFlip(p=1.5), r"p must be a number in \[0.0, 1.0\], got 1.5"),
        (lambda: RandomRotation(degrees=-5), "degrees .* got -5"),
        (lambda: RandomRotation(fill=300), "fill .* 0-255.* got 300"),
        (lambda: ColorJitter(brightness=-0.1), "brightness .* at least 0.0, got -0.1"),
        (lambda: ColorJitter(hue=0.6), r"hue .* in \[0.0, 0.5\], got 0.6"),
        (lambda: RandomErasing(p=-0.1), "p must .* got -0.1"),
        (lambda: RandomErasing(scale=(0.3, 0.1)), r"scale .* min <= max.* got \(0.3, 0.1\)"),
        (lambda: RandomErasing(scale=(0.1, 1.5)), "scale bounds .* got 1.5"),
        (lambda: RandomErasing(ratio=(0, 1)), "ratio must be positive"),
        (lambda: Cutout(size=-2), "size must be an integer of at least 0, got -2"),
        (lambda: Cutout(fill="grey"), "fill .* got 'grey'"),
    ],
)
def test_the_door_rejects_bad_arguments_with_one_clear_message(make, message):
    aug = make()  # a plain dataclass: built as given, refused where it is used
    with pytest.raises(ValueError, match=message) as err:
        check_specs([aug])
    assert "\n" not in str(err.value)


def test_augmentations_reject_float_or_unbatched_images():
    aug = [RandomCrop()]
    with pytest.raises(TypeError, match="uint8.*float32"):
        check_augment(aug, random_images().float())
    with pytest.raises(ValueError, match="unsqueeze"):
        check_augment(aug, random_images()[0])
    with pytest.raises(ValueError, match="reflect padding must be smaller"):
        check_augment([RandomCrop(padding=8)], random_images(height=8, width=8))
    with pytest.raises(ValueError, match="RGB"):
        check_augment([ColorJitter()], random_images()[:, :1])


# ----------------------------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("generator_device", ["cuda", "cpu"])
@pytest.mark.parametrize("name", EVERY_AUGMENTATION)
def test_on_cuda_the_output_stays_on_the_images_device(name, generator_device):
    images = random_images().cuda()
    generator = torch.Generator(device=generator_device).manual_seed(0)
    out = build(name)(images, generator)
    assert out.device == images.device and out.dtype == torch.uint8 and out.shape == images.shape
