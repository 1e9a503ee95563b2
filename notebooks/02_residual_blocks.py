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
# # 02 · Residual blocks
#
# Every model in this course is a stack of *residual blocks*. A block does not learn its
# output directly: it learns a correction `F(x)` that is **added** to its input. This one
# addition is what lets a 56-layer network train at all where the same network without it
# barely does; with enough epochs the deeper one ends ahead (He et al., 2016).
#
# **What you will learn**
# - the residual equation and the basic block, written from scratch and checked against
#   the course's `BasicBlock`;
# - why shortcuts matter: a plain deep network next to the same network with shortcuts,
#   gradient norms at initialisation and training loss side by side;
# - what a shortcut does when the shape changes, and the bottleneck block;
# - the block variants the student reports tried: LeakyReLU (`rout`) and dropout inside
#   the block (`pillai`);
# - how to write your own block and train a ResNet made of it.
#
# **Reports revisited.** Three of the five reports build their networks from basic blocks
# (`merabishvili`, `sudrik`, `wang`), `rout` uses bottleneck blocks with LeakyReLU, and
# `pillai` puts dropout inside every block. Their models are rebuilt in `course_utils.zoo`.

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
from matplotlib.ticker import MaxNLocator, StrMethodFormatter
from torch import nn

from course_utils import data, models, params, plots, zoo
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, cifar10
from course_utils.loader import DeviceLoader, normalize
from course_utils.train import fit

device = settings.get_device()

# %% [markdown]
# ## Parameters
#
# Every size and epoch count of this lecture, at each of its three sizes: `full` (a GPU,
# the experiment as designed), `cpu` (real CIFAR-10 on a CPU, minutes) and `smoke` (CI).
# Depths count the layers with weights: the stem conv, two convs per block and the
# classifier, so `depth = 6 * n + 2` for `n` blocks in each of the three stages (ResNet-20
# has `n = 3`, ResNet-56 has `n = 9`). The cell ends with the training compute it plans
# and, from the course's one throughput assumption, how long that takes.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
print(
    f"Size {SIZE}: "
    + {
        "full": "the depths and widths of the ResNet paper's study, 45,000 images, 10 epochs",
        "cpu": "the paper's depths at half the width, 10,000 CIFAR-10 images, 4 epochs",
        "smoke": "tiny networks on 1,024 images, 3 epochs (CI: seconds)",
    }[SIZE]
)
if SIZE == "smoke":  # CI on a CPU: tiny data, thin and shallow networks, a few dozen steps
    TRAIN_IMAGES, VAL_FRACTION = 1_280, 0.2  # 1,024 to train on, 256 held out
    WIDTHS = (8, 16, 32)  # channels of the three stages
    DEPTHS = (8, 20)  # the shallow and the deep network of the experiment
    EPOCHS = 3
    BATCH_SIZE = 64
    GRAD_BATCH, GRAD_SEEDS = 32, 2  # images and initialisations for the gradient plot
elif SIZE == "cpu":  # real CIFAR-10: about 7 minutes on a 2-core CPU (measured)
    TRAIN_IMAGES, VAL_FRACTION = 12_500, 0.2  # 10,000 real images to train on, 2,500 held out
    WIDTHS = (8, 16, 32)  # half the paper's widths: a quarter of the compute per image
    DEPTHS = (20, 56)  # the paper's depths, so the 56-layer plain network is in the race
    EPOCHS = 4
    BATCH_SIZE = 128
    GRAD_BATCH, GRAD_SEEDS = 128, 3
else:  # full: the widths and depths of the ResNet paper's CIFAR-10 study (section 2)
    TRAIN_IMAGES, VAL_FRACTION = 50_000, 0.1  # 45,000 to train on, 5,000 held out
    WIDTHS = (16, 32, 64)
    DEPTHS = (20, 56)
    EPOCHS = 10
    BATCH_SIZE = 128
    GRAD_BATCH, GRAD_SEEDS = 128, 3
LR = 0.1  # peak learning rate of SGD with Nesterov momentum and a one-cycle schedule
SEED = 0  # initial weights, batch order, crops and flips of section 2's four runs
EDIT_DEPTH = DEPTHS[0]  # depth of the ResNet built from your own block: one of DEPTHS
if EDIT_DEPTH not in DEPTHS:  # section 6 compares your block with section 2's network
    raise ValueError(
        f"EDIT_DEPTH = {EDIT_DEPTH}, but your block is compared with the residual network "
        f"of the same depth from section 2: choose one of DEPTHS = {DEPTHS}, or add "
        f"{EDIT_DEPTH} to DEPTHS."
    )
# The training compute this lecture plans (its ledger, printed at the end, must agree within
# a factor 1.5): four networks of section 2 and your block of section 6, EPOCHS epochs each.
PLANNED_PFLOPS = {"smoke": 0.00056, "cpu": 0.0226, "full": 1.01}[SIZE]
print(settings.estimate(PLANNED_PFLOPS))
settings.warn_if_long(PLANNED_PFLOPS, device)

# %% [markdown]
# ## The data
#
# CIFAR-10 when it is on disk or downloadable, otherwise the synthetic stand-in (the line
# below says which). A random part of the training split is held out as a *validation*
# set: the networks never train on it, and the accuracy curves below are measured on it.
# This lecture compares networks and picks no final model, so it never touches the test
# set. The training loader shuffles and augments (random crop, flip) on the training
# device; the validation loader does neither.

# %%
train_data, val_data = cifar10("train", n=TRAIN_IMAGES).holdout(VAL_FRACTION, seed=0)
data.note_if_standin(train_data, SIZE)
train_loader = DeviceLoader(train_data, batch_size=BATCH_SIZE, device=device)
val_loader = DeviceLoader(val_data, batch_size=2 * BATCH_SIZE, train=False, device=device)
print(train_data, val_data, sep="\n")
assert val_loader.split == "validation"
ledger = params.ComputeLedger()  # training PFLOPs of every run in this lecture


# %% [markdown]
# ## 1. The residual equation
#
# A plain layer stack learns a mapping `H(x)` directly. A residual block learns only the
# difference from its input and adds the input back through a *shortcut*:
#
# $$ y = \sigma\big(F(x) + x\big), \qquad F(x) = \mathrm{BN}(W_2 * \sigma(\mathrm{BN}(W_1 * x))) $$
#
# where `*` is a 3x3 convolution and $\sigma$ the activation (ReLU). If the best thing a
# block can do is nothing, it only has to drive `F` to zero, which is easy; a plain stack
# has to learn the identity with its convolutions, which is hard. The picture:


# %%
def draw_block(ax, title: str, layers: list[str], shortcut: str) -> None:
    """Draw a residual block left to right: input, layer boxes, the addition, the
    activation and the output, with the shortcut running above the boxes to the addition."""
    step = 1.75
    add_x = step * (len(layers) + 1)
    # (position, label, box style) of every element on the main path.
    parts = [(0.0, "x", "end")]
    parts += [(step * (i + 1), label, "layer") for i, label in enumerate(layers)]
    parts += [(add_x, "+", "add"), (add_x + 1.3, "ReLU", "act"), (add_x + 2.4, "y", "end")]
    boxes = {
        "end": {"boxstyle": "square,pad=0.3", "facecolor": "none", "edgecolor": "none"},
        "layer": {"boxstyle": "round,pad=0.5", "facecolor": "#dbe9f6", "edgecolor": "0.3"},
        "add": {"boxstyle": "circle,pad=0.2", "facecolor": "white", "edgecolor": "0.3"},
        "act": {"boxstyle": "round,pad=0.5", "facecolor": "#e3f1dc", "edgecolor": "0.3"},
    }
    fonts = {"end": 14, "layer": 9, "add": 12, "act": 9}
    texts = [
        ax.text(x, 0, label, ha="center", va="center", fontsize=fonts[style], bbox=boxes[style])
        for x, label, style in parts
    ]
    for (x0, *_), (x1, *_), start, end in zip(parts, parts[1:], texts, texts[1:], strict=False):
        arrow = {
            "arrowstyle": "->",
            "patchA": start.get_bbox_patch(),
            "patchB": end.get_bbox_patch(),
        }
        ax.annotate("", xy=(x1, 0), xytext=(x0, 0), arrowprops=arrow)
    ax.plot([0.0, 0.0, add_x], [0.15, 0.95, 0.95], color="tab:orange")
    into_add = {
        "arrowstyle": "->",
        "color": "tab:orange",
        "patchB": texts[len(layers) + 1].get_bbox_patch(),
    }
    ax.annotate("", xy=(add_x, 0), xytext=(add_x, 0.96), arrowprops=into_add)
    ax.text(add_x / 2, 1.05, f"shortcut: {shortcut}", ha="center", va="bottom", color="tab:orange")
    ax.set_xlim(-0.5, 9.8)
    ax.set_ylim(-0.6, 1.45)
    ax.set_title(title, loc="left", fontsize=10)
    ax.axis("off")


fig, axes = plt.subplots(2, 1, figsize=(9.5, 4.6))
draw_block(
    axes[0],
    "Basic block (ResNet-18/34; merabishvili, sudrik, wang): y = ReLU(F(x) + x)",
    ["3x3 conv\nstride s\nBN, ReLU", "3x3 conv\nBN"],
    "identity, or 1x1 conv + BN when the shape changes",
)
draw_block(
    axes[1],
    "Bottleneck block (ResNet-50; rout): squeeze to m channels, 3x3 at m, expand to 4m",
    ["1x1 conv\nC -> m\nBN, ReLU", "3x3 conv\nm -> m, stride s\nBN, ReLU", "1x1 conv\nm -> 4m\nBN"],
    "identity, or 1x1 conv + BN when the shape changes",
)
fig.suptitle("Residual blocks: the main path F(x) plus a shortcut, then the activation")
fig.tight_layout()

# %% [markdown]
# ### Build: a basic block from scratch
#
# Two 3x3 convolutions with BatchNorm (the convs need no bias: BN's shift replaces it),
# and the shortcut. When the block halves the image (`stride=2`) or changes the number of
# channels, `x` cannot be added as it is: a 1x1 convolution with the same stride (plus BN)
# reshapes it. That is the *projection shortcut* (section 3).


# %%
class BasicBlockFromScratch(nn.Module):
    """y = act(BN(conv(act(BN(conv(x))))) + shortcut(x)), written out in full."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, activation=nn.ReLU
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))  # F's first layer
        out = self.bn2(self.conv2(out))  # F's second layer: no activation yet
        return self.act2(out + self.shortcut(x))  # add the input back, then activate


# %% [markdown]
# ### Check: the same output as `course_utils.models.BasicBlock`
#
# Copy the package block's weights into ours and feed both the same input, once with the
# identity shortcut and once with a projection (16 -> 32 channels, stride 2). The outputs
# must agree in both of BatchNorm's modes: in training mode BN normalises with the mean
# and variance of the current batch (and updates running averages of them); in evaluation
# mode it uses those running averages, which the three training-mode calls have filled.

# %%
torch.manual_seed(0)
for in_channels, out_channels, stride in [(16, 16, 1), (16, 32, 2)]:
    reference = models.BasicBlock(in_channels, out_channels, stride)
    ours = BasicBlockFromScratch(in_channels, out_channels, stride)
    ours.load_state_dict(reference.state_dict())  # same names, so every weight finds its place
    x = torch.randn(8, in_channels, 16, 16)
    for _ in range(3):  # training mode: batch statistics (also updates the running ones)
        assert torch.allclose(ours(x), reference(x), atol=1e-6)
    ours.eval()
    reference.eval()
    out = ours(x)
    assert torch.allclose(out, reference(x), atol=1e-6)
    assert out.shape == (8, out_channels, 16 // stride, 16 // stride)
    print(f"{in_channels}->{out_channels}, stride {stride}: same output {tuple(out.shape)}")

# %% [markdown]
# **What to notice**
# - The block is a handful of lines: all of the idea is in `out + self.shortcut(x)`.
# - The state dicts line up name for name, so `load_state_dict` fails loudly if our block
#   had a layer more or less than the package's.
# - A stride-2 block halves height and width and (here) doubles the channels: the usual
#   rule that keeps the computation per layer roughly constant.

# %% [markdown]
# ## 2. Why shortcuts: plain versus residual
#
# He et al. (2016) found that a deeper *plain* network (the same layers, no shortcuts) reaches
# a **higher training error** than a shallower one, even with BatchNorm. That is not
# overfitting (the training error is worse) but an optimisation problem: a deep stack of
# layers is hard to train. With shortcuts, the deeper network trains at least as well.
#
# We rebuild their experiment: the same thin three-stage CIFAR network at two depths, each
# once plain and once residual. The plain block is the basic block with the addition
# removed; the course's `ResNet` accepts any block class, so that is all we need.
#
# **What differs from the paper.** The `full` size uses the widths (16-32-64) and two of
# the depths (20, 56) of their CIFAR-10 study and holds out 5k of the 50k training images
# for validation, the 45k/5k split on which they chose their schedule (the `cpu` size keeps
# the depths at half the widths, on 10k images). But their residual
# networks used parameter-free shortcuts where the shape changes (option A, section 3), so
# plain and residual networks had exactly the same parameters; the course's `BasicBlock`
# uses projection shortcuts, so ours have a few more (printed below). They also trained
# for 64k iterations of 128 images (more than 160 epochs) with a stepped learning rate; we
# train 10 epochs (`full`) or fewer with a one-cycle schedule.


# %%
class PlainBlock(nn.Module):
    """The basic block without its shortcut: y = act(BN(conv(act(BN(conv(x))))))."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, activation=nn.ReLU
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))


def thin_net(depth: int, block, seed: int = 0) -> models.ResNet:
    """The CIFAR network of the ResNet paper: 3 stages of (depth - 2) / 6 blocks each."""
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6 * n + 2 (8, 14, 20, 56, ...), got {depth}.")
    torch.manual_seed(seed)
    return models.ResNet([(depth - 2) // 6] * 3, WIDTHS, block=block)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convs and the linear layer on the main path, input to output (no shortcuts)."""
    return [
        module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and "shortcut" not in name
    ]


BLOCKS = {"plain": PlainBlock, "residual": models.BasicBlock}
RUNS = {f"{kind}-{depth}": (kind, depth) for depth in DEPTHS for kind in BLOCKS}
nets = {name: thin_net(depth, BLOCKS[kind], SEED) for name, (kind, depth) in RUNS.items()}
for name, (_, depth) in RUNS.items():
    layers = len(weight_layers(nets[name]))
    assert layers == depth, f"{name} has {layers} weight layers, expected {depth}"
    count = params.count_parameters(nets[name])
    extra = count - params.count_parameters(nets[f"plain-{depth}"])
    print(f"{name:12s} {count:>9,} parameters ({extra:+,} in shortcuts)")


# %% [markdown]
# The two projection shortcuts (where stages 2 and 3 start) are the only parameters the
# residual networks have on top of the plain ones, about 1% (in the paper,
# with option-A shortcuts, none). So a difference in how they train comes from the
# shortcut paths, not from size.
#
# ### Gradient norms at initialisation
#
# Before any training, push one batch through each network, backpropagate the loss and
# measure the size of the gradient of every layer's weights, from the input (layer 1) to
# the classifier. Training goes well when every layer gets a gradient of a useful size.
# Each curve is the mean over a few random initialisations, so that one unlucky draw does
# not decide the picture.


# %%
def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """The norm of the loss gradient of each main-path layer's weight, input to output."""
    model.train()
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return np.array([layer.weight.grad.norm().item() for layer in weight_layers(model)])


grad_images = normalize(train_data.images[:GRAD_BATCH], CIFAR10_MEAN, CIFAR10_STD)
grad_labels = train_data.labels[:GRAD_BATCH]
norms = {}
for name, (kind, depth) in RUNS.items():
    draws = [
        gradient_norms(thin_net(depth, BLOCKS[kind], seed), grad_images, grad_labels)
        for seed in range(GRAD_SEEDS)
    ]
    norms[name] = np.mean(draws, axis=0)

COLORS = dict(zip(DEPTHS, ("tab:blue", "tab:red"), strict=True))  # one colour per depth
STYLES = {"plain": "--", "residual": "-"}  # dashed: plain, solid: residual
fig, ax = plt.subplots(figsize=(8, 4.2))
for name, (kind, depth) in RUNS.items():
    layer = np.arange(1, depth + 1)
    ax.plot(layer, norms[name], STYLES[kind], marker=".", color=COLORS[depth], label=name)
ax.set_yscale("log")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
ax.set_xlabel("layer (1 = stem conv, last = classifier)")
ax.set_ylabel("gradient norm ||dL/dW|| (log scale)")
ax.set_title(
    plots.titled(
        f"Gradient norm per layer at initialisation (mean of {GRAD_SEEDS} inits)",
        train_data.source,
    )
)
ax.grid(alpha=0.3, which="both")
ax.legend(title="network")
fig.tight_layout()
for name in RUNS:
    print(
        f"{name:12s} first conv / last conv gradient norm: {norms[name][0] / norms[name][-2]:.1f}"
    )

# %% [markdown]
# **What to notice**
# - In the plain networks (dashed) the gradient *grows* from the classifier back to the
#   input, and the deeper the network, the steeper. At cpu size (the paper's depths at half
#   its widths, 3 inits, one batch of 128 real images) the printed ratio is 1,227 for
#   plain-56 against 5.2 for residual-56, and 5.3 against 1.3 at depth 20. At full width
#   (measured once for the course on a CPU, 3 inits: initialisation needs no GPU) it was
#   470 to 640 against 2.9 to 4.6 on three batches of real CIFAR-10: the width and the
#   batch move these numbers, the contrast stays. With BatchNorm
#   the problem of a deep plain net is not vanishing but exploding gradients at the input
#   end, so no single learning rate suits all its layers.
# - Smoke mode shows little of this: its networks are 8 and 20 layers deep, and the ratios
#   are small (5.1 for plain-20 against 1.6 for residual-20 on the stand-in).
# - With shortcuts (solid) the curves are much flatter: each block adds its own small
#   contribution to a signal the shortcuts carry through unchanged, in both directions.
# - The printed ratios say the same in one number per network (the first conv's gradient
#   norm over the last conv's). The last point of each curve is the classifier, a
#   different kind of layer: compare the convolutions.

# %% [markdown]
# ### Train all four
#
# Same data, optimiser (SGD with Nesterov momentum, one-cycle learning rate), epochs and
# seed for every network. The cell prints each run's training compute.

# %%
histories = {}
for name, net in nets.items():
    ledger.add(name, net, EPOCHS * len(train_data))
    histories[name] = fit(net, train_loader, val_loader, epochs=EPOCHS, lr=LR, seed=SEED, name=name)
assert all(history.eval_split == "validation" for history in histories.values())
print(f"this cell: {sum(ledger.pflops[name] for name in nets):.4f} PFLOPs")
for name, history in histories.items():  # tabled by tools/run_lectures.py
    settings.key_number(f"{name} final training loss", round(history.final["train_loss"], 3))


# %%
def smoothed(values: list[float], window: int) -> np.ndarray:
    """Moving average over ``window`` steps (the per-step loss is noisy)."""
    return np.convolve(values, np.ones(window) / window, mode="valid")


fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
shortest = min(len(history.step_loss) for history in histories.values())
window = min(shortest, max(5, shortest // 25))  # steps averaged into each point
for name, (kind, depth) in RUNS.items():
    history, style = histories[name], {"linestyle": STYLES[kind], "color": COLORS[depth]}
    steps_per_epoch = len(history.step_loss) / len(history.epochs)
    epochs_done = np.arange(window, len(history.step_loss) + 1) / steps_per_epoch
    ax_loss.plot(epochs_done, smoothed(history.step_loss, window), label=name, **style)
    epochs = [row["epoch"] for row in history.epochs]
    accuracy = [100 * row["val_acc"] for row in history.epochs]
    ax_acc.plot(epochs, accuracy, marker="o", label=name, **style)
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel(f"training loss (cross-entropy, mean of {window} steps)")
ax_loss.set_title(
    plots.titled("Training loss: plain (dashed) vs residual (solid)", train_data.source)
)
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("validation accuracy (%)")
ax_acc.set_title(plots.titled("Validation accuracy after each epoch", train_data.source))
ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend(title="network")
fig.tight_layout()

# The lesson, checked on this run: an error where it was measured (cpu size, real images,
# the parameters cell's settings, seeds 0-2), a line after an edit or at another size.
AS_MEASURED = SIZE == "cpu" and train_data.source == "cifar10" and SEED in (0, 1, 2)
AS_MEASURED &= (DEPTHS, WIDTHS, EPOCHS, LR) == ((20, 56), (8, 16, 32), 4, 0.1)
shallow, deep = DEPTHS
loss = {name: history.final["train_loss"] for name, history in histories.items()}
degradation = loss[f"plain-{deep}"] - loss[f"plain-{shallow}"]
shortcut_gain = loss[f"plain-{deep}"] - loss[f"residual-{deep}"]
settings.check_lesson(
    {
        f"plain-{deep} ends over 0.2 above plain-{shallow} in training loss": degradation > 0.2,
        f"residual-{deep} ends over 0.3 below plain-{deep}": shortcut_gain > 0.3,
    },
    AS_MEASURED,
)

# %% [markdown]
# **What to notice**
# - Compare the two dashed lines. At cpu size (10,000 real images, half the paper's widths,
#   4 epochs, about 300 steps) the deeper plain network ended with the *higher* training
#   loss at every seed we ran (0, 1, 2): plain-56 at 2.08-2.29 against plain-20's
#   1.53-1.67, and 11-25% validation accuracy against 41-46%. At seeds 0 and 2 plain-56
#   hardly trained at all: its loss stayed near ln 10 = 2.30, chance for 10 classes. More
#   layers made the network worse at fitting its own training data, here in its extreme
#   form. Expected at full size (source: He et al. 2016, Fig. 1 and 6, plain-20 against
#   plain-56 on CIFAR-10, more than 160 epochs): plain-56 trains, but ends with the higher
#   training error, the degradation problem.
# - Compare the solid lines. With shortcuts the 56-layer network trains: residual-56 ended
#   0.6-0.8 below plain-56 (1.49-1.55), at 45-49% validation accuracy. But at cpu size it
#   still ended above residual-20 (1.26-1.42, 51-57%) at every seed: in four epochs the
#   deeper network has not caught up. Expected at full size (source: He et al. 2016,
#   Fig. 6, trained for more than 160 epochs): with shortcuts the deeper network fits at
#   least as well as the shallower one.
# - The lines printed above the plots check the two claims that held at every seed, with
#   margin: plain-56 more than 0.2 above plain-20, residual-56 more than 0.3 below
#   plain-56 (in smoke mode the first prints DOES NOT HOLD).
# - In smoke mode (48 steps on the stand-in data) the curves are short and noisy, and which
#   network ends lowest is partly luck: the thread count alone moved plain-20 from 2.29 to
#   1.85 at seed 0 (lecture 00 says why). Smoke mode cannot show the degradation problem.

# %% [markdown]
# ## 3. When the shape changes: projection shortcuts
#
# The first block of stages 2 and 3 halves height and width (stride 2) and doubles the
# channels, so `x` and `F(x)` no longer have the same shape and cannot be added. Two fixes:
#
# - **projection** (option B of the paper, used by `models.BasicBlock` and most reports): a
#   1x1 convolution with stride 2 from `C_in` to `C_out` channels, plus BN;
# - **padding** (option A, no parameters): keep every second pixel and fill the new
#   channels with zeros. `pillai`'s summary table lists a 1x1 conv with `C_out x C_out`
#   weights (64x64, 128x128, 256x256) where the shape changes, which only fits an input
#   that already has `C_out` channels; the course reads it as this padding followed by that
#   1x1 convolution, `zoo.PaddedProjection`.

# %%
x = torch.randn(2, 16, 32, 32)
projection = models.shortcut(16, 32, stride=2)
padded = zoo.PaddedProjection(16, 32, stride=2)
for name, module in [
    ("projection (1x1 conv + BN)", projection),
    ("pillai's padding + 1x1", padded),
]:
    print(
        f"{name:28s} {tuple(x.shape)} -> {tuple(module(x).shape)}, "
        f"{params.count_parameters(module)} parameters"
    )
    assert module(x).shape == (2, 32, 16, 16)
assert params.count_parameters(projection) == params.conv_params(1, 16, 32) + params.bn_params(32)
assert params.count_parameters(padded) == params.conv_params(1, 32, 32) + params.bn_params(32)
assert isinstance(models.shortcut(32, 32, stride=1), nn.Identity)  # same shape: no parameters

# %% [markdown]
# **What to notice**
# - A projection costs `C_in x C_out` weights (1x1 kernel) plus `2 C_out` for BN: 576 here.
#   There are only two of them in a three-stage network, so they barely count.
# - pillai's version reads the zero-padded input, so its 1x1 weight is `C_out x C_out`:
#   1,088 parameters here, for the same job.

# %% [markdown]
# ## 4. The bottleneck block
#
# Deep ImageNet ResNets (ResNet-50 and up) and `rout`'s CIFAR model use a *bottleneck*. It
# replaces the basic block's **two** 3x3 convs by three convs: a 1x1 conv squeezes the
# block's `4m` channels down to `m`, a 3x3 conv works on `m` channels, and a second 1x1 conv
# expands back to `4m` (`Bottleneck.expansion = 4`). Counting conv weights (`k * k * C_in
# * C_out` each):
#
# $$ \text{basic block on } w \text{ channels: } 2 \cdot 9 w^2 = 18 w^2, \qquad
#    \text{bottleneck on } 4m \text{ channels: } 4m \cdot m + 9 m^2 + m \cdot 4m = 17 m^2 $$
#
# So a bottleneck on 256 channels (`m = 64`) costs about what a basic block on 64 channels
# costs, while a basic block on 256 channels costs 16 times more than that. This is He et
# al.'s (2016) comparison: ResNet-50 swaps each basic block of ResNet-34 for a bottleneck
# with 4 times the channels at a similar cost. The three blocks, counted by hand and
# measured (FLOPs on an 8x8 input, as deep in a network):

# %%
SIDE = 8  # height and width of the input
blocks = {  # name: (block, channels in and out)
    "basic, 64 ch": (models.BasicBlock(64, 64), 64),
    "bottleneck, 256 ch": (models.Bottleneck(256, 64), 256),  # m = 64, 4 * 64 = 256 out
    "basic, 256 ch": (models.BasicBlock(256, 256), 256),
}
conv_weights = {  # by hand: the formula above
    "basic, 64 ch": 2 * params.conv_params(3, 64, 64),
    "bottleneck, 256 ch": params.conv_params(1, 256, 64)
    + params.conv_params(3, 64, 64)
    + params.conv_params(1, 64, 256),
    "basic, 256 ch": 2 * params.conv_params(3, 256, 256),
}
bn_weights = {
    "basic, 64 ch": 2 * params.bn_params(64),
    "bottleneck, 256 ch": 2 * params.bn_params(64) + params.bn_params(256),
    "basic, 256 ch": 2 * params.bn_params(256),
}
cost = {}
for name, (block, channels) in blocks.items():
    shape = (1, channels, SIDE, SIDE)
    count, forward_flops = params.count_parameters(block), params.flops(block, shape)
    assert count == conv_weights[name] + bn_weights[name], f"{name}: {count:,} parameters"
    # every conv weight is used once per output pixel: 2 FLOPs (a multiply-add) each time
    assert forward_flops == 2 * conv_weights[name] * SIDE * SIDE, f"{name}: {forward_flops:,}"
    assert block(torch.randn(shape)).shape == shape
    cost[name] = (count, forward_flops)
    print(f"{name:19s} {count:>9,} parameters {forward_flops / 1e6:6.1f} MFLOPs per image")
assert [count for count, _ in cost.values()] == [73_984, 70_400, 1_180_672]
ratio = cost["basic, 256 ch"][0] / cost["bottleneck, 256 ch"][0]
assert round(ratio) == 17  # 1,180,672 / 70,400 = 16.8 (FLOPs: 288 m^2 / 17 m^2 = 16.9)

COLORS_BLOCK = {"basic": "tab:blue", "bottleneck": "tab:green"}  # one colour per block type
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for ax, index, label, scale in [
    (axes[0], 0, "Parameters", 1),
    (axes[1], 1, f"Forward MFLOPs per image ({SIDE}x{SIDE} input)", 1e6),
]:
    colors = [COLORS_BLOCK[name.split(",")[0]] for name in cost]
    bars = ax.bar(list(cost), [cost[name][index] / scale for name in cost], color=colors)
    ax.bar_label(bars, fmt="{:,.0f}" if scale == 1 else "{:.1f}")
    ax.margins(y=0.15)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_ylabel(label.split(" (")[0].lower().replace("mflops", "MFLOPs"))
    ax.set_title(label)
fig.suptitle(
    "A bottleneck on 256 channels costs about what a basic block on 64 does,\n"
    f"and {ratio:.0f}x less than a basic block on 256"
)
fig.tight_layout()

# %% [markdown]
# **What to notice**
# - The bottleneck and the 64-channel basic block cost about the same (70,400 and 73,984
#   parameters), but the bottleneck takes and returns 4 times as many channels. At the same
#   width, 256 channels, it is about 17 times smaller and cheaper than a basic block.
#   Bottlenecks let ImageNet ResNets go deep and wide at once.
# - On CIFAR under a 5M budget this matters less: `rout`'s bottleneck model (outputs
#   256/512/1024 channels) reached the report's 86.968%, below the basic-block models of
#   `merabishvili` (94.16% reported) and `sudrik` (94.12% reported), though the reports
#   also differ in their recipes.

# %% [markdown]
# ## 5. Variants from the reports: LeakyReLU and dropout in the block
#
# - `rout` uses **LeakyReLU** everywhere and reports that it beat ReLU. LeakyReLU is
#   `max(z, a z)` with a small slope `a` (PyTorch's default 0.01, which the zoo uses since
#   the report names none): negative inputs keep a small gradient. In the course's `ResNet`
#   it is one argument, `activation=nn.LeakyReLU`.
# - `pillai` puts **dropout inside the block**, after each of the two BN layers
#   (`zoo.DropoutBlock`). Dropout zeroes random activations while training and does nothing
#   at evaluation time.
#
# Neither changes the parameter count (activations and dropout have no weights); the
# shortcut is what differs in `pillai`'s blocks (section 3).

# %%
z = torch.linspace(-3, 3, 301)
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.plot(z, nn.ReLU()(z), label="ReLU")
ax.plot(z, nn.LeakyReLU()(z), "--", label="LeakyReLU (slope 0.01, rout)")
ax.plot(z, nn.LeakyReLU(0.2)(z), ":", label="LeakyReLU (slope 0.2)")
ax.set_xlabel("input z")
ax.set_ylabel("activation(z)")
ax.set_title("ReLU and LeakyReLU")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()

variants = {
    "ReLU": models.ResNet([3, 3, 3], WIDTHS),
    "LeakyReLU (rout)": models.ResNet([3, 3, 3], WIDTHS, activation=nn.LeakyReLU),
    "dropout in block (pillai)": models.ResNet([3, 3, 3], WIDTHS, block=zoo.DropoutBlock),
}
counts = {name: params.count_parameters(net) for name, net in variants.items()}
for name, count in counts.items():
    print(f"{name:26s} {count:>9,} parameters")
assert counts["LeakyReLU (rout)"] == counts["ReLU"]  # an activation has no weights

block = zoo.DropoutBlock(16, 16, p=0.5)
x = torch.randn(4, 16, 8, 8)
assert not torch.equal(block(x), block(x))  # training: a new dropout mask every call
block.eval()
assert torch.equal(block(x), block(x))  # evaluation: dropout is off, the output is fixed
print("DropoutBlock: random in training mode, deterministic in evaluation mode")

# %% [markdown]
# **What to notice**
# - With the default slope 0.01 LeakyReLU is almost ReLU. `rout` reports that it beat ReLU
#   but gives no numbers for the comparison; try it yourself in the next section (Try it
#   3) before believing it.
# - The dropout network has a few more parameters than the ReLU one only because of its
#   `C_out x C_out` shortcuts, not because of dropout.
# - Dropout inside a block also adds noise to what the shortcut carries forward; most
#   modern CIFAR recipes regularise with augmentation instead (lectures 01 and 05).

# %% [markdown]
# ## 6. Edit the block
#
# Below is **the cell you edit**. `MyBlock` starts as a basic block. Change it, run it and
# the cell after it: that cell builds a ResNet of depth `EDIT_DEPTH` from your block,
# trains it with the same settings as the residual network above, plots the two and
# prints their final numbers next to the plain network of the same depth.
#
# `MY_SEED` in that cell sets the initial weights, the order of the batches and the random
# crops and flips. With `MY_SEED = SEED`, the seed of section 2, the unedited `MyBlock` is the
# basic block with the very same weights and batches: its curves cover the basic block's
# (you see one colour). Every edit shows as a gap between the two.
#
# Your block is built as `MyBlock(in_channels, out_channels, stride, activation)` and must
# return `out_channels` channels with height and width divided by `stride`. Ideas:
# a LeakyReLU, dropout between the convs, no final activation, a pre-activation block
# (BN-ReLU-conv, BN-ReLU-conv, then the addition), or delete the shortcut.


# %%
# ========== EDIT THIS CELL: your residual block ==========
class MyBlock(nn.Module):
    """A residual block of your own (starts as the basic block)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, activation=nn.ReLU
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = models.shortcut(in_channels, out_channels, stride)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


# ========== END OF THE CELL TO EDIT ==========

# %%
MY_SEED = SEED  # section 2's seed; another one: other initial weights, batches, crops, flips
my_net = thin_net(EDIT_DEPTH, MyBlock, seed=MY_SEED)  # checks every block's output shape first
ledger.add("MyBlock", my_net, EPOCHS * len(train_data))
my_history = fit(
    my_net,
    train_loader,
    val_loader,
    epochs=EPOCHS,
    lr=LR,
    seed=MY_SEED,
    name=f"MyBlock, seed {MY_SEED}",
)
baseline = histories[f"residual-{EDIT_DEPTH}"]
fig = plots.plot_history(
    [baseline, my_history], title=f"Your block vs the basic block, both {EDIT_DEPTH} layers deep"
)
for history in (histories[f"plain-{EDIT_DEPTH}"], baseline, my_history):
    final = history.final
    print(
        f"{history.name:16s} last epoch: training loss {final['train_loss']:.3f}, "
        f"validation accuracy {100 * final['val_acc']:.1f}%"
    )

# %% [markdown]
# ### A wrong-shaped block fails early, with a clear message
#
# The most common mistake: always adding `x` itself, forgetting that the first block of a
# stage changes the shape. `ResNet` pushes one small dummy image through every block when
# it is built, so the mistake shows up at once, naming the block and the expected shape,
# instead of deep inside training.


# %%
class ForgotTheProjection(BasicBlockFromScratch):
    """MyBlock with the identity as its shortcut everywhere: wrong where the shape changes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + x)


try:
    thin_net(EDIT_DEPTH, ForgotTheProjection)
except models.BlockShapeError as error:
    print(error)
else:
    raise AssertionError("a block without projection shortcuts should have been rejected")

# %% [markdown]
# **What to notice**
# - The message says which block failed (stage 2, block 1: the first that halves the image)
#   and the rule every block must follow. Read it before the traceback.
# - Any block with the right signature and shapes plugs into `ResNet`: that is how the
#   course's zoo rebuilds all five reports' models from one class.

# %% [markdown]
# ## Compute used by this lecture

# %%
total = ledger.total
for name, pflops in ledger.pflops.items():
    print(f"{name:14s} {pflops:8.4f} PFLOPs")
print(f"{'total':14s} {total:8.4f} PFLOPs of training (size {SIZE})")
print(settings.estimate(total))
settings.check_plan(total, PLANNED_PFLOPS)  # a Try it that adds runs gets a note
assert total <= 15, f"this lecture trains {total:.1f} PFLOPs, over its 15 PFLOPs budget"
settings.key_number("training PFLOPs", round(total, 4))

# %% [markdown]
# ## Try it
#
# The outcomes below are what we saw at cpu size on real CIFAR-10 (the course's JPEG copy,
# a 2-core CPU, 2 threads), one run each unless seeds are named: your numbers will differ,
# and where a gap is smaller than a seed's swing, so may the order.
#
# 1. **Parameters cell**: in the branch of your size set `DEPTHS = (20, 110)` (the compute
#    bill at the end then notes that it differs from `PLANNED_PFLOPS`; at cpu size the
#    lecture takes about 10 minutes instead of 6, with the full branch about 1.7 PFLOPs).
#    Does the plain 110-layer network train at all? At cpu size (seed 0) it did not: its
#    training loss stayed at ln 10 = 2.30, chance, for all 4 epochs (10.6% validation
#    accuracy), and the gradient cell printed a first/last conv ratio of about 1.2 million.
#    Residual-110 trained, to a loss of 1.57 and 45.2%, but after 4 epochs it was behind
#    residual-20 (1.42, 51.2%). Expected at full size (source: He et al. 2016, section
#    4.2, our reasoning for the rest): their ResNet-110 needed a warm-up at a learning rate
#    of 0.01 before it converged, and after 64k iterations it beat ResNet-20 (6.43% test
#    error, best of 5 runs, against 8.75%); whether residual-110 beats residual-20 within
#    this lecture's 10 one-cycle epochs nobody has run yet.
# 2. **Edit-the-block cell**: delete `+ self.shortcut(x)` from `MyBlock.forward` and the
#    line that builds `self.shortcut`. Your block is now `PlainBlock`, built from the same
#    seed and trained on the same batches: the numbers printed for `MyBlock` equal those of
#    the plain network of the same depth exactly (cpu size, seed 0: a training loss of 1.671
#    and 40.8% validation accuracy, against residual-20's 1.419 and 51.2%), and the plot
#    shows your block behind the basic block. The shortcuts are the whole difference. (Keep
#    the `self.shortcut` line and, by our reasoning, the numbers change: building the
#    unused module draws random numbers, so the later layers start from other weights.)
# 3. **Edit-the-block cell**: replace both `activation()` calls with `nn.LeakyReLU()`, as
#    `rout` did, and run the training cell. Then set `MY_SEED = 1` there and run it again,
#    and once more with the edit undone (ReLU at seed 1: the plot's "residual-20" is
#    section 2's run at `SEED`, 0). Is the difference to ReLU larger than the difference
#    between two seeds? At cpu size it was not. At seed 0 LeakyReLU ended at 55.4%
#    validation accuracy against ReLU's 51.2%; at seed 1 at 56.0% against ReLU's 56.8%.
#    ReLU alone spans 51.2-57.2% over seeds 0-2, more than LeakyReLU differed from it at
#    either seed. One run per setting cannot show a gain smaller than the seed-to-seed
#    spread.
# 4. **Edit-the-block cell**: write a pre-activation block, `out = conv2(act(bn2(conv1(
#    act(bn1(x))))))` followed by `out + shortcut(x)` and no final activation (He et al.,
#    2016b). Note that `bn1` then normalises `in_channels` channels. At cpu size, seed 0,
#    it ended at 56.9% validation accuracy against the basic block's 51.2%, about the
#    size of the basic block's own seed-to-seed swing (Try it 3), so one run does not rank
#    them; He et al. saw its gains in networks of 110 to 1001 layers. This is a hybrid, not
#    their pre-activation network: the course's `ResNet` keeps its conv-BN-ReLU stem, so
#    the first block normalises and activates a second time, and nothing applies the final
#    BN-ReLU that He et al. put after the last block, before the pooling: the head sees the
#    raw sum of the last block.
# 5. **Gradient cell** (`gradient_norms`): divide each gradient norm by
#    `layer.weight.norm()`, the relative step SGD takes in that layer, and compare plain and
#    residual again. Every ratio about doubles and the contrast stays: at cpu size the
#    printed ratios become 2,497 for plain-56 and 10.5 for residual-56 (1,227 and 5.2
#    before), 10.8 and 2.6 at depth 20 (5.3 and 1.3 before).
#
# ## Summary
#
# - A residual block computes `y = act(F(x) + shortcut(x))`: it learns a correction to its
#   input, and the identity is the easy default.
# - When a block changes the shape, the shortcut becomes a 1x1 convolution with the same
#   stride (a projection) or a zero-padded subsample; both are cheap.
# - Without shortcuts, deeper is not better. The deeper plain network's gradients vary much
#   more from layer to layer (measured here, at initialisation), and at cpu size plain-56
#   ended with a higher training loss than plain-20 at every seed. With shortcuts the
#   56-layer network trained, though in four epochs not yet as far as residual-20.
#   Expected at full size (source: He et al. 2016, Fig. 1 and 6): with shortcuts depth
#   pays off.
# - The bottleneck block replaces the basic block's two 3x3 convs by 1x1-3x3-1x1, with the
#   3x3 on a quarter of the channels: on 256 channels it costs about what a basic block
#   costs on 64, and 17 times less than a basic block on 256. The reports' variants
#   (LeakyReLU, dropout in the block) add no weights.
# - One run per setting is not a comparison when two seeds differ more than the settings:
#   `fit(seed=...)` and a seeded model build make that spread visible.
# - `course_utils.models.ResNet` takes any block class with the signature
#   `block(in_channels, width, stride, activation)` and checks its shapes when it is built.
