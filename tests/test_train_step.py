"""benchmarks/train_step.py runs both comparisons and ends on its ratio line."""

from __future__ import annotations

import re
import sys

import pytest


@pytest.mark.parametrize(
    ("flags", "last_line"),
    [
        (
            ["--compare", "channels-last", "--model", "capstone"],
            r"channels_last speed-up: \d+\.\d\dx",
        ),
        ([], r"overhead: -?\d+\.\d%"),
    ],
)
def test_train_step_prints_its_ratio(load_script, monkeypatch, capsys, flags, last_line):
    script = load_script("benchmarks/train_step.py")
    argv = ["train_step.py", *flags, "--images", "64", "--batch-size", "32", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(last_line, lines[-1])
    assert len(lines) == 4  # the setup line, one rate per side, the ratio


def test_model_needs_the_channels_last_comparison(load_script, monkeypatch):
    script = load_script("benchmarks/train_step.py")
    monkeypatch.setattr(sys, "argv", ["train_step.py", "--model", "capstone"])
    with pytest.raises(SystemExit):
        script.main()
