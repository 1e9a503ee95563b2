"""The full-run record (benchmarks/full_run.py), the airbench94 baseline
(benchmarks/airbench94.py) and the side-by-side race (benchmarks/side_by_side.py), at toy size."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from course_utils import recipes
from course_utils.data import synthetic_cifar10


@pytest.fixture
def airbench(load_script):
    return load_script("benchmarks/airbench94.py")


@pytest.fixture
def small(airbench):
    """airbench94's method with a narrow network and small batches."""
    return airbench.Hyper(batch_size=64, widths=(8, 16, 16), whiten_images=128)


def test_baseline_network_is_airbench94s(airbench):
    model = airbench.Net()
    assert sum(p.numel() for p in model.parameters()) == 1_972_792
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 1_971_352
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    first = model.blocks[0].conv1.weight  # 24 -> 64: its first 24 filters start as identities
    assert torch.equal(first[:24, :, 1, 1], torch.eye(24))


def test_whitening_decorrelates_the_patches_it_was_fitted_on(airbench):
    mix = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.6, 0.5], [0.0, 0.0, 0.4]])
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(64, 3, 32, 32))
    model = airbench.Net()
    model.fit_whitening(images)
    out = torch.nn.functional.conv2d(images, model.whiten.weight[:12])  # no bias
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = flat.T @ flat / len(flat)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])


def test_learning_rate_rises_then_falls(airbench):
    factors = [airbench.lr_factor(step, 100) for step in range(101)]
    assert factors[0] == pytest.approx(0.2)
    assert max(factors) == pytest.approx(1.0) and factors.index(max(factors)) == 23
    assert factors[100] == pytest.approx(0.07)


def test_lookahead_pulls_weights_to_the_average(airbench):
    model = torch.nn.Linear(2, 2)
    average = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    before = model.weight.detach().clone()
    airbench.pull_to_average(model, average, decay=0.75)
    assert torch.allclose(model.weight, 0.25 * before) and torch.equal(
        average["weight"], model.weight
    )
    airbench.pull_to_average(model, average, decay=1.0)
    assert torch.allclose(model.weight, 0.25 * before)


def test_loader_mirrors_the_whole_set_every_other_epoch(airbench, small):
    images = torch.randn(128, 3, 8, 8)
    hyper = airbench.Hyper(batch_size=128, translate=0)
    loader = airbench.Loader(images, torch.arange(128), hyper, torch.Generator().manual_seed(0))
    (even, labels_even), (odd, labels_odd) = next(iter(loader)), next(iter(loader))
    assert len(loader) == 1 and len(even) == 128
    assert torch.equal(even[labels_even.argsort()].flip(-1), odd[labels_odd.argsort()])


def test_training_is_seeded_and_fractional_epochs_count_steps(airbench, small, monkeypatch):
    data = synthetic_cifar10(256, seed=0)
    steps = []
    original = torch.optim.SGD.step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", counted)
    first = airbench.train(data.images, data.labels, epochs=1.5, seed=3, hyper=small)
    assert len(steps) == math.ceil(256 // 64 * 1.5)
    second = airbench.train(data.images, data.labels, epochs=1.5, seed=3, hyper=small)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert first.whiten.bias.abs().sum() > 0  # trained in the first epochs


def test_test_time_views_average_as_airbench_does(airbench, small):
    model = airbench.Net(small)
    images = synthetic_cifar10(8, seed=1).images
    views = airbench.view_logits(model, images)
    plain = model(airbench.normalise(images))
    assert torch.allclose(views["plain"], plain, atol=1e-5)
    assert torch.allclose(airbench.tta_logits(views, 1), (plain + views["mirror"]) / 2)
    level2 = airbench.tta_logits(views, 2)
    expected = (plain + views["mirror"]) / 4 + (views["up_left"] + views["down_right"]) / 4
    assert torch.allclose(level2, expected)


def test_side_by_side_reports_each_budget(load_script, small, tmp_path, monkeypatch, capsys):
    race = load_script("benchmarks/side_by_side.py")
    monkeypatch.setattr(race, "HYPER", small)
    monkeypatch.setattr(race, "FAST94", race.FAST94.replace(batch_size=32))
    out = tmp_path / "side.json"
    monkeypatch.setattr(sys, "argv", ["side_by_side.py", "--data", "synthetic", "--images", "256",
                        "--test-images", "64", "--budgets", "0.5", "1", "--seeds", "0", "1",
                        "--json", str(out)])  # fmt: skip
    race.main()
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert len(rows) == 8 and {r["recipe"] for r in rows} == {"airbench94", "fast94"}
    half = [r for r in rows if r["budget"] == 0.5]
    assert {r["images_seen"] for r in half if r["recipe"] == "fast94"} == {128}  # 4 steps
    assert {r["steps"] for r in half if r["recipe"] == "airbench94"} == {2}
    table = [t for t in record["table"] if t["metric"] == "test_tta" and t["budget"] == 1.0][0]
    fast = [100 * r["test_tta"] for r in rows if r["recipe"] == "fast94" and r["budget"] == 1.0]
    base = [100 * r["test_tta"] for r in rows if r["recipe"] == "airbench94" and r["budget"] == 1.0]
    assert table["difference"] == pytest.approx(sum(fast) / 2 - sum(base) / 2)
    assert table["verdict"].startswith("fast94")
    assert "fast94 - airbench94" in capsys.readouterr().out


def test_side_by_side_verdicts(load_script):
    race = load_script("benchmarks/side_by_side.py")
    scores = [("airbench94", 0.50), ("airbench94", 0.52), ("fast94", 0.49), ("fast94", 0.51)]
    rows = [{"recipe": name, "budget": 1.0, "test_tta": value} for name, value in scores]
    summary = race.summary(rows, 1.0)
    assert summary["difference"] == pytest.approx(-1.0)
    assert summary["standard_error"] == pytest.approx(math.sqrt(2))  # seed stds sqrt(2), n 2
    assert summary["verdict"] == "fast94 below, within 2 standard errors"
    rows[2]["test_tta"], rows[3]["test_tta"] = 0.40, 0.41
    assert race.summary(rows, 1.0)["verdict"] == "fast94 below by more than 2 standard errors"


def test_full_run_records_tta_and_plain_scores(load_script, tmp_path, monkeypatch):
    full = load_script("benchmarks/full_run.py")
    sets = {
        "train": synthetic_cifar10(320, seed=0),
        "test": synthetic_cifar10(64, seed=1, split="test"),
    }
    monkeypatch.setattr(full, "cifar10", lambda split, source: sets[split])
    tiny = recipes.get_recipe("fast94").replace(epochs=1, batch_size=64)
    monkeypatch.setattr(full.recipes, "get_recipe", lambda name: tiny)
    out, record = tmp_path / "run", tmp_path / "full.json"
    argv = ["full_run.py", "--data", "synthetic", "--out", str(out), "--json", str(record)]
    monkeypatch.setattr(sys, "argv", argv)
    full.main()
    saved = json.loads(record.read_text())
    history = json.loads((out / recipes.FILES["history"]).read_text())
    assert saved["test_acc_tta"] == history["test"]["accuracy"]
    assert {"val_acc", "val_acc_tta", "test_acc"} <= saved.keys()
    assert saved["images"] == {"train": 288, "val": 32, "test": 64}
    assert len(saved["history"]) == 1 and saved["timing"]["training_images_per_sec"] > 0
    assert record.with_suffix(".png").is_file()
    with pytest.raises(SystemExit, match="finished run"):  # a finished run is never overwritten
        full.main()
