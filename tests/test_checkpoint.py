"""Checkpoints: exact resume after a SIGKILL, clear mismatch errors, atomic writes,
weights_only loading, random-state round trips, and fit's progress bar."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.optim import make_optimizer, make_scheduler
from course_utils.support import checkpoint
from course_utils.support.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from course_utils.train import fit

WORKER = Path(__file__).with_name("_resume_worker.py")
TIMING = {"seconds", "images_per_sec", "elapsed"}


def _worker(out: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(out), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"worker exited early: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.05)


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _worker(reference_dir)
    doomed = _worker(killed_dir, "--hang-in-epoch", "3")
    _wait_for(killed_dir / "hanging", doomed)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    saved = torch.load(killed_dir / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 2
    assert not (killed_dir / "final.pt").exists()

    _finish(_worker(killed_dir, "--resume"))
    _finish(reference)

    expected = torch.load(reference_dir / "final.pt", weights_only=True)
    resumed = torch.load(killed_dir / "final.pt", weights_only=True)
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    expected_history = json.loads((reference_dir / "history.json").read_text())
    resumed_history = json.loads((killed_dir / "history.json").read_text())
    assert len(resumed_history["epochs"]) == 4
    for ours, theirs in zip(resumed_history["epochs"], expected_history["epochs"], strict=True):
        assert {k: v for k, v in ours.items() if k not in TIMING} == {
            k: v for k, v in theirs.items() if k not in TIMING
        }
    assert resumed_history["step_loss"] == expected_history["step_loss"]
    assert resumed_history["step_lr"] == expected_history["step_lr"]


def _trained_parts(seed: int = 0):
    """A tiny model, a Lookahead optimizer and a one-cycle schedule after two steps."""
    torch.manual_seed(seed)
    model = ResNet([1], [4])
    lookahead = {"k": 5, "alpha": 0.5}
    optimizer = make_optimizer("nesterov", model, lr=0.1, weight_decay=1e-4, lookahead=lookahead)
    schedule = make_scheduler("onecycle", optimizer, epochs=2, steps_per_epoch=3)
    for _ in range(2):
        loss = model(torch.randn(4, 3, 32, 32)).logsumexp(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model, optimizer, schedule


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model, optimizer, schedule = _trained_parts()
    history = {"name": "tiny", "epochs": [{"epoch": 1, "train_loss": 2.3}], "step_lr": [0.1]}
    path = save_checkpoint(
        tmp_path / "run" / "ckpt.pt",
        model,
        optimizer,
        schedule,
        epoch=1,
        history=history,
        config={"lr": 0.1},
        extra={"note": "kept"},
    )
    raw = torch.load(path, weights_only=True)  # plain content only: no pickled objects
    assert raw["format_version"] == checkpoint.FORMAT_VERSION

    fresh_model, fresh_optimizer, fresh_schedule = _trained_parts(seed=1)
    content = load_checkpoint(path, fresh_model, fresh_optimizer, fresh_schedule)
    assert content["epoch"] == 1 and content["history"] == history
    assert content["config"] == {"lr": 0.1} and content["extra"] == {"note": "kept"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh_model.state_dict()[key]), key
    assert fresh_schedule.state_dict() == schedule.state_dict()
    # Identical next steps prove the optimizer state (momentum, slow weights) came back.
    x = torch.randn(4, 3, 32, 32)
    for m, opt in ((model, optimizer), (fresh_model, fresh_optimizer)):
        m.train()
        opt.zero_grad()
        m(x).logsumexp(dim=1).mean().backward()
        opt.step()
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh_model.state_dict()[key]), key


def test_random_states_round_trip():
    state = checkpoint.rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    checkpoint.restore_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == again[0] and first[1] == again[1]
    assert torch.equal(first[2], again[2])


def test_mismatch_error_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    path = save_checkpoint(tmp_path / "old.pt", ResNet([2, 1], [8, 16]), epoch=3)
    edited = ResNet([1, 2], [8, 32])  # the student removed a block, added one, widened a stage
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint(path, edited)
    message = str(caught.value)
    assert "missing from the checkpoint: stages.stage2.1.conv1.weight" in message
    assert "unexpected in the checkpoint: stages.stage1.1.conv1.weight" in message
    assert "stages.stage2.0.conv1.weight (checkpoint (16, 8, 3, 3), model (32, 8, 3, 3))" in message
    assert "(and " in message  # long lists are cut short, not dumped


def test_failed_save_keeps_the_previous_checkpoint_and_leaves_no_partial_file(
    tmp_path, monkeypatch
):
    model = ResNet([1], [4])
    path = save_checkpoint(tmp_path / "ckpt.pt", model, epoch=1)
    before = path.read_bytes()

    def crash_midway(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_missing_checkpoint_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "nothing.pt", ResNet([1], [4]))


@pytest.mark.parametrize(
    "content", [b"", b"garbage, not a checkpoint", "truncated", "foreign", "old format"]
)
def test_damaged_or_foreign_checkpoints_get_one_line_of_our_own(tmp_path, content):
    path = tmp_path / "ckpt.pt"
    model = ResNet([1], [4])
    if content == "truncated":
        save_checkpoint(path, model)
        path.write_bytes(path.read_bytes()[:200])
    elif content == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "old format":
        save_checkpoint(path, model)
        old = torch.load(path, weights_only=True) | {"format_version": 1}
        torch.save(old, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint(path, model)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only=False" not in message


def test_stale_temporary_files_from_a_killed_save_are_cleaned(tmp_path):
    path = tmp_path / "ckpt.pt"
    stale = tmp_path / ".ckpt.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(path, ResNet([1], [4]))
    assert path.is_file() and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_a_text_progress_bar_redraws_sparsely_where_its_lines_are_kept(capsys):
    """Off a terminal (a notebook without ipywidgets, a log file) a run's bar is a few lines,
    not one every 0.1 s."""

    class SlowLoss(torch.nn.CrossEntropyLoss):
        def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            time.sleep(0.05)  # 24 steps, 1.2 s: a dozen redraws at tqdm's default 0.1 s
            return super().forward(logits, labels)

    loader = DeviceLoader(synthetic_cifar10(192, seed=0), 8)
    fit(ResNet([1], [4]), loader, epochs=1, loss=SlowLoss(), name="slow")
    err = capsys.readouterr().err
    assert "slow: 100%" in err and "24/24" in err
    assert err.count("\r") <= 5, err.split("\r")
