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
# reports are our case studies: they reached 87-94% test accuracy after 30 minutes to
# hours of training. By the last lecture you will beat them in minutes.
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
# | 06 | capstone: 94% in minutes |

# %% [markdown]
# ## Opening a lecture in Colab
#
# 1. Click the *Open in Colab* badge next to the lecture in the repository's README.
# 2. *Runtime > Change runtime type*: choose an **A100 GPU** (a T4 works, only slower).
# 3. Run the cells from the top (*Shift+Enter*). The first cell installs the course
#    package; Colab's own PyTorch is kept as it is.
#
# On your own machine, clone the repository and run the README's first command instead.

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
# 1. In the setup cell's output, find which GPU Colab gave you and how much memory it has.
# 2. Run `!nvidia-smi` in a new cell and compare.
