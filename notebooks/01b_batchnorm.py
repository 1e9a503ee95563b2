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
# # 01b · BatchNorm's two modes
#
# Lecture 01 found that a ResNet with BatchNorm (BN) after its first convolution trains
# alike on raw pixels, on [0, 1] and on normalised input: BN divides the input's scale out.
# But its test loss, measured after every epoch, jumped above the training loss in the
# first epochs, and raw and [0, 1] input differed there. This lecture finds out why. BN
# computes something different while a network trains and while it is tested, and the
# test-time version can fall behind the weights.
#
# **What you will learn**
# - what BN computes in training mode (the batch's statistics) and in eval mode (running
#   averages), written out and checked against `nn.BatchNorm2d`;
# - why eval mode does not divide the input's scale out until the averages have caught up;
# - why the test loss of a BN network can jump while its training loss falls smoothly,
#   and how `torch.optim.swa_utils.update_bn` removes the jumps by recomputing the
#   statistics for the current weights.
#
# Lecture 01 comes first: this one reuses its small ResNet, its three input scalings and
# its training settings, and assumes its training loop.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
import copy
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Patch
from torch import nn
from torch.optim.swa_utils import update_bn

from course_utils import models, params, plots
from course_utils.data import channel_stats, cifar10, note_if_standin
from course_utils.loader import DeviceLoader, normalize
from course_utils.train import TrainingDiverged, evaluate, fit

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# Every size and epoch count of this lecture, for each of the three sizes (lecture 00):
# `SIZE`, the cell's first line, chooses. The runs are lecture 01's small ResNet runs
# (one basic block in each of three stages) on the same images.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
MEANING = {
    "smoke": "a tiny network on the synthetic stand-in (offline, as in CI), seconds",
    "cpu": "a fifth of real CIFAR-10 and a narrower network, minutes on a CPU",
    "full": "all of CIFAR-10 and the network as designed (a GPU)",
}
print(f"size {SIZE!r}: {MEANING[SIZE]}")
if SIZE == "smoke":  # CI on a CPU: the stand-in data, a tiny network, a few epochs
    TRAIN_IMAGES, TEST_IMAGES = 2_048, 500
    RESNET_WIDTHS = (8, 16, 32)  # channels of the small ResNet's three stages
    EPOCHS = 4
    BATCH_SIZE = 64
elif SIZE == "cpu":  # real CIFAR-10: about 3 minutes on a 2-core CPU (measured)
    TRAIN_IMAGES, TEST_IMAGES = 10_000, 2_000
    RESNET_WIDTHS = (16, 32, 64)
    EPOCHS = 5
    BATCH_SIZE = 128
else:  # full: all of CIFAR-10
    TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
    RESNET_WIDTHS = (32, 64, 128)
    EPOCHS = 10
    BATCH_SIZE = 256
SEED = 0  # initial weights, batch order and augmentation of every run
LR = 0.2  # peak learning rate of SGD with Nesterov momentum and a one-cycle schedule
CALIBRATION_IMAGES = 256  # training images update_bn recomputes the statistics from
CROP = {"name": "crop", "padding": 4, "padding_mode": "reflect"}  # as lecture 01
# The training compute of the whole lecture at each size, from its compute ledger (the bill
# at the end checks it): the time is an estimate from the course's one set of assumptions.
PLANNED_PFLOPS = {"smoke": 4.8e-4, "cpu": 0.0113, "full": 0.44}[SIZE]
print("planned training:", settings.estimate(PLANNED_PFLOPS))
settings.warn_if_long(PLANNED_PFLOPS, device)

# %% [markdown]
# ## The data and the network
#
# The first `TRAIN_IMAGES` training images and the first `TEST_IMAGES` test images. The
# three input scalings are lecture 01's `(mean, std)` pairs for the loader, which computes
# `(x / 255 - mean) / std`; the "normalised" one uses the per-channel mean and std over
# every pixel of these training images (lecture 01, section 2).

# %%
train_data = cifar10("train", n=TRAIN_IMAGES)
test_data = cifar10("test", n=TEST_IMAGES)
print(train_data, test_data, sep="\n")
note_if_standin(train_data, SIZE)
SOURCE = train_data.source  # "cifar10" or "synthetic": every figure title says which
mean, std = channel_stats(train_data.images)
MEAN, STD = tuple(mean.tolist()), tuple(std.tolist())
SCALINGS = {  # (mean, std) for the loader
    "raw [0, 255]": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
    "[0, 1]": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "normalised": (MEAN, STD),
}
compute = params.ComputeLedger()  # training PFLOPs of every run in this lecture


def small_resnet(seed: int) -> models.ResNet:
    """Lecture 01's small ResNet: one basic block per stage, BN after every convolution."""
    torch.manual_seed(seed)
    return models.ResNet([1, 1, 1], RESNET_WIDTHS)


# %% [markdown]
# ## 1. BatchNorm written out
#
# In **training mode** (`model.train()`, the mode `fit` trains in) BN normalises each
# channel with the mean $\mu_B$ and variance $\sigma_B^2$ of the current batch, over all
# its images and positions, then scales and shifts with two learned vectors $\gamma$ and
# $\beta$:
#
# $$ y = \gamma \, \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta $$
#
# A test answer for one image must not depend on the other images of its batch. So BN also
# keeps **running averages** of the batch statistics. They start at $\bar\mu = 0$ and
# $\bar\sigma^2 = 1$ and move at every training step by a fraction $m$, the *momentum*
# (0.1 in PyTorch):
#
# $$ \bar\mu \leftarrow (1 - m)\,\bar\mu + m\,\mu_B, \qquad
#    \bar\sigma^2 \leftarrow (1 - m)\,\bar\sigma^2 + m\,\sigma_B^2 $$
#
# In **eval mode** (`model.eval()`, which `evaluate` switches to) BN uses $\bar\mu$ and
# $\bar\sigma^2$ in place of the batch's statistics: one fixed affine map per channel.
# (PyTorch averages the batch variance with $n - 1$ in its denominator.) The class below
# is BN in a dozen lines; the cell checks it against `nn.BatchNorm2d` in both modes.


# %%
class BatchNorm2d(nn.Module):
    """BatchNorm over [B, C, H, W] batches, per channel, written out: what nn.BatchNorm2d does."""

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))  # gamma, learned
        self.bias = nn.Parameter(torch.zeros(channels))  # beta, learned
        self.register_buffer("running_mean", torch.zeros(channels))  # saved, not learned
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:  # this batch's statistics, over images and positions
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction=0)
            m, n = self.momentum, x.numel() // x.shape[1]  # n: values per channel
            self.running_mean = (1 - m) * self.running_mean + m * mean.detach()
            self.running_var = (1 - m) * self.running_var + m * var.detach() * n / (n - 1)
        else:  # eval: the running averages, the same for every batch
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.view(1, -1, 1, 1)) / (var.view(1, -1, 1, 1) + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * x_hat + self.bias.view(1, -1, 1, 1)


ours, reference = BatchNorm2d(4), nn.BatchNorm2d(4)
noise = torch.Generator().manual_seed(0)
for _ in range(5):  # training mode: five batches with mean 2 and std 3
    x = 2 + 3 * torch.randn(16, 4, 8, 8, generator=noise)
    assert torch.allclose(ours(x), reference(x), atol=1e-5)
assert torch.allclose(ours.running_mean, reference.running_mean, atol=1e-6)
assert torch.allclose(ours.running_var, reference.running_var, atol=1e-5)
ours.eval()
reference.eval()
x = 2 + 3 * torch.randn(16, 4, 8, 8, generator=noise)
assert torch.allclose(ours(x), reference(x), atol=1e-5)  # eval mode: the running averages
m = ours.momentum
print(
    f"after 5 steps: running mean {ours.running_mean.mean():.2f} (batches: 2), running var "
    f"{ours.running_var.mean():.2f} (batches: 9); 1 - (1 - {m})**5 = {1 - (1 - m) ** 5:.2f} "
    "of the way"
)

# %% [markdown]
# **What to notice**
# - The written-out BN matches `nn.BatchNorm2d` in both modes.
# - After five batches the running averages have moved only part of the way from (0, 1)
#   towards the batches' (2, 9): a fraction $1 - 0.9^5 \approx 0.41$ of it. They follow the
#   data slowly and remember roughly the last $1/m = 10$ batches.

# %% [markdown]
# ## 2. Eval mode does not divide the scale out
#
# In training mode a BN layer right after the first convolution cancels any factor $a$ on
# the input: $\mathrm{BN}(W * (a\,x)) = \mathrm{BN}(W * x)$, since the batch's std grows by
# $a$ too (lecture 01 checked it). In eval mode the divisor is $\sqrt{\bar\sigma^2 +
# \epsilon}$, and in a fresh network $\bar\sigma^2 = 1$ whatever the input. The cell feeds
# one batch, raw and in [0, 1], to a fresh network's stem (convolution, BN, ReLU) in eval
# mode.

# %%
batch = train_data.images[:BATCH_SIZE]
probe = {name: normalize(batch, *scaling) for name, scaling in SCALINGS.items()}
fresh = small_resnet(SEED).eval()  # running mean 0, var 1: BN is almost the identity
with torch.no_grad():
    eval_raw, eval_unit = fresh.stem(probe["raw [0, 255]"]), fresh.stem(probe["[0, 1]"])
assert torch.allclose(eval_raw, 255 * eval_unit, rtol=1e-4, atol=1e-4)
print(
    f"fresh stem in eval mode: raw output / [0, 1] output = "
    f"{eval_raw.abs().sum() / eval_unit.abs().sum():.1f}"
)
steps = len(train_data) // BATCH_SIZE
print(f"one epoch is {steps} steps: the initial values still weigh 0.9**{steps} = {0.9**steps:.2g}")

# %% [markdown]
# **What to notice**
# - In eval mode a fresh network's BN is nearly the identity, so raw input reaches the rest
#   of the network 255 times larger than [0, 1] input.
# - Training pulls the averages towards the batch statistics of the input at hand, and the
#   initial (0, 1) fade as $0.9^k$ after $k$ steps: after one epoch they are gone. But the
#   averages of a later step are made of the last ten or so batches, *computed with the
#   weights of those steps*. When the weights change fast, the averages describe a network
#   that no longer exists.

# %% [markdown]
# ## 3. Train, keeping every epoch's weights
#
# Lecture 01's three small ResNet runs again: the same network, seed, learning rate and
# one-cycle schedule, crop and flip, on raw, [0, 1] and normalised input. `fit` measures
# the test loss after every epoch in eval mode, with the running averages. An `on_epoch`
# callback keeps a copy of the weights (and BN's averages) after every epoch, for
# section 4. The held-out curve is the test set: we only look at it, nothing is chosen on it.


# %%
def keep_weights(model: nn.Module, kept: list) -> Callable[[int, dict], None]:
    """An on_epoch callback for fit: append a copy of the weights after every epoch."""
    return lambda epoch, record: kept.append(copy.deepcopy(model.state_dict()))


histories, weights = {}, {}  # [scaling]: the run's History; its weights after each epoch
test_loaders = {}
for scaling, (scale_mean, scale_std) in SCALINGS.items():
    model = small_resnet(SEED)  # built from SEED: rerun from here after changing it
    train_loader = DeviceLoader(
        train_data, BATCH_SIZE, True, [CROP, "flip"], device, mean=scale_mean, std=scale_std
    )
    test_loaders[scaling] = DeviceLoader(
        test_data, 500, False, [], device, mean=scale_mean, std=scale_std
    )
    compute.add(scaling, model, EPOCHS * len(train_data))
    weights[scaling] = []
    try:
        histories[scaling] = fit(
            model, train_loader, test_loaders[scaling], epochs=EPOCHS, lr=LR, seed=SEED,
            name=scaling, on_epoch=keep_weights(model, weights[scaling]),
        )  # fmt: skip
    except TrainingDiverged as error:  # keep the epochs it finished, if any
        print(f"{scaling}: {error}")
        if error.history.epochs:
            histories[scaling] = error.history

# %% [markdown]
# ## 4. Recompute the statistics for each epoch's weights
#
# If the jumps come from stale averages, then recomputing every BN layer's statistics for
# exactly the weights being tested must remove them. `update_bn(loader, model)` does the
# recomputing: it resets the averages and runs the loader's batches through the model in
# training mode, averaging the batch statistics with equal weights instead of the
# momentum. One batch of `CALIBRATION_IMAGES` training images is enough. Then the test
# loss is measured again, in eval mode, as `fit` did.

# %%
recomputed = {}  # [scaling]: test loss after each epoch, BN statistics recomputed
for scaling, (scale_mean, scale_std) in SCALINGS.items():
    calibration = DeviceLoader(
        train_data.subset(CALIBRATION_IMAGES), CALIBRATION_IMAGES, train=False,
        device=device, mean=scale_mean, std=scale_std,
    )  # fmt: skip
    model = small_resnet(SEED).to(device)  # its weights are replaced below
    recomputed[scaling] = []
    for state in weights[scaling]:
        model.load_state_dict(state)
        with torch.no_grad():
            update_bn(calibration, model)
        recomputed[scaling].append(evaluate(model, test_loaders[scaling]).loss)

# update_bn on one batch makes eval mode (running averages) equal training mode on that batch.
x, _ = next(iter(calibration))
with torch.no_grad():
    eval_logits, train_logits = model.eval()(x), model.train()(x)
assert torch.allclose(eval_logits, train_logits, rtol=1e-3, atol=1e-3)

fig, ax = plt.subplots(figsize=(8, 4.4))
for i, (scaling, run) in enumerate(histories.items()):
    epochs = [row["epoch"] for row in run.epochs]
    color = f"C{i}"  # one colour per input
    ax.plot(epochs, [row["train_loss"] for row in run.epochs], "--", color=color, alpha=0.5)
    ax.plot(epochs, [row["val_loss"] for row in run.epochs], "-", marker=".", color=color)
    ax.plot(epochs, recomputed[scaling][: len(epochs)], ":", marker="s", color=color)
handles = [Patch(color=f"C{i}", label=scaling) for i, scaling in enumerate(histories)]
handles += [
    plt.Line2D([], [], color="0.3", ls="--", alpha=0.5, label="train (during the epoch)"),
    plt.Line2D([], [], color="0.3", ls="-", marker=".", label="test, running averages (as fit)"),
    plt.Line2D([], [], color="0.3", ls=":", marker="s", label="test, BN statistics recomputed"),
]
ax.legend(handles=handles, fontsize=8)
plots.log_loss_axis(ax)
ax.set_xlabel("epoch")
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.grid(alpha=0.3)
ax.set_title(
    plots.titled(
        f"Small ResNet (seed {SEED}): test loss with BN's running averages\n"
        "and with the statistics recomputed",
        SOURCE,
    )
)
fig.tight_layout()
stale = {}  # [scaling]: how far the running averages' test loss is above the recomputed one
for scaling, run in histories.items():
    as_fit = [row["val_loss"] for row in run.epochs]
    stale[scaling] = [a - b for a, b in zip(as_fit, recomputed[scaling], strict=False)]
    print(
        f"{scaling:14s} test loss, running averages {[round(v, 2) for v in as_fit]}, "
        f"recomputed {[round(v, 2) for v in recomputed[scaling]]}"
    )
largest = max(max(gaps) for gaps in stale.values())
settings.key_number("largest test-loss excess of the running averages", round(largest, 2))

# %% [markdown]
# **What to notice**
# - With the statistics recomputed for each epoch's weights (dotted) the test loss falls
#   epoch by epoch, and the early jumps of the solid curves are gone: the weights were
#   fine all along; the running averages were stale. The cell also asserts the mechanism:
#   after `update_bn` on one batch, eval mode gives on that batch what training mode gives.
# - At cpu size (10,000 real images, 5 epochs) we saw this at seeds 0, 1 and 2: after
#   epoch 1 the running averages' test loss was 1.8 to 4.8, against 1.65 to 1.78
#   recomputed, for every input and seed. Raw input had the largest excess each time
#   (0.8, 1.6 and 3.0).
# - Recomputed, raw and [0, 1] input have almost the same test loss, as the training-mode
#   argument predicts; with the running averages they did not.
# - In the first epochs the recomputed test loss is even below the training loss (dashed):
#   the training loss is an average over the epoch, measured on augmented images while the
#   weights were still worse.
# - The largest jumps came in the first epochs, when the learning rate is near its peak
#   (30% into the one-cycle schedule) and the weights change most from step to step. Smaller
#   excesses lasted longer: 0.3 after epoch 4 (normalised input, seed 0), 0.6 after epoch 3
#   ([0, 1], seed 2). Only after the last epoch, the rate decayed to almost zero, did the
#   two losses agree, within 0.01 at every seed. So read a BN network's test loss at the
#   end of the schedule, or recompute the statistics first. Stochastic weight averaging
#   needs `update_bn` for the same reason: its averaged weights never had statistics of
#   their own.

# %%
# The lesson, checked on this run: an error where it was measured (cpu size, real images,
# the settings above, seeds 0-2), a line after an edit or at another size.
AS_MEASURED = SIZE == "cpu" and SOURCE == "cifar10" and SEED in (0, 1, 2) and LR == 0.2
settings.check_lesson(
    {
        "after epoch 1 the running averages' test loss is above the recomputed one by more "
        "than 0.2 for some input": max(gaps[0] for gaps in stale.values()) > 0.2,
        "after the last epoch the two agree within 0.05 for every input": all(
            abs(gaps[-1]) < 0.05 for gaps in stale.values()
        ),
    },
    AS_MEASURED,
)

# %% [markdown]
# ## Compute used by this lecture

# %%
total = compute.total
for name, pflops in compute.pflops.items():
    print(f"{name:20s} {pflops:10.3g} PFLOPs")
print(f"{'total':20s} {total:10.3g} PFLOPs of training (size {SIZE})")
print(settings.estimate(total))
settings.key_number("training PFLOPs", f"{total:.3g}")
settings.check_plan(total, PLANNED_PFLOPS)  # a Try it that adds runs gets a note

# %% [markdown]
# ## Try it
#
# The outcomes below are what we saw at cpu size on real CIFAR-10 (the course's JPEG copy,
# a 2-core CPU, 2 threads), one run each unless seeds are named: your numbers will differ.
#
# 1. **Parameters cell**: set `SEED = 1`, then `SEED = 2`, and rerun from section 3. The
#    jumps move: the largest excess after epoch 1 was 0.8 at seed 0, 1.6 at seed 1 and 3.0
#    at seed 2, with another jump in epoch 2 at seed 2 (raw input: 3.6 against 1.5
#    recomputed). Recomputed, the test loss fell every epoch at every seed.
# 2. **Parameters cell**: set `LR = 0.02` and rerun sections 3 and 4. At seed 0 raw input's
#    jump shrank (an excess of 0.3 after epoch 1 instead of 0.8), but [0, 1] input's did
#    not (0.6 after epoch 2, as at 0.2), while the whole run learned less (a final test
#    loss of 1.33-1.34 instead of 1.12-1.15). A smaller rate is no cure: in the first
#    epochs the averages still trail the weights; at the end the two agreed within 0.01.
# 3. **Section 1**: build both layers with a larger momentum, `BatchNorm2d(4, momentum=0.5)`
#    and `nn.BatchNorm2d(4, momentum=0.5)`, and rerun the cell. After five batches the
#    running variance is 8.8 (of 9), the 97% of the way that $1 - 0.5^5$ predicts, but
#    the running mean reads 1.88 (of 2): with momentum 0.5 it is made mostly of the last
#    two batches, whose means are noisy. Averages with a large momentum follow the weights
#    closely but are noisier; PyTorch's default, 0.1, is the trade-off.
#
# ## Summary
#
# - BatchNorm normalises with the batch's statistics in training mode and with running
#   averages (momentum 0.1, starting at mean 0 and variance 1) in eval mode.
# - In training mode a BN layer after the first convolution cancels the input's scale; in
#   eval mode it does so only once the averages have caught up with the weights.
# - The averages lag behind fast-changing weights, which shows as early jumps in the test
#   loss while the training loss falls smoothly. `torch.optim.swa_utils.update_bn`
#   recomputes them for the current weights, and the jumps go.
