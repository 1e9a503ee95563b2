"""Lecture 01 run on real CIFAR-10 (the shared JPEG copy) instead of the stand-in: its
statistics cell then asserts both halves of the lesson on all 50,000 training images."""

import os
import subprocess
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_data_normalization.ipynb"


def test_lecture01_asserts_its_lesson_on_real_images(shared_archive, tmp_path):
    env = os.environ | {
        "CIFAR10_SOURCE": str(shared_archive),
        "COURSE_DATA": str(tmp_path),  # the decoded cache goes here, not into the repo
        "COURSE_SMOKE": "1",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(NOTEBOOK),
            "-p",
            "no:cacheprovider",
            "-q",
            "-p",
            "no:xdist",
            "--nbval-cell-timeout=600",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=900,
        cwd=NOTEBOOK.parent.parent,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
