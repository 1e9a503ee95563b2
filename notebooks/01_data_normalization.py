# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Data normalisation and augmentation
#
# Before a network sees an image, two things happen to it. It is **normalised**: every
# colour channel is shifted and scaled so that its pixels have mean 0 and standard
# deviation 1 over the training set. And, during training, it is **augmented**: randomly
# shifted and mirrored, so that the network never sees exactly the same picture twice.
# Both are one line in most training scripts, and both are often copied without a look.
#
# **What you will learn**
# - what CIFAR-10 looks like as tensors: shapes, classes, class counts;
# - how to compute a dataset's per-channel mean and standard deviation, and why the std
#   that circulates in tutorials (about 0.20) is not CIFAR-10's std (about 0.25);
# - three ways to normalise (by hand with broadcasting, `torchvision.transforms.v2`, the
#   course's loader) that must give the same numbers;
# - what input scale does to training, and why BatchNorm makes it matter much less;
# - random crop with padding and horizontal flip, and how they shrink the gap between
#   training and test accuracy.
#
# **Reports revisited.** `wang` normalised with mean (0.4914, 0.4822, 0.4465) and std
# (0.2021, 0.1964, 0.2019), as printed in the report, and trained with a reflect-padded
# random crop and horizontal flips; the report states 93.81% test accuracy. `merabishvili`
# used random crop, horizontal flip and per-channel normalisation; the report states
# 94.16% test and 99.36% training accuracy. `rout` added rotation, colour jitter and random
# erasing on top of crop and flip; the report states 86.968% test and 98.67% training
# accuracy. `sudrik` trained with "standard augmentation", then mixup (lecture 05).

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn
from torchvision.transforms import v2

from course_utils import augment, models, params, plots
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, channel_stats, cifar10
from course_utils.loader import DeviceLoader, normalize
from course_utils.train import TrainingDiverged, evaluate, fit

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# Every size and epoch count of this lecture. The "small ResNet" is the course's `ResNet`
# with one basic block in each of three stages (8 layers with weights); the "CNN without
# BatchNorm" is three conv-ReLU-maxpool layers and a linear classifier.

# %%
from course_utils.settings import SMOKE

if SMOKE:  # CI on a CPU: the stand-in data, tiny networks, a few epochs
    TRAIN_IMAGES, TEST_IMAGES = 2_048, 500
    RESNET_WIDTHS = (8, 16, 32)  # channels of the small ResNet's three stages
    PLAIN_WIDTHS = (8, 16, 32)  # channels of the three convs of the CNN without BatchNorm
    NORM_EPOCHS = 4  # epochs of every run of the input-scale experiment (section 5)
    AUG_IMAGES, AUG_EPOCHS = 512, 8  # training images and epochs of section 6's runs
    BATCH_SIZE = 64
else:  # full mode: all of CIFAR-10
    TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
    RESNET_WIDTHS = (32, 64, 128)
    PLAIN_WIDTHS = (32, 64, 128)
    NORM_EPOCHS = 10
    AUG_IMAGES, AUG_EPOCHS = 10_000, 30  # a fifth of the data, many epochs: room to overfit
    BATCH_SIZE = 256
LR = 0.2  # peak learning rate of SGD with Nesterov momentum and a one-cycle schedule, every run
EXAMPLES_PER_CLASS = 8  # images per class in the first figure
# Full mode trains about 0.7 PFLOPs (printed at the end). Estimate, not a measurement: small
# CIFAR networks keep an A100 at roughly 5-10 TFLOP/s, so 1-3 minutes of training in all.

# %% [markdown]
# ## 1. Meet the data
#
# `cifar10(split)` returns the images as one uint8 tensor `[N, 3, 32, 32]` (channels
# first: red, green, blue; values 0-255) and the labels as one int64 tensor `[N]`. When
# CIFAR-10 is not on disk and cannot be downloaded, you get the synthetic stand-in: ten
# made-up classes of shapes and textures, in tensors of the same shapes. The line below
# the cell says which one you have; every figure of this lecture says so too.

# %%
train_data = cifar10("train", n=TRAIN_IMAGES)
test_data = cifar10("test", n=TEST_IMAGES)
print(train_data, test_data, sep="\n")
assert train_data.images.dtype == torch.uint8
assert train_data.images.shape == (TRAIN_IMAGES, 3, 32, 32)
assert train_data.labels.shape == (TRAIN_IMAGES,)
SOURCE = train_data.source  # "cifar10" or "synthetic": every figure title says which
compute = params.ComputeLedger()  # training PFLOPs of every run in this lecture


# %%
classes = train_data.classes
fig, axes = plt.subplots(
    len(classes), EXAMPLES_PER_CLASS, figsize=(1.05 * EXAMPLES_PER_CLASS + 1.3, 11.5)
)
for row, name in enumerate(classes):
    first = (train_data.labels == row).nonzero().flatten()[:EXAMPLES_PER_CLASS]
    for ax, index in zip(axes[row], first, strict=True):
        ax.imshow(train_data.images[index].permute(1, 2, 0).numpy())  # matplotlib wants H, W, C
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
fig.suptitle(
    plots.titled(f"The first {EXAMPLES_PER_CLASS} training images of each class (32x32 px)", SOURCE)
)
fig.tight_layout()

# %%
train_counts = torch.bincount(train_data.labels, minlength=len(classes))
test_counts = torch.bincount(test_data.labels, minlength=len(classes))
assert train_counts.sum() == len(train_data) and test_counts.sum() == len(test_data)

fig, ax = plt.subplots(figsize=(8, 3.8))
positions = np.arange(len(classes))
ax.bar(positions - 0.2, train_counts, width=0.4, label=f"train ({len(train_data):,} images)")
ax.bar(positions + 0.2, test_counts, width=0.4, label=f"test ({len(test_data):,} images)")
ax.set_xticks(positions, classes, rotation=30, ha="right")
ax.set_ylabel("images")
ax.set_title(plots.titled("Images per class", SOURCE))
ax.legend()
ax.grid(axis="y", alpha=0.3)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - Every class has about the same number of images (CIFAR-10: exactly 5,000 per class in
#   training, 1,000 in test), so accuracy is a fair summary and chance is 10%.
# - The images are tiny: 32x32 pixels, 3,072 numbers each. The objects fill most of the
#   frame and sit at different positions; remember that for the augmentation section.

# %% [markdown]
# ## 2. Per-channel mean and standard deviation
#
# Normalisation needs two numbers per colour channel `c`, computed once on the training
# set (in [0, 1] units, that is pixel value / 255), over **every pixel of every image**:
#
# $$ \mu_c = \frac{1}{N H W} \sum_{n, h, w} x_{n c h w}, \qquad
#    \sigma_c = \sqrt{\frac{1}{N H W} \sum_{n, h, w} (x_{n c h w} - \mu_c)^2} $$
#
# The std that circulates in tutorials, `(0.2023, 0.1994, 0.2010)`, and the one printed in
# the `wang` report, `(0.2021, 0.1964, 0.2019)`, are a different quantity: the **average of
# each image's own std**. The law of total variance says what that misses:
#
# $$ \sigma_c^2 \;=\; \underbrace{\operatorname{mean}_n \operatorname{Var}(\text{image } n)}_{
#    \text{within images}} \;+\; \underbrace{\operatorname{Var}_n(\text{mean of image } n)}_{
#    \text{between images}} $$
#
# The average per-image std only sees the first term (and even a bit less of it, since the
# mean of square roots is below the square root of the mean). That images differ from each
# other in brightness and colour, the second term, is left out, so the number is too small.
#
# `channel_stats(images)` computes $\mu_c$ and $\sigma_c$; `channel_stats(images,
# per_image=True)` the average per-image std. We also compute both terms by hand and check
# that they add up.


# %%
def per_image_stats(images: torch.Tensor, chunk: int = 10_000) -> tuple[torch.Tensor, ...]:
    """Each image's own per-channel mean and variance, [N, 3] each (float64, [0, 1] units)."""
    means, variances = [], []
    for part in images.split(chunk):
        pixels = part.to(torch.float64).div(255).flatten(2)  # [n, 3, H * W]
        means.append(pixels.mean(dim=2))
        variances.append(pixels.var(dim=2, correction=0))
    return torch.cat(means), torch.cat(variances)


mean, std = channel_stats(train_data.images)  # over every pixel of the training set
_, per_image_std = channel_stats(train_data.images, per_image=True)
image_means, image_variances = per_image_stats(train_data.images)
within = image_variances.mean(dim=0)
between = image_means.var(dim=0, correction=0)

assert torch.allclose(within + between, std**2, rtol=1e-6)  # the law of total variance
assert torch.allclose(image_variances.sqrt().mean(dim=0), per_image_std, rtol=1e-6)
assert (per_image_std < std).all()  # always smaller, on any data set
if train_data.source == "cifar10" and len(train_data) == 50_000:  # the published values
    assert torch.allclose(mean, torch.tensor(CIFAR10_MEAN, dtype=torch.float64), atol=5e-4)
    assert torch.allclose(std, torch.tensor(CIFAR10_STD, dtype=torch.float64), atol=5e-4)

MEAN, STD = tuple(mean.tolist()), tuple(std.tolist())  # what this lecture normalises with
print("measured on", train_data)
print(f"mean                {np.round(MEAN, 4)}")
print(f"std (every pixel)   {np.round(STD, 4)}")
print(f"mean per-image std  {np.round(per_image_std.numpy(), 4)}")

# %% [markdown]
# Now the same numbers as pictures. Left: the total variance of each channel split into its
# two parts. Right: the two kinds of std measured here, next to the constants in
# circulation for CIFAR-10: the published dataset std `(0.2470, 0.2435, 0.2616)`
# (`CIFAR10_STD` in `course_utils.data`), the widely copied per-image average and `wang`'s.

# %%
COPIED_STD = (0.2023, 0.1994, 0.2010)  # widely copied tutorial constant for CIFAR-10
WANG_STD = (0.2021, 0.1964, 0.2019)  # as printed in the wang report
channels = ["red", "green", "blue"]
positions = np.arange(3)
fig, (ax_var, ax_std) = plt.subplots(1, 2, figsize=(13, 4.4), width_ratios=(1, 1.6))

ax_var.bar(positions, within, width=0.55, label="within images (mean of per-image variances)")
ax_var.bar(positions, between, width=0.55, bottom=within, label="between images (var of means)")
for x, total in zip(positions, std**2, strict=True):
    ax_var.text(x, total, f"total {total:.4f}\n= std$^2$", ha="center", va="bottom", fontsize=8)
ax_var.set_xticks(positions, channels)
ax_var.set_ylabel("variance ([0, 1] pixel units$^2$)")
ax_var.set_title(
    plots.titled("Variance per channel, measured:\nwithin + between images = total", SOURCE)
)
ax_var.margins(y=0.25)
ax_var.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8)

bars = {
    "dataset std, measured here": (std, "tab:blue", None),
    "mean per-image std, measured here": (per_image_std, "tab:orange", None),
    "CIFAR-10 dataset std (published)": (CIFAR10_STD, "tab:blue", "//"),
    "widely copied (0.2023, 0.1994, 0.2010)": (COPIED_STD, "tab:orange", "//"),
    "wang report (0.2021, 0.1964, 0.2019)": (WANG_STD, "tab:red", "//"),
}
width = 0.16
for i, (label, (values, color, hatch)) in enumerate(bars.items()):
    offsets = positions + (i - 2) * width
    fill = {"color": color} if hatch is None else {"facecolor": "white", "edgecolor": color}
    ax_std.bar(offsets, np.asarray(values), width=width, hatch=hatch, label=label, **fill)
ax_std.set_xticks(positions, channels)
ax_std.set_ylabel("standard deviation ([0, 1] pixel units)")
ax_std.set_title(
    plots.titled(
        "Standard deviation per channel:\nmeasured here (solid), CIFAR-10 constants (hatched)",
        SOURCE,
    )
)
ax_std.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
ax_std.grid(axis="y", alpha=0.3)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - The "between images" part is a large share of the variance: photos differ a lot in
#   overall brightness and colour. The per-image average leaves it out, hence ~0.20
#   instead of ~0.25 on CIFAR-10. Normalising with 0.20 gives inputs with std about 1.2,
#   not 1.
# - On CIFAR-10 (full mode, real data) the solid bars match the hatched ones of the same
#   colour: the cell above asserts the dataset std against the published values. On the
#   synthetic stand-in the measured numbers are different (about 0.30 and 0.19): it is
#   other data, and the published constants are facts about CIFAR-10 only.
# - The lesson is not that `wang`'s model was hurt (section 5 shows why it hardly was), but
#   that constants should be measured on your data, not copied.

# %% [markdown]
# ## 3. Normalise: before and after
#
# Normalising channel `c` is $z = (x / 255 - \mu_c) / \sigma_c$. Because uint8 pixels
# take only 256 values, the histogram of a whole channel is 256 counts (`torch.bincount`),
# and the normalised histogram is the same counts at the positions $(v / 255 - \mu_c) /
# \sigma_c$. That lets us check, exactly, that the normalised data has mean 0 and std 1.


# %%
def pixel_counts(images: torch.Tensor, chunk: int = 10_000) -> torch.Tensor:
    """How many pixels of each channel take each value 0..255: [3, 256] (int64)."""
    counts = torch.zeros(3, 256, dtype=torch.int64)
    for part in images.split(chunk):
        for c in range(3):
            counts[c] += torch.bincount(part[:, c].flatten(), minlength=256)
    return counts


counts = pixel_counts(train_data.images).to(torch.float64)
share = counts / counts.sum(dim=1, keepdim=True)  # fraction of the channel's pixels
values = torch.arange(256, dtype=torch.float64) / 255
normalised_values = (values - mean.view(3, 1)) / std.view(3, 1)  # [3, 256]
z_mean = (share * normalised_values).sum(dim=1)
z_std = (share * (normalised_values - z_mean.view(3, 1)) ** 2).sum(dim=1).sqrt()
assert torch.allclose(z_mean, torch.zeros(3, dtype=torch.float64), atol=1e-9)
assert torch.allclose(z_std, torch.ones(3, dtype=torch.float64), atol=1e-9)
print(f"after normalising: mean {np.round(z_mean.numpy(), 6)}, std {np.round(z_std.numpy(), 6)}")
print(f"dividing by the per-image std instead: std {np.round((std / per_image_std).numpy(), 3)}")

fig, (ax_raw, ax_norm) = plt.subplots(1, 2, figsize=(12, 4))
for c, color in enumerate(channels):
    label = f"{color}: mean {MEAN[c]:.3f}, std {STD[c]:.3f}"
    ax_raw.plot(values, 100 * share[c], color=color, lw=1, label=label)
    ax_raw.axvline(MEAN[c], color=color, ls="--", lw=1)
    ax_norm.plot(normalised_values[c], 100 * share[c], color=color, lw=1, label=color)
ax_norm.axvspan(-1, 1, color="0.85", label="mean ± 1 std")
ax_norm.axvline(0, color="0.3", ls="--", lw=1)
ax_raw.set_xlabel("pixel value / 255  (dashed: channel mean)")
ax_norm.set_xlabel("normalised value (standard deviations from the channel mean)")
for ax, title in [(ax_raw, "Before: pixel values"), (ax_norm, "After: (x - mean) / std")]:
    ax.set_ylabel("share of the channel's pixels (%)")
    ax.set_title(plots.titled(title, SOURCE))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - Normalising only shifts and stretches the horizontal axis: the shape of each
#   histogram stays as it is. It does not make the data Gaussian.
# - Afterwards every channel is centred on 0 with std exactly 1, and the three channels
#   sit on the same scale, so no colour dominates the first layer just by being brighter.
# - On CIFAR-10 the blue channel is darker on average and more spread out than red and
#   green (mean 0.4465, std 0.2616): a per-channel correction, not one number for all.

# %% [markdown]
# ## 4. Three ways to normalise, one answer
#
# 1. **By hand.** `mean` has shape `[3]`; viewed as `[1, 3, 1, 1]` it *broadcasts* against a
#    batch `[B, 3, 32, 32]`: PyTorch repeats it along every dimension of size 1, so each
#    channel gets its own mean, for every image and pixel.
# 2. **torchvision.** `transforms.v2` converts uint8 to float in [0, 1] (`ToDtype` with
#    `scale=True`) and then applies `Normalize(mean, std)`; it works on whole batches too.
# 3. **The course loader.** `DeviceLoader(..., train=False)` yields batches in order and
#    unaugmented, normalised with the `mean` and `std` it was given.
#
# All three get the same uint8 batch and the statistics measured above; they must agree.

# %%
batch = train_data.images[:BATCH_SIZE]  # uint8 [B, 3, 32, 32]

by_hand = (batch.float() / 255 - mean.float().view(1, 3, 1, 1)) / std.float().view(1, 3, 1, 1)

to_normalised = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
with_torchvision = to_normalised(batch)

eval_loader = DeviceLoader(train_data, BATCH_SIZE, train=False, mean=MEAN, std=STD, device=device)
from_loader, labels = next(iter(eval_loader))
from_loader = from_loader.cpu()

for name, result in [("torchvision v2", with_torchvision), ("course loader", from_loader)]:
    gap = (result - by_hand).abs().max().item()
    assert result.shape == by_hand.shape == (BATCH_SIZE, 3, 32, 32)
    assert torch.allclose(result, by_hand, atol=1e-5), f"{name} differs by {gap}"
    print(f"by hand vs {name:15s} largest difference {gap:.1e}")
assert torch.equal(labels.cpu(), train_data.labels[:BATCH_SIZE])  # in order, no shuffling

# %% [markdown]
# Two mistakes worth seeing once. `Normalize` refuses uint8 input (it would otherwise
# subtract 0.49 from values up to 255), and a mean of shape `[3]` without the `view`
# lines up with the *last* dimension, the image width:

# %%
for name, attempt in [
    ("Normalize on uint8", lambda: v2.Normalize(MEAN, STD)(batch)),
    ("mean of shape [3]", lambda: batch.float() / 255 - mean.float()),
]:
    try:
        attempt()
    except (TypeError, RuntimeError) as error:
        print(f"{name}: {type(error).__name__}: {error}")
    else:
        raise AssertionError(f"{name} should have failed")

# %% [markdown]
# **What to notice**
# - The three results agree to within float rounding (about 1e-7): pick whichever fits
#   your pipeline. The course loader does it on the GPU for a whole batch at once.
# - Normalisation belongs to the data, not to the model: a model trained on normalised
#   images must be fed normalised images at test time too, with the *training* statistics.

# %% [markdown]
# ## 5. Does the input scale matter? Raw, [0, 1] and normalised
#
# Train the same network with the same learning rate on three versions of the same images:
# raw pixel values 0-255, values in [0, 1], and normalised values. The loader computes
# `(x / 255 - mean) / std`, so each version is a `(mean, std)` pair: `std = 1/255` keeps
# raw values, `std = 1` gives [0, 1].
#
# **Be honest about BatchNorm.** The course's ResNets start with a convolution without bias,
# followed by BatchNorm (BN), which divides each output channel by its own std over the
# batch. Multiplying the input by a constant $a$ multiplies the convolution's output by
# $a$, and BN divides it out again:
#
# $$ \mathrm{BN}\big(W * (a\,x)\big) = \mathrm{BN}\big(a\,(W * x)\big) = \mathrm{BN}(W * x) $$
#
# (up to BN's small $\epsilon$). So raw and [0, 1] inputs give the same network function,
# the same loss and the same gradients: **for a network with BN after its first layer, the
# input scale hardly matters.** Normalising also subtracts a mean and divides each channel
# by its own std; BN does not undo that exactly (the convolution mixes the channels, and
# zero padding at the borders sees the shift), so that run may differ a little.
#
# Without BN nothing undoes the scale: it travels through every layer to the logits and
# into the gradient of the first layer. To see that, we also train a small CNN without
# BatchNorm, the kind of network in many first tutorials.

# %%
SCALINGS = {  # (mean, std) for the loader, which computes (x / 255 - mean) / std
    "raw [0, 255]": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
    "[0, 1]": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "normalised": (MEAN, STD),
}


def small_resnet(seed: int = 0) -> models.ResNet:
    """The course ResNet with one basic block per stage: BN after every convolution."""
    torch.manual_seed(seed)
    return models.ResNet([1, 1, 1], RESNET_WIDTHS)


def plain_cnn(seed: int = 0) -> nn.Sequential:
    """Three conv-ReLU-maxpool layers, global average pooling and a linear layer: no BN."""
    torch.manual_seed(seed)
    layers, channels = [], 3
    for width in PLAIN_WIDTHS:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


NETWORKS = {"small ResNet (with BN)": small_resnet, "CNN without BN": plain_cnn}
for name, build in NETWORKS.items():
    print(f"{name:24s} {params.count_parameters(build()):>8,} parameters")

# %% [markdown]
# ### Check before training: the first layer's view of the input
#
# One batch in the three versions. First, the ResNet's stem (conv + BN + ReLU) must give the
# same output for raw and [0, 1] input. Then the gradient of the loss with respect to the
# first convolution's weights, at initialisation, for both networks.


# %%
def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's first convolution (the layer that sees the input)."""
    return next(module for module in model.modules() if isinstance(module, nn.Conv2d))


def first_conv_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The norm of the loss gradient of the model's first convolution's weights."""
    F.cross_entropy(model(x), y).backward()
    return first_conv(model).weight.grad.norm().item()


probe_x = {name: normalize(batch, *scaling) for name, scaling in SCALINGS.items()}
probe_y = train_data.labels[:BATCH_SIZE]

resnet = small_resnet()
stem_raw, stem_unit = resnet.stem(probe_x["raw [0, 255]"]), resnet.stem(probe_x["[0, 1]"])
assert torch.allclose(stem_raw, stem_unit, atol=1e-2)  # BN divides the factor 255 out
stem_gap = (stem_raw - stem_unit).abs().max()
print(f"ResNet stem output, raw vs [0, 1] input: largest difference {stem_gap:.0e}")

gradients = {
    network: {name: first_conv_gradient(build(), x, probe_y) for name, x in probe_x.items()}
    for network, build in NETWORKS.items()
}
bn_grads, plain_grads = gradients["small ResNet (with BN)"], gradients["CNN without BN"]
assert abs(bn_grads["raw [0, 255]"] / bn_grads["[0, 1]"] - 1) < 0.01  # BN: the same gradient
assert plain_grads["raw [0, 255]"] > 10 * plain_grads["[0, 1]"]  # no BN: far larger
for network, build in NETWORKS.items():
    weight_norm = first_conv(build()).weight.norm().item()
    steps = [f"{name} {LR * g / weight_norm:.2g}" for name, g in gradients[network].items()]
    print(f"{network}, one SGD step / first conv's norm: {', '.join(steps)}")

fig, ax = plt.subplots(figsize=(7.5, 4))
width = 0.25
for i, scaling in enumerate(SCALINGS):
    offsets = np.arange(len(NETWORKS)) + (i - 1) * width
    heights = [gradients[network][scaling] for network in NETWORKS]
    bars = ax.bar(offsets, heights, width=width, label=scaling)
    ax.bar_label(bars, fmt="%.2g", fontsize=8)
ax.set_yscale("log")
ax.set_xticks(np.arange(len(NETWORKS)), list(NETWORKS))
ax.set_ylabel("||dLoss / dW|| of the first conv (log scale)")
ax.set_title(plots.titled("First-layer gradient at initialisation, one batch", SOURCE))
ax.legend(title="input")
ax.margins(y=0.2)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - With BN, raw and [0, 1] inputs give the same stem output and the same first-layer
#   gradient (to 1%, the cell asserts it): the ResNet cannot tell them apart.
# - Without BN, the raw input's gradient is hundreds of times larger or more (note the log
#   scale). The printed relative steps say what that means: at a learning rate that suits
#   normalised input, one step on raw input moves the first layer by about its own size
#   or more. No single learning rate suits all three inputs.

# %% [markdown]
# ### Run: six trainings
#
# Both networks, three inputs each, the same learning rate (`LR`), schedule, epochs and
# seed. The training loader also crops and flips (section 6); that does not depend on the
# scale. A run whose loss becomes NaN stops with `TrainingDiverged`: we print it and plot the
# epochs it finished.

# %%
histories = {network: {} for network in NETWORKS}
for network, build in NETWORKS.items():
    for scaling, (scale_mean, scale_std) in SCALINGS.items():
        model = build()
        loaders = [
            DeviceLoader(
                data, size, train, ["crop", "flip"], device, mean=scale_mean, std=scale_std
            )
            for data, size, train in [(train_data, BATCH_SIZE, True), (test_data, 500, False)]
        ]
        compute.add(f"{network}, {scaling}", model, NORM_EPOCHS * len(train_data))
        try:
            histories[network][scaling] = fit(
                model, *loaders, epochs=NORM_EPOCHS, lr=LR, seed=0, name=scaling
            )
        except TrainingDiverged as error:  # keep the epochs it finished, if any, for the plot
            print(f"{network}, {scaling}: {error}")
            if error.history.epochs:
                histories[network][scaling] = error.history
print(
    f"this cell: {sum(compute.pflops[f'{n}, {s}'] for n in NETWORKS for s in SCALINGS):.3g} PFLOPs"
)

# %%
for network, runs in histories.items():
    if runs:
        fig = plots.plot_history(
            list(runs.values()), title=f"{network}: same learning rate, three input scales"
        )
        losses = [row["train_loss"] for run in runs.values() for row in run.epochs]
        if max(losses) > 100 * min(losses):  # a diverging run: only a log scale shows them all
            fig.axes[0].set_yscale("log")
            fig.axes[0].set_ylabel("loss (log scale)")

# %% [markdown]
# **What to notice**
# - **Small ResNet (with BN):** the three runs end close together; the differences are
#   about as large as those between two random seeds (try it). BN made the input scale
#   almost irrelevant, and normalising buys little on its own here.
# - **CNN without BN:** on raw pixels the first steps are huge, ReLUs die, and the
#   network stays at chance (10% accuracy, loss ln 10 ≈ 2.30) or diverges. On [0, 1] it
#   learns later and slower: its inputs are all positive and vary by only about ±0.25
#   around 0.5, so the first layer's gradient is small and, for each position, pushes all
#   weights of a filter the same way (LeCun et al., 1998, *Efficient BackProp*).
#   Normalised input learns first and best.
# - So why normalise, when BN is everywhere? It is free, it makes the first layer behave
#   like every other layer, and it keeps a learning rate valid when you change the
#   network. And a wrong std, like `wang`'s 0.20, only rescales the input by about 1.2:
#   harmless with BN, which is why their 93.81% is no evidence either way.

# %% [markdown]
# ## 6. Augmentation: random crop with padding, horizontal flip
#
# A photo of a horse is still a horse a few pixels further left, or mirrored. *Random crop
# with padding* pads each image by 4 pixels on every side (reflecting the border, or with
# zeros) and cuts a random 32x32 window out of the 40x40 result: a shift of up to 4 pixels
# in each direction, 81 possible positions. *Horizontal flip* mirrors an image left-right
# with probability 1/2. Both keep the label, and together they turn every training image
# into 162 variants; every epoch draws new ones. (Vertical flips would not keep the label:
# skies are up.)
#
# The course loader applies both to whole batches on the GPU (`RandomCrop`,
# `HorizontalFlip` in `course_utils.augment`). Here they are, applied to a few images.

# %%
PAD = 4
examples = train_data.images[:4]
generator = torch.Generator().manual_seed(0)
padded = F.pad(examples, (PAD, PAD, PAD, PAD), mode="reflect")
crop = augment.RandomCrop(padding=PAD, padding_mode="reflect")
flip = augment.HorizontalFlip(p=0.5)
mirror = augment.HorizontalFlip(p=1.0)  # always flips
cropped = crop(examples, generator)
flipped = mirror(cropped, generator)
draws = [flip(crop(examples, generator), generator) for _ in range(3)]  # as the loader does

# Checks: a flip twice is the identity, and every crop is a window of the padded image.
assert torch.equal(mirror(flipped, generator), cropped)
assert torch.equal(augment.RandomCrop(padding=0)(examples, generator), examples)
windows = padded.unfold(2, 32, 1).unfold(3, 32, 1)  # [4, 3, 9, 9, 32, 32]: all 81 windows
corners = []
for image, result in zip(windows, cropped, strict=True):
    matches = (image == result.view(3, 1, 1, 32, 32)).all(dim=(0, 3, 4)).nonzero()
    assert len(matches) > 0, "a crop that is no window of the padded image"
    corners.append(matches[0].tolist())  # (top, left) of the window in the padded image

columns = ["original", f"padded {PAD} px (reflect)", "random crop", "crop, flipped"]
columns += [f"augmented #{i + 1}" for i in range(len(draws))]
fig, axes = plt.subplots(len(examples), len(columns), figsize=(1.75 * len(columns), 8))
for row in range(len(examples)):
    pictures = [examples[row], padded[row], cropped[row], flipped[row]]
    pictures += [draw[row] for draw in draws]
    for ax, picture in zip(axes[row], pictures, strict=True):
        ax.imshow(picture.permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])
    top, left = corners[row]  # the crop's window, drawn on the padded image
    for color, line in [("black", 3), ("white", 1.5)]:  # white on black: visible on any image
        box = Rectangle((left - 0.5, top - 0.5), 32, 32, fill=False, edgecolor=color, lw=line)
        axes[row, 1].add_patch(box)
    axes[row, 0].set_ylabel(classes[train_data.labels[row]], fontsize=10)
for ax, name in zip(axes[0], columns, strict=True):
    ax.set_title(name, fontsize=9)
fig.suptitle(
    plots.titled(
        "Crop with padding and horizontal flip (white box: the window that was cut)", SOURCE
    )
)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - The padded image is 40x40; the white box shows the 32x32 window that became the crop.
#   Reflect padding mirrors the border (no black frame), as `wang`'s `RandomCrop(32,
#   padding=4, padding_mode="reflect")`; zero padding would show black bands.
# - The augmented versions differ by small shifts and a mirror: small enough that the
#   object stays recognisable, large enough that the exact pixels never repeat.

# %% [markdown]
# ### Run: with and without augmentation
#
# Overfitting shows best with little data and many epochs: the small ResNet trains on
# `AUG_IMAGES` images for `AUG_EPOCHS` epochs, once without augmentation and once with
# crop and flip. Everything else is the same. Afterwards we measure each model's accuracy
# on its own training images, *unaugmented*, and on the test set: the difference is the
# generalisation gap.

# %%
aug_data = train_data.subset(AUG_IMAGES)
normalised_test = DeviceLoader(test_data, 500, train=False, mean=MEAN, std=STD, device=device)
clean_train = DeviceLoader(aug_data, 500, train=False, mean=MEAN, std=STD, device=device)
AUGMENTATIONS = {  # the loader's augment= list: applied in order to every training batch
    "no augmentation": [],
    "crop + flip": [{"name": "crop", "padding": PAD, "padding_mode": "reflect"}, "flip"],
}
aug_histories, final_accuracy = {}, {}
for name, pipeline in AUGMENTATIONS.items():
    model = small_resnet()
    loader = DeviceLoader(aug_data, BATCH_SIZE, augment=pipeline, device=device, mean=MEAN, std=STD)
    compute.add(name, model, AUG_EPOCHS * len(aug_data))
    aug_histories[name] = fit(
        model, loader, normalised_test, epochs=AUG_EPOCHS, lr=LR, seed=0, name=name
    )
    final_accuracy[name] = {
        "training images": evaluate(model, clean_train).accuracy,
        "test images": evaluate(model, normalised_test).accuracy,
    }
print(f"this cell: {sum(compute.pflops[name] for name in AUGMENTATIONS):.3g} PFLOPs")

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.4))
plots.plot_history(list(aug_histories.values()), ax=axes[:2])
ax = axes[2]
width = 0.35
SPLITS = ("training images", "test images")
for i, split in enumerate(SPLITS):
    offsets = np.arange(len(AUGMENTATIONS)) + (i - 0.5) * width
    heights = [100 * final_accuracy[name][split] for name in AUGMENTATIONS]
    ax.bar_label(ax.bar(offsets, heights, width=width, label=split), fmt="%.1f", fontsize=8)
for x, name in enumerate(AUGMENTATIONS):
    train_acc, test_acc = (100 * final_accuracy[name][split] for split in SPLITS)
    ax.text(x, max(train_acc, test_acc) + 10, f"gap {train_acc - test_acc:.1f} points", ha="center")
ax.set_xticks(np.arange(len(AUGMENTATIONS)), list(AUGMENTATIONS))
ax.set_ylim(0, 135)
ax.set_yticks(range(0, 101, 20))
ax.set_ylabel("accuracy after training (%)")
ax.set_title(plots.titled("Final accuracy on unaugmented images", SOURCE))
ax.legend(loc="upper center", ncol=2)
fig.suptitle(
    f"The small ResNet on {len(aug_data):,} training images, with and without crop + flip: "
    "curves per epoch (train dashed, on augmented images) and the final gap"
)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - Without augmentation the network sees the same pixels every epoch and can memorise
#   them: training accuracy heads for 100% and the training loss towards 0, while the test
#   loss stops falling and may rise again. That widening gap is overfitting.
# - With crop and flip the training curves (dashed; measured on augmented images) rise more
#   slowly and the gap on the right is smaller; on CIFAR-10 in full mode expect the test
#   accuracy to end higher too: what the network learns now carries over to new images.
#   `merabishvili` used the same two augmentations and still reports 99.36% training vs
#   94.16% test accuracy: augmentation shrinks the gap, it does not close it.
# - In smoke mode (a few hundred stand-in images, a few epochs) the runs are too short to
#   overfit much; the full-mode run shows the effect.

# %% [markdown]
# ## Compute used by this lecture

# %%
total = compute.total
for name, pflops in compute.pflops.items():
    print(f"{name:42s} {pflops:10.3g} PFLOPs")
print(f"{'total':42s} {total:10.3g} PFLOPs of training ({'smoke' if SMOKE else 'full'} mode)")
if not SMOKE:
    assert total <= 15, f"this lecture trains {total:.1f} PFLOPs, over its 15 PFLOPs budget"

# %% [markdown]
# ## Try it
#
# 1. **Input-scale run cell** (section 5): replace `build()` by `build(seed=1)` and
#    `seed=0` by `seed=1` (new initial weights, new batches), and run it and the plot cell
#    again. Are the differences between the three ResNet runs larger than a new seed makes?
# 2. **`SCALINGS` cell**: add `"wang's std": (MEAN, WANG_STD)`. On CIFAR-10, does the
#    ResNet notice? Does the CNN without BN?
# 3. **Parameters cell**: set `LR = 0.02`. Which of the CNN-without-BN runs recover, and
#    which become too slow? Is there any learning rate that suits all three inputs?
# 4. **Augmentation run cell**: add `"crop + flip + cutout": [{"name": "crop", "padding":
#    PAD, "padding_mode": "reflect"}, "flip", {"name": "cutout", "size": 8}]` to
#    `AUGMENTATIONS` (cutout fills a random 8x8 square with the mean colour). Does the gap
#    shrink further, and what does it cost in test accuracy?
# 5. **Augmentation picture cell**: change `"reflect"` to `"constant"` in the `RandomCrop`
#    and `F.pad` calls and look at the borders of the crops.
#
# ## Summary
#
# - Normalise each channel with the mean and the std over **every pixel** of the training
#   set: `channel_stats(train.images)`. For CIFAR-10 that is mean (0.4914, 0.4822, 0.4465)
#   and std (0.2470, 0.2435, 0.2616); the widely copied (0.2023, 0.1994, 0.2010), like
#   `wang`'s (0.2021, 0.1964, 0.2019), is the average per-image std, which leaves out how
#   much images differ from each other.
# - By hand with broadcasting, `transforms.v2.Normalize` and the course loader compute the
#   same thing; the test set is normalised with the training statistics.
# - With BatchNorm right after the first convolution, the input's scale cancels out: raw,
#   [0, 1] and normalised inputs train alike. Without BN, raw pixels break training at a
#   learning rate that suits normalised input.
# - Random crop with padding and horizontal flip keep the label and make every epoch's
#   images new; they shrink the train-test gap that small data and long training open up.
