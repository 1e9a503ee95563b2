"""Course-wide settings: the lecture size, the training device, seeding, the data folder and
the one throughput assumption behind every time estimate.

The size (``SIZE``: "full", "cpu" or "smoke") is read once, when this module is first
imported, so a notebook and everything it calls agree on it: ``COURSE_SIZE`` when set, smoke
when ``COURSE_SMOKE=1`` (CI), otherwise "full" with a CUDA GPU and "cpu" without one.
"""

from __future__ import annotations

import numbers
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "COURSE_SMOKE"
SIZE_ENV = "COURSE_SIZE"
SIZES = ("full", "cpu", "smoke")
"""A lecture's three sizes: full (a GPU, the lecture as designed), cpu (real CIFAR-10, sized
to finish in minutes on a laptop's CPU), smoke (CI: the synthetic stand-in, seconds)."""
DATA_ENV = "COURSE_DATA"
MAX_STEPS_ENV = "COURSE_MAX_STEPS"


def _read_smoke_flag() -> bool:
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _read_size() -> str:
    value = os.environ.get(SIZE_ENV, "").strip().lower()
    if value and value not in SIZES:
        raise ValueError(f"{SIZE_ENV}={value!r} is not a size: use full, cpu or smoke.")
    if value:
        return value
    if _read_smoke_flag():
        return "smoke"
    return "full" if torch.cuda.is_available() else "cpu"


SIZE: str = _read_size()
"""The lectures' default size: what each parameters cell starts from."""

SMOKE: bool = SIZE == "smoke"
"""True when the course runs on tiny data and tiny models (CI, quick checks)."""

# One throughput assumption for every time estimate of the course (lecture compute bills,
# the warning before a long run). Useful training work, not peak: airbench94 reaches about
# 94 TFLOP/s on an A100 (0.36 PFLOPs in 3.83 s, the published time of its uncompiled
# legacy/airbench94.py, hand-tuned fp16); the course's plain PyTorch on small CIFAR nets is
# assumed to reach a fifth of that, and thin nets at small batches (a ResNet-20 at batch 128)
# likely less. The T4 is scaled by its bf16/fp16 tensor-core peak against the A100's (65
# vs 312 TFLOP/s, NVIDIA's data sheets). The CPU figure is measured: 77-111 GFLOP/s of
# training work on the 2-core machines that build the course (fp32, batch 512, a net of 2M
# parameters, issue 24). It is kept cautious: the capstone in channels_last reached 180
# GFLOP/s over the whole fast94 run (benchmarks/results/fast94-full-cpu.json), but thin nets
# (8-16 channels) run several times slower per FLOP, so a CPU estimate for them is a lower
# bound. None of the GPU figures has been measured on this course's code yet.
A100_TFLOPS = 20.0
T4_TFLOPS = 4.0
CPU_TFLOPS = 0.08


def throughput_tflops(device: torch.device | str | None = None) -> tuple[float, str]:
    """The assumed TFLOP/s of training work on ``device`` and what it stands for."""
    device = torch.device(device) if device is not None else get_device()
    if device.type != "cuda":
        return CPU_TFLOPS, "a 2-core CPU, at its measured"
    if "T4" in torch.cuda.get_device_name(device):
        return T4_TFLOPS, "a T4, at its assumed"
    return A100_TFLOPS, "an A100, at its assumed"


def minutes(pflops: float, tflops: float = A100_TFLOPS) -> float:
    """Minutes of training for ``pflops`` at ``tflops`` (default: the A100 assumption)."""
    return pflops * 1000 / tflops / 60


def estimate(pflops: float) -> str:
    """``pflops`` of training in the course's one set of time assumptions, in words (in a dry
    run, with a note that each epoch trains only a few batches of it)."""
    cpu = minutes(pflops, CPU_TFLOPS)
    on_cpu = f"{cpu / 60:.2g} h" if cpu >= 60 else f"{cpu:.2g} min"
    capped = f" (a dry run, {MAX_STEPS_ENV}={MAX_STEPS}: {MAX_STEPS} batches an epoch of this)"
    return (
        f"{pflops:.3g} PFLOPs: about {minutes(pflops):.2g} min on an A100 and "
        f"{minutes(pflops, T4_TFLOPS):.2g} min on a T4 (assumed {A100_TFLOPS:g} and "
        f"{T4_TFLOPS:g} TFLOP/s), {on_cpu} on a 2-core CPU (at least: thin nets run slower)"
        + (capped if MAX_STEPS else "")
    )


def check_plan(trained: float, planned: float) -> None:
    """A lecture's trained PFLOPs against its parameters cell's plan: a note when they differ
    by more than 1.5x (a Try it adds runs), an error in CI, where the plan must hold."""
    if planned / 1.5 <= trained <= planned * 1.5:
        return
    print(f"Note: {trained:.3g} PFLOPs trained, {planned:g} planned in the parameters cell.")
    if os.environ.get("CI"):
        raise AssertionError("CI trained other runs than the plan: update PLANNED_PFLOPS")


def key_number(name: str, value: object) -> None:
    """Print one number a lecture asserts, so ``tools/run_lectures.py`` tables it."""
    print(f"key number: {name} = {value}")


def check_lesson(claims: dict[str, bool], as_measured: bool) -> None:
    """Print whether each of a lecture's claims holds for this run; where the lecture measured
    them over seeds (``as_measured``: its size and settings) a claim that fails is an error,
    after an edit or at another size only a line."""
    for claim, holds in claims.items():
        print(f"{'holds' if holds else 'DOES NOT HOLD'}: {claim}")
    failed = [claim for claim, holds in claims.items() if not holds]
    if failed and as_measured:
        raise AssertionError(f"measured to hold at these settings, but here it did not: {failed}")
    if failed:
        print("(not asserted: the lecture measured these at cpu size with its own settings)")


def warn_if_long(
    pflops: float, device: torch.device | str | None = None, limit: float = 15
) -> None:
    """Say so before a run that would take more than ``limit`` minutes on ``device`` (never in
    a dry run, ``MAX_STEPS``, which trains a few batches of each epoch)."""
    tflops, what = throughput_tflops(device)
    needed = minutes(pflops, tflops)
    if needed > limit and not MAX_STEPS:
        smaller = "'cpu' or 'smoke'" if SIZE == "full" else "'smoke'"
        print(
            f"Note: the next run trains {pflops:.3g} PFLOPs: an estimated {needed:.0f} minutes "
            f"or more on {what} throughput of {tflops:g} TFLOP/s. For a quicker run set "
            f"SIZE = {smaller} in the parameters cell."
        )


MAX_STEPS: int = int(os.environ.get(MAX_STEPS_ENV, "0") or 0)
"""When positive, training and evaluation stop every epoch after this many batches: a dry
run of a lecture's full-size configuration (``COURSE_MAX_STEPS=2``) on a machine too slow
to train it. Zero (the default) means no limit."""


def dry_run_note(max_steps: int | None = None) -> str | None:
    """What a dry run changed, for the titles and summary lines of its runs: ``max_steps`` (a
    run's recorded cap; default ``MAX_STEPS``) batches per epoch and evaluation. None if none."""
    steps = MAX_STEPS if max_steps is None else max_steps
    if not steps:
        return None
    return f"dry run, {MAX_STEPS_ENV}={steps}: {steps} batches per epoch and evaluation"


def get_device() -> torch.device:
    """The best device available for training: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a torch.device, refused in one line when it is not a device name or
    not on this machine (a "cuda" loader on a Colab runtime without a GPU, lecture 00)."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a device name: use 'cpu', 'cuda' (or 'cuda:0') or 'mps'."
        ) from None
    if device.type == "meta":
        raise ValueError("device 'meta' holds no data: use 'cpu', 'cuda' or 'mps'.")
    here = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }
    if not here.get(device.type, True):
        raise ValueError(
            f"device {str(device)!r} is not available on this machine (best here: "
            f"{get_device()}); leave device unset to use the best one, or on Colab choose "
            "Runtime > Change runtime type > GPU."
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            "numbered from 0."
        )
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's weights live on (the CPU for a model without parameters)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def choose_precision(device: torch.device, requested: str = "auto") -> tuple[str, str]:
    """The precision training and evaluation use on ``device`` ("bf16", "fp16" or "fp32"),
    and why, in a few words (``describe`` prints it; lecture 00). An explicit ``requested``
    is used as given; "auto" picks bf16 autocast where the GPU has bf16 tensor cores
    (compute capability 8.0 and newer: A100, L4, H100), fp16 autocast with a gradient scaler
    on older GPUs (T4, V100: cuDNN has no fast bf16 convolutions there), fp32 on a CPU."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}.")
    if requested != "auto":
        return requested, "as requested"
    if device.type != "cuda":
        return "fp32", f"no CUDA GPU ({device.type})"
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return "bf16", f"compute capability {major}.{minor} has bf16 tensor cores"
    return "fp16", f"compute capability {major}.{minor} has no fast bf16: fp16 with loss scaling"


MAX_SEED = 2**32 - 1
"""The largest seed NumPy accepts (``seed_everything`` seeds NumPy too)."""


def check_seed(seed: object) -> int:
    """``seed`` as a Python int, refused in one line unless it is a whole number in
    [0, MAX_SEED] (a NumPy integer too): the one check of a seed the loaders and
    ``seed_everything`` share."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed <= MAX_SEED
    ):
        raise ValueError(f"seed must be a whole number in [0, 2**32), got {seed!r}.")
    return int(seed)


def seed_everything(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python, NumPy and torch. ``deterministic=True`` also asks torch for deterministic
    kernels, so that two runs give bit-identical results (slower on a GPU), ``False`` lets it
    choose (and autotune) fast ones, and ``None`` keeps the current choice: ``fit`` seeds this
    way, so a mode switched on before training stays on (lecture 07)."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic is None:
        deterministic = torch.are_deterministic_algorithms_enabled()
    if deterministic:
        # cuBLAS needs this workspace setting before deterministic matmuls are allowed.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def repo_root() -> Path | None:
    """The course checkout this package was imported from, or None when it was
    installed from a wheel (as on Colab)."""
    candidate = Path(__file__).resolve().parent.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def data_root() -> Path:
    """Where datasets live: ``$COURSE_DATA`` if set, else ``data/`` in the checkout,
    else ``./data`` (Colab's /content/data). Notebooks never need a ``../`` path."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    root = repo_root()
    return root / "data" if root is not None else Path.cwd() / "data"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def environment_facts() -> dict[str, str]:
    """The facts a student checks first: versions, device, mode, data folder."""
    import torchvision

    device = get_device()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "none",
        "precision": "{} ({})".format(*choose_precision(device)),
        "size": {
            "smoke": "smoke (tiny data and models)",
            "cpu": "cpu (real data, minutes)",
            "full": "full (a GPU)",
        }[SIZE]  # fmt: skip
        + (f"; {dry_run_note()}" if MAX_STEPS else ""),
        "data folder": str(data_root()),
    }


def describe() -> None:
    """Print :func:`environment_facts` as an aligned table (the setup cell's output)."""
    facts = environment_facts()
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        print(f"{key:<{width}}  {value}")


def check_gpu(expected: bool | None = None) -> bool:
    """Report the GPU, and fail early with instructions when one is expected but missing
    (``expected=True``, or ``COURSE_EXPECT_GPU=1``). Without a GPU the lectures run at
    their cpu size (``SIZE``), so a CPU runtime, on Colab too, is fine."""
    if expected is None:
        expected = os.environ.get("COURSE_EXPECT_GPU", "") == "1"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        precision, reason = choose_precision(torch.device("cuda"))
        print(
            f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB; the course trains in "
            f"{precision} on it ({reason})"
        )
        return True
    if expected:
        raise RuntimeError(
            "No CUDA GPU found, but this runtime should have one. In Colab choose "
            "Runtime > Change runtime type > A100 GPU (or T4), then run the notebook again."
        )
    print(
        f"No GPU: running on the CPU. The lectures run at size {SIZE!r}"
        + (": real CIFAR-10, nets and epochs sized to finish in minutes." if SIZE == "cpu" else ".")
    )
    return False
