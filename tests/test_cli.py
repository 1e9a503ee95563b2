"""The command line (python -m course_utils zoo / train) and the report recipes."""

import json
import subprocess
import sys

import pytest
import torch
from _cli import run_cli

from course_utils import settings, zoo
from course_utils.models import ResNet
from course_utils.recipes import get_recipe
from course_utils.support import cli

# Tiny but complete smoke runs: a few batches of stand-in data, the smoke-size model.
TINY = ["--smoke", "--data", "synthetic", "--train-images", "128", "--test-images", "64",
        "--batch-size", "32", "--no-progress"]  # fmt: skip


def test_zoo_lists_every_model(capsys, monkeypatch):
    # Tiny stand-ins keep the test fast; zoo.summary itself runs for every key.
    monkeypatch.setattr(zoo, "build", lambda key: ResNet([1], [4]))
    code, out, _ = run_cli(["zoo"], capsys)
    assert code == 0
    for key in zoo.REPORTS:
        assert f"{key} " in out
    for column in ("parameters", "GFLOPs/image", "under 5M", "reported accuracy"):
        assert column in out


def test_train_smoke_writes_history_checkpoint_and_curves(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(
        ["train", "--model", "wang", "--epochs", "1", "--out", str(out_dir), *TINY], capsys
    )
    assert code == 0, err
    for name in ("history.json", "checkpoint.pt", "curves.png"):
        assert (out_dir / name).stat().st_size > 0
    assert "is replaced by ResNet(blocks" in out  # smoke mode says what it changed
    for label in ("validation accuracy", "test accuracy", "parameters", "training PFLOPs"):
        assert label in out
    assert "synthetic stand-in" in out
    history = json.loads((out_dir / "history.json").read_text())
    assert history["source"] == "synthetic" and len(history["epochs"]) == 1
    assert history["eval_split"] == "validation" and history["test"]["split"] == "test"
    assert f"{100 * history['epochs'][0]['val_acc']:.2f}% (last epoch)" in out
    assert f"{100 * history['test']['accuracy']:.2f}% (evaluated once)" in out
    assert "epoch 1/1: train loss " in out  # --no-progress: a line per epoch, not silence
    assert "training time" in out and "s for the run's 1 epoch(s)\n" in out
    assert "dry run" not in out and history["run"]["max_steps"] is None


@pytest.mark.parametrize(
    ("recipe", "replaced", "built"),
    [
        ("fast94", "capstone (2,055,384 parameters) is replaced by CapstoneNet(widths=(16, 32, "
         "32))", "CapstoneNet"),
        ("page94", "resnet9_page (4,211,786 parameters) is replaced by ResNet9(widths=(16, 32, "
         "64, 96))", "ResNet9"),
    ],
)  # fmt: skip
def test_smoke_capstones_stay_narrowed_versions_of_themselves(
    tmp_path, capsys, recipe, replaced, built
):
    code, out, err = run_cli(
        ["train", "--recipe", recipe, "--out", str(tmp_path / "r"), *TINY], capsys
    )
    assert code == 0, err
    assert replaced in out
    assert json.loads((tmp_path / "r" / "history.json").read_text())["run"]["model"] == built


def test_a_finished_run_is_never_overwritten_without_asking(tmp_path, capsys):
    out_dir = tmp_path / "run"
    argv = ["train", "--model", "wang", "--epochs", "1", "--out", str(out_dir), *TINY]
    assert run_cli(argv, capsys)[0] == 0
    before = (out_dir / "history.json").read_bytes()
    code, _, err = run_cli([*argv, "--lr", "0.05"], capsys)
    assert code == 2 and "holds a finished run" in err and "--overwrite" in err
    assert "overwrite=True" not in err and "choose another --out" in err  # the flags' words
    assert (out_dir / "history.json").read_bytes() == before
    assert run_cli([*argv, "--lr", "0.05", "--overwrite"], capsys)[0] == 0
    assert json.loads((out_dir / "history.json").read_text())["config"]["lr"] == 0.05


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    out_dir = tmp_path / "run"
    first = ["train", "--model", "sudrik", "--schedule", "constant", "--out", str(out_dir), *TINY]
    assert run_cli([*first, "--epochs", "1"], capsys)[0] == 0
    one_epoch = json.loads((out_dir / "history.json").read_text())
    code, out, err = run_cli([*first, "--epochs", "2", "--resume"], capsys)
    assert code == 0, err
    assert "Resumed from" in out
    # this command's wall time apart from the run's training time, which began before it
    assert (
        "s wall clock" in out and "for the run's 2 epoch(s), 1 of them before this command" in out
    )
    assert "epoch 2/2: train loss" in out and "epoch 1/2" not in out
    two_epochs = json.loads((out_dir / "history.json").read_text())
    assert [row["epoch"] for row in two_epochs["epochs"]] == [1, 2]
    assert two_epochs["config"]["epochs"] == 2
    assert two_epochs["epochs"][0] == one_epoch["epochs"][0]
    assert two_epochs["step_loss"][: len(one_epoch["step_loss"])] == one_epoch["step_loss"]
    assert torch.load(out_dir / "checkpoint.pt", weights_only=True)["epoch"] == 2
    code, out, err = run_cli([*first, "--epochs", "2", "--resume"], capsys)  # finished: no epoch
    assert code == 0, err
    assert "for the run's 2 epoch(s), 2 of them before this command" in out


def test_an_interrupted_or_refused_run_leaves_no_empty_folder_behind(tmp_path, capsys, monkeypatch):
    from course_utils import recipes

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C before the first epoch finished

    argv = ["train", "--model", "wang", "--epochs", "1", *TINY]
    code, _, err = run_cli([*argv, "--budget", "1000", "--out", str(tmp_path / "a" / "r")], capsys)
    assert code == 2 and "wang:" in err  # refused after the folder was checked (and made)
    monkeypatch.setattr(recipes, "fit", interrupted)
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "b" / "r")], capsys)
    assert code == 130 and "Interrupted before the first epoch finished" in err
    assert sorted(tmp_path.iterdir()) == []  # both folders it made, removed again
    (tmp_path / "mine").mkdir()
    assert run_cli([*argv, "--out", str(tmp_path / "mine")], capsys)[0] == 130
    assert (tmp_path / "mine").is_dir()  # a folder the user made stays


def test_a_run_that_learned_nothing_says_so_with_flags(tmp_path, capsys):
    out_dir = tmp_path / "run"
    argv = ["train", "--recipe", "fast94", "--lr", "10", "--out", str(out_dir), *TINY]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    warnings = json.loads((out_dir / "history.json").read_text())["warnings"]
    shown = [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("warning ")]
    assert warnings and shown == warnings  # each one line of the summary, and in the history
    assert "--lr 1" in warnings[0] and "lr=" not in " ".join(warnings)


def test_a_dry_run_says_so_and_counts_the_images_it_evaluated(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(settings, "MAX_STEPS", 2)  # COURSE_MAX_STEPS=2
    out_dir = tmp_path / "run"
    argv = ["train", "--model", "wang", "--epochs", "1", "--out", str(out_dir), *TINY]
    code, out, err = run_cli([*argv, "--test-images", "128"], capsys)
    assert code == 0, err
    history = json.loads((out_dir / "history.json").read_text())
    assert history["run"]["max_steps"] == 2 and history["test"]["images"] == 64
    assert "(evaluated once, 64 of 128 images) (dry run)" in out
    assert "COURSE_MAX_STEPS=2: 2 batches per epoch and evaluation: not a measurement" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet99"], "unknown model 'resnet99'; did you mean 'resnet18'? choose"),
        (["--model", "nope"], "unknown model 'nope'; choose one of: pillai"),
        (["--model", "resnet-18"], "unknown model 'resnet-18'; did you mean 'resnet18'? choose"),
        (["--recipe", "fastest"], "unknown recipe 'fastest'; did you mean 'fast94'? choose one"),
        (["--recipe", "fast49"], "unknown recipe 'fast49'; did you mean 'fast94'? choose one"),
        (["--recipe", "Wang"], "unknown recipe 'Wang'; did you mean 'wang'? choose one of: pillai"),
        (["--recipe", "zzz"], "unknown recipe 'zzz'; choose one of: pillai"),
        (["--model", "wang", "--lr", "-0.1"], "--lr must be > 0"),
        (["--model", "wang", "--epochs", "0"], "--epochs must be a whole number >= 1"),
        (["--model", "wang", "--mixup", "-1"], "--mixup must be >= 0"),
        (["--model", "wang", "--mixup", "nan"], "--mixup must be a finite number"),
        (["--model", "wang", "--seed", "-1"], "--seed must be a whole number >= 0"),
        (["--model", "wang", "--optimizer", "adamm"], "optimizer 'adamm'; did you mean 'adam'?"),
        (["--model", "wang", "--schedule", "cosin"], "schedule 'cosin'; did you mean 'cosine'?"),
        (["--model", "wang", "--label-smoothing", "-0.1"], "--label-smoothing must be in [0"),
        (["--model", "wang", "--augment", "crop,blur"], "augment:"),
        (["--model", "wang", "--optimizer", "adam", "--momentum", "0.5"], "momentum is used by"),
        (["--model", "wang", "--lookahead", "five"], "--lookahead takes K,ALPHA"),
        (["--model", "resnet18", "--budget", "5000000"], "11,173,962"),
        (["--lr", "0.1"], "give --model KEY or --recipe NAME"),
        (["--model", "wang", "--data", "imagenet"], "imagenet"),
        (["--model", "wang", "--epochs", "two"], "invalid int value: 'two'"),
        (["--model", "wang", *TINY[:-3], "--batch-size", "999"], "--batch-size 999 is larger"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_code_2(argv, message, capsys, tmp_path):
    code, out, err = run_cli(["train", *argv, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.rglob("*.json"))  # nothing trained, nothing written


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
        [
            "train",
            "--recipe",
            "wang",
            "--lr",
            "0.5",
            "--epochs",
            "3",
            "--augment",
            "crop,cutout:size=4",
        ]
    )
    recipe = cli.resolve_recipe(args)
    assert (recipe.config.lr, recipe.config.epochs) == (0.5, 3)
    assert recipe.config.augment == ("crop", {"name": "cutout", "size": 4})
    wang = get_recipe("wang").config
    assert (recipe.config.optimizer, recipe.config.grad_clip) == (wang.optimizer, wang.grad_clip)


def test_help_shows_the_train_config_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert (
        "--lr LR (peak) learning rate [default: the recipe's value; 0.1 without --recipe]" in shown
    )
    assert "0.1 without --recipe" in shown and "crop,flip without --recipe" in shown
    assert "[runs/<name>; runs/<name>-smoke with --smoke]" in shown
    assert "at most 2 epochs and batch 128" in shown


@pytest.mark.skipif(torch.cuda.is_available(), reason="the note is for CPU-only machines")
def test_full_size_run_on_a_cpu_is_announced(capsys):
    cli._warn_if_slow(zoo.build("capstone"), images=45_000 * 10)
    out = capsys.readouterr().out
    assert "No GPU" in out and "0.32 PFLOPs" in out and "1.1 h on a 2-core CPU" in out
    assert "--smoke" in out
    cli._warn_if_slow(ResNet([1], [4]), images=1000)
    assert capsys.readouterr().out == ""


def test_the_first_line_names_every_setting_that_differs_from_the_recipe(tmp_path, capsys):
    argv = ["train", "--recipe", "fast94", "--lr", "0.2", "--out", str(tmp_path / "r"), *TINY]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("Settings: recipe fast94, changed: ")
    assert "lr 0.75 -> 0.2 (--lr)" in first and "epochs 10 -> 2 (smoke mode)" in first
    assert "batch_size 512 -> 32 (--batch-size)" in first  # the flag, not smoke's cap of 128
    assert "optimizer" not in first  # unchanged settings are not listed
    smoke = ["--smoke", "--data", "synthetic", "--train-images", "256", "--no-progress"]
    code, out, err = run_cli([*argv[:3], "--out", str(tmp_path / "s"), *smoke], capsys)
    assert code == 0, err
    assert "batch_size 512 -> 128 (smoke mode)" in out.splitlines()[0]


def test_a_smoke_run_has_its_own_default_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "--model", "wang", "--epochs", "1", *TINY], capsys)
    assert code == 0, err
    assert (tmp_path / "runs" / "wang-smoke" / "history.json").is_file()
    assert not (tmp_path / "runs" / "wang").exists()  # the full run's folder stays free


@pytest.mark.parametrize("how", ["missing", "near miss", "folder of the archive"])
def test_a_data_path_mistake_is_worded_with_the_flag_and_points_at_the_archive(
    tmp_path, capsys, how
):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "cifar10-jpeg.tar.gz").write_bytes(b"an archive")
    given = {
        "missing": tmp_path / "nowhere" / "copy.tar.gz",
        "near miss": shared / "cifar10-jpg.tar.gz",
        "folder of the archive": shared,
    }[how]
    argv = ["train", "--model", "wang", "--data", str(given), "--out", str(tmp_path / "o")]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"named by --data {given}" in err and "source=" not in err
    if how == "folder of the archive":
        assert f"name the archive itself, --data {shared / 'cifar10-jpeg.tar.gz'}" in err
    else:
        assert f"does not exist (looked for {given})" in err
    if how == "near miss":
        assert f"Did you mean {shared / 'cifar10-jpeg.tar.gz'}?" in err
