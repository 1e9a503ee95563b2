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
# # 06 · Capstone: 94% in minutes, under 5M parameters, evaluated honestly
#
# Lectures 01-05 each took one idea apart. Here they go back together into one recipe,
# `fast94`: a residual network of 2.1M parameters trained in 0.32 PFLOPs of compute, aiming
# at 94% test accuracy on CIFAR-10. The five student reports spent 6.9 (`wang`) to 88
# (`rout`) PFLOPs and 30 minutes to hours for 87-94%. The recipe stands on the shoulders of
# two public speed records: David Page's ResNet-9 runs ("How to train your ResNet", 2018),
# which this course used as its first capstone and keeps runnable as `page94`, and Keller
# Jordan's airbench94 (2024), whose network and training method `fast94` adapts. And we
# evaluate the way a result should be evaluated: every choice *this course* made is made on
# a validation split, and the test set is touched once, at the end. One inheritance we say
# plainly: airbench94's settings were chosen by its author on the CIFAR-10 test set, so a
# 94% from the settings we kept is slightly optimistic, by an amount nobody has measured.
#
# **What you will learn**
# - how to hold out a validation split, and why the test set is opened only once;
# - the capstone network, written out: a whitening first layer, BatchNorm with a fixed
#   scale, residual blocks that widen and shrink the image;
# - the `fast94` recipe as one `TrainConfig`, and what each trick buys (published and
#   measured);
# - the budget arithmetic of a run: parameters, FLOPs per image, training PFLOPs, minutes;
# - a full evaluation: flip test-time augmentation, confusion matrix, per-class accuracy,
#   the most confident mistakes;
# - how to compare a run with published ones fairly (same units, every number sourced);
# - saving a checkpoint (on Colab: to Google Drive) and reloading it for inference.
#
# **The bar to beat: the five reports' results, as they state them** (quoted from the
# course's digest of the reports; none of these numbers is ours)
#
# - `merabishvili`: 94.16% after 60 epochs (Tesla V100; no time given).
# - `sudrik`: 94.12% with a 300-epoch recipe, but that is the best epoch of a 400-epoch log
#   *chosen on the test set*. The learning rate is constant, so single epochs are noisy:
#   the last one reads 92.94%, and the last 20 average 93.4% (our arithmetic on its
#   published log, section 6). About 24 s/epoch on an RTX 8000.
# - `wang`: 93.81% after 70 epochs, about 36 minutes on Colab.
# - `rout`: 86.968% after 400 epochs.
# - `pillai`: no test accuracy stated (curves and a confusion matrix); 300 epochs planned,
#   50 in its sweep winner, on a Colab A100.
#
# **Our target: 94% on real CIFAR-10 within 0.36 PFLOPs of training** (airbench94's
# compute). The whole `fast94` recipe has been run once, end to end, on a 2-core CPU with
# the JPEG copy of CIFAR-10 (seed 0, 30 minutes of training): **89.1% test accuracy** with
# flip TTA, 88.2% without. That is a measurement, and it falls five points short of the
# target (section 6 says what is known about the gap). On a GPU with the official release,
# 94% is still a target, not a result.
#
# Without a GPU this notebook runs at **cpu size**: the capstone network itself, trained on
# a subset of real CIFAR-10 for a few epochs, a CPU-size stand-in for the capstone run; its
# accuracy is that small run's, not `fast94`'s. At smoke size (CI) it trains a narrowed
# network for two epochs, and wherever CIFAR-10 cannot be found (CI included) it trains and
# tests on a **synthetic stand-in** of made-up shapes. Every accuracy it prints there is a
# stand-in number and says so; none of them says anything about CIFAR-10.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
import json
import time
from collections import OrderedDict
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

from course_utils import capstone, params, plots, recipes, zoo
from course_utils.config import TrainConfig
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, cifar10, note_if_standin
from course_utils.loader import DeviceLoader
from course_utils.support import checkpoint
from course_utils.train import Evaluation, History, evaluate, fit, predict

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# The first line chooses the size. `"full"` (the default on a GPU) is the `fast94` recipe
# exactly as `python -m course_utils train --recipe fast94` runs it. `"cpu"` (the default
# without a GPU) is a **CPU-size stand-in for the capstone run**: the capstone network and
# every ingredient of its recipe on real CIFAR-10, but 9,000 training images (1,000 more for
# validation) for 6 epochs instead of 45,000 for 10. `"smoke"` (CI) shrinks the data, the
# widths and the epochs further, onto the synthetic stand-in where CIFAR-10 is missing, so
# the whole notebook runs in about a minute.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
print(
    f"SIZE = {SIZE!r}: "
    + {
        "full": "the fast94 recipe as designed, on a GPU",
        "cpu": "a CPU-size stand-in for the capstone run: the capstone on 9,000 real images",
        "smoke": "CI: a narrowed capstone for two epochs on 2,000 images (the stand-in offline)",
    }[SIZE]
)

RECIPE = recipes.get_recipe("fast94")
if SIZE == "smoke":  # CI on a CPU: 2,000 training images, a narrowed capstone, two epochs
    recipe = RECIPE.replace(epochs=2, batch_size=128)
    TRAIN_IMAGES, TEST_IMAGES = 2_000, 500
    WIDTHS = (16, 32, 32)  # the three blocks of the capstone network, narrowed
    YOUR_WIDTHS = (8, 16, 16)  # the "your turn" model: half the widths again
elif SIZE == "cpu":  # the capstone itself on a fifth of the images, for 6 epochs
    recipe = RECIPE.replace(epochs=6)  # 9,000 train + 1,000 validation images
    TRAIN_IMAGES, TEST_IMAGES = 10_000, 10_000
    WIDTHS = (64, 256, 256)  # the capstone network, 2.1M parameters
    YOUR_WIDTHS = (32, 128, 128)  # half the widths: a quarter of the parameters
else:  # the recipe unchanged: 45,000 training + 5,000 validation images, 10 epochs
    recipe = RECIPE
    TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
    WIDTHS = (64, 256, 256)  # the capstone network, 2.1M parameters
    YOUR_WIDTHS = (32, 128, 128)  # half the widths: a quarter of the parameters
EVAL_BATCH = 500  # images per batch when evaluating (no gradients: memory is no issue)
SEED = recipe.config.seed  # 0: the recipe's one seed (initial weights, batches, augmentation)
BUDGET = zoo.BUDGET  # fewer than 5,000,000 trainable parameters
MAX_TRAINING_PFLOPS = 0.36  # the capstone's compute budget for one run: airbench94's
SAVE_TO_DRIVE = False  # Colab only: True keeps the checkpoints on your Google Drive
RESUME = False  # True continues the run saved in its folder (after a dropped Colab session)
OVERWRITE = SIZE != "full"  # True replaces a finished run in its folder; a full run is kept
# The training compute this lecture plans (the capstone run + your turn, from the ledger):
# its bill at the end prints it with the course's one time estimate.
PLANNED_PFLOPS = {"smoke": 0.00019, "cpu": 0.0497, "full": 0.414}[SIZE]
settings.warn_if_long(PLANNED_PFLOPS, device)

# %% [markdown]
# ## 1. The data: train, validation, test
#
# ```
# CIFAR-10 training set, 50,000 images ──┬── 45,000  train:      the weights learn from these
#                                        └──  5,000  validation: every choice we make looks here
# CIFAR-10 test set, 10,000 images ───────── 10,000  test:       opened once, in section 5
# ```
#
# Why three parts? Anything you choose by looking at a set of images (the epoch to stop at,
# the learning rate, the model) fits that set a little, so its accuracy there is no longer
# an honest estimate of new images. `sudrik` picked its best epoch out of a 400-epoch log
# *measured on the test set*: 94.12% at epoch 273. With a constant learning rate the
# accuracy jumps from epoch to epoch: the last 20 epochs range from 92.66% to 94.04%, and
# the best of 400 noisy epochs is partly the luck of the pick. So during training we only
# ever look at the validation split, and the test set is evaluated once, at the end, for
# the model we already committed to.
#
# That discipline covers the choices made *here* and in the course's tuning log
# (`benchmarks/results/capstone-tuning.md`: validation images only). The settings `fast94`
# keeps from airbench94 (learning rate, momentum, weight decay, label smoothing) were chosen
# by its author on the CIFAR-10 test set; our final test number inherits a little of that.

# %%
full_train = cifar10("train", n=TRAIN_IMAGES, seed=SEED)
test_data = cifar10("test", source=full_train.source, n=TEST_IMAGES, seed=SEED)
note_if_standin(full_train, SIZE)  # at cpu or full size: how to name a real copy
# The split recipes.run makes in section 4: the same fraction and seed hold out the same images.
train_data, val_data = full_train.holdout(recipe.config.val_split, seed=SEED)
NOTE = plots.source_note(full_train.source)  # "synthetic stand-in data" (and a dry run's cap)
SOURCE = "CIFAR-10" if full_train.source == "cifar10" else "synthetic stand-in, NOT CIFAR-10"
if settings.MAX_STEPS:  # a dry run (COURSE_MAX_STEPS) says so next to every number it prints
    SOURCE += f"; {settings.dry_run_note()}"

# The loaders recipes.run builds: the recipe's batch size and augmentations for training.
train_loader = DeviceLoader(train_data, recipe.config.batch_size, augment=recipe.config.augment)
train_loader.set_seed(SEED)
val_loader = DeviceLoader(val_data, EVAL_BATCH, train=False)
print(train_data, val_data, test_data, sep="\n")
print(train_loader)

assert len(train_data) + len(val_data) == len(full_train)
assert len(val_data) == round(recipe.config.val_split * len(full_train))
assert (train_data.split, val_data.split, test_data.split) == ("train", "validation", "test")


# %% [markdown]
# The whole training set sits on the training device as uint8 (CIFAR-10 is 150 MB), and
# each batch is augmented there in a few tensor operations: a shift of up to 2 pixels in
# each direction (the image padded by 2 mirrored pixels, then cropped back to 32x32) and a
# horizontal flip. Page's recipe also cut out an 8x8 square; with only 10 epochs, cutout
# costs more than it regularises (section 3). This is one batch as the network sees it:

# %%
x, y = next(iter(train_loader))
assert x.shape == (recipe.config.batch_size, 3, 32, 32) and x.dtype == torch.float32
fig = plots.show_images(
    x[:16].cpu(),
    y[:16].cpu(),
    classes=train_data.classes,
    nrow=8,
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
)
title = "A training batch: reflect-padded shift of up to 2 pixels, flip"
fig.suptitle(plots.titled(title, full_train.source), fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The model, written out
#
# The capstone is airbench94's network with a shortcut around each pair of convolutions:
#
# ```
# whiten   2x2 conv 3 -> 24, filters fixed from training patches, GELU     32 -> 31 px
# block 1  3x3 conv 24 -> 64, 2x2 max-pool, BN, GELU; 3x3 conv 64 -> 64, BN  31 -> 15 px
#          + shortcut: 2x2 max-pool, 1x1 conv 24 -> 64, BN; then GELU
# block 2  the same, 64 -> 256                                               15 -> 7 px
# block 3  the same, 256 -> 256                                               7 -> 3 px
# head     global max-pool, Linear(256, 10) without bias, logits x 1/9
# ```
#
# Six 3x3 convolutions (plus the 2x2 whitening conv and three 1x1 shortcuts; Page's ResNet-9
# had eight 3x3 convolutions, wider ones): each block halves
# the image right after its first convolution, so most of the work happens on small images.
# Three ideas need a word each before the code.
#
# **Patch whitening.** Neighbouring pixels and the three colour channels of a photo are
# strongly correlated, which makes the first layer's gradient descent slow (a long, narrow
# valley). Take every 2x2 patch of the training images as a vector $p$ of $3 \cdot 2 \cdot 2
# = 12$ numbers, estimate its covariance $\Sigma = \mathbb{E}[p\,p^\top] = V \Lambda V^\top$,
# and use the 12 rows of $\Lambda^{-1/2} V^\top$ as conv filters: their outputs are
# uncorrelated with unit variance, $W \Sigma W^\top = I$. We keep each filter and its
# negative (24 channels), so the GELU after it loses no sign. The filters are computed once,
# from the first training batch the network sees, and never trained; a validation or test
# image never enters them.
#
# **BatchNorm with a fixed scale and a fast shift.** After BatchNorm, each channel is
# $\gamma \hat x + \beta$. Page found the scales $\gamma$ hardly learn (weight decay drives
# them), so we fix $\gamma = 1$. The shifts $\beta$ do matter and should move faster than
# the other weights: we store $\tilde\beta = \beta / 8$ and use $8 \tilde\beta$. A gradient
# step on $\tilde\beta$ is 8 times larger and counts 8 times, so $\beta$ learns $8^2 = 64$
# times faster, without a second learning rate in the optimizer.
#
# **Scaled-down logits.** Multiplying the outputs by $1/9$ keeps the first steps, taken at
# a high learning rate, from making the network over-confident.


# %%
class PatchWhiteningFromScratch(nn.Module):
    """A 2x2 conv whose 24 filters whiten 2x2 patches; set from the first training batch."""

    def __init__(self, eps: float = 5e-4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 24, kernel_size=2)
        self.conv.weight.requires_grad_(False)  # fixed: only its bias trains
        self.eps = eps
        self.register_buffer("ready", torch.tensor(False))

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        patches = F.unfold(images.float(), kernel_size=2).transpose(1, 2).reshape(-1, 12)
        covariance = patches.T @ patches / len(patches)  # Sigma, 12 x 12
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # Sigma = V Lambda V^T
        filters = eigenvectors.T / (eigenvalues + self.eps).sqrt()[:, None]  # Lambda^-1/2 V^T
        self.conv.weight.copy_(torch.cat([filters, -filters]).view(24, 3, 2, 2))
        self.ready.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.ready:
            self.fit(x)
        return self.conv(x)


class BatchNormFromScratch(nn.BatchNorm2d):
    """BatchNorm with the scale fixed at 1 and a shift that learns 64x faster."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)  # running stats: recent batches
        self.weight.requires_grad_(False)
        self.bias_scale = 8.0  # sqrt(64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.num_batches_tracked.add_(self.training)
        shift = self.bias * self.bias_scale
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, shift,
                            self.training, self.momentum, self.eps)  # fmt: skip


# %% [markdown]
# A block is the residual pattern of lecture 02, $\text{out} = \text{act}(F(x) +
# \text{shortcut}(x))$, where $F$ is the conv pair and the shortcut must match its output:
# the same max-pool, then a 1x1 convolution to the new width (a projection, as in
# ResNet's stride-2 blocks).


# %%
class DownBlockFromScratch(nn.Module):
    """conv - pool - BN - GELU - conv - BN, + (pool - 1x1 conv - BN) shortcut, then GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = BatchNormFromScratch(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNormFromScratch(out_channels)
        self.shortcut = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(in_channels, out_channels, 1, bias=False),
            BatchNormFromScratch(out_channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.gelu(self.bn1(self.pool(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return F.gelu(out + self.shortcut(x))


class CapstoneFromScratch(nn.Module):
    """Whitening, three DownBlocks, global max-pool, a linear head; logits x 1/9."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256)) -> None:
        super().__init__()
        self.whiten = PatchWhiteningFromScratch()
        w1, w2, w3 = widths
        self.blocks = nn.Sequential(OrderedDict(
            block1=DownBlockFromScratch(24, w1),
            block2=DownBlockFromScratch(w1, w2),
            block3=DownBlockFromScratch(w2, w3),
        ))  # fmt: skip
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(w3, 10, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))
        return self.head(self.blocks(x)) / 9


# %% [markdown]
# Is ours the package's `capstone.CapstoneNet`, parameter for parameter? Built from the same
# seed, every weight must match by name, shape and value; then both fit their whitening on
# the same training batch and must give the same outputs, in training and evaluation mode.

# %%
torch.manual_seed(SEED)
ours = CapstoneFromScratch(WIDTHS)
torch.manual_seed(SEED)
package = capstone.CapstoneNet(widths=WIDTHS)
ours_state, package_state = ours.state_dict(), package.state_dict()
assert list(ours_state) == list(package_state), "different layer names or order"
for name, tensor in ours_state.items():
    assert tensor.shape == package_state[name].shape, name
    assert torch.equal(tensor, package_state[name]), f"{name}: different initial values"
batch = x[:64].cpu()
assert torch.allclose(ours(batch), package(batch), atol=1e-5)  # training mode: fits whitening
assert ours.whiten.ready and torch.allclose(ours.whiten.conv.weight, package.whiten.conv.weight)
ours.eval()
package.eval()
assert torch.allclose(ours(batch), package(batch), atol=1e-5)
count = params.count_parameters(ours)
print(f"CapstoneFromScratch{WIDTHS} == capstone.CapstoneNet(widths={WIDTHS}): "
      f"{len(ours_state)} tensors, {count:,} trainable parameters")  # fmt: skip

# %% [markdown]
# The whitening really whitens: on that batch, the 12 channels of the first half have
# (nearly) zero correlation with each other (and unit variance), where the raw 2x2 patches
# were strongly correlated. Each square below is one pair of the 12 numbers.


# %%
def correlation(values: torch.Tensor) -> torch.Tensor:
    """E[a b] / sqrt(E[a^2] E[b^2]) for every pair of columns: what whitening makes 0."""
    moments = values.T @ values / len(values)
    scale = moments.diag().sqrt()
    return moments / scale[:, None] / scale[None, :]


with torch.no_grad():
    raw = F.unfold(batch, kernel_size=2).transpose(1, 2).reshape(-1, 12)
    white = (package.whiten(batch) - package.whiten.conv.bias[:, None, None])[:, :12]
    white = white.permute(0, 2, 3, 1).reshape(-1, 12)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
panels = [
    (axes[0], raw, "raw 2x2 patches", "patch entry (3 channels x 2 x 2)"),
    (axes[1], white, "after whitening", "whitened channel (first 12 of 24)"),
]
for ax, values, title, label in panels:
    image = ax.imshow(correlation(values), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(label)
    ax.set_xlabel(label)
fig.colorbar(image, ax=axes, shrink=0.8)
title = "Correlation of the 12 numbers of each 2x2 patch, one training batch"
fig.suptitle(plots.titled(title, full_train.source), fontsize=10)
plt.show()
assert (correlation(white) - torch.eye(12)).abs().max() < 0.01

# %% [markdown]
# Now the budget. The cost of a run is one line of arithmetic:
#
# $$ \text{training FLOPs} \approx 3 \times \underbrace{F}_{\text{forward FLOPs / image}}
# \times \underbrace{E}_{\text{epochs}} \times \underbrace{N}_{\text{training images}} $$
#
# (the backward pass costs about twice the forward). The budget check runs first: a model
# at or over 5M parameters stops here with the largest layers named.

# %%
settings.seed_everything(SEED)
model = capstone.CapstoneNet(widths=WIDTHS)
n_params = params.check_budget(model, BUDGET)  # raises BudgetExceededError at 5M or more

forward_flops = params.flops(model)
planned_pflops = params.training_flops(model, recipe.config.epochs * len(train_data)) / 1e15
print(f"model:           CapstoneNet{WIDTHS}, {n_params:,} trainable parameters (< {BUDGET:,})")
print(f"forward cost:    {forward_flops / 1e9:.3f} GFLOPs per 32x32 image")
print(
    f"training cost:   3 x {forward_flops / 1e9:.3f} GFLOPs x {recipe.config.epochs} epochs x "
    f"{len(train_data):,} images = {planned_pflops:.4f} PFLOPs"
)

with torch.device("meta"):  # the full-size capstone, shapes only, to show its budget in CI too
    full_capstone, page_resnet9 = zoo.build(RECIPE.model), zoo.build("resnet9_page")
capstone_params = params.count_parameters(full_capstone)
FULL_TRAIN_PART = 50_000 - round(RECIPE.config.val_split * 50_000)  # 45,000 images
capstone_pflops = params.training_flops(full_capstone, RECIPE.config.epochs * FULL_TRAIN_PART)
capstone_pflops /= 1e15
PAGE94 = recipes.get_recipe("page94")
page_pflops = params.training_flops(page_resnet9, PAGE94.config.epochs * FULL_TRAIN_PART) / 1e15
print(f"full fast94:     {capstone_params:,} parameters, {capstone_pflops:.2f} PFLOPs of training")
print(f"page94 (before): {params.count_parameters(page_resnet9):,} parameters, "
      f"{page_pflops:.2f} PFLOPs of training")  # fmt: skip
assert capstone_params < BUDGET and capstone_pflops <= MAX_TRAINING_PFLOPS
if SIZE != "smoke":
    assert planned_pflops <= MAX_TRAINING_PFLOPS, f"{planned_pflops:.2f} PFLOPs is over budget"

# %% [markdown]
# **What to notice**
# - The capstone uses 41% of the parameter budget (all five reports sit above 98%).
#   Parameters were never the bottleneck; compute and recipe are.
# - Its forward pass costs 0.24 GFLOPs per image, about a third of Page's ResNet-9
#   (0.65) or `wang`'s model (0.66), and 10 epochs instead of 30: 0.32 PFLOPs against 2.65 for
#   `page94`, an eighth of the compute.

# %% [markdown]
# ## 3. The recipe, one `TrainConfig`
#
# Every knob of `fast94` is a field of one `TrainConfig`, written out below with one line of
# why each; the cell checks it is exactly `recipes.RECIPES["fast94"].config`. Label
# smoothing with $\varepsilon = 0.2$ over $K = 10$ classes trains towards
# $q = (1-\varepsilon)\,\text{onehot}(y) + \varepsilon / K$, and flip TTA predicts with
# $p(y \mid x) = \tfrac12\big[\text{softmax}(f(x)) + \text{softmax}(f(\text{flip}(x)))\big]$.
# What is *not* in it matters too: no cutout, no weight averaging (the measurements below show why).

# %%
FAST94 = TrainConfig(
    optimizer="nesterov",  # SGD with Nesterov momentum: steady at a high learning rate
    lr=0.75,  # peak rate for the batch's mean loss: airbench94's, rescaled to batch 512
    momentum=0.85,  # airbench94's; 0.9 would average over more, older gradients
    weight_decay=1.33e-3,  # airbench94's decay per step, for a mean loss (0.0153 / 11.5)
    schedule="onecycle",  # linear warm-up from 0.2x to 1x over 23% of steps, then to 0.07x
    schedule_kwargs={
        "pct_start": 0.23,
        "anneal_strategy": "linear",
        "div_factor": 5.0,
        "final_div_factor": 2.857,
        "cycle_momentum": False,
    },  # fmt: skip
    epochs=10,  # 10 passes over 45,000 images: 0.32 PFLOPs
    batch_size=512,  # large batches keep a GPU busy
    label_smoothing=0.2,  # soft targets: 0.82 for the class, 0.02 for each other
    augment=({"name": "crop", "padding": 2, "padding_mode": "reflect"}, "flip"),  # +-2 px, mirror
    tta=True,  # the test set scored on each image and its mirror
    val_split=0.1,  # 5,000 training images held out: every choice is made on them
)
assert RECIPE.config == FAST94, RECIPE.config.differences(FAST94)
print(RECIPE.source)
changed = RECIPE.config.differences(recipe.config)  # ["epochs: 10 -> 2", ...]
print("this run changes:", ", ".join(changed) or "nothing")
assert {line.split(":")[0] for line in changed} <= {"epochs", "batch_size"}

# %% [markdown]
# What `TrainConfig` does not show, `fit` does on its own: on a GPU it trains in bf16
# autocast (fp16 on a T4 or V100) with channels_last memory layout, which also speeds up
# convolutions on a CPU.
#
# ### What each trick buys
#
# **Published** (Page, "How to train your ResNet 8: Bag of tricks", the notebook
# `bag_of_tricks.ipynb` in davidcpage/cifar10-fast; ResNet-9 on a V100, test accuracy as he
# reports it, several values are means of 50 runs). Each trick is added to the ones above it,
# and each gain is then traded for fewer epochs at 94.1%:
#
# | trick added | test accuracy | epochs then needed for 94.1% |
# |---|---|---|
# | baseline (cutout, warm-up then linear decay, batch 512) | 94.1% at 24 epochs | 24 |
# | max-pool before BatchNorm (cheaper, slightly worse) | 94.0% at 24 | 25 |
# | label smoothing 0.2 | 94.2% at 25 | 23 |
# | CELU activations (smooth, like our GELU) | 94.3% at 23 | 20 |
# | ghost BatchNorm | 94.2% at 20 | 18 (with a 50% higher rate) |
# | frozen BN scales, BN biases learning 16-64x faster | 94.2% at 18 | 17 |
# | 3x3 patch whitening | 94.4% at 17 | 15; 14 with a higher rate and 5x5 cutout |
# | EMA of the weights, every 5 steps | 94.3% at 14 | 13 |
# | flip TTA | 94.6% at 13 | 10, with cutout removed |
#
# Page also notes that without the higher learning rate for the BN biases, freezing the
# scales gave "a substantially lower accuracy". airbench94 (Jordan, arXiv 2404.00498 and
# KellerJordan/cifar10-airbench) went on from there: a 2x2 whitening layer, GELU, a
# Lookahead average that only takes hold towards the end of training, alternating flips and
# flip-and-shift TTA, 94.01% (mean of many runs) in 9.9 epochs and 0.36 PFLOPs, 3.83 s on
# an A100 uncompiled.
#
# **Measured here** (the course's tuning log, `benchmarks/results/capstone-tuning.md`: the
# JPEG copy of CIFAR-10, 8,000 training and 2,000 validation images, 5 epochs, seeds 0 and
# 1, a 2-core CPU; validation accuracy without TTA). Each row takes one ingredient out of
# `fast94` or changes one setting; the dots are the two seeds. At this budget one seed's
# spread is small: the two seeds of one variant differ by 0.05-1.6 points (11 for the
# erratic runs without shortcuts), so only differences larger than that mean anything:

# %%
ABLATIONS = {  # variant -> validation accuracy (%) of seeds 0 and 1, from the tuning log
    "fast94 as is": [70.60, 70.45],
    "+ Lookahead (k 5, alpha 0.5)": [67.65, 68.50],
    "no whitening (first conv trained)": [67.50, 67.45],
    "no label smoothing": [68.95, 67.55],
    "Page's crop 4 px + 8x8 cutout": [68.40, 66.80],
    "no shortcuts (default init)": [55.80, 67.15],
}
names = list(ABLATIONS)
base_mean = sum(ABLATIONS["fast94 as is"]) / 2
fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
for row, name in enumerate(names):
    ax.scatter(ABLATIONS[name], [row, row], color="tab:blue", zorder=3)
    ax.plot(ABLATIONS[name], [row, row], color="tab:blue", alpha=0.4)
ax.axvline(base_mean, color="tab:gray", linestyle="--", label="fast94 as is (mean of 2 seeds)")
ax.set_yticks(range(len(names)), names)
ax.set_ylim(len(names) - 0.5, -0.5)
ax.set_xlabel("validation accuracy, % (8,000 training images, 5 epochs; one dot per seed)")
ax.set_title("One ingredient at a time, measured on the JPEG copy of CIFAR-10 (2-core CPU)")
ax.legend(loc="upper left", fontsize=8)
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - Every ingredient in the plot earns its place at this size, each by 2-3 points on
#   average (1.6-3.7 per seed, both seeds worse without it): the whitening layer, label
#   smoothing, 2-pixel shifts instead of cutout. Taking
#   out the shortcuts cost the most (9 points on average) and made training erratic: one seed
#   reached 67%, the other 56%. airbench94 gets by without them by starting the first
#   filters of each conv as the identity (as many as it has input channels), which is
#   what a shortcut provides.
# - The one ingredient that *lost* was Lookahead: with it the runs were 2.4 points worse, so
#   `fast94` has no average of the weights (Try it 2). A trick that helps a 10-epoch run on
#   a GPU need not help a 5-epoch run here, and the reverse: this plot ranks the ingredients
#   at CPU scale, it does not measure the full run. The log also has the learning rate (half
#   of 0.75 lost 4 points, twice changed nothing) and the BatchNorm shifts' faster rate (no
#   difference we could resolve; Page found it mattered in his 18-epoch ResNet-9 runs, so we
#   keep it).

# %% [markdown]
# ## 4. Train
#
# The run writes a checkpoint after every epoch. On Colab a dropped session loses the
# runtime's disk, so set `SAVE_TO_DRIVE = True` in the parameters cell to keep the run on
# your Google Drive, and `RESUME = True` to continue after a disconnect. Nothing is mounted
# unless you ask for it (and never outside Colab). A finished full run is never replaced
# unless you set `OVERWRITE = True`.

# %%
RUN_NAME = {"smoke": "fast94-smoke", "cpu": "fast94-cpu", "full": "fast94"}[SIZE]
run_dir = Path("runs") / "06_capstone"
if SAVE_TO_DRIVE and settings.in_colab():
    from google.colab import drive

    drive.mount("/content/drive")
    run_dir = Path("/content/drive/MyDrive/cifar10-course/06_capstone")
out_dir = run_dir / RUN_NAME
print(f"the run writes {', '.join(recipes.FILES.values())} into {out_dir}")

# %% [markdown]
# One call trains the recipe: `recipes.run`, the same function that
# `python -m course_utils train --recipe fast94` calls. It
#
# 1. seeds everything with the recipe's seed;
# 2. holds out `val_split` of the training images for validation, the same split as in
#    section 1;
# 3. trains with `fit`, measuring the validation split after every epoch and writing
#    `checkpoint.pt` after each (on a GPU with bf16 autocast, fp16 on a T4 or V100; in
#    channels_last layout on both GPU and CPU); on its first step the whitening layer sets
#    its filters from that first training batch;
# 4. evaluates the test set once, at the end, with flip TTA because the recipe says so;
# 5. saves `history.json` (every epoch, and the test result) and `curves.png`.
#
# We hand it the model built in section 2, and the full training set.

# %%
ledger = params.ComputeLedger()  # training PFLOPs of every run in this lecture

started = time.perf_counter()
result = recipes.run(
    recipe,
    full_train,
    test_data,
    model=model,
    out=out_dir,
    resume=RESUME,
    overwrite=OVERWRITE,
    name=RUN_NAME,
)
wall_seconds = time.perf_counter() - started
history = result.history

trained_images = round(sum(row["images_per_sec"] * row["seconds"] for row in history.epochs))
ledger.add("fast94", model, recipe.config.epochs * len(train_data))  # 3 x F x E x N
print(
    f"recipes.run took {wall_seconds:.1f} s here; the run's {len(history.epochs)} epochs trained "
    f"for {history.final['elapsed']:.1f} s in all{' (partly before: RESUME)' if RESUME else ''}, "
    f"{trained_images / history.final['elapsed']:,.0f} images/s on {device}"
)
print(f"validation accuracy after the last epoch: {history.final['val_acc']:.2%} ({SOURCE})")
assert result.model is model and len(history.epochs) == recipe.config.epochs
assert history.eval_split == "validation" and history.run["train_images"] == len(train_data)
assert all((out_dir / name).is_file() for name in recipes.FILES.values())

# %% [markdown]
# The curves below are train (dashed) and **validation** (solid): `plot_history` labels the
# solid curve with the split it was measured on, which the history records. The train loss
# is the label-smoothed one the optimizer minimises; the validation loss is plain
# cross-entropy, so the two are not on the same scale.


# %%
def plot_curves(runs: list[History]) -> plt.Figure:
    """Loss and accuracy (train dashed, validation solid) and the learning rate per step."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plots.plot_history(runs, ax=axes[:2])
    plots.plot_lr(runs, title="learning rate (one-cycle schedule)", ax=axes[2])
    fig.tight_layout()
    return fig


plot_curves([history])
plt.show()

# %% [markdown]
# **What to notice**
# - The learning rate climbs from 0.2x to its peak over the first 23% of the steps, then
#   falls in a straight line to 0.07x.
# - Train accuracy is measured on augmented images (shifted, mirrored) under a moving model,
#   so it can sit *below* validation accuracy early on; that is not a bug.
# - Label smoothing keeps the *train* loss well above zero even for a perfect classifier:
#   with $\varepsilon = 0.2$ the best reachable value is the entropy of the smoothed target,
#   $-0.82 \ln 0.82 - 9 \times 0.02 \ln 0.02 \approx 0.87$, not 0.

# %% [markdown]
# ## 5. Evaluate once on the test set
#
# Training is over. The recipe also fixed how to predict: with flip TTA (Page's choice;
# airbench94 also averages shifted copies). That is a choice too, so we look at what it does on the
# validation split, never on the test set. Without TTA the validation accuracy is the
# history's last `val_acc`, measured the same way:

# %%
val_plain = evaluate(model, val_loader, tta=False)
val_tta = evaluate(model, val_loader, tta=True)
print(f"validation accuracy ({SOURCE}): {val_plain.accuracy:.2%} without TTA, ", end="")
print(f"{val_tta.accuracy:.2%} with flip TTA")
if settings.MAX_STEPS:  # each evaluation saw its own first batches (batch 500 here, 512 in fit)
    print(f"Not compared with the history's val_acc: {settings.dry_run_note()}.")
else:
    assert abs(val_plain.accuracy - history.final["val_acc"]) < 0.002

# %% [markdown]
# Now the test set. `recipes.run` evaluated it once, at the end of the run, with flip TTA
# as the recipe says, and handed the result back in `result.test`; until now we have not
# looked at it. The function below draws an evaluation (section 8 reuses it for your own
# model): the confusion matrix (rows: true class, columns: predicted; each row sums to 1,
# so the diagonal is the per-class accuracy), per-class accuracy bars, and the mistakes
# the model was most sure of.


# %%
def show_evaluation(result: Evaluation, data: ImageData, name: str, tta: bool) -> None:
    """Draw the confusion matrix, per-class accuracy and most confident mistakes of one
    evaluation of a model on ``data`` (``result`` is in the data's order)."""
    split, how = data.split, "flip TTA" if tta else "no TTA"
    assert int(result.confusion.sum()) == len(result.targets)
    if settings.MAX_STEPS:  # a capped evaluation cannot cover the whole set
        print(
            f"Not checked that the confusion matrix covers the {split} set: it covers "
            f"{len(result.targets):,} of its {len(data):,} images ({settings.dry_run_note()})."
        )
    else:
        assert len(result.targets) == len(data), "the confusion matrix covers the whole set"
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1.15, 1]})
    plots.plot_confusion(
        result.confusion,
        data.classes,
        ax=axes[0],
        note=NOTE,
        title=f"{name}: confusion matrix, {split} set, {how}",
    )
    plots.plot_per_class(
        result.per_class_accuracy,
        data.classes,
        ax=axes[1],
        note=NOTE,
        title=f"{name}: accuracy per class, {split} set, {how}",
    )
    fig.tight_layout()
    plt.show()

    mistakes = result.most_confident_mistakes(16)
    if len(mistakes):
        titles = [
            f"true: {data.classes[result.targets[i]]}\n"
            f"pred: {data.classes[result.predictions[i]]} {result.confidences[i]:.0%}"
            for i in mistakes
        ]
        rows = (len(mistakes) + 7) // 8
        fig, axes = plt.subplots(rows, 8, figsize=(13, 2.3 * rows + 0.6), squeeze=False)
        plots.show_images(data.images[mistakes], titles=titles, ax=axes.ravel())
        title = f"{name}: the {len(mistakes)} most confident mistakes ({split})"
        fig.suptitle(plots.titled(title, data.source))
        fig.tight_layout()
        plt.show()


test = result.test
print(f"{RUN_NAME} on the test set ({len(test.targets):,} images, {SOURCE}), evaluated once:")
print(f"  accuracy with flip TTA: {test.accuracy:.2%}")
assert test.split == "test" and history.test == {
    "split": "test",
    "images": len(test.targets),  # the images evaluated (a dry run: its first batches')
    "provenance": test_data.provenance,
    "loss": test.loss,
    "accuracy": test.accuracy,
    "tta": True,
}
show_evaluation(test, test_data, RUN_NAME, tta=recipe.config.tta)

# %% [markdown]
# **What to notice**
# - Flip TTA costs one extra forward pass per test image and no training. Page reports
#   +0.5 points for his 13-epoch ResNet-9 (94.1% -> 94.6%, cited in section 3); in the
#   course's tuning log at CPU scale it added 0.3 points on average (2,000 validation
#   images, two seeds), and in the whole `fast94` run on a CPU 0.9 on the test set (88.2%
#   -> 89.1%, one seed, JPEG copy). On the tiny smoke-size run its effect is noise; compare the two
#   validation numbers your run printed.
# - The confusion matrix shows *which* classes are confused, not just how many mistakes
#   there are. Expected on real CIFAR-10 (source: our reasoning; cats and dogs look alike
#   at 32x32): cat/dog is the worst pair.
# - Many of the "most confident mistakes" on real data are ambiguous or mislabelled images:
#   look at them before you trust the last tenths of a percent.

# %% [markdown]
# ## 6. This run against the five reports
#
# Same units for everyone: parameters counted from the rebuilt model, training compute
# from the rebuilt model and the report's epochs ($3 \times F \times E \times N$), with $N$
# the training images the report used: 40,000 for `pillai` (its 80/20 split) and the full
# 50,000 for the others (an assumption: the other reports do not state a split). The
# accuracies, epochs, hardware and times are the reports' own words.
#
# `sudrik` also published its training log, so its last epochs can be read directly
# (`out/resnet22_2_400_mixup.out` in github.com/utsavoza/aperture). Its settings read
# `lr : 0.1` and `lr_cosine : False` (a constant learning rate), its last line
# `Best Accuracy: 94.120` (reached at epoch 273), and its epochs 381 to 400 end with these
# test accuracies:

# %%
SUDRIK_LAST_20 = [  # "Test Accuracy" of epochs 381-400, copied from sudrik's published log
    93.07, 93.40, 93.82, 93.48, 93.49, 93.27, 92.91, 92.66, 93.02, 93.25,
    93.69, 93.59, 94.04, 93.26, 93.52, 93.78, 93.67, 93.70, 94.03, 92.94,
]  # fmt: skip
sudrik_mean = sum(SUDRIK_LAST_20) / len(SUDRIK_LAST_20)
print(
    f"sudrik's log: last epoch {SUDRIK_LAST_20[-1]:.2f}%; last 20 epochs {sudrik_mean:.2f}% on "
    f"average, {min(SUDRIK_LAST_20):.2f}% to {max(SUDRIK_LAST_20):.2f}% (all on the test set)"
)
assert len(SUDRIK_LAST_20) == 20 and round(sudrik_mean, 1) == 93.4

# %% [markdown]
# One row is a measurement made outside this notebook: the whole `fast94` recipe, run once
# on a 2-core CPU (`python benchmarks/full_run.py`, README, Results). Its numbers are
# written here and, in a checkout of the course, checked against the record the run wrote.

# %%
FAST94_CPU_RUN_FILE = "benchmarks/results/fast94-full-cpu.json"
FAST94_CPU_RUN = {"test_acc_tta": 0.8911, "test_acc": 0.8825, "training_minutes": 29.7}
record_path = (settings.repo_root() or Path(".")) / FAST94_CPU_RUN_FILE
if record_path.is_file():  # in a checkout; on Colab the package comes without benchmarks/
    record = json.loads(record_path.read_text())
    assert round(record["test_acc_tta"], 4) == FAST94_CPU_RUN["test_acc_tta"]
    assert round(record["test_acc"], 4) == FAST94_CPU_RUN["test_acc"]
    assert round(record["timing"]["training_seconds"] / 60, 1) == 29.7

# %%
REPORT_KEYS = ["merabishvili", "sudrik", "wang", "rout", "pillai"]
REPORT_TRAIN_IMAGES = {key: 50_000 for key in REPORT_KEYS} | {"pillai": 40_000}
ACCURACY_NOTE = {  # how each report's accuracy was chosen, from the digest of the reports
    "merabishvili": "test, as stated",
    "sudrik": f"best epoch chosen on the test set; last epoch 92.94%, last 20 {sudrik_mean:.1f}%",
    "wang": "test, as stated",
    "rout": "test, as stated",
    "pillai": "no test accuracy stated",
}

SIZE_NOTE = {"cpu": ", a CPU-size stand-in for the capstone run"}.get(SIZE, "")
rows = {}
for key in REPORT_KEYS:
    report = zoo.REPORTS[key]
    with torch.device("meta"):  # counting and FLOPs need shapes only
        rebuilt = zoo.build(key)
    images = REPORT_TRAIN_IMAGES[key] * report.epochs
    compute_pflops = params.training_flops(rebuilt, images) / 1e15
    rows[f"{key} (report)"] = {
        "accuracy": "none stated"
        if report.reported_accuracy is None
        else f"{report.reported_accuracy}%",
        "accuracy: how chosen": ACCURACY_NOTE[key],
        "parameters (rebuilt)": f"{params.count_parameters(rebuilt):,}",
        "parameters (stated)": f"{report.reported_params:,}" if report.reported_params else "—",
        "epochs": report.epochs,
        "train images": f"{REPORT_TRAIN_IMAGES[key]:,}",
        "training PFLOPs": round(compute_pflops, 1),
        "wall-clock": report.wall_clock or "—",
        "hardware": report.hardware or "—",
        "source": f"{key} report; params and PFLOPs ours, from the rebuilt model",
    }
rows["page94, the first capstone (plan)"] = {
    "accuracy": "target 94%, not measured here",
    "accuracy: how chosen": "settings from Page (tuned on test)",
    "parameters (rebuilt)": f"{params.count_parameters(page_resnet9):,}",
    "parameters (stated)": "—",
    "epochs": PAGE94.config.epochs,
    "train images": f"{FULL_TRAIN_PART:,}",
    "training PFLOPs": round(page_pflops, 2),
    "wall-clock": "—",
    "hardware": "—",
    "source": "course_utils.recipes 'page94'",
}
rows["fast94, whole recipe (CPU run)"] = {
    "accuracy": f"{FAST94_CPU_RUN['test_acc_tta']:.1%} on the JPEG copy",
    "accuracy: how chosen": "test touched once, flip TTA; airbench94's settings (tuned on test)",
    "parameters (rebuilt)": f"{capstone_params:,}",
    "parameters (stated)": "—",
    "epochs": RECIPE.config.epochs,
    "train images": f"{FULL_TRAIN_PART:,}",
    "training PFLOPs": round(capstone_pflops, 2),
    "wall-clock": f"{FAST94_CPU_RUN['training_minutes']:.0f} min training",
    "hardware": "2-core CPU, 2 threads (AMD EPYC)",
    "source": "measured once, seed 0: " + FAST94_CPU_RUN_FILE,
}
rows[f"{RUN_NAME} (this run)"] = {
    "accuracy": f"{test.accuracy:.2%} on {SOURCE}",
    "accuracy: how chosen": "test set touched once, flip TTA; settings from airbench94",
    "parameters (rebuilt)": f"{n_params:,}",
    "parameters (stated)": "—",
    "epochs": recipe.config.epochs,
    "train images": f"{len(train_data):,}",
    "training PFLOPs": round(ledger.pflops["fast94"], 4),  # epochs x images, as every bill
    "wall-clock": f"{history.final['elapsed']:.1f} s training "
    f"({trained_images / history.final['elapsed']:,.0f} images/s)",
    "hardware": settings.environment_facts()["gpu"]
    if device.type == "cuda"
    else f"CPU, {torch.get_num_threads()} threads",
    "source": f"{'a dry run' if settings.MAX_STEPS else 'measured'} in this notebook{SIZE_NOTE}",
}
for row in rows.values():  # the course's one time assumption for every row (settings)
    row["A100 minutes (assumed)"] = round(settings.minutes(row["training PFLOPs"]), 2)
results = pd.DataFrame(rows).T
with pd.option_context("display.max_colwidth", None):
    display(results)

# %% [markdown]
# The "A100 minutes" column converts every row's PFLOPs at one stated assumption, the
# course's `settings.A100_TFLOPS` (20 TFLOP/s of useful training work). It is an
# assumption, not a timing: airbench94 did its 0.36 PFLOPs in 3.83 s on an A100 (about 94
# TFLOP/s), while small, thin networks run far below the assumption.
#
# The compute values span several orders of magnitude, so the axis is logarithmic. On a
# log axis a bar's length depends only on where the axis happens to start, so each run is
# drawn as a dot.

# %%
MEASURED = "not measured" if settings.MAX_STEPS else "measured here"  # a dry run measures nothing
KINDS = {  # one colour per kind of row
    "report": ("tab:gray", "report: its own stated accuracy"),
    "plan": ("tab:green", "page94: a plan, 94% is a target"),
    "cpu run": ("tab:blue", "fast94, whole recipe: measured once on a CPU (JPEG copy)"),
    "this run": ("tab:orange", f"this run: {MEASURED}, on {SOURCE}{SIZE_NOTE}"),
}
kinds = ["report"] * len(REPORT_KEYS) + ["plan", "cpu run", "this run"]
labels = list(rows)
values = [row["training PFLOPs"] for row in rows.values()]
fig, ax = plt.subplots(figsize=(10, 5.0))
for kind, (colour, meaning) in KINDS.items():
    ys = [y for y, k in enumerate(kinds) if k == kind]
    ax.scatter([values[y] for y in ys], ys, s=60, color=colour, label=meaning, zorder=3)
extra = {"sudrik (report)": f" (best epoch; its last 20 average {sudrik_mean:.1f}%)"}
for y, (name, value, row) in enumerate(zip(labels, values, rows.values(), strict=True)):
    a100 = row["A100 minutes (assumed)"]
    a100 = "<0.01" if a100 < 0.01 else f"{a100:.2g}"
    label = (f"{value:g} PFLOPs (~{a100} A100 min); accuracy: "
             f"{row['accuracy']}{extra.get(name, '')}")  # fmt: skip
    ax.text(value * 1.6, y, label, va="center", fontsize=8)
ax.set_xscale("log")
ax.set_xlim(min(values) / 3, max(values) * 3000)
ax.set_yticks(range(len(labels)), labels)
ax.set_ylim(len(labels) - 0.5, -0.5)
ax.grid(axis="x", alpha=0.3)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
ax.set_xlabel("training compute (PFLOPs, log scale; 3 x forward FLOPs x images); minutes "
              f"at an assumed {settings.A100_TFLOPS:g} TFLOP/s on an A100")  # fmt: skip
title = (
    "Training compute: the reports' recipes vs page94 and fast94\n"
    "(grey: the reports' own accuracies; green: page94, 94% a target; blue: the whole fast94\n"
    "recipe, one CPU run on the JPEG copy; orange: this notebook's run)"
)
ax.set_title(plots.titled(title, full_train.source))
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - `merabishvili`'s 94.16% took about 14 PFLOPs, `sudrik`'s about 47 (for 300 epochs; its
#   94.12% is its best of 400) and `wang`'s 93.81% about 6.9. `fast94` plans 0.32 PFLOPs for
#   94%: 20 to 150 times less compute than those three, and 8 times less than `page94`,
#   from the recipe and the network's shape, not from more parameters. Run once on a 2-core
#   CPU with the JPEG copy, it reached 89.1% (blue dot): a fraction of the reports' compute,
#   and an accuracy below what three of them claim. A re-implementation of airbench94 run
#   the same way (its own budget, all 50,000 training images, same copy and CPU, one seed)
#   scored 90.5% with the mirror TTA (README, Results): most of the gap to 94% came with
#   the JPEG copy and this re-implementation, and `fast94` trails it by 1.4 points, with
#   5,000 fewer training images. At small budgets on the same images
#   (0.5 to 2 epochs of 10,000, 3 seeds) `fast94` led a re-implementation of airbench94 by
#   23, 20 and 11 points at 0.5, 1 and 2 epochs (2-core CPU, JPEG copy, README), a lead
#   that shrinks as the budget grows, so it does not settle this.
# - Two accuracies in the table are measured by us: the "fast94, whole recipe (CPU run)"
#   row (the blue dot) and the "this run" row (the orange dot).
#   At smoke size "this run" is on the stand-in data and says nothing about CIFAR-10; at
#   cpu size it is real CIFAR-10, but the capstone trained on 9,000 images for 6 epochs, a
#   CPU-size stand-in for the capstone run, not `fast94`'s result. Parameters and PFLOPs
#   are ours for every row; the reports' accuracies, epochs and times are the reports'.
# - `sudrik`'s 94.12% is the best of 400 epochs, picked on the test set. Its last epoch,
#   92.94%, is no fairer: with a constant learning rate one epoch is noise. The mean of its
#   last 20 epochs, 93.4%, is the better number to compare with.
# - At equal compute on a 2-core CPU, the course's recipes race (`python
#   benchmarks/real_data.py`, README, Results: every recipe with its own network narrowed to
#   the same FLOPs per image, 8,000 images of the JPEG copy, 8 epochs, seeds 0 and 1, about
#   0.01 PFLOPs per run) measured `fast94` 6.7 points ahead of the best report recipe,
#   `wang` (69.8% against 63.1% test accuracy, without TTA), and ahead of every report
#   recipe by more than twice the spread of the seeds. A measurement at CPU scale, not of
#   the full run.

# %% [markdown]
# ## 7. Save the model, reload it, predict
#
# `recipes.run` has already saved the run. `checkpoint.pt` is what `fit` wrote after the
# last epoch: the weights, the optimizer and schedule state, the random states, the config
# and the history so far, everything needed to *resume training*. `history.json` next to
# it is the finished history, with the one test result. For *inference* the weights are
# enough: build the same architecture and pour them in. The whitening filters come along:
# they are weights too, and the `ready` flag saved with them stops the fresh network from
# refitting them on the first batch it sees.

# %%
checkpoint_path = out_dir / recipes.FILES["checkpoint"]
fresh = capstone.CapstoneNet(widths=WIDTHS).to(device)
saved = checkpoint.load_checkpoint(checkpoint_path, fresh)
on_disk = History.load(out_dir / recipes.FILES["history"])
capped = settings.dry_run_note(on_disk.run.get("max_steps") or 0)  # as the history records it
print(
    f"reloaded {checkpoint_path} ({checkpoint_path.stat().st_size / 1e6:.1f} MB), saved after "
    f"epoch {saved['epoch']}; history.json: test accuracy {on_disk.test['accuracy']:.2%} on "
    f"{on_disk.test['images']:,} {on_disk.test['split']} images ({on_disk.source} data"
    + (f"; {capped})" if capped else ")")
)
assert saved["epoch"] == recipe.config.epochs and saved["config"] == history.config
assert fresh.whiten.ready
assert torch.equal(fresh.whiten.conv.weight.cpu(), model.whiten.conv.weight.cpu())
assert on_disk.test == history.test

sample = test_data.images[:8]
model.to(memory_format=torch.contiguous_format)  # same memory layout as the fresh model
before = predict(model, sample, train_loader, tta=True)  # normalised as in training
after = predict(fresh, sample, train_loader, tta=True)
assert torch.equal(before.argmax(1), after.argmax(1)), "the reloaded model predicts differently"
assert (before - after).abs().max() < 1e-3
print(f"largest difference in probabilities: {(before - after).abs().max():.1e}")

titles = [
    f"pred: {test_data.classes[p]} {c:.0%}\ntrue: {test_data.classes[t]}"
    for p, c, t in zip(after.argmax(1), after.max(1).values, test_data.labels[:8], strict=True)
]
fig = plots.show_images(sample, titles=titles, nrow=8)
title = "The reloaded model on the first 8 test images (flip TTA)"
fig.suptitle(plots.titled(title, test_data.source), fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 8. Your turn
#
# Swap in your own model, or change the recipe, and rerun from here. The next cell is the
# only one to edit; the one after checks the parameter budget first, then the compute
# budget, then trains and reruns the whole evaluation.
#
# By default the evaluation runs on the **validation** split: comparing variants is a
# choice, and choices are made on validation. That is also why this section trains with
# `fit` on the capstone's train/validation split instead of calling `recipes.run`: `run`
# ends by evaluating the test set, and a test number for every variant invites choosing on
# it. Switch `EVALUATE_ON` to `"test"` only for the one variant you finally commit to,
# once. The default experiment halves every width (a quarter of the parameters, 28% of
# the compute); `wang` reports that a model under 1M parameters still passed 92%.
# How much does the capstone lose?


# %%
# ======================= YOUR TURN: edit this cell =======================
def build_your_model() -> nn.Module:
    """Your model: any nn.Module that maps [B, 3, 32, 32] images to [B, 10] logits."""
    return capstone.CapstoneNet(widths=YOUR_WIDTHS)  # or zoo.build("wang"), or your own


your_recipe = recipe  # e.g. recipe.replace(label_smoothing=0.0), or .replace(ema=0.99)
EVALUATE_ON = "validation"  # "test" only for the variant you commit to, once
# =========================================================================

# %%
settings.seed_everything(SEED)
your_model = build_your_model()
your_params = params.check_budget(your_model, BUDGET)  # the budget check runs first
your_pflops = params.training_flops(your_model, your_recipe.config.epochs * len(train_data)) / 1e15
print(
    f"your model: {your_params:,} parameters, {params.flops(your_model) / 1e9:.3f} GFLOPs "
    f"per image, {your_pflops:.4f} PFLOPs of training"
)
settings.warn_if_long(your_pflops, device)  # zoo.build("wang") at cpu size: 20-25 minutes
if SIZE != "smoke":
    assert your_pflops <= MAX_TRAINING_PFLOPS, f"{your_pflops:.2f} PFLOPs: over the budget"

# fit on the same train/validation split as the capstone run, the test set left alone
config = your_recipe.config
your_loader = DeviceLoader(train_data, config.batch_size, augment=config.augment)
your_history = fit(your_model, your_loader, val_loader, config, name="your model")
ledger.add("your turn", your_model, config.epochs * len(train_data))
plot_curves([history, your_history])
plt.show()
print(
    f"validation accuracy: {RUN_NAME} {history.final['val_acc']:.2%}, "
    f"yours {your_history.final['val_acc']:.2%} ({SOURCE})"
)

your_data = test_data if EVALUATE_ON == "test" else val_data
your_result = evaluate(your_model, DeviceLoader(your_data, EVAL_BATCH, train=False), config.tta)
how = "flip TTA" if config.tta else "no TTA"
print(f"your model on the {your_data.split} set, {how}: {your_result.accuracy:.2%} ({SOURCE})")
show_evaluation(your_result, your_data, "your model", tta=config.tta)

# %% [markdown]
# ## The compute bill of this lecture

# %%
for name, pflops in ledger.pflops.items():
    print(f"{name:<10} {pflops:8.4f} PFLOPs")
total_pflops = ledger.total
print(f"{'total':<10} {total_pflops:8.4f} PFLOPs of this lecture's 15 PFLOPs training budget")
print(settings.estimate(total_pflops))
settings.key_number("training PFLOPs", round(total_pflops, 4))
if SIZE != "smoke":
    assert total_pflops <= 15, f"this lecture trained {total_pflops:.1f} PFLOPs, over 15"
# The plan of the parameters cell holds, unless a Try it changed the "your turn" run.
if your_recipe is recipe and your_params == params.count_parameters(
    capstone.CapstoneNet(widths=YOUR_WIDTHS)
):
    settings.check_plan(total_pflops, PLANNED_PFLOPS)

# %% [markdown]
# ## Try it
#
# 1. **From the command line.** In a terminal (or a `!` cell), run
#    `python -m course_utils train --recipe fast94 --smoke`. It calls the same
#    `recipes.run` as section 4. Its first line lists every setting it changes from the
#    recipe: `Settings: recipe fast94, changed: epochs 10 -> 2 (smoke mode); batch_size 512
#    -> 128 (smoke mode).` After the line about the data, one line says what else smoke
#    mode changed: `Smoke mode: 2000 train / 1000 test images, 2 epoch(s); capstone
#    (2,055,384 parameters) is replaced by CapstoneNet(widths=(16, 32, 32)) (40,520
#    parameters).`, the same narrowed capstone as this notebook's smoke mode. It ends with
#    a summary: the run (`fast94 (2 epochs on cpu, fp32)` on a CPU), validation accuracy
#    (last epoch), test accuracy (evaluated once, flip TTA), parameters, training PFLOPs,
#    this command's wall time, the run's training time (they differ after `--resume`, which
#    continues a run trained partly before), images/s, the data, and the three files it
#    wrote in `runs/fast94-smoke/` (a smoke run's own folder: the full run's `runs/fast94/`
#    stays free). Its
#    training is this notebook's smoke run exactly (same seed, same starting weights, same
#    split: on a CPU the same validation accuracy as section 4's); only its test accuracy
#    differs, because its test set has 1,000 images, not 500. Run the same command twice
#    and the second one refuses to overwrite the finished run; add `--out another_folder`
#    or `--overwrite`. `--recipe page94` runs the first capstone the same way. Drop
#    `--smoke` on a GPU for the full 10-epoch run.
# 2. **An average of the weights.** In the *Your turn* cell set `your_recipe =
#    recipe.replace(ema=0.99)` and `build_your_model` back to
#    `capstone.CapstoneNet(widths=WIDTHS)`. With `ema`, `fit` measures the averaged weights
#    on the validation split after every epoch and hands them back in the model at the end.
#    In smoke mode the validation accuracy falls far below the capstone run's (we saw 8% on
#    the stand-in, against 62-63% without the average, on one or two CPU threads): there are
#    only 28 optimizer steps, and with decay 0.99 the average still gives the weights after
#    the very first step a share of $0.99^{27} \approx 76\%$. An average helps only over
#    many more steps than its horizon of about $1/(1-0.99) = 100$. Page's and airbench's
#    averages start late or weigh the start lightly for that reason (and `fit`'s average
#    includes BatchNorm's running statistics, which here still remember the first batches
#    too); a plain Lookahead (`recipe.replace(lookahead={"k": 5, "alpha": 0.5})`) cost 2.4
#    points in the course's tuning log (section 3), which is why `fast94` has none.
# 3. **Ablate one ingredient.** In the *Your turn* cell return
#    `capstone.CapstoneNet(widths=WIDTHS)` from `build_your_model`, so that only the recipe
#    differs from the capstone run (with `your_recipe = recipe` unchanged it repeats that
#    run exactly: same seed, same split, the same validation accuracy). Then remove one
#    ingredient at a time: `recipe.replace(label_smoothing=0.0)`,
#    `recipe.replace(optimizer="momentum")` (no Nesterov), or
#    `recipe.replace(augment=recipe.config.augment[1:])` (flips only, no shifts). Which one
#    costs the most validation accuracy? In smoke mode we saw 66-67% without label
#    smoothing, 58.5-59% with plain momentum and 63.5-64% with flips only, against 62-63%
#    (on one or two CPU threads), but that is two epochs on 200 validation images of the
#    stand-in. At cpu size your run ranks them for the capstone on 1,000 real validation
#    images (a standard error of about 1.5 points each); section 3's plot shows what the
#    course measured at a similar size, with two seeds.
# 4. **A report's model, our recipe.** Return `zoo.build("wang")` from `build_your_model`.
#    Is the recipe or the architecture behind the difference? Only the `full` branch on a
#    GPU answers it, and there also set `your_recipe = recipe.replace(epochs=4)`: `wang`'s
#    network costs 0.66 GFLOPs per image, 2.7 times the capstone's, so 4 of its epochs cost
#    what 10 of the capstone's cost (0.36 PFLOPs, within the budget the cell checks; 10
#    epochs would be 0.89 and stop with an error). At smoke size (2 epochs, as the capstone
#    run) it trains `wang`'s 5M-parameter network at its real width: we saw about 1.5-2
#    minutes on one thread, no note about the run's length, and a validation accuracy near
#    chance (10%), which says nothing about either model. At cpu size the compute check
#    warns first (about 20-25 minutes).
# 5. **Fewer epochs.** In the parameters cell, try `RECIPE.replace(epochs=5)` for the
#    `recipe` of the `full` branch (and 0.207 for its `PLANNED_PFLOPS`): section 2
#    then plans 0.16 PFLOPs instead of 0.32, half the compute. Give the short run its own
#    folder too, `RUN_NAME = "fast94-5"` in section 4: a finished 10-epoch run in
#    `runs/06_capstone/fast94` is kept, and section 4 stops with an error rather than write
#    over it. How close to the 10-epoch run (its `history.json` in that folder) does it
#    get? Only a GPU runs the `full` branch in minutes.

# %% [markdown]
# ## Summary
#
# - A run has three budgets: parameters (under 5M), compute ($3 F E N$, here 0.32 PFLOPs)
#   and wall-clock. The reports spent 6.9 (`wang`) to 88 (`rout`) PFLOPs, Page's ResNet-9
#   recipe (`page94`) 2.65; the capstone plans 0.32, about 16 seconds of an A100 at the
#   course's assumed 20 TFLOP/s.
# - `fast94` puts the course together: a 2.1M-parameter residual network whose first layer
#   whitens 2x2 patches and whose BatchNorm keeps a fixed scale and a fast shift; data and
#   augmentation (2-pixel shifts, flips) on the device; Nesterov SGD at batch 512 with a
#   short warm-up and a linear decay, label smoothing 0.2, flip TTA. Run once on a 2-core
#   CPU with the JPEG copy (30 minutes of training) it reached 89.1% test accuracy; 94% on
#   a GPU with the official release is still a target. The accuracies this notebook prints
#   in CI are two-epoch smoke runs on the synthetic stand-in, and at cpu size those of the
#   capstone on 9,000 real images for 6 epochs, a CPU-size stand-in for the capstone run.
# - Honest evaluation: choose on a validation split, open the test set once
#   (`recipes.run` does both). A best epoch picked on the test set (94.12% in `sudrik`,
#   whose last 20 epochs average 93.4%) is not a test result. Say so when you inherit
#   choices made on the test set, as `fast94` inherits airbench94's settings.
# - Compare like with like: compute from the rebuilt models in the same units, every
#   number with its source, and a stand-in result never passed off as CIFAR-10.
# - Checkpoints (on Drive on Colab) make a dropped session cheap; a saved model is
#   reloaded by building the same architecture and loading its weights.
