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
# # 00 · Setup: compact ResNets on CIFAR-10
#
# This course trains small residual networks (under 5 million parameters) on CIFAR-10,
# the 60,000-image, 10-class benchmark of 32x32 colour photos. Five student project
# reports are our case studies: the four that state a test accuracy reached 87-94%, after
# 30 minutes to hours of training. The course aims to beat them in minutes: the last
# lecture's target is 94% test accuracy after a few minutes of training on an A100. Until
# that run has been measured, it is a target, not a result.
#
# **What you will learn here**
# - how to open a lecture in Google Colab and get a GPU,
# - the setup cell that starts every lecture,
# - the three sizes of every lecture (*full*, *cpu*, *smoke*) and how to choose one.
#
# | lecture | topic |
# |---|---|
# | 01 | data normalisation and augmentation |
# | 01b | BatchNorm's two modes: why a test loss jumps, and `update_bn` |
# | 02 | residual blocks |
# | 03 | counting parameters under a 5M budget |
# | 04 | optimizers and learning-rate schedules |
# | 05 | mixup |
# | 06 | capstone: aiming at 94% in minutes |
# | 07 | experiments: seeds, confidence intervals, reproducibility and sweeps |

# %% [markdown]
# ## Opening a lecture in Colab
#
# 1. Click the *Open in Colab* badge next to the lecture in the repository's README.
# 2. *Runtime > Change runtime type*: choose an **A100 GPU** if you can; an L4 or a T4
#    works too (see the next section). Without a GPU (Colab's CPU runtime, a used-up GPU
#    quota, a laptop) the lectures run at their smaller *cpu* size instead (see below).
# 3. Run the cells from the top (*Shift+Enter*). The first cell installs the course
#    package; Colab's own PyTorch is kept as it is.
#
# On your own machine, clone the repository and run the README's first command instead.
#
# ### Which GPU, which precision
#
# Training runs in 16-bit floating point where the GPU is fast at it. The course's
# `settings.choose_precision` picks the format from the GPU's *compute capability* (its
# hardware generation):
#
# | GPU | compute capability | precision |
# |---|---|---|
# | A100, L4, H100 | 8.0 and newer | bf16 autocast |
# | T4, V100 | 7.x | fp16 autocast with a gradient scaler |
# | no GPU | — | fp32 |
#
# Below 8.0, cuDNN has no fast bf16 convolutions, so fp16 is used instead. fp16 has a
# smaller range than bf16: small gradients would round to zero, so the gradient scaler
# multiplies the loss before the backward pass and divides the gradients again before the
# update. The setup cell below prints which precision it will use and why.
#
# No lecture has been timed on a T4 yet: expect it to be several times slower than an A100
# (NVIDIA's data sheets give 65 TFLOP/s of fp16 tensor-core peak for the T4, 312 TFLOP/s
# of bf16 for the A100). The time estimates of every lecture's compute bill come from one
# set of assumptions, `settings.A100_TFLOPS`, `settings.T4_TFLOPS` and
# `settings.CPU_TFLOPS`, with their sources in `course_utils/settings.py`.

# %% [markdown]
# ## The setup cell
#
# Every lecture starts with this cell. On Colab it installs `course_utils` from the
# repository; everywhere it prints the versions, the training device, the precision that
# training will use on it (and why), and the size the lectures will run at.

# %%
import subprocess
import sys

REPO_URL = "https://github.com/compact-resnet-course/cifar10-resnet-course"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from course_utils import settings

settings.describe()

# %% [markdown]
# ## Is the GPU there?
#
# With a GPU, this cell names it and its memory. Without one (a laptop, Colab's CPU
# runtime) it says so and the course goes on: the lectures run at their *cpu* size, on the
# CPU. For the full size on Colab, change the runtime type (step 2 above) and run the
# notebook again.

# %%
has_gpu = settings.check_gpu()

# %% [markdown]
# ## Three sizes: full, cpu and smoke
#
# Every lecture can run at three sizes. Each has one *parameters* cell near the top that
# sets data sizes, model widths and epochs, in three branches, one per size:
#
# - **`full`**, the default on a GPU: the lecture as designed, all of CIFAR-10 and the
#   full networks and epochs.
# - **`cpu`**, the default without a GPU (a laptop, Colab's CPU runtime): real CIFAR-10
#   with fewer images, narrower networks and fewer epochs, sized for a few minutes of
#   training on a 2-core CPU, with the lesson still visible.
# - **`smoke`**, for the course's automatic tests (CI): tiny networks on a few images, seconds
#   of work; offline (as in CI) the images are a synthetic stand-in for CIFAR-10, and its
#   numbers say nothing about CIFAR-10.
#
# **How to choose.** The first line of every parameters cell is
# `SIZE = settings.SIZE`: the default above, from the device this runtime has. To choose
# another size, set it on that line (`SIZE = "cpu"` on a GPU for a quick first pass,
# `SIZE = "full"` on a CPU if you have hours) and run the lecture from that cell on. Or set
# the environment variable `COURSE_SIZE=full`, `cpu` or `smoke` before the lecture starts
# (on your machine: `COURSE_SIZE=cpu jupyter lab`); `COURSE_SMOKE=1`, which the tests set,
# means `smoke`. Before a run that would take more than about 15 minutes on your device,
# a lecture says so, with the size that is quicker.
#
# At the cpu and full sizes a lecture wants real CIFAR-10. It finds a copy in the data
# folder, on the Hugging Face Hub or on the official server; offline and without a copy
# it gets the synthetic stand-in and prints how to name one (`CIFAR10_SOURCE`).
#
# The cell below is that first line, as the lectures run it here.

# %%
SIZE = settings.SIZE  # "full" (a GPU), "cpu" (real CIFAR-10 on a laptop's CPU, minutes)
# or "smoke" (CI); set it here to choose
MEANING = {
    "full": "the lectures as designed, all of CIFAR-10 (a GPU)",
    "cpu": "real CIFAR-10, smaller networks and fewer epochs: minutes on a CPU",
    "smoke": "tiny networks, the synthetic stand-in offline: seconds, for the automatic tests",
}
print(f"size {SIZE!r}: {MEANING[SIZE]}")

import os

if os.environ.get("CI"):
    # Canary: CI must execute the notebooks at smoke size. If the kernel did not see
    # COURSE_SMOKE, the lectures would train at cpu size on CI's 2-core machine.
    assert settings.SMOKE, "CI runs notebooks with COURSE_SMOKE=1, but the kernel did not see it"

# %% [markdown]
# ## A first computation on the device
#
# A quick check that tensors reach the device and come back: a matrix product of two
# random matrices, compared with the same product on the CPU.

# %%
import torch

device = settings.get_device()
a, b = torch.randn(256, 256), torch.randn(256, 256)
on_device = (a.to(device) @ b.to(device)).cpu()
same = torch.allclose(on_device, a @ b, rtol=1e-2, atol=1e-2)
assert same, "the device computed a different product"
print(f"256x256 matrix product on {device}: matches the CPU")

# %% [markdown]
# ## Why your numbers differ a little from the ones quoted
#
# Run a lecture twice on one machine and it prints the same numbers, bit for bit (lecture
# 07 shows how). With another number of CPU threads, another CPU or GPU, or other library
# versions, the last digits move. A convolution or a matrix product on several threads
# splits each long sum into parts, one per thread, and adds the parts at the end; a
# floating-point sum is rounded after every addition, so another split gives another last
# bit. Other hardware and libraries choose other kernels (vector widths, memory layouts, on
# a GPU cuDNN's algorithms), with the same effect. Training then amplifies these tiny
# differences, step after step, until a short run's final loss differs in its second
# decimal: lecture 02's smoke-size plain-20 network, same seed, same data, ended at a
# training loss of 2.29 on one thread and 1.85 on two. So the lectures quote ranges over
# seeds and thread counts, or what happens (which curve ends lower), never one exact
# number; and a difference smaller than the spread between seeds (lecture 07) tells you
# nothing.

# %%
print(f"torch computes on {torch.get_num_threads()} CPU thread(s) in this kernel")

# %% [markdown]
# ## Summary
#
# - Open lectures from the README badges, pick an A100 runtime, run from the top.
# - The setup cell installs the course package and prints versions, device, precision and size.
# - Every lecture has three sizes: `full` on a GPU, `cpu` without one (real CIFAR-10, minutes),
#   `smoke` for the automatic tests. The first line of its parameters cell, `SIZE = ...`,
#   chooses; `COURSE_SIZE` sets the default for a whole session.
#
# **Try it**
# 1. In the setup cell's output, find which GPU Colab gave you (the `gpu` row) and the
#    precision it chose (the `precision` row, with the reason). The memory is printed by the
#    next cell, *Is the GPU there?*, which names the precision again with the GPU's compute
#    capability. Without a GPU the rows read `none` and `fp32`, and the `size` row `cpu`.
# 2. Run `!nvidia-smi` in a new cell and compare the name and the memory.
# 3. Open lecture 01 and read its parameters cell: the three branches and the
#    `PLANNED_PFLOPS` line. Which size will it run at here, and how long does the printed
#    estimate say its training takes?
