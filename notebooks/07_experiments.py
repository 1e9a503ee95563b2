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
# # 07 · Experiments that hold up: seeds, reproducibility and sweeps
#
# Every number in the five reports comes from one training run. Train the same network a
# second time with another random seed and the accuracy moves; evaluate it on a different
# 10,000 images and it moves again. A comparison means something only when its gap is
# bigger than that movement. This lecture measures the movement, makes runs repeat exactly
# when we want them to, and then chooses hyper-parameters with a sweep that scales from one
# notebook to many machines.
#
# **What you will learn**
# - how far validation accuracy moves between seeds, and the standard error of an
#   accuracy measured on $n$ images, $\sqrt{p(1-p)/n}$;
# - a seed-paired comparison with a 95% confidence interval: is a gap bigger than the noise?
# - what each seed controls in this course, what deterministic mode changes and costs, and
#   how a run silently stops being reproducible;
# - hyper-parameter sweeps on Optuna: grid, random and TPE (Bayesian) samplers, pruning bad
#   trials after each epoch, and the plots that read a sweep; choose on validation, test once;
# - one study shared by several workers (processes, Colab sessions, machines), and resumed
#   after a dropped session.
#
# **Reports revisited** (from the course's digest of the five student reports; their numbers
# are quoted as theirs, never as ours)
# - `wang`: at about 4.9M parameters, half the channels with blocks 6/5/4/3 gave 93.87%,
#   one block per stage at full width 93.38%: a width-vs-depth finding resting on a gap of
#   0.49 points between two single runs (section 1).
# - `merabishvili`: a fixed seed for every random source and PyTorch's deterministic mode,
#   for reproducibility (section 2).
# - `pillai`: every hyper-parameter chosen with Weights & Biases sweeps (grid, random and
#   Bayesian search), with a parameter-importance plot (sections 3 and 4).
# - Lecture 04 ranked optimizers by one run each; section 1 asks whether such a ranking
#   is bigger than the noise.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
import math
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import optuna.visualization.matplotlib as optuna_plots
import pandas as pd
import seaborn as sns
import torch
from IPython.display import display
from matplotlib.ticker import NullFormatter

from course_utils import capstone, params, plots, zoo
from course_utils.config import TrainConfig
from course_utils.data import cifar10, note_if_standin
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.recipes import Recipe, get_recipe, run
from course_utils.support import cli, sweep
from course_utils.train import History, fit

device = settings.get_device()
sweep.quiet_optuna()  # no line per trial from Optuna; this notebook prints its own tables

# %% [markdown]
# ## Parameters
#
# The first line chooses the size. `"full"` (the default on a GPU) is sized for an A100: a
# ResNet-20 (the ResNet paper's CIFAR network, 0.27M parameters) trained for a few epochs,
# many times. `"cpu"` (the default without a GPU) keeps every step on real CIFAR-10 with
# few trials and small nets: networks of about 44,000 parameters trained for 4 epochs on
# 4,000 images, 5 seeds, 6 trials per sampler (provisional and not yet
# timed). Its
# accuracies are those of small networks on a subset, not of a ResNet-20 on CIFAR-10.
# `"smoke"` (CI) trains networks of about 11,000 parameters on 600 stand-in images, so the
# whole notebook runs in about two minutes. Its accuracies are near chance and say nothing
# about CIFAR-10: they are there to test the code.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
print(
    f"SIZE = {SIZE!r}: "
    + {
        "full": "ResNet-20-sized networks on CIFAR-10, on a GPU",
        "cpu": "few trials and small networks on 5,000 real CIFAR-10 images, on a CPU",
        "smoke": "CI: tiny networks on 600 images (the stand-in offline), to test the code",
    }[SIZE]
)

if SIZE == "smoke":  # CI on a CPU: tiny networks, 450 train / 150 validation images, 2 epochs
    TRAIN_IMAGES, TEST_IMAGES, VAL_SPLIT = 600, 200, 0.25
    DEEP = {"blocks": [2, 2], "widths": [8, 16]}  # narrow and deep, 11,122 parameters
    WIDE = {"blocks": [1, 1], "widths": [12, 24]}  # wide and shallow, 11,446 parameters
    EPOCHS, BATCH_SIZE = 2, 32
    SEEDS = [0, 1, 2, 3]
    TRIALS = 6  # per sampler
    TPE_STARTUP = 3  # TPE's first trials are random draws
    WORKER_TRIALS = 2  # per worker in section 4
    WORKER_FLAGS = ["--smoke", "--train-images", "400", "--batch-size", "32"]
elif SIZE == "cpu":  # provisional: sized by compute, not yet timed
    TRAIN_IMAGES, TEST_IMAGES, VAL_SPLIT = 5_000, 10_000, 0.2  # 4,000 train / 1,000 validation
    DEEP = {"blocks": [2, 2, 2], "widths": [8, 16, 32]}  # narrow and deep, 44,370 parameters
    WIDE = {"blocks": [1, 1, 1], "widths": [12, 24, 48]}  # wide and shallow, 44,230 parameters
    EPOCHS, BATCH_SIZE = 4, 128
    SEEDS = [0, 1, 2, 3, 4]
    TRIALS = 6  # per sampler
    TPE_STARTUP = 3
    WORKER_TRIALS = 2
    # the command line's small fast94 (CapstoneNet(widths=(16, 32, 32)), 2 epochs), real images
    WORKER_FLAGS = ["--smoke", "--train-images", "2000"]
else:  # full size: CIFAR-10, 45,000 train / 5,000 validation images, ResNet-20-sized nets
    TRAIN_IMAGES, TEST_IMAGES, VAL_SPLIT = 50_000, 10_000, 0.1
    DEEP = {"blocks": [3, 3, 3], "widths": [16, 32, 64]}  # ResNet-20, 272,474 parameters
    WIDE = {"blocks": [1, 1, 1], "widths": [30, 60, 120]}  # one block a stage, 271,480
    EPOCHS, BATCH_SIZE = 8, 128
    SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]
    TRIALS = 16
    TPE_STARTUP = 6
    WORKER_TRIALS = 2
    WORKER_FLAGS = ["--epochs", "2"]  # fast94's network, 2 epochs a trial
SEED = 0  # the seed of every run that is not about seeds, and of the validation split
WORKER_RECIPE = "fast94"  # what the two command-line workers of section 4 sweep
SAVE_TO_DRIVE = False  # Colab only: True keeps the studies on your Google Drive
RESUME = False  # True continues this lecture's saved studies instead of starting afresh
BASE = TrainConfig(  # the course's defaults, shortened: every run of sections 1 and 3
    optimizer="nesterov", lr=0.1, weight_decay=5e-4, schedule="onecycle", epochs=EPOCHS,
    batch_size=BATCH_SIZE, augment=("crop", "flip"), val_split=VAL_SPLIT, seed=SEED,
)  # fmt: skip
ADAM = BASE.replace(optimizer="adam", lr=1e-3)  # Adam at its usual rate (lecture 04)
# The training compute this lecture plans (the ledger prints each part; its bill at the end
# prints the total with the course's one time estimate). Pruned trials train less, so the
# plans sit below the most: at full size 7.3 PFLOPs at most (6.6 for the ResNet-20-sized
# runs, 0.7 for the two workers).
PLANNED_PFLOPS = {"smoke": 0.0012, "cpu": 0.023, "full": 6.5}[SIZE]
settings.warn_if_long(PLANNED_PFLOPS, device)

# %% [markdown]
# The data: a training set with `VAL_SPLIT` of it held out for validation (every choice in
# this lecture looks there), and a test set opened once, at the end of section 3.

# %%
full_train = cifar10("train", n=TRAIN_IMAGES, seed=SEED)
test_data = cifar10("test", source=full_train.source, n=TEST_IMAGES, seed=SEED)
train_part, val_part = full_train.holdout(VAL_SPLIT, seed=SEED)  # as recipes.run holds out
SOURCE = full_train.source  # "synthetic" titles every figure as stand-in data
val_loader = DeviceLoader(val_part, 500, train=False)
print(train_part, val_part, test_data, sep="\n")
note_if_standin(full_train, SIZE)  # at cpu or full size: how to name a real copy
ledger = params.ComputeLedger()  # training PFLOPs of every run in this lecture
assert len(val_part) == round(VAL_SPLIT * len(full_train))

# %% [markdown]
# ## 1. Seeds and noise
#
# A *seed* fixes a random number generator's starting point. One training run draws many
# random numbers: the initial weights, the order of the batches, every crop and flip. Change
# the seed and all of them change, so the trained network and its accuracy change too,
# although nothing we meant to compare did. We train one configuration with several seeds,
# on the same train and validation images, and look at the spread.
#
# A second, separate noise: an accuracy measured on $n$ images is an estimate. If the
# network classifies a fraction $p$ of all possible images correctly, the fraction it gets
# right on $n$ random images has a standard error of
#
# $$ \mathrm{SE} = \sqrt{\frac{p\,(1-p)}{n}} $$
#
# (each image is a coin flip with probability $p$). At $p = 0.94$ that is 0.34 points on
# 5,000 images (this course's validation split) and 0.24 points on the 10,000 test images.


# %%
def standard_error(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n independent images."""
    return math.sqrt(p * (1 - p) / n)


for n in (5_000, 10_000):
    print(f"SE of a 94% accuracy on {n:>6,} images: {100 * standard_error(0.94, n):.2f} points")
assert round(100 * standard_error(0.94, 5_000), 2) == 0.34
assert round(100 * standard_error(0.94, 10_000), 2) == 0.24


# %%
def train_once(config: TrainConfig, net: dict, seed: int) -> History:
    """Train a ResNet of shape ``net`` with ``config`` and ``seed`` on the train part; the
    seed is set before the network is built, so it fixes the initial weights too."""
    settings.seed_everything(seed)
    model = ResNet(**net)
    loader = DeviceLoader(train_part, config.batch_size, augment=config.augment)
    return fit(model, loader, val_loader, config, seed=seed, progress=False)


RUNS = {  # name -> (config, network); every one is trained once per seed
    "narrow-deep, nesterov": (BASE, DEEP),
    "wide-shallow, nesterov": (BASE, WIDE),
    "narrow-deep, adam": (ADAM, DEEP),
}
started = time.perf_counter()
val_acc = {name: {} for name in RUNS}
for name, (config, net) in RUNS.items():
    for seed in SEEDS:
        val_acc[name][seed] = train_once(config, net, seed).final["val_acc"]
    ledger.add(f"{name} x {len(SEEDS)} seeds", ResNet(**net), len(SEEDS) * EPOCHS * len(train_part))
print(f"{len(RUNS) * len(SEEDS)} runs in {time.perf_counter() - started:.0f} s")
accuracy = pd.DataFrame(val_acc) * 100  # rows: seeds, columns: runs; in percent
display(accuracy.round(2))

# %%
COLORS = dict(zip(RUNS, ("tab:blue", "tab:orange", "tab:green"), strict=True))
long = accuracy.melt(var_name="run", value_name="validation accuracy (%)")
fig, (ax_seeds, ax_se) = plt.subplots(1, 2, figsize=(14, 4.5), width_ratios=(1.2, 1))
sns.boxplot(long, x="validation accuracy (%)", y="run", hue="run", palette=COLORS,
            ax=ax_seeds, fliersize=0, boxprops={"alpha": 0.3})  # fmt: skip
sns.stripplot(long, x="validation accuracy (%)", y="run", hue="run", palette=COLORS,
              ax=ax_seeds, size=7, jitter=0.15)  # fmt: skip
ax_seeds.set_ylabel("")
ax_seeds.set_title(
    plots.titled(f"One configuration, {len(SEEDS)} seeds: validation accuracy", SOURCE)
)
sizes = np.logspace(2, 5, 100)
ax_se.plot(sizes, [100 * standard_error(0.94, int(n)) for n in sizes], color="black")
for n in (5_000, 10_000):
    ax_se.plot(n, 100 * standard_error(0.94, n), "o", color="black")
    se = 100 * standard_error(0.94, n)
    ax_se.annotate(f"{n:,}: {se:.2f}", (n, se), textcoords="offset points", xytext=(6, 6))
ax_se.set_xscale("log")
ax_se.set_xlabel("images evaluated (log scale)")
ax_se.set_ylabel("standard error (points)")
ax_se.set_title("Standard error of a 94% accuracy, by the number of images")
ax_se.grid(alpha=0.3, which="both")
fig.tight_layout()
plt.show()
spread = accuracy.std(ddof=1)
for name in RUNS:
    print(f"{name:<24} mean {accuracy[name].mean():6.2f}%, std over seeds {spread[name]:.2f}")
p_mean = accuracy.values.mean() / 100
print(f"SE of one accuracy on our {len(val_part):,} validation images at p = {p_mean:.2f}: "
      f"{100 * standard_error(p_mean, len(val_part)):.2f} points")  # fmt: skip

# %% [markdown]
# **What to notice**
# - The same configuration lands on a different accuracy with every seed. That spread is the
#   yardstick for every comparison: two single runs that differ by less than it tell you
#   nothing about which configuration is better.
# - Seed noise and evaluation noise add up. Every seed here is measured on the same
#   validation images; another draw of validation images would move each number again, by
#   about the standard error printed last.
# - Going from 5,000 to 10,000 evaluation images shrinks the standard error by only
#   $\sqrt{2}$; to halve it you need four times the images.
# - In smoke mode the networks are near chance on 150 validation images, and the spread is
#   about as large as that standard error (a few points): near chance, the networks of two
#   seeds get almost unrelated images right. At cpu size the spread printed is that of small
#   networks on 1,000 real validation images; the spread of a ResNet-20 on CIFAR-10 is what
#   the `full` branch of the parameters cell prints, on a GPU (nobody has run it yet).

# %% [markdown]
# ### Is a gap bigger than the noise? A seed-paired comparison
#
# To compare two configurations A and B, train both with the same seeds $s = 1 \dots K$ and
# take the difference per seed, $d_s = \mathrm{acc}_A(s) - \mathrm{acc}_B(s)$. With the
# same seed the two runs see the same batches in the same order with the same crops, so
# part of the noise cancels in $d_s$. The mean difference $\bar d$ has the standard error
# $s_d/\sqrt{K}$ ($s_d$: the standard deviation of the $d_s$), and a 95% confidence interval
#
# $$ \bar d \pm t_{K-1} \, \frac{s_d}{\sqrt{K}} $$
#
# with $t_{K-1}$ the 97.5% point of Student's $t$ distribution with $K-1$ degrees of freedom
# (2.78 for $K = 5$; it approaches 1.96 as $K$ grows). If the interval excludes 0, the gap is
# bigger than the noise at the 95% level; if it straddles 0, these seeds cannot tell A from B.

# %%
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000}  # fmt: skip


def t975(df: int) -> float:
    """Student's t 97.5% point; between tabulated values the next smaller df (wider)."""
    return T975[max(k for k in T975 if k <= df)]


def paired(a: str, b: str) -> dict:
    """Mean per-seed difference a - b (points), its standard error and 95% interval."""
    d = accuracy[a] - accuracy[b]
    se = d.std(ddof=1) / math.sqrt(len(d))
    half = t975(len(d) - 1) * se
    return {"comparison": f"{a}  minus  {b}", "mean gap": d.mean(), "SE": se,
            "95% CI": f"[{d.mean() - half:+.2f}, {d.mean() + half:+.2f}]",
            "bigger than the noise": abs(d.mean()) > half, "d": d, "sd": d.std(ddof=1)}  # fmt: skip


assert t975(4) == 2.776 and t975(100) == 2.0
comparisons = [
    paired("wide-shallow, nesterov", "narrow-deep, nesterov"),  # wang's question
    paired("narrow-deep, nesterov", "narrow-deep, adam"),  # lecture 04's question
]
display(pd.DataFrame(comparisons).drop(columns=["d", "sd"]).round(2).set_index("comparison"))

# %%
fig, ax = plt.subplots(figsize=(10, 3))
for row, result in enumerate(comparisons):
    half = t975(len(SEEDS) - 1) * result["SE"]
    ax.plot(
        result["d"], [row] * len(SEEDS), "o", color="0.6", label="one seed" if row == 0 else None
    )
    ax.errorbar(result["mean gap"], row, xerr=half, fmt="D", color="black", capsize=6,
                label="mean, 95% interval" if row == 0 else None)  # fmt: skip
ax.axvline(0, color="tab:red", lw=1, label="no difference")
ax.set_yticks(range(len(comparisons)), [c["comparison"] for c in comparisons])
ax.set_ylim(-0.6, len(comparisons) - 0.4)
ax.set_xlabel("difference in validation accuracy (points), per seed")
ax.set_title(plots.titled("Seed-paired differences and their 95% confidence intervals", SOURCE))
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - Read the interval, not the mean: a mean gap of 1 point with an interval of
#   $[-1.5, +3.5]$ is no evidence either way.
# - `wang`'s 0.49 points compare one run of each network. Measured on CIFAR-10's 10,000
#   test images, evaluation noise alone is 0.24 points for each number; if the two
#   evaluations were independent their difference would have a standard error of
#   $\sqrt{2} \times 0.24 =$ 0.34 points, and 0.49 would be 1.4 of them, inside a 95% band.
#   (On the *same* images the difference is less noisy when both networks get mostly the
#   same images wrong; a per-image comparison would measure that, and the report gives only
#   the two accuracies.) Seed noise comes on top. So two single runs cannot say whether
#   width or depth won.
# - Lecture 04 ranks optimizers by one run each. A ranking whose gaps are smaller than the
#   seed spread above is a ranking of seeds.
# - What it would take, printed below from the spread of the differences measured here: with
#   $s_d$ per seed, seeing a gap $\Delta$ needs roughly $K \ge (2 s_d / \Delta)^2$ seeds of
#   each configuration. The cost for `wang`'s two 70-epoch networks follows from their FLOPs.

# %%
with torch.device("meta"):  # shapes only: counting FLOPs needs no weights
    wang_flops = sum(
        params.training_flops(zoo.build(key), 70 * 50_000) for key in ("wang", "wang_deep")
    )
sd = comparisons[0]["sd"]
needed = math.ceil((2 * sd / 0.49) ** 2)
print(f"spread of the per-seed differences here: s_d = {sd:.2f} points ({SOURCE} data)")
print(f"seeds needed to see a 0.49-point gap with this s_d: K >= {needed}")
print(f"one seed of wang's pair (70 epochs each): {wang_flops / 1e15:.1f} PFLOPs; "
      f"K = {max(needed, 2)} pairs: {max(needed, 2) * wang_flops / 1e15:.0f} PFLOPs")  # fmt: skip
print("one seed of wang's pair is", settings.estimate(wang_flops / 1e15))

# %% [markdown]
# With the smoke-size spread (several points on 150 stand-in images) the answer is
# about a thousand seeds: meaningless for CIFAR-10, and exactly why the spread must be measured
# on the real task. At cpu size this cell prints the number for small networks on 4,000
# real images, and the `full` branch prints it for a ResNet-20 on CIFAR-10. Each seed of
# `wang`'s pair costs about 14 PFLOPs; the last line says what that is in time, in the
# course's one set of assumptions: a handful of seeds is hours of one GPU, not a cluster.

# %% [markdown]
# ## 2. Reproducibility: the same seed, the same run
#
# `merabishvili` fixed the seed of every random source and turned on PyTorch's
# deterministic mode, so that a rerun gives the same numbers. In this course one `seed` (a
# TrainConfig field) reaches every random source:
#
# | what is random | drawn by | seeded by |
# |---|---|---|
# | initial weights | the model's constructor | `seed_everything(seed)` before it is built |
# | batch order, crops, flips, cutout | the loader's generator | `fit`: `loader.set_seed(seed)` |
# | mixup's draws, dropout | torch's global generator | `fit`: `seed_everything(seed)` |
# | the validation images | `ImageData.holdout` | its `seed` (`recipes.run`: the config's) |
#
# `recipes.run` and `sweep.Objective` seed before they build the model; a notebook that
# builds its own network does it by hand, as `train_once` above does.
#
# Two runs with the same seed on a CPU are then identical bit for bit: every step loss, every
# weight. We check that, and then break it twice.

# %%
REPRO_CONFIG = BASE.replace(epochs=1)


def repro_run(
    augment=("crop", "flip"), seed_the_model: bool = True, config: TrainConfig = REPRO_CONFIG
) -> tuple[History, dict]:
    """One short run (the model seeded with SEED first, unless told not to; fit seeded
    with ``config.seed``); returns its history and final weights."""
    if seed_the_model:
        settings.seed_everything(SEED)
    model = ResNet(**DEEP)
    loader = DeviceLoader(train_part, config.batch_size, augment=list(augment))
    history = fit(model, loader, None, config, progress=False)
    return history, {k: v.clone() for k, v in model.state_dict().items()}


def identical(a: tuple[History, dict], b: tuple[History, dict]) -> bool:
    """Same loss at every step and the same final weights, bit for bit."""
    same_weights = all(torch.equal(a[1][key], b[1][key]) for key in a[1])
    return a[0].step_loss == b[0].step_loss and same_weights


first, second = repro_run(), repro_run()
print(f"two runs, seed {SEED}: {len(first[0].step_loss)} step losses, identical: "
      f"{identical(first, second)}")  # fmt: skip
if device.type == "cpu":
    assert identical(first, second), "same seed, same weights: a CPU run repeats exactly"

# %% [markdown]
# **Breaking it, 1: the model built before seeding.** `fit` seeds the loader and the global
# generator, but the weights already exist by then. A network built without seeding first
# takes whatever state the generator was left in by the previous cell:

# %%
torch.rand(1)  # anything that draws a random number in between: here, one call
unseeded = repro_run(seed_the_model=False)
print(
    f"model not seeded before it was built: identical: {identical(first, unseeded)}; "
    f"first step loss {first[0].step_loss[0]:.6f} vs {unseeded[0].step_loss[0]:.6f}"
)
assert not identical(first, unseeded)

# %% [markdown]
# **Breaking it, 2: an augmentation with its own unseeded generator.** A student's
# augmentation is a function `(images, generator) -> images` (lecture 01). The loader hands
# it a seeded `generator`; one that draws from NumPy's `default_rng()` instead takes fresh
# entropy from the operating system on every run, and `np.random.seed` does not reach it.
# The same shift drawn from the generator it is given repeats exactly. A third variant draws
# with `torch.randint` from torch's *global* generator: that happens to repeat too, because
# `fit` seeds the global generator, but its draws now share one stream with dropout and
# mixup, so changing either changes the augmentation as well.

# %%
entropy = np.random.default_rng()  # seeded from the operating system: a new stream each run


def shift_numpy(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Roll the batch sideways by -2..2 pixels, drawn from an unseeded NumPy generator."""
    return images.roll(int(entropy.integers(-2, 3)), dims=3)


def shift_seeded(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The same shift, drawn from the generator the loader passes in."""
    shift = torch.randint(-2, 3, (1,), generator=generator, device=generator.device)
    return images.roll(int(shift), dims=3)


def shift_global(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The same shift, drawn from torch's global generator (ignoring the one passed in)."""
    return images.roll(int(torch.randint(-2, 3, (1,))), dims=3)


verdicts = {}
for augmentation in (shift_numpy, shift_seeded, shift_global):
    pair = [repro_run(augment=["crop", augmentation, "flip"]) for _ in range(2)]
    verdicts[augmentation.__name__] = identical(*pair)
    print(f"{augmentation.__name__:<13} two runs identical: {verdicts[augmentation.__name__]}")
assert not verdicts["shift_numpy"] and verdicts["shift_seeded"]
if device.type == "cpu":
    assert verdicts["shift_global"]

# %% [markdown]
# ### Deterministic mode: what it changes, and what it costs
#
# A seed fixes *which* random numbers are drawn. On a GPU that is not enough: some kernels
# add up partial sums in whatever order their threads finish, and floating-point addition
# is not associative, so the last bits differ from run to run; cuDNN may also pick a
# different convolution algorithm each run by timing them (`cudnn.benchmark`).
# `settings.seed_everything(seed, deterministic=True)` seeds everything and also sets:
#
# - `torch.use_deterministic_algorithms(True)`: deterministic kernels where PyTorch has
#   them, and an error from any operation that has none;
# - `torch.backends.cudnn.benchmark = False` and `cudnn.deterministic = True`;
# - the environment variable `CUBLAS_WORKSPACE_CONFIG=:4096:8`, which cuBLAS needs for
#   deterministic matrix products.

# %%
flags = {
    "deterministic algorithms": torch.are_deterministic_algorithms_enabled,
    "cudnn.benchmark": lambda: torch.backends.cudnn.benchmark,
    "cudnn.deterministic": lambda: torch.backends.cudnn.deterministic,
    "CUBLAS_WORKSPACE_CONFIG": lambda: os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
}
before = {name: read() for name, read in flags.items()}
settings.seed_everything(SEED, deterministic=True)
after = {name: read() for name, read in flags.items()}
display(pd.DataFrame({"seed_everything(seed)": before, "...deterministic=True": after}))
assert after["deterministic algorithms"] and after["cudnn.deterministic"]
assert not after["cudnn.benchmark"] and after["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


# %%
def step_time(deterministic: bool, steps: int = 10) -> float:
    """Seconds per training step of the narrow-deep network, with or without
    deterministic algorithms (measured by hand: forward, backward, update)."""
    settings.seed_everything(SEED, deterministic=deterministic)
    model = ResNet(**DEEP).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(BATCH_SIZE, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (BATCH_SIZE,), device=device)
    for step in range(steps + 3):  # three warm-up steps
        if step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


times = {False: [], True: []}  # three timings of each, taken in turns, against drifting load
for turn in range(3):
    for deterministic in (False, True) if turn % 2 == 0 else (True, False):
        times[deterministic].append(step_time(deterministic))
fast, exact = (float(np.median(times[mode])) for mode in (False, True))
print(f"per training step on {device} (median of 3): {1e3 * fast:.1f} ms normal, "
      f"{1e3 * exact:.1f} ms deterministic ({exact / fast:.2f}x)")  # fmt: skip
settings.seed_everything(SEED, deterministic=False)  # back to the default: fast kernels

# %% [markdown]
# Does deterministic mode reach `fit`? Switch it on, train, and look again:

# %%
settings.seed_everything(SEED, deterministic=True)
fit(ResNet(**DEEP), DeviceLoader(train_part, BATCH_SIZE), None, REPRO_CONFIG, progress=False)
kept = torch.are_deterministic_algorithms_enabled()
print(f"deterministic mode after fit: {'on' if kept else 'off (fit switched it off again)'}")
assert kept  # fit seeds, but leaves the deterministic switch as you set it
settings.seed_everything(SEED, deterministic=False)
ledger.add("section 2: 10 one-epoch runs", ResNet(**DEEP), 10 * len(train_part))

# %% [markdown]
# **What to notice**
# - On a CPU the two times differ by a few percent at most, about the noise of timing a
#   shared machine: there is no cuDNN to tune, and the runs above were identical without
#   deterministic mode. Here it costs about nothing and changes nothing.
# - Expected at full size (source: PyTorch's reproducibility notes and our reasoning; not
#   measured, as no GPU has run this course), on a GPU: without deterministic mode two
#   same-seed runs differ in the last bits within the first steps, and the difference grows
#   until the final accuracies differ by about as much as two seeds do. With it, runs repeat
#   bit for bit on the same GPU model with the same software versions (not across different
#   GPUs or versions), at the price of slower kernels and no cuDNN autotuning; how much
#   slower depends on the network, so measure it with the cell above on your GPU. Some
#   operations have no deterministic CUDA kernel and raise an error in this mode (adaptive
#   max-pooling's backward, which the capstone's head uses, has been reported among them);
#   `torch.use_deterministic_algorithms(True, warn_only=True)` turns those errors into
#   warnings.
# - `fit` seeds at its start with `settings.seed_everything(config.seed)`, which seeds the
#   random generators but leaves the deterministic switch as you set it (the last printout
#   and its `assert`): switch it on once, before training, as `merabishvili` did.
# - Reproducible is not the same as right: a bit-identical run is still one seed. Seeds
#   make a run *repeatable*; section 1's spread says how far to *trust* it.

# %% [markdown]
# ## 3. Sweeps: choosing hyper-parameters on Optuna
#
# `pillai` chose every hyper-parameter with a Weights & Biases sweep, by grid, random and
# Bayesian search. The course does the same with Optuna, which runs offline and keeps its
# results in a real database. Its words:
#
# - a **study** is one sweep: a list of trials, kept in **storage** (here a SQLite file);
# - a **trial** trains once with settings drawn from the **search space** and returns one
#   number to maximise: the validation accuracy after the last epoch (never a test number);
# - a **sampler** draws each trial's settings:
#   - *grid*: every combination of a few values per setting (here 3 per setting, $3^4 = 81$
#     combinations, visited in shuffled order);
#   - *random*: each setting drawn independently from its range;
#   - *TPE* (Tree-structured Parzen Estimator, a Bayesian method): after a few random trials
#     it splits the finished trials into the best few and the rest, models the settings of
#     each group as densities $\ell(x)$ and $g(x)$, draws candidates from $\ell$ and keeps
#     the one where $\ell(x)/g(x)$ is largest: near settings that worked, away from those
#     that did not;
# - a **pruner** stops a trial that is clearly behind: after each epoch the trial reports
#   its validation accuracy, and the *median* pruner stops it if that is below the median
#   of the earlier trials at the same epoch.
#
# `sweep.default_space` states each recipe's search space in one place (the command line's
# `sweep --help` prints them all): the learning rate log-uniform from a quarter to four
# times the recipe's, weight decay log-uniform a factor 10 either side, label smoothing
# uniform in [0, 0.3], and the batch size halved, kept or doubled.

# %%
BASE_RECIPE = Recipe("lecture07", model="", config=BASE, source="lecture 07's base config")
space = sweep.default_space(BASE_RECIPE)  # or sweep.search_space({...}) with your own ranges
for line in sweep.describe_space(space):
    print(line)
objective = sweep.Objective(BASE_RECIPE, full_train, space=space, model=lambda: ResNet(**DEEP))
assert len(objective.val_part) == len(val_part)  # the same held-out images as section 1
assert torch.equal(objective.val_part.labels, val_part.labels)

# %% [markdown]
# Where the studies live: `runs/07_experiments/sweeps.db` under the working folder, or on
# Colab with `SAVE_TO_DRIVE = True` on your Google Drive, so that a dropped session loses
# nothing. Unless `RESUME = True`, each run of this notebook starts its studies afresh.

# %%
run_dir = Path("runs") / "07_experiments"
if SAVE_TO_DRIVE and settings.in_colab():
    from google.colab import drive

    drive.mount("/content/drive")
    run_dir = Path("/content/drive/MyDrive/cifar10-course/07_experiments")
run_dir.mkdir(parents=True, exist_ok=True)
database = run_dir / "sweeps.db"
if not RESUME:
    database.unlink(missing_ok=True)
STORAGE = f"sqlite:///{database}"
print("studies in", sweep.where(STORAGE))

# %% [markdown]
# The sweep itself: the same search space, objective and trial budget for each sampler.
# `open_study` creates the study or, if it exists, opens it; the loop then tops each study
# up to `TRIALS` finished trials. That makes this cell safe to rerun: after a dropped
# session (with `RESUME = True`) it only runs the trials still missing. To show that, the
# TPE study is run in two
# halves, and between them everything in this Python session that refers to it is thrown
# away, as a dropped session would.


# %%
def open_sampler_study(sampler: str) -> optuna.Study:
    """The study of one sampler: median pruning once 3 trials have finished."""
    return sweep.open_study(f"lecture07-{sampler}", objective, STORAGE, sampler=sampler,
                            seed=SEED, startup_trials=TPE_STARTUP,
                            pruner=sweep.make_pruner("median", startup_trials=3))  # fmt: skip


def top_up(study: optuna.Study, total: int) -> list:
    """Run the trials the study still needs to reach ``total`` finished ones."""
    missing = total - len(sweep.finished_trials(study))
    return sweep.add_trials(study, objective, missing)


studies, seconds, added = {}, {}, {}
for sampler in sweep.SAMPLERS:
    started = time.perf_counter()
    study = open_sampler_study(sampler)
    if sampler == "tpe":  # the first half, then a "dropped session"
        added[sampler] = top_up(study, TRIALS // 2)
        del study
        study = open_sampler_study(sampler)  # a new session opens the same study
        print(f"tpe: reopened with {len(study.trials)} trials, adding the rest")
    added[sampler] = added.get(sampler, []) + top_up(study, TRIALS)
    studies[sampler], seconds[sampler] = study, time.perf_counter() - started
    images = sum(trial.user_attrs.get("train_images", 0) for trial in added[sampler])
    ledger.add(f"sweep, {sampler} sampler", ResNet(**DEEP), images)
assert all(len(sweep.finished_trials(study)) == TRIALS for study in studies.values())
assert [t.number for t in studies["tpe"].trials] == list(range(TRIALS))  # numbering went on

# %%
rows = {}
for sampler, study in studies.items():
    table = sweep.trials_table(study)
    complete = table[table.state == "complete"]
    rows[sampler] = {
        "trials": len(table),
        "complete": len(complete),
        "pruned": int((table.state == "pruned").sum()),
        "epochs trained": int(table.epochs.sum()),
        "best val_acc (%)": 100 * study.best_value,
        "distinct lr values": table.lr.nunique(),
        "seconds": round(seconds[sampler]),
    }
comparison = pd.DataFrame(rows).T
display(comparison)
print(f"the grid has {math.prod(len(d.grid) for d in space.values())} combinations")
display(sweep.trials_table(studies["tpe"]).drop(columns=["worker"]).round(4))
assert comparison.loc["grid", "distinct lr values"] <= 3  # a grid tries 3 rates at most
assert math.prod(len(d.grid) for d in space.values()) == 3 ** len(space)

# %% [markdown]
# Three plots read a sweep. Optuna draws them with matplotlib
# (`optuna.visualization.matplotlib`) in its own "ggplot" style; `plt.rc_context()` keeps
# that style inside each cell. The titles below add the data source.
#
# **Optimization history:** each trial's validation accuracy (dots) and the best so far
# (line), one colour per sampler. Pruned trials have no final value and are not drawn.

# %%
SAMPLER_COLORS = {"grid": "tab:blue", "random": "tab:orange", "tpe": "tab:green"}
with plt.rc_context():
    ax = optuna_plots.plot_optimization_history(
        list(studies.values()), target_name="validation accuracy"
    )
    for artist in [*ax.collections, *ax.lines]:  # Optuna colours dots and line apart
        for sampler, color in SAMPLER_COLORS.items():
            if artist.get_label().endswith(f"lecture07-{sampler}"):
                artist.set_color(color)
                artist.set_alpha(1.0)
    handles = [a for a in [*ax.collections, *ax.lines] if "lecture07-" in a.get_label()]
    labels = [
        f"{a.get_label().rsplit('-', 1)[1]}: {'best so far' if a in ax.lines else 'a trial'}"
        for a in handles
    ]
    ax.legend(handles, labels, bbox_to_anchor=(1.02, 1.0), loc="upper left")
    ax.set_title(plots.titled("Optimization history: grid, random and TPE, same budget", SOURCE))
    ax.figure.set_size_inches(10, 4.5)
    plt.show()

# %% [markdown]
# **Parameter importance** (the plot `pillai` showed): how much each setting matters for
# reaching the best quarter of the trials, pooled over all three studies' completed
# trials. `sweep.importance_evaluator()` is Optuna's PED-ANOVA, which needs only NumPy
# (Optuna's fANOVA evaluator would need scikit-learn). With tens of trials the ranking is
# itself noisy.

# %%
pooled = optuna.create_study(direction="maximize", study_name="all three samplers")
pooled.add_trials([t for s in studies.values() for t in s.trials if t.state.name == "COMPLETE"])
importance = optuna.importance.get_param_importances(pooled, evaluator=sweep.importance_evaluator())
print({name: round(value, 3) for name, value in importance.items()})
with plt.rc_context():
    ax = optuna_plots.plot_param_importances(pooled, evaluator=sweep.importance_evaluator())
    ax.set_title("", loc="left")  # Optuna's own title
    ax.set_title(plots.titled("Parameter importance (PED-ANOVA), all completed trials", SOURCE))
    ax.get_legend().remove()
    ax.set_xlabel("importance (sums to 1)")
    ax.set_ylabel("")
    ax.figure.set_size_inches(8, 3.5)
    plt.show()
assert math.isclose(sum(importance.values()), 1.0) and set(importance) == set(space)

# %% [markdown]
# **Slice plot:** validation accuracy against each setting, one panel per setting, for the
# TPE study; the colour is the trial number (light: early, dark: late), so you can see
# where TPE moved to. (A contour plot of two settings at once, `plot_contour`, needs SciPy,
# which the course does not install.)

# %%
with plt.rc_context():
    axes = optuna_plots.plot_slice(studies["tpe"], target_name="validation accuracy")
    for ax in np.ravel(axes):  # log axes: two plain labels, not one per minor tick
        if ax.get_xscale() == "log":  # (those overlapped on lr and weight_decay)
            ticks = np.geomspace(*ax.get_xlim(), 4)[1:-1]
            ax.set_xticks(ticks, [f"{tick:.2g}" for tick in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
    figure = np.ravel(axes)[0].figure
    figure.set_size_inches(15, 4)
    figure.suptitle(plots.titled("Slice plot of the TPE study", SOURCE), y=1.02)
    plt.show()

# %% [markdown]
# **What to notice**
# - The grid tried at most three learning rates, however many trials it ran; random and TPE
#   tried a new one each trial. When one setting matters far more than the others (the
#   learning rate usually does), random search explores it better at the same budget
#   (Bergstra and Bengio, 2012).
# - Pruned trials stopped after an epoch or two and cost only those epochs ("epochs
#   trained" in the table): the budget went to the promising ones. The median pruner can
#   also stop a slow starter that would have caught up; `warmup_epochs` in
#   `sweep.make_pruner` protects the first epochs.
# - TPE's first `TPE_STARTUP` trials are random draws, and with the same seed they are
#   exactly the random sampler's first trials: those dots coincide in the history plot (and
#   so do the best-so-far lines until one of the two finds something better), a paired
#   start. After them TPE concentrates near the best settings so far (the slice
#   plot's late, dark dots).
# - Each sampler ran once: the comparison of the three is itself a single-seed result, as
#   noisy as section 1 warned. In smoke mode every value is near chance on stand-in data,
#   so the best sampler is an accident. At cpu size TPE has only 3 trials after its 3
#   random start-up ones, so it has barely begun to model anything; the `full` branch of
#   the parameters cell (16 trials, 6 start-up) gives it more room.

# %% [markdown]
# ### Choose on validation, test once
#
# The best trial, by validation accuracy, over all three studies, becomes a recipe; we
# train it once more (`recipes.run`, with the same seed and the same validation split) and
# only now open the test set, once. On a CPU the retrained run repeats the trial bit for
# bit, so its validation accuracy is the trial's exactly.

# %%
winner = max(studies, key=lambda sampler: studies[sampler].best_value)
best = sweep.best_recipe(studies[winner], BASE_RECIPE)
print(f"best trial: {winner} study, trial {studies[winner].best_trial.number}")
print("its settings:", {key: round(value, 5) for key, value in studies[winner].best_params.items()})
settings.seed_everything(best.config.seed)
result = run(best, full_train, test_data, model=ResNet(**DEEP), progress=False)
ledger.add("the chosen settings, trained again", result.model, EPOCHS * len(train_part))
print(f"validation accuracy: {result.history.final['val_acc']:.2%} (the trial: "
      f"{studies[winner].best_value:.2%})")  # fmt: skip
print(f"test accuracy, evaluated once: {result.test.accuracy:.2%} on {len(result.test.targets):,} "
      f"images ({'stand-in data' if SOURCE == 'synthetic' else SOURCE}"
      f"{'; ' + settings.dry_run_note() if settings.MAX_STEPS else ''})")  # fmt: skip
if device.type == "cpu":
    assert result.history.final["val_acc"] == studies[winner].best_value
assert result.history.eval_split == "validation" and result.history.test["split"] == "test"

# %% [markdown]
# The test accuracy is the one number to report, with its standard error: for 10,000 test
# images about a quarter of a point. The best trial's validation accuracy is a little
# optimistic by construction: it is the maximum over many trials, each a noisy estimate, so
# it was picked partly for its luck. That is why it is not the number to report.

# %% [markdown]
# ## 4. Beyond one machine: many workers, one study
#
# A study in shared storage can be worked on by any number of *workers* at once: each asks
# the storage for the next trial, trains it, and writes the result back, so the workers
# share one history (and TPE learns from all of it). Which storage, where:
#
# | storage | `--storage` | for |
# |---|---|---|
# | SQLite file | `sqlite:///runs/sweeps.db` (the default) | one machine, a few processes |
# | journal file | `runs/sweeps.log` (a path ending in `.log`) | one shared file system (NFS) |
# | database server | `postgresql://USER:PASSWORD@HOST/DB` | many machines, a whole class |
#
# A database server (an instructor's PostgreSQL, say) needs its Python driver on every
# worker (`pip install psycopg[binary]`); SQLite and journal files need nothing.
#
# On Colab, two sessions can point at one journal file on Google Drive, each running the
# same `sweep` command. That is a convenience with a caveat: Drive copies files between
# machines with a delay and does not share file locks, so two sessions writing at the same
# moment can lose each other's trials. Not tested here; for more than a demo, use a
# database server.
#
# Here the two workers are two processes on this machine, each running the command line
# (the same command you would type in two terminals or two Colab sessions), on one journal
# file. Each adds `WORKER_TRIALS` trials of the `fast94` recipe's default search space.

# %%
journal = run_dir / "two-workers.log"
for file in (journal, journal.with_name(journal.name + ".lock")):
    file.unlink(missing_ok=True)  # a fresh journal for this demonstration
data_flag = "synthetic" if SOURCE == "synthetic" else "auto"
command = [sys.executable, "-m", "course_utils", "sweep", "--recipe", WORKER_RECIPE,
           "--trials", str(WORKER_TRIALS), "--storage", str(journal.resolve()),
           "--study", "two-workers", "--sampler", "random", "--data", data_flag,
           "--no-progress", *WORKER_FLAGS]  # fmt: skip
print("each worker runs:", " ".join(command[1:]))
started = time.perf_counter()
workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for _ in range(2)]  # fmt: skip
outputs = [worker.communicate()[0] for worker in workers]
print(f"both finished in {time.perf_counter() - started:.0f} s\n")
for number, output in enumerate(outputs, 1):
    print(f"--- worker {number}, its last lines:")
    print("\n".join(output.strip().splitlines()[-5:-1]))
assert all(worker.returncode == 0 for worker in workers), outputs

# %%
shared = sweep.load_study("two-workers", str(journal))
table = sweep.trials_table(shared)
display(table.drop(columns=["seconds"]).round(4))
numbers = sorted(table.index)
per_worker = table.worker.value_counts()
print(f"{len(table)} trials, numbers {numbers}, trials per worker: {per_worker.tolist()}")
assert numbers == list(range(2 * WORKER_TRIALS)), "every trial once, none twice"
assert sorted(per_worker.tolist()) == [WORKER_TRIALS, WORKER_TRIALS]
assert set(table.state) <= {"complete", "pruned"}
with torch.device("meta"):
    worker_model = zoo.build(get_recipe(WORKER_RECIPE).model)
if "--smoke" in WORKER_FLAGS:  # the command line's small fast94 (printed by the workers)
    worker_model = capstone.CapstoneNet(widths=cli.SMOKE_CAPSTONE_WIDTHS)
worker_images = sum(trial.user_attrs.get("train_images", 0) for trial in shared.trials)
ledger.add("two workers, command line", worker_model, worker_images)

# %% [markdown]
# **What to notice**
# - The trial numbers run 0, 1, 2, ... across both workers, each number once: the storage
#   hands out trials, so two workers never run the same one. The `worker` column shows who
#   ran which.
# - The workers use the random sampler *unseeded*: two workers with the same seed would draw
#   the same settings. The command line leaves `--sampler-seed` unset for that reason.
# - A grid sampler shared by workers can run a configuration twice: a grid point counts as
#   done only when its trial has finished, so two workers starting at the same moment may
#   both take it, and a worker that finds the grid used up re-runs one. Optuna documents
#   both; the total can exceed the grid's size.
# - A dropped session resumes by running the same command again: `open_study` opens the
#   existing study (Optuna's `load_if_exists`) and the new trials continue its numbering, as
#   the TPE study did in section 3. The drop costs the trial that was running, never the
#   finished ones. In a database storage (SQLite, as in section 3, or a server) a running
#   trial writes a heartbeat every minute (`sweep.HEARTBEAT_SECONDS`); three minutes after
#   the last one (`sweep.GRACE_SECONDS`), the next worker to start a trial marks it failed
#   and runs it again from its first epoch with the same settings, so the epochs it had
#   trained are paid twice. A journal file has no heartbeat in Optuna: there the dead trial
#   stays "running" and is not run again (`sweep.finished_trials` leaves it out, so a
#   top-up to a budget still counts right).
# - A study records the setup it was created for (recipe, config, model, space, data) and
#   refuses a worker with another one, so two different sweeps never mix in one study.

# %% [markdown]
# ## The compute bill of this lecture

# %%
for name, pflops in ledger.pflops.items():
    print(f"{name:<40} {pflops:9.3g} PFLOPs")
print(f"{'total':<40} {ledger.total:9.3g} PFLOPs")
print(settings.estimate(ledger.total))
settings.key_number("training PFLOPs", round(ledger.total, 4))
if SIZE != "smoke":
    assert ledger.total <= 10, f"this lecture trained {ledger.total:.1f} PFLOPs, over 10"
# Every run is counted as epochs x training images (a pruned trial: the epochs it ran), so
# the plan holds in a dry run too, where each epoch trains only its first batches.
settings.check_plan(ledger.total, PLANNED_PFLOPS)  # a Try it that adds runs gets a note

# %% [markdown]
# ## Try it
#
# 1. **More seeds.** In the parameters cell set `SEEDS = list(range(8))` (in the branch of your
#    size) and rerun section 1. The intervals narrow roughly as $1/\sqrt{K}$, and the $t$ value
#    shrinks too, from 3.18 at $K = 4$ (the smoke size's seeds) to 2.36 at $K = 8$. In smoke mode
#    the wide-shallow minus narrow-deep interval came out about half as wide, and still straddled 0.
# 2. **Another seed for `fit` only.** In a new cell after section 2's first check, run
#    `other = repro_run(config=REPRO_CONFIG.replace(seed=1))`, then
#    `identical(first, other)` and compare `first[0].step_loss[0]` with
#    `other[0].step_loss[0]`. The model was seeded with `SEED` as before, so the weights
#    started the same, but `fit`'s seed chose other batches and crops: the runs differ from
#    the very first step.
# 3. **A fifth setting.** Sweep mixup as well: after `space = ...` in section 3 add
#    `space |= sweep.search_space({"mixup": [0.0, 0.2, 1.0]})` and rerun from there. The
#    grid grows to $3^5 = 243$ combinations and the importance plot gets a fifth bar. With
#    `RESUME = True` the saved studies refuse instead, in one line ("was created for another
#    sweep (different space)"): trials of two search spaces never mix in one study.
# 4. **Successive halving.** In `open_sampler_study` use `sweep.make_pruner("halving")`
#    instead of the median pruner and rerun section 3: only the top third of each rung goes
#    on, so more trials stop after epoch 1 (in smoke mode 3 or 4 of 6 per sampler instead
#    of 2).
# 5. **Your own workers.** In two terminals at once, run `python -m course_utils sweep
#    --recipe fast94 --trials 2 --storage runs/my.log --smoke`; when both are done, run it
#    once more. The third run starts with "4 trial(s) so far" and its trials are numbered 4
#    and 5.

# %% [markdown]
# ## Summary
#
# - A single run is one draw. Its seed moves the accuracy, and so does the evaluation set:
#   $\sqrt{p(1-p)/n}$ is 0.24 points for 94% on 10,000 images. A gap means something only if
#   a seed-paired 95% interval excludes zero; `wang`'s 0.49 points between two single runs
#   does not get there, and neither does a one-run ranking of optimizers.
# - One `seed` drives initial weights (seed before building), batch order and augmentation
#   (the loader's generator), mixup and dropout (torch's global generator); then a CPU run
#   repeats bit for bit. It breaks when the model is built unseeded or a random source
#   bypasses the seeded generators. Deterministic mode matters on GPUs, where it costs
#   speed; on a CPU it changes nothing.
# - A sweep is an Optuna study: a sampler (grid, random, TPE) draws settings, each trial is
#   scored on validation, a pruner stops laggards after an epoch. Read it with the history,
#   importance and slice plots; retrain the winner and test it once.
# - Shared storage (SQLite, a journal file, a database server) lets any number of workers
#   add trials to one study without repeating one, and lets a dropped session resume it.
