"""The command line (python -m course_utils zoo / train) and the report recipes."""

import json
import subprocess
import sys

import pytest
import torch

from course_utils import cli, params, zoo
from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.recipes import RECIPES, get_recipe
from course_utils.train import fit

# Tiny but complete smoke runs: a few batches of stand-in data, the smoke-size model.
TINY = ["--smoke", "--data", "synthetic", "--train-images", "128", "--test-images", "64",
        "--batch-size", "32", "--no-progress"]  # fmt: skip


def run(argv, capsys):
    """Run the command line in-process; return (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_zoo_lists_every_model(capsys, monkeypatch):
    # Tiny stand-ins keep the test fast; zoo.summary itself runs for every key.
    monkeypatch.setattr(zoo, "build", lambda key: ResNet([1], [4]))
    code, out, _ = run(["zoo"], capsys)
    assert code == 0
    for key in zoo.REPORTS:
        assert f"{key} " in out
    for column in ("parameters", "GFLOPs/image", "under 5M", "reported accuracy"):
        assert column in out


def test_train_smoke_writes_history_checkpoint_and_curves(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(
        ["train", "--model", "wang", "--epochs", "1", "--out", str(out_dir), *TINY], capsys
    )
    assert code == 0, err
    for name in ("history.json", "checkpoint.pt", "curves.png"):
        assert (out_dir / name).stat().st_size > 0
    assert "is replaced by a small ResNet" in out  # smoke mode says what it changed
    for label in ("test accuracy", "parameters", "training PFLOPs", "wall time", "images/s"):
        assert label in out
    assert "synthetic stand-in" in out
    history = json.loads((out_dir / "history.json").read_text())
    assert history["source"] == "synthetic" and len(history["epochs"]) == 1
    assert f"{100 * history['epochs'][0]['test_acc']:.2f}%" in out


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    out_dir = tmp_path / "run"
    first = ["train", "--model", "sudrik", "--schedule", "constant", "--out", str(out_dir), *TINY]
    assert run([*first, "--epochs", "1"], capsys)[0] == 0
    one_epoch = json.loads((out_dir / "history.json").read_text())
    code, out, err = run([*first, "--epochs", "2", "--resume"], capsys)
    assert code == 0, err
    assert "Resumed from" in out and "planned for 1 epochs, this one for 2" in out
    two_epochs = json.loads((out_dir / "history.json").read_text())
    assert [row["epoch"] for row in two_epochs["epochs"]] == [1, 2]
    assert two_epochs["config"]["epochs"] == 2
    assert two_epochs["epochs"][0] == one_epoch["epochs"][0]
    assert two_epochs["step_loss"][: len(one_epoch["step_loss"])] == one_epoch["step_loss"]
    assert torch.load(out_dir / "checkpoint.pt", weights_only=True)["epoch"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet99"], "unknown model 'resnet99'; choose one of: pillai"),
        (["--recipe", "fastest"], "Unknown recipe 'fastest'; choose one of: pillai"),
        (["--model", "wang", "--lr", "-0.1"], "--lr must be positive"),
        (["--model", "wang", "--epochs", "0"], "--epochs must be at least 1"),
        (["--model", "wang", "--mixup", "-1"], "--mixup alpha must be >= 0"),
        (["--model", "resnet18", "--budget", "5000000"], "11,173,962"),
        (["--lr", "0.1"], "give --model KEY or --recipe NAME"),
        (["--model", "wang", "--data", "imagenet"], "invalid choice: 'imagenet'"),
        (["--model", "wang", "--epochs", "two"], "invalid int value: 'two'"),
        (["--model", "wang", *TINY[:-3], "--batch-size", "999"], "batch_size 999 is larger"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_code_2(argv, message, capsys, tmp_path):
    code, out, err = run(["train", *argv, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_module_entry_point_exits_with_code_2():
    result = subprocess.run(
        [sys.executable, "-m", "course_utils", "train", "--model", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: unknown model 'nope'; choose one of: {', '.join(zoo.REPORTS)}."
    )


def test_flags_override_the_recipe():
    args = cli.build_parser().parse_args(
        ["train", "--recipe", "wang", "--lr", "0.5", "--epochs", "3"]
    )
    recipe = cli.resolve_recipe(args)
    assert (recipe.lr, recipe.epochs) == (0.5, 3)
    wang = get_recipe("wang")
    assert (recipe.optimizer, recipe.batch_size, recipe.grad_clip) == (
        wang.optimizer,
        wang.batch_size,
        wang.grad_clip,
    )


def test_recipes_match_the_reports():
    assert set(RECIPES) == {"pillai", "merabishvili", "rout", "sudrik", "wang", "fast94"}
    pillai, rout, sudrik, wang = (get_recipe(k) for k in ("pillai", "rout", "sudrik", "wang"))
    assert (pillai.optimizer, pillai.lr, pillai.weight_decay, pillai.batch_size) == (
        "adadelta",
        1e-4,
        1e-3,
        128,
    )
    assert (pillai.schedule, pillai.validation_split, pillai.epochs) == ("plateau", 0.2, 50)
    assert rout.lookahead == {"k": 5, "alpha": 0.5} and rout.label_smoothing == 0.1
    assert (rout.lr, rout.momentum, rout.weight_decay, rout.epochs) == (0.05, 0.9, 1e-4, 400)
    assert (sudrik.optimizer, sudrik.lr, sudrik.batch_size, sudrik.mixup) == (
        "adadelta",
        0.1,
        64,
        1.0,
    )
    assert (wang.schedule, wang.schedule_kwargs, wang.grad_clip) == (
        "onecycle",
        {"pct_start": 0.3},
        {"value": 0.1},
    )
    assert (wang.padding_mode, wang.weight_decay, wang.epochs) == ("reflect", 1e-6, 70)
    for recipe in RECIPES.values():
        assert recipe.model in zoo.REPORTS and recipe.source


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains(name):
    recipe = get_recipe(name).replace(epochs=1, batch_size=32)
    torch.manual_seed(0)
    loader = DeviceLoader(synthetic_cifar10(64, seed=1), device="cpu", **recipe.loader_kwargs())
    history = fit(ResNet([1], [4]), loader, progress=False, **recipe.fit_kwargs())
    assert len(history.step_loss) == len(loader)
    assert history.config["lr"] == recipe.lr
    assert history.config["optimizer"] == recipe.optimizer


def test_unknown_recipe_lists_the_names():
    with pytest.raises(
        KeyError, match="choose one of: pillai, merabishvili, rout, sudrik, wang, fast94"
    ):
        get_recipe("fast95")


def test_fast94_fits_the_budget_and_three_pflops():
    recipe = get_recipe("fast94")
    model = zoo.build(recipe.model)
    assert params.check_budget(model) < 5_000_000
    train_images = round(50_000 * (1 - recipe.validation_split))
    assert params.training_flops(model, train_images * recipe.epochs) <= 3e15
    assert recipe.validation_split > 0 and recipe.tta  # honest evaluation, flip TTA


@pytest.mark.skipif(torch.cuda.is_available(), reason="the note is for CPU-only machines")
def test_full_size_run_on_a_cpu_is_announced(capsys):
    cli._warn_if_slow(zoo.build("capstone"), images=45_000 * 30)
    out = capsys.readouterr().out
    assert "No GPU" in out and "2.65 PFLOPs" in out and "--smoke" in out
    cli._warn_if_slow(ResNet([1], [4]), images=1000)
    assert capsys.readouterr().out == ""
