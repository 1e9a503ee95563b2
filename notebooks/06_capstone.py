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
# `fast94`: a residual network of 4.2M parameters, trained in about 2.7 PFLOPs, aiming at
# 94% test accuracy on CIFAR-10. The five student reports needed 6.9 (`wang`) to 88 (`rout`)
# PFLOPs and 30 minutes to hours for 87-94%. And we evaluate the way a result should be
# evaluated: every choice *this notebook* makes is made on a validation split, and the test
# set is touched once, at the end. One exception is inherited and we say it plainly:
# `fast94`'s hyper-parameters come from David Page's DAWNBench runs, whose "valid" set was
# the CIFAR-10 test set. So the recipe itself was tuned on the test set, and a 94% from it
# is slightly optimistic, by an amount we have not measured.
#
# **What you will learn**
# - how to hold out a validation split, and why the test set is opened only once;
# - the budget arithmetic of a run: parameters, FLOPs per image, training PFLOPs;
# - the `fast94` recipe, ingredient by ingredient, and why each one is there;
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
# **Our target: 94% on real CIFAR-10 within 3 PFLOPs of training.** It is a target, not a
# result, until someone runs the full recipe on a GPU and measures it. Without a GPU this
# notebook runs at **cpu size**: a thin ResNet-9 trained on a subset of real CIFAR-10 in a few
# minutes, a CPU-size stand-in for the capstone run; its accuracy is that small run's, not
# `fast94`'s. At smoke size (CI) it trains a narrowed network for two epochs, and wherever
# CIFAR-10 cannot be found (CI included) it trains and tests on a **synthetic stand-in** of
# made-up shapes. Every accuracy it prints there is a stand-in number and says so; none of
# them says anything about CIFAR-10.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from torch import nn

from course_utils import models, params, plots, recipes, zoo
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, cifar10, note_if_standin
from course_utils.loader import DeviceLoader
from course_utils.params import bn_params, conv_params, linear_params
from course_utils.support import checkpoint
from course_utils.train import Evaluation, History, evaluate, fit, predict

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# The first line chooses the size. `"full"` (the default on a GPU) is the `fast94` recipe
# exactly as `python -m course_utils train --recipe fast94` runs it. `"cpu"` (the default
# without a GPU) is a **CPU-size stand-in for the capstone run**: every ingredient of the
# recipe on real CIFAR-10, but a thin ResNet-9 (a quarter of the widths, a sixteenth of the
# compute per image) on 9,000 training images (1,000 more for validation) for 16 epochs
# (provisional and not yet timed; thin nets run slower per FLOP on a
# CPU than the estimate assumes, so expect more than the printed minutes). `"smoke"` (CI)
# shrinks the data, the widths and the epochs further, onto the synthetic stand-in where
# CIFAR-10 is missing, so the whole notebook runs in about a minute.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
print(
    f"SIZE = {SIZE!r}: "
    + {
        "full": "the fast94 recipe as designed, on a GPU",
        "cpu": "a CPU-size stand-in for the capstone run: a thin ResNet-9 on real CIFAR-10",
        "smoke": "CI: a thin ResNet-9 for two epochs on 2,000 images (the stand-in offline)",
    }[SIZE]
)

RECIPE = recipes.get_recipe("fast94")
if SIZE == "smoke":  # CI on a CPU: 2,000 training images, a thin ResNet-9, two epochs
    recipe = RECIPE.replace(epochs=2, batch_size=128)
    TRAIN_IMAGES, TEST_IMAGES = 2_000, 500
    WIDTHS = (16, 32, 64, 96)  # stem and the three stages of the ResNet-9
    YOUR_WIDTHS = (8, 16, 32, 48)  # the "your turn" model: half the widths again
elif SIZE == "cpu":  # provisional: sized by compute, not yet timed
    recipe = RECIPE.replace(epochs=16, batch_size=256)  # 9,000 train + 1,000 validation
    TRAIN_IMAGES, TEST_IMAGES = 10_000, 10_000
    WIDTHS = (16, 32, 64, 96)  # a thin ResNet-9: a CPU-size stand-in for the capstone
    YOUR_WIDTHS = (8, 16, 32, 48)  # half the widths again
else:  # the recipe unchanged: 45,000 training + 5,000 validation images, 30 epochs
    recipe = RECIPE
    TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
    WIDTHS = (64, 128, 256, 384)  # the capstone network, 4.2M parameters
    YOUR_WIDTHS = (32, 64, 128, 192)  # half the widths: a quarter of the parameters
EVAL_BATCH = 500  # images per batch when evaluating (no gradients: memory is no issue)
SEED = recipe.config.seed  # 0: the recipe's one seed (initial weights, batches, augmentation)
BUDGET = zoo.BUDGET  # fewer than 5,000,000 trainable parameters
MAX_TRAINING_PFLOPS = 3.0  # the capstone's compute budget for one training run
SAVE_TO_DRIVE = False  # Colab only: True keeps the checkpoints on your Google Drive
RESUME = False  # True continues the run saved in its folder (after a dropped Colab session)
OVERWRITE = SIZE != "full"  # True replaces a finished run in its folder; a full run is kept
# The training compute this lecture plans (the capstone run + your turn, from the ledger):
# its bill at the end prints it with the course's one time estimate.
PLANNED_PFLOPS = {"smoke": 0.00056, "cpu": 0.0226, "full": 3.32}[SIZE]
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
# That discipline covers the choices made *here*. The recipe's settings (learning rate,
# schedule, cutout size, label smoothing) were chosen by Page, and his "valid" set was the
# CIFAR-10 test set. We did not re-tune them on a validation split, so our final test
# number inherits a little of that choice.

# %%
full_train = cifar10("train", n=TRAIN_IMAGES, seed=SEED)
test_data = cifar10("test", source=full_train.source, n=TEST_IMAGES, seed=SEED)
note_if_standin(full_train, SIZE)  # at cpu or full size: how to name a real copy
# The split recipes.run makes in section 4: the same fraction and seed hold out the same images.
train_data, val_data = full_train.holdout(recipe.config.val_split, seed=SEED)
NOTE = plots.source_note(full_train.source)  # "synthetic stand-in data", or None
SOURCE = "CIFAR-10" if full_train.source == "cifar10" else "synthetic stand-in, NOT CIFAR-10"

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
# each batch is augmented there in a few tensor operations: a random crop of the image
# padded by 4 mirrored pixels, a horizontal flip, and an 8x8 *cutout* (a square set to the
# mean colour, grey below). This is one batch as the network sees it:

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
title = "A training batch: reflect-padded crop, flip, 8x8 cutout"
fig.suptitle(plots.titled(title, full_train.source), fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The model, and what it costs
#
# The capstone network is the ResNet-9 layout that fast-training work made famous (Page's
# DAWNBench runs, 2018), with the last stage narrowed from 512 to 384 channels to fit 5M:
#
# ```
# stem     3x3 conv   3 -> 64    BN ReLU                       32x32
# stage 1  3x3 conv  64 -> 128   BN ReLU, 2x2 max-pool          16x16
#          residual: x + 2 x (3x3 conv 128 -> 128, BN, ReLU)
# stage 2  3x3 conv 128 -> 256   BN ReLU, 2x2 max-pool           8x8
# stage 3  3x3 conv 256 -> 384   BN ReLU, 2x2 max-pool           4x4
#          residual: x + 2 x (3x3 conv 384 -> 384, BN, ReLU)
# head     global max-pool, Linear(384, 10), logits x 0.125
# ```
#
# Only 8 convolutions: few layers, wide ones, shrinking fast. That keeps a GPU busy and
# makes each epoch cheap. The cost of a run is one line of arithmetic:
#
# $$ \text{training FLOPs} \approx 3 \times \underbrace{F}_{\text{forward FLOPs / image}}
# \times \underbrace{E}_{\text{epochs}} \times \underbrace{N}_{\text{training images}} $$
#
# (the backward pass costs about twice the forward). The budget check runs first: a model
# at or over 5M parameters stops here with the largest layers named.


# %%
def resnet9_params(widths: tuple[int, int, int, int], num_classes: int = 10) -> int:
    """Parameters of a ResNet-9 from lecture 03's formulas: 8 convs with BN, one linear."""
    stem, w1, w2, w3 = widths
    convs = [(3, stem), (stem, w1), (w1, w1), (w1, w1), (w1, w2), (w2, w3), (w3, w3), (w3, w3)]
    total = sum(conv_params(3, c_in, c_out) + bn_params(c_out) for c_in, c_out in convs)
    return total + linear_params(w3, num_classes)


settings.seed_everything(SEED)
model = models.ResNet9(widths=WIDTHS)
n_params = params.check_budget(model, BUDGET)  # raises BudgetExceededError at 5M or more
assert n_params == resnet9_params(WIDTHS), "the count disagrees with lecture 03's formulas"

forward_flops = params.flops(model)
planned_pflops = params.training_flops(model, recipe.config.epochs * len(train_data)) / 1e15
print(f"model:           ResNet9{WIDTHS}, {n_params:,} trainable parameters (< {BUDGET:,})")
print(f"forward cost:    {forward_flops / 1e9:.3f} GFLOPs per 32x32 image")
print(
    f"training cost:   3 x {forward_flops / 1e9:.3f} GFLOPs x {recipe.config.epochs} epochs x "
    f"{len(train_data):,} images = {planned_pflops:.4f} PFLOPs"
)

with torch.device("meta"):  # the full-size capstone, shapes only, to show its budget in CI too
    capstone = zoo.build(RECIPE.model)
capstone_params = params.count_parameters(capstone)
FULL_TRAIN_PART = 50_000 - round(RECIPE.config.val_split * 50_000)  # 45,000 images
capstone_pflops = params.training_flops(capstone, RECIPE.config.epochs * FULL_TRAIN_PART) / 1e15
print(f"full fast94:     {capstone_params:,} parameters, {capstone_pflops:.2f} PFLOPs of training")
assert capstone_params == resnet9_params((64, 128, 256, 384)) < BUDGET
assert capstone_pflops <= MAX_TRAINING_PFLOPS
if SIZE != "smoke":
    assert planned_pflops <= MAX_TRAINING_PFLOPS, f"{planned_pflops:.2f} PFLOPs is over budget"

# %% [markdown]
# **What to notice**
# - The capstone uses 84% of the parameter budget, less than any report (all five sit above
#   98%). Parameters were never the bottleneck; compute and recipe are.
# - Its forward pass costs about as much as `wang`'s model (0.65 GFLOPs per image) and
#   40% of `pillai`'s or `merabishvili`'s, so 30 epochs come to about 2.7 PFLOPs.

# %% [markdown]
# ## 3. The recipe, ingredient by ingredient
#
# The table below lists every ingredient with the setting `fast94` uses (read from the
# recipe object itself) and one line of why.
#
# Label smoothing with $\varepsilon = 0.2$ over $K = 10$ classes trains towards
# $q = (1-\varepsilon)\,\text{onehot}(y) + \varepsilon / K$, and flip TTA predicts with
# $p(y \mid x) = \tfrac12\big[\text{softmax}(f(x)) + \text{softmax}(f(\text{flip}(x)))\big]$.
# The recipe carries its own source note:

# %%
print(RECIPE.source)
r, warmup = RECIPE.config, RECIPE.config.schedule_kwargs["pct_start"]
steps = {spec if isinstance(spec, str) else spec["name"]: spec for spec in r.augment}
crop, cut = steps["crop"], steps["cutout"]
ingredients = [
    ("network", f"ResNet-9, {capstone_params / 1e6:.1f}M parameters, logits x 0.125",
     "few, wide layers keep a GPU busy; scaled-down logits keep early training calm"),
    ("data on the device", "the whole set on the GPU as uint8, augmented per batch",
     "no CPU DataLoader in the way (wang's notebook was CPU-bound at ~750 images/s)"),
    ("augmentation", f"{crop['padding_mode']} pad {crop['padding']} + crop, flip, "
     f"{cut['size']}x{cut['size']} cutout",
     "shifts and mirrors are free new images; cutout forces the whole object"),
    ("large batches", f"{r.batch_size} images", "fewer, larger steps keep a GPU busy"),
    ("one-cycle schedule", f"lr linear up to {r.lr} over {warmup:.0%} of steps, then to 0",
     "the warm-up lets a large lr start safely; the long decay settles the weights"),
    ("SGD, Nesterov momentum", f"momentum {r.momentum}, weight decay {r.weight_decay}",
     "the proven optimizer for CIFAR ResNets; Nesterov is steadier at a high lr"),
    ("label smoothing", f"epsilon {r.label_smoothing}",
     "soft targets (0.82 / 0.02 instead of 1 / 0): less over-confidence"),
    ("bf16 autocast + channels_last", "on a GPU: automatic in fit (fp16 on a T4 or V100)",
     "half the memory traffic, and on an A100 about 2x the tensor-core peak (312 vs 156 "
     "TFLOP/s dense; fp32 convolutions already run as TF32); channels_last suits those kernels"),
    ("flip test-time augmentation", "on" if r.tta else "off",
     "average an image and its mirror: one extra forward pass, no training cost"),
    ("validation split", f"{r.val_split:.0%} of the training set",
     "our choices are made on it, the test set stays unseen until the end (Page tuned "
     "these settings on the test set)"),
    ("EMA of the weights (optional)", "off" if r.ema is None else f"decay {r.ema}",
     "a smoothed average of recent weights; try it in Your turn"),
]  # fmt: skip
table = pd.DataFrame(ingredients, columns=["ingredient", "setting in fast94", "why"])
with pd.option_context("display.max_colwidth", None):
    display(table.set_index("ingredient"))

changed = RECIPE.config.differences(recipe.config)  # ["epochs: 30 -> 2", ...]
print("this run changes:", ", ".join(changed) or "nothing")
assert r.label_smoothing == 0.2 and r.optimizer == "nesterov" and r.tta and r.ema is None
assert {line.split(":")[0] for line in changed} <= {"epochs", "batch_size"}

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
#    `checkpoint.pt` after each (on a GPU with bf16 autocast, fp16 on a T4 or V100, and
#    channels_last; on a CPU with neither);
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
    f"wall-clock: {wall_seconds:.1f} s in recipes.run ({history.final['elapsed']:.1f} s "
    f"training, {trained_images / history.final['elapsed']:,.0f} images/s on {device})"
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
# - The learning rate climbs for the first 20% of the steps and then falls in a straight
#   line to zero. Expected at full size (source: our reasoning): the biggest gains in
#   validation accuracy come as it falls.
# - Train accuracy is measured on augmented images (cropped, cut out) under a moving model,
#   so it can sit *below* validation accuracy early on; that is not a bug.
# - Label smoothing keeps the *train* loss well above zero even for a perfect classifier:
#   with $\varepsilon = 0.2$ the best reachable value is the entropy of the smoothed target,
#   $-0.82 \ln 0.82 - 9 \times 0.02 \ln 0.02 \approx 0.87$, not 0.

# %% [markdown]
# ## 5. Evaluate once on the test set
#
# Training is over. The recipe also fixed how to predict: with flip TTA (Page's choice,
# like the recipe's other settings). That is a choice too, so we look at what it does on the
# validation split, never on the test set. Without TTA the validation accuracy is the
# history's last `val_acc`, measured the same way:

# %%
val_plain = evaluate(model, val_loader, tta=False)
val_tta = evaluate(model, val_loader, tta=True)
print(f"validation accuracy ({SOURCE}): {val_plain.accuracy:.2%} without TTA, ", end="")
print(f"{val_tta.accuracy:.2%} with flip TTA")
if not settings.MAX_STEPS:  # a dry run (COURSE_MAX_STEPS) evaluates only a few batches
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
    assert len(result.targets) == len(data) or settings.MAX_STEPS  # a dry run: a few batches
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
    "images": len(test_data),
    "provenance": test_data.provenance,
    "loss": test.loss,
    "accuracy": test.accuracy,
    "tta": True,
}
show_evaluation(test, test_data, RUN_NAME, tta=recipe.config.tta)

# %% [markdown]
# **What to notice**
# - Expected at full size (source: our reasoning, not measured here): flip TTA adds a
#   few tenths of a point on CIFAR-10 for the price of one extra forward pass. On the tiny
#   smoke-size run its effect is noise; compare the two validation numbers your run printed.
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
rows["fast94, full recipe (plan)"] = {
    "accuracy": "target 94%, not measured here",
    "accuracy: how chosen": "test set touched once; settings from Page (tuned on test)",
    "parameters (rebuilt)": f"{capstone_params:,}",
    "parameters (stated)": "—",
    "epochs": RECIPE.config.epochs,
    "train images": f"{FULL_TRAIN_PART:,}",
    "training PFLOPs": round(capstone_pflops, 2),
    "wall-clock": "see 'this run' on a GPU",
    "hardware": "—",
    "source": "course_utils.recipes 'fast94'",
}
rows[f"{RUN_NAME} (this run)"] = {
    "accuracy": f"{test.accuracy:.2%} on {SOURCE}",
    "accuracy: how chosen": "test set touched once, flip TTA; settings from Page",
    "parameters (rebuilt)": f"{n_params:,}",
    "parameters (stated)": "—",
    "epochs": recipe.config.epochs,
    "train images": f"{len(train_data):,}",
    "training PFLOPs": round(params.training_flops(model, trained_images) / 1e15, 4),
    "wall-clock": f"{history.final['elapsed']:.1f} s training "
    f"({trained_images / history.final['elapsed']:,.0f} images/s)",
    "hardware": settings.environment_facts()["gpu"]
    if device.type == "cuda"
    else f"CPU, {torch.get_num_threads()} threads",
    "source": f"measured in this notebook{SIZE_NOTE}",
}
results = pd.DataFrame(rows).T
with pd.option_context("display.max_colwidth", None):
    display(results)

# %% [markdown]
# The compute values span several orders of magnitude, so the axis is logarithmic. On a
# log axis a bar's length depends only on where the axis happens to start, so each run is
# drawn as a dot.

# %%
KINDS = {  # one colour per kind of row
    "report": ("tab:gray", "report: its own stated accuracy"),
    "plan": ("tab:green", "fast94 at full size: a plan, 94% is a target"),
    "this run": ("tab:orange", f"this run: measured here, on {SOURCE}{SIZE_NOTE}"),
}
kinds = ["report"] * len(REPORT_KEYS) + ["plan", "this run"]
labels = list(rows)
values = [row["training PFLOPs"] for row in rows.values()]
fig, ax = plt.subplots(figsize=(10, 4.6))
for kind, (colour, meaning) in KINDS.items():
    ys = [y for y, k in enumerate(kinds) if k == kind]
    ax.scatter([values[y] for y in ys], ys, s=60, color=colour, label=meaning, zorder=3)
extra = {"sudrik (report)": f" (best epoch; its last 20 average {sudrik_mean:.1f}%)"}
for y, (name, value, row) in enumerate(zip(labels, values, rows.values(), strict=True)):
    label = f"{value:g} PFLOPs; accuracy: {row['accuracy']}{extra.get(name, '')}"
    ax.text(value * 1.6, y, label, va="center", fontsize=8)
ax.set_xscale("log")
ax.set_xlim(min(values) / 3, max(values) * 3000)
ax.set_yticks(range(len(labels)), labels)
ax.set_ylim(len(labels) - 0.5, -0.5)
ax.grid(axis="x", alpha=0.3)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8)
ax.set_xlabel("training compute (PFLOPs, log scale; 3 x forward FLOPs x images)")
ax.set_title(
    "Training compute: the reports' recipes vs fast94\n"
    "(report accuracies are the reports' own; fast94's 94% is a target)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - `merabishvili`'s 94.16% took about 14 PFLOPs, `sudrik`'s about 47 (for 300 epochs; its 94.12% is
#   its best of 400) and `wang`'s 93.81% about 6.9. `fast94` plans 2.65 PFLOPs for 94%: 2.6 to 18
#   times less compute, from the recipe, not from a bigger model. Whether it gets there on CIFAR-10
#   is measured only by a full run on a GPU.
# - Only one number in the table is measured by us for accuracy, the "this run" row. At
#   smoke size it is on the stand-in data and says nothing about CIFAR-10; at cpu size it
#   is real CIFAR-10, but a thin ResNet-9 trained on 9,000 images, a CPU-size stand-in for
#   the capstone run, not `fast94`'s result. Parameters and PFLOPs are ours for
#   every row; accuracies, epochs and times are the reports'.
# - `sudrik`'s 94.12% is the best of 400 epochs, picked on the test set. Its last epoch,
#   92.94%, is no fairer: with a constant learning rate one epoch is noise. The mean of its
#   last 20 epochs, 93.4%, is the better number to compare with.

# %% [markdown]
# ## 7. Save the model, reload it, predict
#
# `recipes.run` has already saved the run. `checkpoint.pt` is what `fit` wrote after the
# last epoch: the weights, the optimizer and schedule state, the random states, the config
# and the history so far, everything needed to *resume training*. `history.json` next to
# it is the finished history, with the one test result. For *inference* the weights are
# enough: build the same architecture and pour them in.

# %%
checkpoint_path = out_dir / recipes.FILES["checkpoint"]
fresh = models.ResNet9(widths=WIDTHS).to(device)
saved = checkpoint.load_checkpoint(checkpoint_path, fresh)
on_disk = History.load(out_dir / recipes.FILES["history"])
print(
    f"reloaded {checkpoint_path} ({checkpoint_path.stat().st_size / 1e6:.1f} MB), saved after "
    f"epoch {saved['epoch']}; history.json: test accuracy {on_disk.test['accuracy']:.2%} on "
    f"{on_disk.test['images']:,} {on_disk.test['split']} images ({on_disk.source} data)"
)
assert saved["epoch"] == recipe.config.epochs and saved["config"] == history.config
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
# once. The default experiment halves every width (a quarter of the parameters and of the
# compute); `wang` reports that a model under 1M parameters still passed 92%. How much
# does the capstone lose?


# %%
# ======================= YOUR TURN: edit this cell =======================
def build_your_model() -> nn.Module:
    """Your model: any nn.Module that maps [B, 3, 32, 32] images to [B, 10] logits."""
    return models.ResNet9(widths=YOUR_WIDTHS)  # or zoo.build("wang"), or your own class


your_recipe = recipe  # e.g. recipe.replace(label_smoothing=0.1), or .replace(ema=0.99)
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
settings.warn_if_long(your_pflops, device)  # zoo.build("wang") at cpu size: an hour
if SIZE != "smoke":
    assert your_pflops <= MAX_TRAINING_PFLOPS, f"{your_pflops:.2f} PFLOPs: over the 3 budget"

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
if your_recipe is recipe and your_params == resnet9_params(YOUR_WIDTHS):
    settings.check_plan(total_pflops, PLANNED_PFLOPS)

# %% [markdown]
# ## Try it
#
# 1. **From the command line.** In a terminal (or a `!` cell), run
#    `python -m course_utils train --recipe fast94 --smoke`. It calls the same
#    `recipes.run` as section 4. After the line about the data, one line says what smoke
#    mode changed: `Smoke mode: 2000 train / 1000 test images, 2 epoch(s); capstone
#    (4,211,786 parameters) is replaced by ResNet9(widths=(16, 32, 64, 96)) (264,986
#    parameters).`, the same narrowed capstone as this notebook's smoke mode. It ends with
#    a summary: the run (`fast94 (2 epochs on cpu, fp32)` on a CPU), validation accuracy
#    (last epoch), test accuracy (evaluated once, flip TTA), parameters, training PFLOPs,
#    wall time, images/s, the data, and the three files it wrote in `runs/fast94/`. Its
#    training is this notebook's smoke run exactly (same seed, same starting weights, same
#    split: on a CPU the same validation accuracy, 58.00% on the stand-in); only its test
#    accuracy differs, because its test set has 1,000 images, not 500. Run the same
#    command twice and the second one refuses to overwrite the finished run; add
#    `--out another_folder` or `--overwrite`. Drop `--smoke` on a GPU for the full
#    30-epoch run.
# 2. **An EMA of the weights.** In the *Your turn* cell set
#    `your_recipe = recipe.replace(ema=0.99)` and `build_your_model` back to
#    `models.ResNet9(widths=WIDTHS)`. With `ema`, `fit` measures the averaged weights on
#    the validation split after every epoch and hands them back in the model at the end.
#    In smoke mode the validation accuracy ends near chance (we saw 8.00% on the stand-in):
#    there are only 28 optimizer steps, and with decay 0.99 the average still gives the
#    weights after the very first step a share of $0.99^{27} \approx 76\%$. An average
#    helps only over many more steps than its horizon of about $1/(1-0.99) = 100$. In the
#    `full` branch (2,610 steps) that horizon is about one epoch: does the validation curve end
#    higher than without EMA? At cpu size (about 560 steps) the horizon is about three
#    epochs; only the `full` branch of the parameters cell, on a GPU, asks it of the
#    capstone itself.
# 3. **Ablate one ingredient.** In the *Your turn* cell return
#    `models.ResNet9(widths=WIDTHS)` from `build_your_model`, so that only the recipe
#    differs from the capstone run (with `your_recipe = recipe` unchanged it repeats that
#    run exactly: same seed, same split; at smoke size 58.00% on the stand-in). Then remove one
#    ingredient at a time: `recipe.replace(label_smoothing=0.0)`,
#    `recipe.replace(augment=recipe.config.augment[:2])` (crop and flip, no cutout), or
#    `recipe.replace(optimizer="momentum")`. Which one costs the most validation accuracy?
#    In smoke mode we saw 40.50%, 55.00% and 40.00% against 58.00%, but that is two epochs
#    on 200 validation images of the stand-in. At cpu size your run ranks them for the thin
#    ResNet-9 on 1,000 real validation images (a standard error of about 1.5 points each);
#    the ranking for the capstone needs the `full` branch on a GPU, and nobody has run it.
# 4. **A report's model, our recipe.** Return `zoo.build("wang")` from `build_your_model`.
#    It costs about as much as the capstone per image: is the recipe or the architecture
#    behind the difference to `wang`'s 70-epoch result? Only the `full` branch on a GPU
#    answers this. The smaller sizes train `wang`'s 5M-parameter network at its real
#    width: at smoke size that took about 4 minutes here (one thread) and ended at 12.50%
#    validation accuracy after two epochs, which says nothing about either model; at cpu
#    size it is about 0.28 PFLOPs, an hour on a 2-core CPU (the cell warns before it
#    starts).
# 5. **Fewer epochs.** In the parameters cell, try `RECIPE.replace(epochs=15)` for the
#    `recipe` of the `full` branch (and 1.66 for its `PLANNED_PFLOPS`): section 2 then plans
#    1.33 PFLOPs instead of 2.65, half the compute. Give the short run its own folder too,
#    `RUN_NAME = "fast94-15"` in section 4: a finished 30-epoch run in
#    `runs/06_capstone/fast94` is kept, and section 4 stops with an error rather than write
#    over it. How close to the 30-epoch run (its
#    `history.json` in that folder) does it get? Only a GPU runs the `full` branch.

# %% [markdown]
# ## Summary
#
# - A run has three budgets: parameters (under 5M), compute ($3 F E N$, here about 2.7
#   PFLOPs) and wall-clock. The reports spent 6.9 (`wang`) to 88 (`rout`) PFLOPs; the
#   capstone plans 2.7.
# - `fast94` puts the course together: ResNet-9 at 4.2M parameters, data and augmentation
#   on the GPU, batch 512 with a linear one-cycle schedule to lr 0.4, Nesterov SGD, label
#   smoothing 0.2, cutout, bf16 + channels_last, flip TTA. Its 94% on CIFAR-10 is a target
#   until a full run on a GPU measures it; the accuracies this notebook prints in CI are
#   two-epoch smoke runs on the synthetic stand-in, and at cpu size those of a thin
#   ResNet-9 on 9,000 real images, a CPU-size stand-in for the capstone run.
# - Honest evaluation: choose on a validation split, open the test set once
#   (`recipes.run` does both). A best epoch picked on the test set (94.12% in `sudrik`, whose
#   last 20 epochs average 93.4%) is not a test result. Say so when you inherit choices
#   made on the test set, as `fast94` inherits Page's settings.
# - Compare like with like: compute from the rebuilt models in the same units, every
#   number with its source, and a stand-in result never passed off as CIFAR-10.
# - Checkpoints (on Drive on Colab) make a dropped session cheap; a saved model is
#   reloaded by building the same architecture and loading its weights.
