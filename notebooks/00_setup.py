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
# - how the course switches between *full* and *smoke* mode.
#
# | lecture | topic |
# |---|---|
# | 01 | data normalisation and augmentation |
# | 02 | residual blocks |
# | 03 | counting parameters under a 5M budget |
# | 04 | optimizers and learning-rate schedules |
# | 05 | mixup |
# | 06 | capstone: aiming at 94% in minutes |

# %% [markdown]
# ## Opening a lecture in Colab
#
# 1. Click the *Open in Colab* badge next to the lecture in the repository's README.
# 2. *Runtime > Change runtime type*: choose an **A100 GPU** if you can; an L4 or a T4
#    works too (see the next section).
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
# of bf16 for the A100).

# %% [markdown]
# ## The setup cell
#
# Every lecture starts with this cell. On Colab it installs `course_utils` from the
# repository; everywhere it prints the versions, the training device, the precision that
# training will use on it (and why), and the mode.

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
# On Colab the lectures expect a GPU; if this cell fails, change the runtime type
# (step 2 above) and run the notebook again. On a laptop without one, the CPU is used.

# %%
has_gpu = settings.check_gpu()

# %% [markdown]
# ## Full mode and smoke mode
#
# Every lecture has one *parameters* cell near the top that sets data sizes, model
# widths and epochs. When the environment variable `COURSE_SMOKE=1` is set, those
# shrink to a few seconds of work: that is how the course's automatic tests re-run
# every notebook on a CPU. You never need it on Colab.

# %%
import os

print("smoke mode:", settings.SMOKE)
if os.environ.get("CI"):
    # Canary: CI must execute the notebooks in smoke mode. If the kernel did not see
    # COURSE_SMOKE, the lectures would try full-size training on a 2-core CPU.
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
# ## Summary
#
# - Open lectures from the README badges, pick an A100 runtime, run from the top.
# - The setup cell installs the course package and prints versions, device, precision and mode.
# - Smoke mode (`COURSE_SMOKE=1`) is for automatic tests; lectures run at full size otherwise.
#
# **Try it**
# 1. In the setup cell's output, find which GPU Colab gave you (the `gpu` row) and the
#    precision it chose (the `precision` row, with the reason). The memory is printed by the
#    next cell, *Is the GPU there?*, which names the precision again with the GPU's compute
#    capability. Without a GPU the rows read `none` and `fp32`.
# 2. Run `!nvidia-smi` in a new cell and compare the name and the memory.
