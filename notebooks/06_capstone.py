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
# 94% test accuracy on CIFAR-10. The five student reports needed 7 to 90 PFLOPs and 30
# minutes to hours for 87-94%. And we evaluate the way a result should be evaluated: every
# choice made on a validation split, the test set touched once, at the end.
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
#   *chosen on the test set*; its final epoch reads 92.94%. About 24 s/epoch on an RTX 8000.
# - `wang`: 93.81% after 70 epochs, about 36 minutes on Colab.
# - `rout`: 86.968% after 400 epochs.
# - `pillai`: no test accuracy stated (curves and a confusion matrix); 300 epochs planned,
#   50 in its sweep winner, on a Colab A100.
#
# **Our target: 94% on real CIFAR-10 within 3 PFLOPs of training.** It is a target. This
# notebook was developed on machines with no GPU and no CIFAR-10, where it runs on a
# synthetic stand-in: every accuracy it prints there is a stand-in number, and says so.

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
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from torch import nn

from course_utils import checkpoint, models, params, plots, zoo
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, ImageData, cifar10
from course_utils.loader import DeviceLoader
from course_utils.params import bn_params, conv_params, linear_params
from course_utils.recipes import get_recipe
from course_utils.train import History, evaluate, fit, predict

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# Full mode is the `fast94` recipe exactly as `python -m course_utils train --recipe fast94`
# runs it. Smoke mode (CI, on a CPU) keeps every ingredient but shrinks the data, the
# network's widths and the epochs, so the whole notebook runs in about a minute.

# %%
from course_utils.settings import SMOKE

RECIPE = get_recipe("fast94")
if SMOKE:  # CI on a CPU: 2,000 training images, a thin ResNet-9, two epochs
    recipe = RECIPE.replace(epochs=2, batch_size=128)
    TRAIN_IMAGES, TEST_IMAGES = 2_000, 500
    WIDTHS = (16, 32, 64, 96)  # stem and the three stages of the ResNet-9
    YOUR_WIDTHS = (8, 16, 32, 48)  # the "your turn" model: half the widths again
else:  # the recipe unchanged: 45,000 training + 5,000 validation images, 30 epochs
    recipe = RECIPE
    TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
    WIDTHS = (64, 128, 256, 384)  # the capstone network, 4.2M parameters
    YOUR_WIDTHS = (32, 64, 128, 192)  # half the widths: a quarter of the parameters
EVAL_BATCH = 500  # images per batch when evaluating (no gradients: memory is no issue)
SEED = 0
BUDGET = zoo.BUDGET  # fewer than 5,000,000 trainable parameters
MAX_TRAINING_PFLOPS = 3.0  # the capstone's compute budget for one training run
SAVE_TO_DRIVE = False  # Colab only: True keeps the checkpoints on your Google Drive
RESUME = False  # True continues from the last saved epoch (after a dropped Colab session)
# Full mode trains about 2.65 + 0.67 PFLOPs (printed below). Estimate, not a measurement:
# at 30-50 TFLOP/s of useful bf16 work an A100 does the capstone run in 1-2 minutes and the
# "your turn" run in under a minute. On a CPU, full mode would take days.
if not SMOKE and device.type == "cpu":
    print("No GPU: full mode trains for days on a CPU. Use a GPU runtime, or COURSE_SMOKE=1.")

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
# *measured on the test set*: 94.12%, while its last epoch read 92.94%. The gap is partly
# luck of the pick. So during training we only ever look at the validation split, and the
# test set is evaluated once, at the end, for the model we already committed to.

# %%
full_train = cifar10("train", n=TRAIN_IMAGES, seed=SEED)
test_data = cifar10("test", source=full_train.source, n=TEST_IMAGES, seed=SEED)
train_data, val_data = full_train.split(recipe.validation_split, seed=SEED)
NOTE = plots.source_note(full_train.source)  # "synthetic stand-in data", or None
SOURCE = "CIFAR-10" if full_train.source == "cifar10" else "synthetic stand-in, NOT CIFAR-10"

train_loader = DeviceLoader(train_data, seed=SEED, device=device, **recipe.loader_kwargs())
val_loader = DeviceLoader(val_data, batch_size=EVAL_BATCH, train=False, device=device)
print(train_data, val_data, test_data, sep="\n")
print(train_loader)

assert len(train_data) + len(val_data) == len(full_train)
assert len(val_data) == round(recipe.validation_split * len(full_train))


def titled(title: str) -> str:
    """A figure title, with a second line naming the synthetic stand-in when it is used."""
    return f"{title}\n({NOTE})" if NOTE else title


# %% [markdown]
# The whole training set sits on the training device as uint8 (CIFAR-10 is 150 MB), and
# each batch is augmented there in a few tensor operations: a random crop of the image
# padded by 4 mirrored pixels, a horizontal flip, and an 8x8 *cutout* (a square set to the
# mean colour, grey below). This is one batch as the network sees it:

# %%
x, y = next(iter(train_loader))
assert x.shape == (recipe.batch_size, 3, 32, 32) and x.dtype == torch.float32
fig = plots.show_images(
    x[:16].cpu(),
    y[:16].cpu(),
    classes=train_data.classes,
    nrow=8,
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
)
fig.suptitle(titled("A training batch: reflect-padded crop, flip, 8x8 cutout"), fontsize=10)
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
planned_pflops = params.training_flops(model, recipe.epochs * len(train_data)) / 1e15
print(f"model:           ResNet9{WIDTHS}, {n_params:,} trainable parameters (< {BUDGET:,})")
print(f"forward cost:    {forward_flops / 1e9:.3f} GFLOPs per 32x32 image")
print(
    f"training cost:   3 x {forward_flops / 1e9:.3f} GFLOPs x {recipe.epochs} epochs x "
    f"{len(train_data):,} images = {planned_pflops:.4f} PFLOPs"
)

with torch.device("meta"):  # the full-size capstone, shapes only, to show its budget in CI too
    capstone = zoo.build(RECIPE.model)
capstone_params = params.count_parameters(capstone)
capstone_pflops = params.training_flops(capstone, RECIPE.epochs * 45_000) / 1e15
print(f"full fast94:     {capstone_params:,} parameters, {capstone_pflops:.2f} PFLOPs of training")
assert capstone_params == resnet9_params((64, 128, 256, 384)) < BUDGET
assert capstone_pflops <= MAX_TRAINING_PFLOPS
if not SMOKE:
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
r, warmup = RECIPE, RECIPE.schedule_kwargs["pct_start"]
ingredients = [
    ("network", f"ResNet-9, {capstone_params / 1e6:.1f}M parameters, logits x 0.125",
     "few, wide layers keep a GPU busy; scaled-down logits keep early training calm"),
    ("data on the device", "the whole set on the GPU as uint8, augmented per batch",
     "no CPU DataLoader in the way (wang's notebook was CPU-bound at ~750 images/s)"),
    ("augmentation", f"{r.padding_mode} pad {r.crop_padding} + crop, flip, {r.cutout}x{r.cutout}"
     " cutout", "shifts and mirrors are free new images; cutout forces the whole object"),
    ("large batches", f"{r.batch_size} images", "fewer, larger steps keep a GPU busy"),
    ("one-cycle schedule", f"lr linear up to {r.lr} over {warmup:.0%} of steps, then to 0",
     "the warm-up lets a large lr start safely; the long decay settles the weights"),
    ("SGD, Nesterov momentum", f"momentum {r.momentum}, weight decay {r.weight_decay}",
     "the proven optimizer for CIFAR ResNets; Nesterov is steadier at a high lr"),
    ("label smoothing", f"epsilon {r.label_smoothing}",
     "soft targets (0.82 / 0.02 instead of 1 / 0): less over-confidence"),
    ("bf16 autocast + channels_last", "on a GPU: automatic in fit",
     "tensor cores run bf16 several times faster, best in channels_last layout"),
    ("flip test-time augmentation", "on" if r.tta else "off",
     "average an image and its mirror: one extra forward pass, no training cost"),
    ("validation split", f"{r.validation_split:.0%} of the training set",
     "every choice is made on it; the test set stays unseen until the end"),
    ("EMA of the weights (optional)", "off" if r.ema is None else f"decay {r.ema}",
     "a smoothed average of recent weights; try it in Your turn"),
]  # fmt: skip
table = pd.DataFrame(ingredients, columns=["ingredient", "setting in fast94", "why"])
with pd.option_context("display.max_colwidth", None):
    display(table.set_index("ingredient"))

changed = {k: (v, getattr(recipe, k)) for k, v in asdict(RECIPE).items() if getattr(recipe, k) != v}
print("this run changes:", ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) or "none")
assert recipe.label_smoothing == 0.2 and recipe.optimizer == "nesterov" and recipe.tta
assert set(changed) <= {"epochs", "batch_size"}

# %% [markdown]
# ## 4. Train
#
# `fit` writes a checkpoint after every epoch. On Colab a dropped session loses the
# runtime's disk, so set `SAVE_TO_DRIVE = True` in the parameters cell to keep the
# checkpoints on your Google Drive, and `RESUME = True` to continue after a disconnect.
# Nothing is mounted unless you ask for it (and never outside Colab).

# %%
RUN_NAME = "fast94-smoke" if SMOKE else "fast94"
run_dir = Path("runs") / "06_capstone"
if SAVE_TO_DRIVE and settings.in_colab():
    from google.colab import drive

    drive.mount("/content/drive")
    run_dir = Path("/content/drive/MyDrive/cifar10-course/06_capstone")
checkpoint_path = run_dir / f"{RUN_NAME}.pt"
print(f"checkpoints go to {checkpoint_path}")

# %% [markdown]
# One call trains the recipe. On a GPU, `fit` turns on bf16 autocast and channels_last by
# itself; on a CPU both stay off. After every epoch it measures the validation split.

# %%
compute = {}  # training PFLOPs of every run in this lecture

started = time.perf_counter()
history = fit(
    model,
    train_loader,
    val_loader,
    checkpoint=checkpoint_path,
    resume=RESUME,
    seed=SEED,
    name=RUN_NAME,
    **recipe.fit_kwargs(),
)
wall_seconds = time.perf_counter() - started

trained_images = round(sum(row["images_per_sec"] * row["seconds"] for row in history.epochs))
compute["fast94"] = params.training_flops(model, recipe.epochs * len(train_data)) / 1e15
print(f"training compute: {compute['fast94']:.4f} PFLOPs planned (3 x F x E x N)")
print(
    f"wall-clock: {wall_seconds:.1f} s in fit ({history.final['elapsed']:.1f} s training, "
    f"{trained_images / history.final['elapsed']:,.0f} images/s on {device})"
)
print(f"validation accuracy after the last epoch: {history.final['test_acc']:.2%} ({SOURCE})")
assert len(history.epochs) == recipe.epochs and checkpoint_path.is_file()

# %% [markdown]
# The curves below are train (dashed) and **validation** (solid); `fit` stores the
# validation numbers in its `test_*` columns because that is the loader we gave it. The
# train loss is the label-smoothed one the optimizer minimises; the validation loss is
# plain cross-entropy, so the two are not on the same scale.


# %%
def plot_curves(runs: list[History]) -> plt.Figure:
    """Loss and accuracy (train dashed, validation solid) and the learning rate per step."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plots.plot_history(runs, eval_label="validation", ax=axes[:2])
    plots.plot_lr(runs, title="learning rate (one-cycle schedule)", ax=axes[2])
    fig.tight_layout()
    return fig


plot_curves([history])
plt.show()

# %% [markdown]
# **What to notice**
# - The learning rate climbs for the first 20% of the steps and then falls in a straight
#   line to zero; the biggest gains in validation accuracy come as it falls.
# - Train accuracy is measured on augmented images (cropped, cut out) under a moving model,
#   so it can sit *below* validation accuracy early on; that is not a bug.
# - Label smoothing keeps the *train* loss well above zero even for a perfect classifier:
#   with $\varepsilon = 0.2$ the best reachable value is the entropy of the smoothed target,
#   $-0.82 \ln 0.82 - 9 \times 0.02 \ln 0.02 \approx 0.87$, not 0.

# %% [markdown]
# ## 5. Evaluate once on the test set
#
# Training is over and every choice is made, so now we open the test set, once. The
# function below is the whole evaluation; section 8 reuses it for your own model:
# accuracy with and without flip TTA, the confusion matrix (rows: true class, columns:
# predicted; each row sums to 1, so the diagonal is the per-class accuracy), per-class
# accuracy bars, and the mistakes the model was most sure of.


# %%
def full_evaluation(model: nn.Module, data: ImageData, split: str, name: str) -> dict:
    """Evaluate ``model`` on ``data`` with and without flip TTA, draw the confusion matrix,
    per-class accuracy and most confident mistakes, and return the accuracies."""
    loader = DeviceLoader(data, batch_size=EVAL_BATCH, train=False, device=device)
    plain = evaluate(model, loader)
    result = evaluate(model, loader, tta_flip=True)
    assert int(result.confusion.sum()) == len(result.targets) == len(plain.targets)
    print(f"{name} on the {split} set ({len(result.targets):,} images, {SOURCE}):")
    print(f"  accuracy without TTA: {plain.accuracy:.2%}")
    print(f"  accuracy with flip TTA: {result.accuracy:.2%}")

    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1.15, 1]})
    plots.plot_confusion(
        result.confusion,
        data.classes,
        ax=axes[0],
        note=NOTE,
        title=f"{name}: confusion matrix, {split} set, flip TTA",
    )
    plots.plot_per_class(
        result.per_class_accuracy,
        data.classes,
        ax=axes[1],
        note=NOTE,
        title=f"{name}: accuracy per class, {split} set, flip TTA",
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
        fig.suptitle(titled(f"{name}: the {len(mistakes)} most confident mistakes ({split})"))
        fig.tight_layout()
        plt.show()
    return {"accuracy": result.accuracy, "accuracy_no_tta": plain.accuracy, "result": result}


test_result = full_evaluation(model, test_data, "test", RUN_NAME)

# %% [markdown]
# **What to notice**
# - Flip TTA usually adds a few tenths of a point on CIFAR-10 for the price of one extra
#   forward pass; on the tiny smoke-mode run its effect is noise.
# - The confusion matrix shows *which* classes are confused, not just how many mistakes
#   there are. On real CIFAR-10 expect cat/dog to be the worst pair.
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

# %%
REPORT_KEYS = ["merabishvili", "sudrik", "wang", "rout", "pillai"]
REPORT_TRAIN_IMAGES = {key: 50_000 for key in REPORT_KEYS} | {"pillai": 40_000}
ACCURACY_NOTE = {  # how each report's accuracy was chosen, from the digest of the reports
    "merabishvili": "test, as stated",
    "sudrik": "best epoch chosen on the test set; final epoch 92.94%",
    "wang": "test, as stated",
    "rout": "test, as stated",
    "pillai": "no test accuracy stated",
}

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
    "accuracy: how chosen": "test set touched once",
    "parameters (rebuilt)": f"{capstone_params:,}",
    "parameters (stated)": "—",
    "epochs": RECIPE.epochs,
    "train images": "45,000",
    "training PFLOPs": round(capstone_pflops, 2),
    "wall-clock": "see 'this run' on a GPU",
    "hardware": "—",
    "source": "course_utils.recipes 'fast94'",
}
rows[f"{RUN_NAME} (this run)"] = {
    "accuracy": f"{test_result['accuracy']:.2%} on {SOURCE}",
    "accuracy: how chosen": "test set touched once, flip TTA",
    "parameters (rebuilt)": f"{n_params:,}",
    "parameters (stated)": "—",
    "epochs": recipe.epochs,
    "train images": f"{len(train_data):,}",
    "training PFLOPs": round(params.training_flops(model, trained_images) / 1e15, 4),
    "wall-clock": f"{history.final['elapsed']:.1f} s training "
    f"({trained_images / history.final['elapsed']:,.0f} images/s)",
    "hardware": settings.environment_facts()["gpu"]
    if device.type == "cuda"
    else f"CPU, {torch.get_num_threads()} threads",
    "source": "measured in this notebook",
}
results = pd.DataFrame(rows).T
with pd.option_context("display.max_colwidth", None):
    display(results)

# %%
labels = list(rows)
values = [row["training PFLOPs"] for row in rows.values()]
colours = ["tab:gray"] * len(REPORT_KEYS) + ["tab:green", "tab:orange"]
fig, ax = plt.subplots(figsize=(9, 4))
ax.barh(labels, values, color=colours)
for y, (value, row) in enumerate(zip(values, rows.values(), strict=True)):
    label = f"{value:g} PFLOPs; accuracy: {row['accuracy']}"
    ax.text(value * 1.1, y, label, va="center", fontsize=8)
ax.set_xscale("log")
ax.set_xlim(min(values) / 3, max(values) * 300)
ax.invert_yaxis()
ax.set_xlabel("training compute (PFLOPs, log scale; 3 x forward FLOPs x images)")
ax.set_title(
    "Training compute: the reports' recipes vs fast94\n"
    "(report accuracies are the reports' own; fast94's 94% is a target)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - The two reports at 94% spent about 14 (`merabishvili`) and 47 (`sudrik`) PFLOPs, and
#   `wang`'s 93.81% took about 7. `fast94` plans 2.7 PFLOPs for the same target: 2.6 to 17
#   times less compute, from the recipe, not from a bigger model.
# - Only one number in the table is measured by us for accuracy, the "this run" row, and
#   on the stand-in data it says nothing about CIFAR-10. Parameters and PFLOPs are ours for
#   every row; accuracies, epochs and times are the reports'.
# - `sudrik`'s 94.12% is a best-of-400-epochs pick on the test set; the comparable number
#   (its last epoch) is 92.94%.

# %% [markdown]
# ## 7. Save the model, reload it, predict
#
# `fit` already saved everything needed to *resume training* (weights, optimizer,
# schedule, random states). For *inference* the weights are enough, but it pays to store
# what they are: the recipe, the widths, the test accuracy and its data source. Reloading
# means building the same architecture and pouring the weights in.

# %%
final_path = run_dir / f"{RUN_NAME}-final.pt"
checkpoint.save_checkpoint(
    final_path,
    model,
    epoch=len(history.epochs),
    history=history.to_dict(),
    config={
        "recipe": asdict(recipe),
        "widths": list(WIDTHS),
        "test_accuracy_tta": test_result["accuracy"],
        "data": full_train.source,
    },
)

fresh = models.ResNet9(widths=WIDTHS).to(device)
saved = checkpoint.load_checkpoint(final_path, fresh)
print(
    f"reloaded {final_path} ({final_path.stat().st_size / 1e6:.1f} MB), saved after epoch "
    f"{saved['epoch']}, test accuracy {saved['config']['test_accuracy_tta']:.2%} "
    f"on {saved['config']['data']}"
)

sample = test_data.images[:8]
model.to(memory_format=torch.contiguous_format)  # same memory layout as the fresh model
before = predict(model, sample, tta_flip=True)
after = predict(fresh, sample, tta_flip=True)
assert torch.equal(before.argmax(1), after.argmax(1)), "the reloaded model predicts differently"
assert (before - after).abs().max() < 1e-3
print(f"largest difference in probabilities: {(before - after).abs().max():.1e}")

titles = [
    f"pred: {test_data.classes[p]} {c:.0%}\ntrue: {test_data.classes[t]}"
    for p, c, t in zip(after.argmax(1), after.max(1).values, test_data.labels[:8], strict=True)
]
fig = plots.show_images(sample, titles=titles, nrow=8)
fig.suptitle(titled("The reloaded model on the first 8 test images (flip TTA)"), fontsize=10)
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
# choice, and choices are made on validation. Switch `EVALUATE_ON` to `"test"` only for the
# one variant you finally commit to, once. The default experiment halves every width (a
# quarter of the parameters and of the compute); `wang` reports that a model under 1M
# parameters still passed 92%. How much does the capstone lose?


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
your_pflops = params.training_flops(your_model, your_recipe.epochs * len(train_data)) / 1e15
print(
    f"your model: {your_params:,} parameters, {params.flops(your_model) / 1e9:.3f} GFLOPs "
    f"per image, {your_pflops:.4f} PFLOPs of training"
)
if not SMOKE:
    assert your_pflops <= MAX_TRAINING_PFLOPS, f"{your_pflops:.2f} PFLOPs: over the 3 budget"

your_loader = DeviceLoader(train_data, seed=SEED, device=device, **your_recipe.loader_kwargs())
your_history = fit(
    your_model, your_loader, val_loader, seed=SEED, name="your model", **your_recipe.fit_kwargs()
)
compute["your turn"] = your_pflops
plot_curves([history, your_history])
plt.show()
print(
    f"validation accuracy: {RUN_NAME} {history.final['test_acc']:.2%}, "
    f"yours {your_history.final['test_acc']:.2%} ({SOURCE})"
)

your_data = test_data if EVALUATE_ON == "test" else val_data
your_result = full_evaluation(your_model, your_data, EVALUATE_ON, "your model")

# %% [markdown]
# ## The compute bill of this lecture

# %%
for name, pflops in compute.items():
    print(f"{name:<10} {pflops:8.4f} PFLOPs")
total_pflops = sum(compute.values())
print(f"{'total':<10} {total_pflops:8.4f} PFLOPs of this lecture's 15 PFLOPs training budget")
if not SMOKE:
    assert total_pflops <= 15, f"this lecture trained {total_pflops:.1f} PFLOPs, over 15"

# %% [markdown]
# ## Try it
#
# 1. **From the command line.** In a terminal (or a `!` cell), run
#    `python -m course_utils train --recipe fast94` (add `--smoke` for a quick check). It
#    trains the same recipe and writes history, checkpoint and curves to `runs/fast94/`.
# 2. **An EMA of the weights.** In the *Your turn* cell set
#    `your_recipe = recipe.replace(ema=0.99)` and `build_your_model` back to
#    `models.ResNet9(widths=WIDTHS)`. With `ema`, `fit` measures the averaged weights on
#    the validation split after every epoch and hands them back in the model at the end:
#    does the validation curve end higher?
# 3. **Ablate one ingredient.** In the *Your turn* cell, remove one ingredient at a time:
#    `recipe.replace(label_smoothing=0.0)`, `.replace(cutout=0)`, or
#    `.replace(optimizer="momentum")`. Which one costs the most validation accuracy?
# 4. **A report's model, our recipe.** Return `zoo.build("wang")` from `build_your_model`.
#    It costs about as much as the capstone per image: is the recipe or the architecture
#    behind the difference to `wang`'s 70-epoch result?
# 5. **Fewer epochs.** In the parameters cell, try `RECIPE.replace(epochs=15)` for the
#    full-mode `recipe`: half the compute. How close to the 30-epoch run does it get?

# %% [markdown]
# ## Summary
#
# - A run has three budgets: parameters (under 5M), compute ($3 F E N$, here about 2.7
#   PFLOPs) and wall-clock. The reports spent 7-90 PFLOPs; the capstone plans 2.7.
# - `fast94` puts the course together: ResNet-9 at 4.2M parameters, data and augmentation
#   on the GPU, batch 512 with a linear one-cycle schedule to lr 0.4, Nesterov SGD, label
#   smoothing 0.2, cutout, bf16 + channels_last, flip TTA.
# - Honest evaluation: choose on a validation split, open the test set once. A best epoch
#   picked on the test set (94.12% vs a final 92.94% in `sudrik`) is not a test result.
# - Compare like with like: compute from the rebuilt models in the same units, every
#   number with its source, and a stand-in result never passed off as CIFAR-10.
# - Checkpoints (on Drive on Colab) make a dropped session cheap; a saved model is
#   reloaded by building the same architecture and loading its weights.
