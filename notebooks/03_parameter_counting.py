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
# # 03 · Parameter counting: living under a 5M budget
#
# The mini-project behind our five case studies had one hard rule: **fewer than 5,000,000
# trainable parameters**. Every report spent effort fitting under that line. In this lecture
# you count parameters by hand, rebuild the five reports' models and count theirs, see where
# in a network the parameters live, and write a small search that finds the widest network
# of a given shape that still fits. Nothing here trains: it is all counting, so every cell
# runs in seconds on any machine.
#
# **What you will learn**
# - the three formulas (convolution, BatchNorm, linear) that give any ResNet's size, checked
#   against PyTorch and torchinfo;
# - why the last stage holds most of the parameters, while the compute follows the number
#   of blocks in each stage;
# - that parameters grow with the *square* of the width but only *linearly* with the depth;
# - how to find the widest layout of a given block pattern under a budget (bisection);
# - that parameters and compute (FLOPs) are two different budgets.
#
# **Reports revisited** (from the course's digest of the five student reports; their numbers
# are quoted as theirs, never as ours)
# - all five (`pillai`, `merabishvili`, `rout`, `sudrik`, `wang`): their models rebuilt and
#   counted; `sudrik` (4,922,826) and `wang` (4,977,226) state their counts and we reproduce
#   them exactly;
# - `wang`'s width-vs-depth finding (half the channels, more blocks);
# - `sudrik`'s Table 1: six shapes under 5M trained for 20 epochs.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %%
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils import params, zoo
from course_utils.models import BasicBlock, ResNet
from course_utils.params import bn_params, conv_params, count_parameters, linear_params

# %% [markdown]
# ## Parameters
#
# Every size this lecture uses, in one place. Nothing trains, and counting a full-size model
# costs milliseconds, so all three sizes (`full`, `cpu` and `smoke`, CI's) count the same
# full-size models: the asserts below then guard the real counts at every size.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
print(f"Size {SIZE}: this lecture only counts, so every size counts the same full-size models")
if SIZE == "smoke":  # CI: the full-size models too, so that the asserts guard the real counts
    PLANNED_PFLOPS = 0.0  # nothing trains
elif SIZE == "cpu":  # the same as full: counting takes about 20 s on a 2-core CPU (measured)
    PLANNED_PFLOPS = 0.0
else:  # full: the same counting, less time on Colab
    PLANNED_PFLOPS = 0.0
settings.warn_if_long(PLANNED_PFLOPS)  # silent: no training to wait for
BUDGET = zoo.BUDGET  # the mini-project's rule: strictly fewer than 5,000,000 parameters
BLOCK_IN, BLOCK_OUT = 64, 128  # the block counted by hand: 64 -> 128 channels, stride 2
STAGE_MODELS = ["merabishvili", "sudrik", "wang"]  # where do their parameters live?
WIDTH_SWEEP = [8, 12, 16, 24, 32, 48, 64, 96, 128]  # base widths for the width-squared plot
DEPTH_SWEEP = [1, 2, 3, 4, 5, 6, 7, 8]  # blocks per stage for the depth-linear plot
SWEEP_BASE_WIDTH = 32  # base width of the depth sweep
# Block patterns to fit under the budget: blocks per stage, and widths as multiples of a base.
SEARCH_PATTERNS = [
    ([1, 1, 1, 1], (1, 2, 4, 8)),
    ([2, 1, 1, 1], (1, 2, 4, 8)),
    ([2, 2, 2, 2], (1, 2, 4, 8)),
    ([3, 4, 6, 3], (1, 2, 4, 8)),
    ([6, 5, 4, 3], (1, 2, 4, 8)),
    ([3, 2, 3, 2], (1, 2, 3, 4)),
    ([3, 3, 3], (1, 2, 4)),
]
CIFAR_TRAIN_IMAGES = 50_000  # one epoch of the full training set

# %% [markdown]
# ## 1. Counting by hand
#
# Three formulas give the size of every model in this course (every conv has `bias=False`,
# because the BatchNorm after it has its own shift):
#
# | layer | parameters | why |
# |---|---|---|
# | `Conv2d`, k x k, no bias | $k^2 c_{in} c_{out}$ | one $k \times k \times c_{in}$ filter each |
# | `BatchNorm2d(c)` | $2c$ | a scale $\gamma$ and a shift $\beta$ per channel |
# | `Linear(n_in, n_out)` | $n_{in} n_{out} + n_{out}$ | a weight matrix, a bias per output |
#
# A `BasicBlock` that goes from 64 to 128 channels with stride 2 has two 3x3 convs, two BNs,
# and, because the shape changes, a 1x1 conv + BN shortcut:
#
# $$9\cdot64\cdot128 + 2\cdot128 + 9\cdot128\cdot128 + 2\cdot128 + 64\cdot128 + 2\cdot128
# = 73{,}728 + 147{,}456 + 8{,}192 + 3\cdot256 = 230{,}144.$$
#
# The next cell writes the same sum with the course's formula helpers, layer by layer, and
# compares every layer with what PyTorch stores.

# %%
block = BasicBlock(BLOCK_IN, BLOCK_OUT, stride=2)
by_hand = {
    "conv1": conv_params(3, BLOCK_IN, BLOCK_OUT),
    "bn1": bn_params(BLOCK_OUT),
    "conv2": conv_params(3, BLOCK_OUT, BLOCK_OUT),
    "bn2": bn_params(BLOCK_OUT),
    "shortcut.0": conv_params(1, BLOCK_IN, BLOCK_OUT),  # the 1x1 projection conv
    "shortcut.1": bn_params(BLOCK_OUT),  # and its BN
}
in_pytorch = {
    name: count_parameters(layer)
    for name, layer in block.named_modules()
    if not list(layer.children()) and count_parameters(layer) > 0
}
layers = pd.DataFrame({"by hand": by_hand, "PyTorch": in_pytorch})
layers.loc["total"] = layers.sum()
display(layers)

assert by_hand == in_pytorch, "a layer's formula disagrees with PyTorch (or a layer is missing)"
assert sum(by_hand.values()) == count_parameters(block)

# %% [markdown]
# **BatchNorm keeps more than it learns.** A BN layer also stores a running mean and variance
# (and a step counter) to normalise with at test time. Those are *buffers*: saved with the
# model, but not trained by the optimizer, so they do not count towards the budget.

# %%
bn = block.bn1
for name, buffer in bn.named_buffers():
    print(f"buffer    {name:<20} shape {tuple(buffer.shape)}")
for name, parameter in bn.named_parameters():
    print(f"parameter {name:<20} shape {tuple(parameter.shape)}")

assert count_parameters(bn) == bn_params(bn.num_features)
assert sum(b.numel() for b in bn.buffers()) == 2 * bn.num_features + 1  # mean, var, counter

# %% [markdown]
# torchinfo prints the same count as a table (the course wraps it as `params.summary`). Its
# "mult-adds" line counts multiply-adds (it labels their unit oddly: read it as millions);
# one multiply-add is 2 FLOPs, so it is half of what `params.flops` reports.

# %%
stats = params.summary(block, input_size=(1, BLOCK_IN, 32, 32))
assert stats.trainable_params == count_parameters(block) == sum(by_hand.values())
block_flops = params.flops(block, input_size=(1, BLOCK_IN, 32, 32))
assert abs(2 * stats.total_mult_adds / block_flops - 1) < 0.01
stats

# %% [markdown]
# ### A whole ResNet from the formulas
#
# A CIFAR ResNet is a stem (3x3 conv from 3 channels + BN), stages of blocks, and a linear
# head. The function below adds up the formulas for a `BasicBlock` ResNet without building
# anything, and the next cell checks it against every `BasicBlock` ResNet in the course zoo.


# %%
def basic_resnet_params(
    blocks: Sequence[int], widths: Sequence[int], stem_width: int, num_classes: int = 10
) -> int:
    """Parameters of a BasicBlock ResNet from the three formulas alone (no model is built)."""
    total = conv_params(3, 3, stem_width) + bn_params(stem_width)
    channels = stem_width
    for stage, (num_blocks, width) in enumerate(zip(blocks, widths, strict=True)):
        for position in range(num_blocks):
            stride = 2 if stage > 0 and position == 0 else 1
            total += conv_params(3, channels, width) + bn_params(width)
            total += conv_params(3, width, width) + bn_params(width)
            if stride != 1 or channels != width:
                total += conv_params(1, channels, width) + bn_params(width)
            channels = width
    return total + linear_params(channels, num_classes)


def basic_layout(model: nn.Module) -> tuple[list[int], list[int], int] | None:
    """(blocks, widths, stem width) read off a BasicBlock ResNet; None for any other model."""
    if not isinstance(model, ResNet):
        return None
    if not all(type(layer) is BasicBlock for stage in model.stages for layer in stage):
        return None
    blocks = [len(stage) for stage in model.stages]
    widths = [stage[0].conv2.out_channels for stage in model.stages]
    return blocks, widths, model.stem.conv.out_channels


# %%
with torch.device("meta"):  # shapes only: no memory is allocated for the weights
    zoo_models = {key: zoo.build(key) for key in zoo.REPORTS}

layouts = {key: basic_layout(model) for key, model in zoo_models.items()}
layouts = {key: layout for key, layout in layouts.items() if layout is not None}
print(f"{'model':<16} {'blocks':<14} {'widths':<22} {'formula':>11} {'PyTorch':>11}")
for key, (blocks, widths, stem) in layouts.items():
    formula = basic_resnet_params(blocks, widths, stem)
    pytorch = count_parameters(zoo_models[key])
    print(f"{key:<16} {blocks!s:<14} {widths!s:<22} {formula:>11,} {pytorch:>11,}")
    assert formula == pytorch, f"{key}: the formula gives {formula:,}, PyTorch {pytorch:,}"

# %% [markdown]
# **What to notice**
# - Three formulas account for every parameter: nothing in a ResNet is hidden. The ReLUs,
#   the pooling and the identity shortcuts have no parameters at all.
# - The 3x3 convs dominate: in the block above they are 96% of the parameters. BN adds
#   only $2c$ per layer, the projection shortcut $c_{in} c_{out}$ once per stage.
# - BN's running statistics are buffers, not parameters: they do not count towards 5M.

# %% [markdown]
# ## 2. The five reports' models, rebuilt
#
# `course_utils.zoo` rebuilds each report's model from its description alone. The table shows
# our count and cost for each. The course's digest of the reports quotes two parameter
# counts, `sudrik`'s and `wang`'s: our rebuild must give exactly those numbers (the cell
# asserts it). For the other three we show our own count only. The accuracies are **the
# reports' own numbers**, from their own recipes (60 to 400 epochs), not ours.
#
# FLOPs are the other cost: how many floating-point operations one forward pass of one
# 32x32 image takes (a multiply-add counts as 2). Counting runs on PyTorch's "meta" device,
# which tracks shapes without computing anything, so it is instant even for big models.

# %%
REPORT_KEYS = ["pillai", "merabishvili", "rout", "sudrik", "wang", "resnet18"]
counted = zoo.summary().set_index("key")

table = pd.DataFrame(
    {
        "authors": [zoo.REPORTS[key].authors for key in REPORT_KEYS],
        "parameters (ours)": [f"{counted.at[key, 'parameters']:,}" for key in REPORT_KEYS],
        "count quoted from report": [
            "—" if pd.isna(count) else f"{count:,}"
            for count in counted.loc[REPORT_KEYS, "reported_params"]
        ],
        "GFLOPs / image": counted.loc[REPORT_KEYS, "gflops"].round(2).to_numpy(),
        "under 5M": counted.loc[REPORT_KEYS, "under_budget"].to_numpy(),
        "report's test accuracy (%)": [
            "—" if pd.isna(acc) else f"{acc:.2f}"
            for acc in counted.loc[REPORT_KEYS, "reported_accuracy"]
        ],
    },
    index=REPORT_KEYS,
)
display(table)

for key in ["sudrik", "wang"]:
    assert counted.at[key, "parameters"] == zoo.REPORTS[key].reported_params, key
assert counted.at["sudrik", "parameters"] == 4_922_826
assert counted.at["wang", "parameters"] == 4_977_226
settings.key_number("sudrik parameters", counted.at["sudrik", "parameters"])
settings.key_number("wang parameters", counted.at["wang", "parameters"])
assert counted.loc[REPORT_KEYS[:-1], "under_budget"].all(), "a report's model is over 5M"
assert not counted.at["resnet18", "under_budget"]

# %% [markdown]
# `resnet18` is not a report: it is the standard CIFAR ResNet-18 (widths 64-128-256-512, two
# blocks per stage) that every report started from. At 11.2M parameters it is more than twice
# the budget, so each report shrank it in its own way. How close to the line did they go?

# %%
reports = counted.loc[REPORT_KEYS[:-1]]
headroom = (BUDGET - reports["parameters"]) / 1e3
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(reports.index, headroom, color="tab:blue")
for y, (value, count) in enumerate(zip(headroom, reports["parameters"], strict=True)):
    ax.text(value, y, f"  {value:.1f}k  ({count / BUDGET:.1%} of the budget used)", va="center")
ax.set_xlim(0, headroom.max() * 1.9)
ax.invert_yaxis()
ax.set_xlabel("headroom under 5M (thousands of parameters)")
ax.set_title("Every report's model sits just under the 5M-parameter line")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - Our rebuilds of `sudrik` and `wang` give their stated counts to the last parameter: a
#   model description with widths, blocks and the conventions (no conv bias, BN everywhere,
#   1x1 projection shortcuts) pins the count down exactly.
# - All five use more than 98% of the budget. Parameters were treated as the scarce
#   resource; yet the forward cost differs by 2.4x between them (0.66 to 1.55 GFLOPs).

# %% [markdown]
# ## 3. Where the parameters live
#
# A 3x3 conv at width $c$ has $9c^2$ parameters, but it runs once for every pixel of its
# feature map. Each stage doubles the width and halves the map (four times fewer pixels):
#
# - parameters per conv: $\times 4$ per stage (width squared),
# - FLOPs per conv: $\times 4 \div 4 = \times 1$ per stage (same compute, fewer pixels).
#
# So a block costs about the same FLOPs wherever it sits, but four times the parameters one
# stage later. The parameters pile up in the last stage, while the compute follows the
# number of blocks: a stage with twice the blocks does about twice the work. The helper
# below asks PyTorch's FLOP counter how much of the forward pass each part runs.


# %%
def part_flops(model: nn.Module) -> dict[str, int]:
    """Forward FLOPs per 32x32 image spent in each part (stem, stage1.., head) of a ResNet."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(1, 3, 32, 32, device="meta"))
    by_module = counter.get_flop_counts()  # keyed "ResNet.stages.stage1", ...
    root = type(model).__name__
    names = {part: f"{root}.{part}" for part in ("stem", "head")}
    parts = params.stage_parameters(model)
    names |= {part: f"{root}.stages.{part}" for part in parts if part.startswith("stage")}
    return {part: sum(by_module.get(names[part], {}).values()) for part in parts}


# %%
fig, axes = plt.subplots(1, len(STAGE_MODELS), figsize=(4.2 * len(STAGE_MODELS), 3.6))
for ax, key in zip(axes, STAGE_MODELS, strict=True):
    model = zoo_models[key]
    counts = params.stage_parameters(model)
    flops = part_flops(model)
    assert sum(counts.values()) == count_parameters(model)
    assert sum(flops.values()) == params.flops(model)
    stages = [part for part in counts if part.startswith("stage")]
    assert max(counts, key=counts.get) == stages[-1], f"{key}: the last stage is not the largest"

    x = np.arange(len(counts))
    share_params = [100 * n / sum(counts.values()) for n in counts.values()]
    share_flops = [100 * flops[part] / sum(flops.values()) for part in counts]
    ax.bar(x - 0.2, share_params, width=0.4, label="parameters")
    ax.bar(x + 0.2, share_flops, width=0.4, label="forward FLOPs")
    ax.set_xticks(x, list(counts), rotation=30)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of the model (%)")
    ax.set_title(f"{key}: {count_parameters(model) / 1e6:.2f}M params")
axes[0].legend(loc="upper left")
fig.suptitle("Where the parameters live (and where the compute goes)")
fig.tight_layout()
plt.show()


# %%
def percent(parts: dict[str, int], stages: list[str]) -> str:
    """Each stage's share of the parts' total, in whole percent: "46/18/18/18"."""
    return "/".join(f"{100 * parts[stage] / sum(parts.values()):.0f}" for stage in stages)


by_stage = {}  # the figure's shares as numbers, stage 1 first (stem and head hold under 1%)
for key in STAGE_MODELS:
    model = zoo_models[key]
    counts, flops = params.stage_parameters(model), part_flops(model)
    stages = [part for part in counts if part.startswith("stage")]
    by_stage[key] = {
        "blocks": "-".join(str(len(stage)) for stage in model.stages),
        "parameters (%)": percent(counts, stages),
        "FLOPs (%)": percent(flops, stages),
    }
by_stage = pd.DataFrame(by_stage).T
display(by_stage)
assert by_stage.at["wang", "FLOPs (%)"] == "46/18/18/18"
assert by_stage.at["merabishvili", "FLOPs (%)"] == "31/39/29"
assert by_stage.at["sudrik", "FLOPs (%)"] == "44/26/23/7"
assert by_stage["parameters (%)"].tolist() == ["5/24/71", "5/11/39/46", "3/5/18/74"]

# %% [markdown]
# **What to notice**
# - The last stage holds the largest share of the parameters: 46% in `sudrik`, 71% in
#   `merabishvili` and 74% in `wang`; the stem and head together hold under 1%. To save
#   parameters, look at the last stage first (`params.check_budget` names the largest layers
#   when a model is over).
# - The compute is not spread evenly: it follows the number of blocks, not the width. When
#   the width doubles as the map halves, every block costs about the same FLOPs wherever it
#   sits. `merabishvili` (blocks 3-4-3) spends 31/39/29% of its FLOPs in its three stages;
#   `wang` (blocks 2-1-1-1) spends 46% in stage 1 and 18% in each later stage (a block that
#   halves the map costs about 4/5 of one that does not, so stage 1's 2 blocks of 5 get a
#   little more than 40%). A block added in stage 1 is nearly free in parameters, but not in
#   time.
# - `sudrik` grows its widths by less than 2x per stage (64-128-192-256), so its late blocks
#   are cheaper in FLOPs: 44/26/23/7% for blocks 3-2-3-2, most of it early. Its parameters
#   are spread over stages 3 and 4, which is how it affords 10 blocks under 5M where `wang`
#   has 5.

# %% [markdown]
# ## 4. Fitting the 5M budget
#
# From section 1, a block at width $c$ costs about $18c^2$ parameters. Scale every width of a
# network by $s$ and its size grows by $s^2$; add one block per stage and it grows by a fixed
# amount. Width is the expensive knob, depth the cheap one. The next cell shows both with the
# formula from section 1, on the 1-2-4-8 width pattern of ResNet-18.


# %%
def widths_for(base: int, ratios: Sequence[float]) -> list[int]:
    """Stage widths as multiples of a base width, e.g. base 64, ratios 1-2-4-8 -> 64..512."""
    return [max(1, round(base * ratio)) for ratio in ratios]


resnet18_ratios = (1, 2, 4, 8)
by_width = [
    basic_resnet_params([2, 2, 2, 2], widths_for(w, resnet18_ratios), w) for w in WIDTH_SWEEP
]
by_depth = [
    basic_resnet_params([n] * 4, widths_for(SWEEP_BASE_WIDTH, resnet18_ratios), SWEEP_BASE_WIDTH)
    for n in DEPTH_SWEEP
]
# Depth is exactly linear: every extra block per stage adds the same identity blocks.
assert np.all(np.diff(by_depth, 2) == 0)
# Width is quadratic: doubling the width multiplies the count by almost exactly 4.
ratio_64 = by_width[WIDTH_SWEEP.index(128)] / by_width[WIDTH_SWEEP.index(64)]
assert 3.9 < ratio_64 < 4.0, ratio_64
print(f"doubling the base width 64 -> 128 multiplies the parameters by {ratio_64:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.loglog(WIDTH_SWEEP, np.array(by_width) / 1e6, "o-", label="blocks 2-2-2-2 (ResNet-18)")
guide = 0.5 * by_width[-1] / 1e6 * (np.array(WIDTH_SWEEP) / WIDTH_SWEEP[-1]) ** 2
left.loglog(WIDTH_SWEEP, guide, "--", color="grey", label="width squared (slope 2), shifted")
left.axhline(BUDGET / 1e6, color="tab:red", label="5M budget")
left.set_xticks([8, 16, 32, 64, 128], ["8", "16", "32", "64", "128"])
left.set_yticks([0.1, 0.3, 1, 3, 10, 30], ["0.1", "0.3", "1", "3", "10", "30"])
left.minorticks_off()
left.set_xlabel("base width (channels of stage 1; stages use 1x, 2x, 4x, 8x)")
left.set_ylabel("parameters (millions, log scale)")
left.set_title("Width: parameters grow with its square")
left.legend()
right.plot(DEPTH_SWEEP, np.array(by_depth) / 1e6, "o-", label=f"base width {SWEEP_BASE_WIDTH}")
right.axhline(BUDGET / 1e6, color="tab:red", label="5M budget")
right.set_xlabel("blocks per stage (4 stages)")
right.set_ylabel("parameters (millions)")
right.set_title("Depth: parameters grow linearly")
right.set_ylim(0, None)
right.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The widest layout under the budget
#
# Fix a *block pattern* (blocks per stage) and the width ratios between stages; then the
# parameter count only depends on the base width, and it grows with it. So the widest
# network that fits is found by **bisection**: keep a base width that fits (`low`) and one
# that does not (`high`), try the middle, and halve the gap until they are neighbours. Each
# try builds the model on the meta device and counts it with PyTorch, so the search works
# for any block class, not only the ones we have a formula for.


# %%
def layout_params(blocks: Sequence[int], ratios: Sequence[float], base: int) -> int:
    """Parameters of the BasicBlock ResNet with these blocks and widths base * ratios."""
    with torch.device("meta"):
        return count_parameters(ResNet(blocks, widths_for(base, ratios)))


def widest_under_budget(blocks: Sequence[int], ratios: Sequence[float], budget: int) -> int:
    """The largest base width whose layout has fewer than ``budget`` parameters (bisection)."""
    if layout_params(blocks, ratios, 1) >= budget:
        raise ValueError(f"blocks {list(blocks)} exceed {budget:,} parameters even at width 1.")
    low, high = 1, 2
    while layout_params(blocks, ratios, high) < budget:  # double until a width does not fit
        low, high = high, 2 * high
    while high - low > 1:  # invariant: low fits, high does not
        middle = (low + high) // 2
        if layout_params(blocks, ratios, middle) < budget:
            low = middle
        else:
            high = middle
    return low


# %%
known_shapes = {(tuple(b), tuple(w)): key for key, (b, w, _) in layouts.items()}
rows = []
for blocks, ratios in SEARCH_PATTERNS:
    base = widest_under_budget(blocks, ratios, BUDGET)
    count = layout_params(blocks, ratios, base)
    assert count < BUDGET <= layout_params(blocks, ratios, base + 1), "not the widest that fits"
    widths = widths_for(base, ratios)
    with torch.device("meta"):
        gflops = params.flops(ResNet(blocks, widths)) / 1e9
    rows.append(
        {
            "blocks": "-".join(map(str, blocks)),
            "widths": "-".join(map(str, widths)),
            "parameters": count,
            "GFLOPs / image": round(gflops, 3),
            "same as zoo model": known_shapes.get((tuple(blocks), tuple(widths)), ""),
        }
    )
searched = pd.DataFrame(rows)
display(searched)
found = set(searched["same as zoo model"])
assert {"wang", "sudrik"} <= found, "the search should rediscover the two reported shapes"

# %% [markdown]
# The search rediscovers the reports: `wang` (2-1-1-1) and `wang_deep` (6-5-4-3) are exactly
# the widest 1-2-4-8 layouts of their patterns, `sudrik` the widest 1-2-3-4 layout of 3-2-3-2,
# and `sudrik_resnet10` the widest 1-1-1-1. Now put the zoo and the searched layouts on one
# map: parameters against compute.
#
# Two dots on the map are new, and neither is a report. `capstone` is the network this
# course trains in lecture 06: Keller Jordan's airbench94 network with a shortcut around each
# pair of convolutions (a whitening first layer, three blocks that widen and max-pool). With
# 2.06M parameters it leaves more than half the budget unused, and at 0.24 GFLOPs per image
# it is the cheapest model on the map. `resnet9_page` is the course's first capstone, a
# ResNet-9 in the style of Page's DAWNBench model (its last stage narrowed from 512 to 384
# channels to fit the budget): 4.21M parameters, 0.66 GFLOPs, as much per image as `wang`.
# Neither is a `BasicBlock` ResNet, so the search cannot produce them.
#
# Many points crowd the 5M line, so a small helper places each label where it covers no
# point, no other label and not the line.

# %%
# Where a label may go around its point: (x, y) offset in points, then the text alignment.
LABEL_SPOTS = [
    ((8, 0), "left", "center"),
    ((-8, 0), "right", "center"),
    ((6, 6), "left", "bottom"),
    ((-6, 6), "right", "bottom"),
    ((6, -6), "left", "top"),
    ((-6, -6), "right", "top"),
]


def place_labels(ax: plt.Axes, labels: list[Annotation], line_x: float) -> None:
    """Put each label at the first spot around its point that overlaps no marker, no label
    placed before it and no vertical line at data x ``line_x``; if none is free, on the right."""
    fig = ax.figure
    fig.canvas.draw()  # lay the figure out, so that the labels' sizes can be measured
    pt = fig.dpi / 72  # pixels per point
    line = ax.transData.transform((line_x, 0))[0]
    taken = [Bbox.from_extents(line - 2 * pt, 0, line + 2 * pt, fig.bbox.height)]
    for x, y in ax.transData.transform([label.xy for label in labels]):
        taken.append(Bbox.from_extents(x - 5 * pt, y - 5 * pt, x + 5 * pt, y + 5 * pt))
    for label in labels:
        for offset, ha, va in [*LABEL_SPOTS, LABEL_SPOTS[0]]:  # the last try: back to the right
            label.set_position(offset)
            label.set_horizontalalignment(ha)
            label.set_verticalalignment(va)
            box = label.get_window_extent()
            if not any(box.overlaps(other) for other in taken):
                break
        taken.append(box)


# %%
on_map = counted[counted["parameters"] < BUDGET]  # the over-budget ResNet-18 is off the map
new_layouts = searched[searched["same as zoo model"] == ""]
points = pd.DataFrame(
    {
        "x": list(on_map["parameters"] / 1e6) + list(new_layouts["parameters"] / 1e6),
        "y": list(on_map["gflops"]) + list(new_layouts["GFLOPs / image"]),
        "label": list(on_map.index)
        + [f"{b} @ {w}" for b, w in new_layouts[["blocks", "widths"]].values],
    }
)
points["label"] = points["label"].replace(
    {"capstone": "capstone (lecture 06)", "resnet9_page": "resnet9_page (first capstone)"}
)
assert counted.at["capstone", "parameters"] == 2_055_384  # less than half the budget
assert counted.at["capstone", "gflops"] == counted["gflops"].min()  # the cheapest per image
assert counted.at["resnet9_page", "parameters"] == 4_211_786  # about 0.8M under the budget
assert counted.at["resnet9_page", "gflops"] <= counted.at["wang", "gflops"]

fig, ax = plt.subplots(figsize=(10, 7))
ax.scatter(on_map["parameters"] / 1e6, on_map["gflops"], s=40, label="zoo models")
ax.scatter(
    searched["parameters"] / 1e6,
    searched["GFLOPs / image"],
    marker="x",
    s=80,
    color="tab:orange",
    label="widest layout of a block pattern (search);\nan x on a dot: the search found that shape",
)
labels = [
    ax.annotate(
        point["label"],
        (point["x"], point["y"]),
        xytext=LABEL_SPOTS[0][0],  # place_labels moves it if that spot is taken
        textcoords="offset points",
        fontsize=8,
        color="tab:orange" if "@" in point["label"] else "black",
    )
    for _, point in points.iterrows()
]
ax.axvline(BUDGET / 1e6, color="tab:red", label="5M budget")
ax.set_xlim(points["x"].min() - 0.25, BUDGET / 1e6 + 0.3)
ax.set_xlabel("parameters (millions)")
ax.set_ylabel("forward GFLOPs per 32x32 image")
ax.set_title(
    "Same parameter budget, 3x range of compute\n"
    f"(ResNet-18, {counted.at['resnet18', 'parameters'] / 1e6:.1f}M parameters, is off the map)"
)
ax.legend(loc="center left")
fig.tight_layout()
place_labels(ax, labels, BUDGET / 1e6)
plt.show()

# %% [markdown]
# **What to notice**
# - Widths are integers, so the widest fit lands within a few percent under 5M; every pattern
#   here uses 96-100% of the budget.
# - At (almost) the same parameter count the forward cost spans about 3x: more blocks in the
#   early, high-resolution stages cost FLOPs but few parameters.
# - The search does not tell you which shape trains best. The reports tried that; the next
#   two sections look at what they found.

# %% [markdown]
# ## 5. Revisiting `wang`: width versus depth
#
# `wang` trained the ResNet-18 layout with blocks 2-1-1-1 (the report states 4,977,226
# parameters and 93.81% test accuracy). In a width-vs-depth study, the report halved every
# width and used blocks 6-5-4-3 (`wang_deep`, about 4.9M parameters): **93.87%** in the
# report, against **93.38%** for one block per stage at full width. We take that last model
# to be blocks 1-1-1-1 at widths 64-512, the same shape as `sudrik_resnet10`. What do the
# three cost?

# %%
WANG_ONE_BLOCK_ACCURACY = 93.38  # the wang report: one block per stage at full width
WANG_STUDY = {  # zoo key -> (label, test accuracy (%) as the wang report states it)
    "sudrik_resnet10": ("one block/stage\nblocks 1-1-1-1\nwidths 64-512", WANG_ONE_BLOCK_ACCURACY),
    "wang": ("wang\nblocks 2-1-1-1\nwidths 64-512", zoo.REPORTS["wang"].reported_accuracy),
    "wang_deep": (
        "wang_deep\nblocks 6-5-4-3\nwidths 32-256",
        zoo.REPORTS["wang_deep"].reported_accuracy,
    ),
}
study = pd.DataFrame(
    {
        "parameters (M)": [counted.at[key, "parameters"] / 1e6 for key in WANG_STUDY],
        "GFLOPs / image": [counted.at[key, "gflops"] for key in WANG_STUDY],
        "3x3 conv layers": [
            sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())
            for model in (zoo_models[key] for key in WANG_STUDY)
        ],
    },
    index=[f"{label}\nreport: {acc:.2f}%" for label, acc in WANG_STUDY.values()],
)
assert counted.at["wang", "parameters"] == 4_977_226
assert (study["parameters (M)"] < BUDGET / 1e6).all()
wang_flops, deep_flops = counted.at["wang", "gflops"], counted.at["wang_deep", "gflops"]
assert abs(deep_flops / wang_flops - 1) < 0.01, "wang and wang_deep should cost the same FLOPs"
assert sum(layouts["wang"][0]) == 5 and sum(layouts["wang_deep"][0]) == 18  # 3.6x the blocks
assert study["3x3 conv layers"].tolist() == [9, 11, 37]
TEST_IMAGES = 10_000  # CIFAR-10's test set, on which the report's accuracies are measured
accuracy = zoo.REPORTS["wang"].reported_accuracy / 100
standard_error = 100 * np.sqrt(accuracy * (1 - accuracy) / TEST_IMAGES)  # binomial count
assert round(standard_error, 2) == 0.24
print(f"one test accuracy near {100 * accuracy:.0f}%: standard error {standard_error:.2f} points")

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, column, colour in zip(
    axes, study.columns, ["tab:blue", "tab:orange", "tab:green"], strict=True
):
    ax.bar(range(len(study)), study[column], color=colour)
    ax.set_xticks(range(len(study)), study.index, fontsize=9)
    ax.set_ylabel(column)
    ax.set_title(column.split(" (")[0])
fig.suptitle(
    "wang's width-vs-depth study: three layouts of ~4.9M parameters\n"
    "(the test accuracies under each bar are the ones the wang report states)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - Halving every width saves 3/4 of the parameters per layer, which pays for 3.6 times as
#   many blocks: 18 instead of 5, or 37 3x3 conv layers instead of 11, for about the same
#   4.9M parameters.
# - The forward FLOPs of `wang` and `wang_deep` agree to within 1%. So the report's
#   comparison is fair in both budgets; we expect the deep network to run slower all the
#   same (our reasoning, not measured here: 37 small layers run one after another keep a
#   GPU less busy than 11 big ones).
# - The gap the report measured between them, 0.06 percentage points, is one run each: far
#   smaller than the 0.24-point standard error printed above, which the choice of 10,000
#   test images alone puts on an accuracy near 94% (our reasoning: a binomial count,
#   $\sqrt{a(1-a)/n}$ for accuracy $a$ on $n$ images; seeds add their own spread, which
#   lecture 07 measures). The 1-1-1-1 model, cheaper in FLOPs, was 0.4-0.5 points behind
#   both, also in one run each.

# %% [markdown]
# ## 6. Revisiting `sudrik`'s Table 1: six shapes under 5M
#
# `sudrik` compared six 4-stage shapes, all near 5M parameters, trained the same way for 20
# epochs (Adadelta, batch 32). Their Table 1 test accuracies are plotted below against the
# forward FLOPs we count for each shape. ResNet-22 (`sudrik`, 3-2-3-2) scored 84.53% in Table 1;
# its 94.12% comes later, from the final 300-epoch recipe with mixup (and is its best epoch
# measured on the test set; its last epoch read 92.94%).

# %%
SUDRIK_TABLE1_RESNET22 = 84.53  # sudrik's Table 1 (20 epochs); not the final 94.12%
table1_keys = [
    "sudrik_resnet10",
    "sudrik_resnet18",
    "sudrik_resnet20",
    "sudrik",
    "sudrik_resnet24",
    "sudrik_resnet32",
]
table1 = counted.loc[table1_keys, ["parameters", "gflops"]].copy()
table1["accuracy (report)"] = [
    SUDRIK_TABLE1_RESNET22 if key == "sudrik" else zoo.REPORTS[key].reported_accuracy
    for key in table1_keys
]
assert table1.at["sudrik", "parameters"] == 4_922_826
assert (table1["parameters"] < BUDGET).all()

fig, ax = plt.subplots(figsize=(8, 4.5))
ax.scatter(table1["gflops"], table1["accuracy (report)"], s=60)
for key, row in table1.iterrows():
    blocks, widths, _ = layouts[key]
    label = f"{key}\n{'-'.join(map(str, blocks))} @ {'-'.join(map(str, widths))}, "
    label += f"{row['parameters'] / 1e6:.2f}M"
    ax.annotate(
        label,
        (row["gflops"], row["accuracy (report)"]),
        xytext=(6, -4),
        textcoords="offset points",
        fontsize=8,
    )
ax.set_xlim(0.4, 1.35)
ax.margins(y=0.15)
ax.set_xlabel("forward GFLOPs per 32x32 image (ours)")
ax.set_ylabel("test accuracy after 20 epochs (%, sudrik's Table 1)")
ax.set_title(
    "sudrik's Table 1: six shapes of ~5M parameters\n"
    "(accuracies are sudrik's: one 20-epoch run each)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice**
# - The parameters barely differ (4.75M to 5.00M), yet the accuracies span almost 3 points.
#   At a fixed parameter budget, the shape matters.
# - The two cheapest shapes in FLOPs (1-1-1-1, and 4-4-4-3 at half width) scored lowest; the
#   best, ResNet-22, is among the most expensive. Spending compute, not parameters, is what
#   went with accuracy here.
# - These are single 20-epoch runs: differences of a few tenths of a point (ResNet-18 vs
#   ResNet-20, 83.35% and 83.63%) are within the 0.37-point standard error that 10,000
#   test images put on an accuracy near 84% (our reasoning, as in section 5), and a ranking
#   after 20 epochs need not hold after 300.

# %% [markdown]
# ## 7. The other budget: training compute
#
# Training costs about 3x the forward FLOPs per image (the backward pass is about twice the
# forward), times the images seen: `params.training_flops(model, epochs * images)`. Here is
# what each report's recipe cost, in PFLOPs ($10^{15}$ FLOPs), next to the 15 PFLOPs that
# each lecture of this course may spend on training. `pillai` trains on 80% of the training
# set for the 300 epochs the report planned.

# %%
RECIPE_IMAGES = {key: CIFAR_TRAIN_IMAGES for key in REPORT_KEYS[:-1]}
RECIPE_IMAGES["pillai"] = int(0.8 * CIFAR_TRAIN_IMAGES)  # 80/20 train/validation split
recipe_pflops = {
    key: params.training_flops(zoo_models[key], zoo.REPORTS[key].epochs * images) / 1e15
    for key, images in RECIPE_IMAGES.items()
}

fig, ax = plt.subplots(figsize=(8, 3.8))
ax.barh(list(recipe_pflops), list(recipe_pflops.values()), color="tab:purple")
for y, (key, pflops) in enumerate(recipe_pflops.items()):
    report = zoo.REPORTS[key]
    acc = (
        "no test accuracy"
        if report.reported_accuracy is None
        else (f"{report.reported_accuracy:.2f}% test")
    )
    epochs = f"{report.epochs} epochs" + (" planned" if key == "pillai" else "")
    ax.text(pflops, y, f"  {pflops:.0f} PFLOPs, {epochs}, {acc}", va="center", fontsize=8)
ax.axvline(15, color="tab:red", label="one lecture's training budget (15 PFLOPs)")
ax.set_xlim(0, max(recipe_pflops.values()) * 1.6)
ax.invert_yaxis()
ax.set_xlabel("training compute of the report's recipe (PFLOPs, estimate: 3 x forward)")
ax.set_title("What the reports' training runs cost (accuracies are the reports' own)")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

ledger = params.ComputeLedger()  # every lecture records its training runs here; 03 has none
settings.check_plan(ledger.total, PLANNED_PFLOPS)  # as planned: nothing
print(f"this lecture trained nothing: {ledger.total:.0f} PFLOPs of its 15 PFLOPs training budget")
cheapest = min(recipe_pflops, key=recipe_pflops.get)
dearest = max(recipe_pflops, key=recipe_pflops.get)
assert (cheapest, round(recipe_pflops[cheapest], 1)) == ("wang", 6.9), recipe_pflops
assert (dearest, round(recipe_pflops[dearest])) == ("rout", 88), recipe_pflops
settings.key_number(
    "reports' training PFLOPs", f"{recipe_pflops[cheapest]:.1f} to {recipe_pflops[dearest]:.0f}"
)
for key in (cheapest, dearest):  # in the course's one set of throughput assumptions
    print(f"{key}'s recipe: {settings.estimate(recipe_pflops[key])}")

# %% [markdown]
# **What to notice**
# - The reports spent 6.9 (`wang`) to 88 (`rout`) PFLOPs, and more compute did not buy
#   more accuracy: `rout` spent the most and scored the least, `wang` spent the least and
#   is within 0.4 points of the best. The recipe matters more than the bill.
# - Parameters were the rule of the project; compute decides how long you wait. The
#   capstone (lecture 06) aims at 94% within 0.36 PFLOPs, the compute of airbench94.

# %% [markdown]
# ## Try it
#
# 1. **A bottleneck by hand.** In the cell of section 1 that builds `block`, replace it by
#    `Bottleneck(64, 32, stride=2)` (import it from `course_utils.models`) and rewrite
#    `by_hand` for its layers: 1x1 64->32, 3x3 32->32, 1x1 32->128, three BNs and a 1x1
#    64->128 projection. The assert tells you when you have it right: keys `conv1` to
#    `bn3`, `shortcut.0` and `shortcut.1`, 24,192 parameters in all (a tenth of the basic
#    block's, for the same 64 -> 128 channels).
# 2. **Your own pattern.** In the parameters cell, add a pattern to `SEARCH_PATTERNS`, for
#    example `([4, 4, 4], (1, 2, 4))` or `([1, 2, 3, 1], (1, 2, 4, 8))`, and rerun from
#    there: where does it land on the parameters-vs-FLOPs map? We saw 4-4-4 come out at
#    widths 59-118-236 and 1.49 GFLOPs, at the top next to `merabishvili` and `pillai`, and
#    1-2-3-1 at 52-104-208-416 and 0.63 GFLOPs, just below `wang`; both use 99.9% of the
#    budget.
# 3. **wang's small model.** The `wang` report says a model under 1M parameters still passed
#    92%. In a new cell after the search, run `widest_under_budget([2, 1, 1, 1], (1, 2, 4, 8),
#    1_000_000)`: how wide can the 2-1-1-1 pattern be under 1M, and how many FLOPs does it
#    cost (`params.flops`)? We got base width 28 (widths 28-56-112-224), 955,846
#    parameters and 0.13 GFLOPs per image: a fifth of `wang`'s parameters and of its
#    FLOPs.
# 4. **Where to cut.** Call `params.check_budget(zoo.build("resnet18"))` in a new cell and
#    read the error: which layers does it name first, and why those (section 3)? It names
#    three 3x3 convs of `stage4` (512 -> 512 channels), 2,359,296 parameters each: the last
#    stage is the widest, and a conv's parameters grow with the square of its width.

# %% [markdown]
# ## Summary
#
# - Three formulas count every parameter of a ResNet: $k^2 c_{in} c_{out}$ per conv, $2c$ per
#   BatchNorm, $n_{in} n_{out} + n_{out}$ for the head. BN's running statistics are buffers,
#   not parameters. `params.count_parameters`, `params.summary` and the formulas agree.
# - The reports' models rebuild from their descriptions alone; `sudrik`'s 4,922,826 and
#   `wang`'s 4,977,226 come out exactly.
# - Parameters grow with width squared and depth linearly, and they pile up in the last,
#   widest stage (46-74% in section 3). Compute follows the number of blocks instead: when
#   the width doubles as the map halves, a block costs about the same FLOPs in every stage
#   (`wang`, blocks 2-1-1-1: 46/18/18/18% of its FLOPs).
# - Bisection on the base width finds the widest layout of a pattern under 5M, and it finds
#   the reports' own shapes. At the same parameter count, compute varies about 3x.
# - In the reports' own studies, the shape and the training recipe, not the last few
#   thousand parameters, made the difference.
