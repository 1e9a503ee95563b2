"""Settings: the smoke switch, device choice and seeding."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from course_utils import settings


def smoke_flag_in_fresh_process(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != settings.SMOKE_ENV}
    if value is not None:
        env[settings.SMOKE_ENV] = value
    code = "from course_utils import settings; print(settings.SMOKE)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "False"),
        ("", "False"),
        ("0", "False"),
        ("false", "False"),
        ("1", "True"),
        ("yes", "True"),
    ],
)
def test_smoke_flag_is_read_from_the_environment(value, expected):
    assert smoke_flag_in_fresh_process(value) == expected


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI must run in smoke mode")
def test_ci_runs_in_smoke_mode():
    # Canary for the test process; notebooks/00_setup has the same check inside the kernel.
    assert settings.SMOKE, "CI must run the tests with COURSE_SMOKE=1 (see README test command)"


def test_device_is_cpu_without_accelerators():
    device = settings.get_device()
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert device == torch.device("cpu")
    else:
        assert device.type in ("cuda", "mps")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    settings.seed_everything(123)
    first = draw()
    settings.seed_everything(123)
    assert draw() == first
    settings.seed_everything(124)
    assert draw() != first


def test_deterministic_mode_toggles_torch():
    try:
        settings.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        settings.seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_data_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path))
    assert settings.data_root() == tmp_path
    monkeypatch.delenv(settings.DATA_ENV)
    assert settings.data_root().name == "data"


def test_gpu_expected_but_missing_gives_instructions():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="Change runtime type"):
        settings.check_gpu(expected=True)
    assert settings.check_gpu(expected=False) is False


def test_model_device_is_where_the_weights_are():
    assert settings.model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert settings.model_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters
    with torch.device("meta"):
        assert settings.model_device(torch.nn.Linear(2, 2)).type == "meta"


def test_plain_seeding_keeps_deterministic_mode_as_set():
    try:
        settings.seed_everything(0, deterministic=True)
        settings.seed_everything(1)  # as fit does
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
    finally:
        settings.seed_everything(0, deterministic=False)
    settings.seed_everything(1)
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark


def _size_in_fresh_process(env: dict) -> str:
    code = "from course_utils import settings; print(settings.SIZE, settings.SMOKE)"
    clean = {k: v for k, v in os.environ.items() if k not in ("COURSE_SIZE", "COURSE_SMOKE")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, timeout=120
    )
    return (done.stdout or done.stderr).strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COURSE_SIZE": "cpu"}, "cpu False"),
        ({"COURSE_SIZE": "smoke"}, "smoke True"),
        ({"COURSE_SMOKE": "1"}, "smoke True"),
        ({"COURSE_SIZE": "full", "COURSE_SMOKE": "1"}, "full False"),
        ({}, "cpu False"),  # no GPU here: the cpu size
        (
            {"COURSE_SIZE": "huge"},
            "ValueError: COURSE_SIZE='huge' is not a size: use full, cpu or smoke.",
        ),  # fmt: skip
    ],
)
def test_the_size_comes_from_course_size_then_smoke_then_the_device(env, expected):
    if not env and torch.cuda.is_available():
        expected = "full False"
    assert _size_in_fresh_process(env) == expected


def test_one_throughput_assumption_gives_every_estimate():
    assert settings.minutes(1.2) == pytest.approx(1.2e3 / settings.A100_TFLOPS / 60)
    text = settings.estimate(1.2)
    assert f"{settings.minutes(1.2):.2g} min on an A100" in text
    assert f"{settings.minutes(1.2, settings.T4_TFLOPS):.2g} min on a T4" in text


def test_a_dry_run_says_so_in_the_setup_table_and_every_estimate(monkeypatch):
    assert "dry run" not in settings.estimate(1.2) and settings.dry_run_note() is None
    assert "dry run" not in settings.environment_facts()["size"]
    monkeypatch.setattr(settings, "MAX_STEPS", 2)
    assert settings.estimate(1.2).endswith(
        "(a dry run, COURSE_MAX_STEPS=2: 2 batches an epoch of this)"
    )
    assert settings.environment_facts()["size"].endswith(
        "; dry run, COURSE_MAX_STEPS=2: 2 batches per epoch and evaluation"
    )
    assert settings.dry_run_note(0) is None  # a run that recorded no cap


def test_a_long_run_is_announced_and_a_short_one_is_not(capsys):
    settings.warn_if_long(0.001, "cpu")
    assert capsys.readouterr().out == ""
    settings.warn_if_long(1.0, "cpu")  # 1 PFLOPs at 0.08 TFLOP/s: about 3.5 hours
    assert "an estimated 208 minutes" in capsys.readouterr().out


def test_a_dry_run_is_not_announced_as_long(capsys, monkeypatch):
    monkeypatch.setattr(settings, "MAX_STEPS", 2)  # COURSE_MAX_STEPS=2: a few batches an epoch
    settings.warn_if_long(1.0, "cpu")
    assert capsys.readouterr().out == ""


def test_a_lecture_off_its_compute_plan_gets_a_note_and_fails_only_in_ci(capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    settings.check_plan(1.2, 1.0)
    assert capsys.readouterr().out == ""
    settings.check_plan(3.0, 1.0)  # a Try it that adds runs
    assert "3 PFLOPs trained, 1 planned" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    with pytest.raises(AssertionError, match="update PLANNED_PFLOPS"):
        settings.check_plan(3.0, 1.0)


def test_a_lesson_fails_loudly_only_where_it_was_measured(capsys):
    claims = {"residual beats plain": True, "deeper plain fits worse": False}
    settings.check_lesson(claims, as_measured=False)  # an edit, or another size: a line only
    out = capsys.readouterr().out
    assert "holds: residual beats plain" in out and "DOES NOT HOLD: deeper plain" in out
    assert "not asserted" in out
    with pytest.raises(AssertionError, match="deeper plain fits worse"):
        settings.check_lesson(claims, as_measured=True)
    settings.check_lesson({"residual beats plain": True}, as_measured=True)
    assert "not asserted" not in capsys.readouterr().out
