"""Fault injection: bad input and faults get one clear line, and nothing a user made is lost.

Each test is one case of the fault-injection pass (the command line, checkpoints, data,
the API); the command line runs in-process (a subprocess costs seconds each).
"""

import json
import os

import pytest
import torch
from _cli import run_cli
from torch import nn

from course_utils import recipes
from course_utils.augment import Cutout
from course_utils.data import channel_stats, synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import BasicBlock, BlockShapeError, ResNet
from course_utils.support import cli, words

T = ["--smoke", "--data", "synthetic", "--train-images", "128", "--test-images", "64",
     "--batch-size", "32", "--no-progress"]  # fmt: skip


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- command line


def test_rerunning_into_a_finished_run_is_refused_and_keeps_it(tmp_path, capsys):
    out = tmp_path / "x"
    first = ["train", "--model", "wang", "--epochs", "1", *T, "--out", str(out)]
    assert run_cli(first, capsys)[0] == 0
    saved = {name: (out / name).read_bytes() for name in recipes.FILES.values()}
    code, _, err = run_cli([*first, "--lr", "0.05", "--seed", "1"], capsys)
    assert code == 2 and one_line(err) and "finished run" in err
    assert {name: (out / name).read_bytes() for name in saved} == saved


def test_an_unfinished_run_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"an interrupted run's checkpoint")
    code, _, err = run_cli(["train", "--model", "wang", *T, "--out", str(out)], capsys)
    assert code == 2 and one_line(err) and "--resume" in err
    assert (out / "checkpoint.pt").read_bytes() == b"an interrupted run's checkpoint"


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        (["--recipe", "sudrik"], "name"),
        (["--lr", "0.05"], "lr: 0.1 -> 0.05"),
        (["--optimizer", "adam"], "optimizer: 'nesterov' -> 'adam'"),
        (["--model", "pillai"], "name: 'wang' -> 'pillai'"),
        (["--train-images", "160"], "train_images"),
        (["--augment", "flip"], "augment"),
    ],
)
def test_resume_with_changed_settings_is_refused_before_training(tmp_path, capsys, change, differs):
    out = tmp_path / "x"
    base = ["train", "--model", "wang", "--epochs", "1", *T, "--out", str(out)]
    assert run_cli(base, capsys)[0] == 0
    before = (out / "history.json").read_text()
    argv = [*base, *change, "--resume"]
    if change[0] == "--recipe":
        argv.remove("--model"), argv.remove("wang")
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and one_line(err) and differs in err
    assert (out / "history.json").read_text() == before


def test_more_epochs_on_resume_is_refused_for_one_cycle_and_works_for_constant(tmp_path, capsys):
    out = tmp_path / "x"
    base = ["train", "--model", "wang", *T, "--out", str(out)]
    assert run_cli([*base, "--epochs", "1"], capsys)[0] == 0
    code, _, err = run_cli([*base, "--epochs", "2", "--resume"], capsys)
    assert code == 2 and "cannot be extended" in err
    constant = tmp_path / "c"
    base = ["train", "--model", "wang", "--schedule", "constant", *T, "--out", str(constant)]
    assert run_cli([*base, "--epochs", "1"], capsys)[0] == 0
    assert run_cli([*base, "--epochs", "2", "--resume"], capsys)[0] == 0
    assert len(json.loads((constant / "history.json").read_text())["epochs"]) == 2


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_an_out_that_cannot_hold_a_run_is_refused_before_training(tmp_path, capsys, kind):
    out = tmp_path / "x"
    if kind == "file":
        out.write_text("my notes")
    else:
        out.mkdir()
        out.chmod(0o500)
    try:
        code, stdout, err = run_cli(["train", "--model", "wang", *T, "--out", str(out)], capsys)
    finally:
        if kind == "unwritable":
            out.chmod(0o700)
    if kind == "unwritable" and os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    assert code == 2 and one_line(err) and "epoch" not in stdout
    if kind == "file":
        assert out.read_text() == "my notes"


@pytest.mark.parametrize("saved", [False, True])
@pytest.mark.parametrize("overwrite", [False, True])
def test_ctrl_c_says_what_was_saved_and_how_to_resume(
    monkeypatch, tmp_path, capsys, saved, overwrite
):
    out = tmp_path / "x"

    def interrupted(*args, **kwargs):
        if saved:  # an epoch finished before the interrupt
            (out / "checkpoint.pt").write_bytes(b"epoch 1")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    argv = ["train", "--model", "wang", *T, "--out", str(out), *(["--overwrite"] * overwrite)]
    code, _, err = run_cli(argv, capsys)
    assert code == 130 and one_line(err)
    if not saved:
        assert "nothing was saved" in err and "--resume" not in err
    elif overwrite:
        assert "replace --overwrite with --resume" in err
    else:
        assert "run it again with --resume" in err


def test_ctrl_c_before_an_overwrite_run_started_says_the_old_run_is_as_it_was(
    tmp_path, capsys, monkeypatch
):
    out = tmp_path / "x"
    base = ["train", "--model", "wang", "--epochs", "1", *T, "--out", str(out)]
    assert run_cli(base, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "fit", interrupted)
    code, _, err = run_cli([*base, "--overwrite"], capsys)
    assert code == 130 and "is as it was" in err and "--resume" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_sigterm_ends_a_run_like_ctrl_c(monkeypatch, tmp_path, capsys):
    import signal

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli, "run", terminated)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run_cli(["train", "--model", "wang", *T, "--out", str(tmp_path / "x")], capsys)
    assert code == 130 and "Interrupted" in err
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_a_model_over_the_budget_is_named(tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(["train", "--model", "resnet18", *T, "--out", str(tmp_path)], capsys)
    assert code == 0 and "over the course's 5,000,000 budget" in out


# --------------------------------------------------------------------------- API


def test_cutout_larger_than_the_image_is_refused():
    # Refused at the loader's door (it tries the pipeline on two images), not by Cutout.
    with pytest.raises(ValueError, match="larger than the 32x32 images"):
        DeviceLoader(synthetic_cifar10(8), 4, device="cpu", augment=[Cutout(size=40)])


def test_channel_stats_on_channels_last_images_says_how_to_fix_them():
    images = torch.zeros(4, 32, 32, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        channel_stats(images)


def test_an_augmentation_returning_other_sizes_is_refused():
    data = synthetic_cifar10(64)
    with pytest.raises(ValueError, match="16"):  # tried at the loader's door, before any batch
        DeviceLoader(data, 32, device="cpu", augment=[lambda x, g: x[:, :, :16, :16]])


class NoActivation(nn.Module):
    def __init__(self, in_channels, width, stride):
        super().__init__()


class ReturnsTuple(BasicBlock):
    def forward(self, x):
        return super().forward(x), x


class RaisesTypeError(BasicBlock):
    def forward(self, x):
        raise TypeError("unsupported operand")


class AddsMisshapedInput(nn.Module):
    def __init__(self, in_channels, width, stride, activation):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, stride, 1)

    def forward(self, x):
        return self.conv(x) + x  # no projection when the shape changes


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (NoActivation, "could not be built as block\\(in_channels, width, stride, activation\\)"),
        (BasicBlock(8, 8, 1, nn.ReLU), "pass the class itself"),
        (ReturnsTuple, "returned a tuple"),
        (RaisesTypeError, "TypeError: unsupported operand"),
        (AddsMisshapedInput, "shortcut adding x is projected"),
    ],
)
def test_every_kind_of_block_failure_is_one_block_shape_error(block, message):
    with pytest.raises(BlockShapeError, match=message) as caught:
        ResNet([1, 1], [8, 16], block=block)
    text = str(caught.value)
    assert "stage" in text or "instance" in text
    assert "\n" not in text
    if "input of shape" in text:
        assert "dummy 16x16 batch" in text


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("kind", ["damaged file", "folder"])
def test_a_placed_tarball_is_never_deleted_or_downloaded_over(tmp_path, monkeypatch, kind):
    from course_utils import data
    from course_utils.support import sources

    local = tmp_path / sources.TARBALL
    if kind == "folder":
        local.mkdir()
    else:
        local.write_bytes(b"not quite the tarball")

    def no_download(*args, **kwargs):
        raise AssertionError("must not download over the user's file")

    monkeypatch.setattr(sources, "_download", no_download)
    with pytest.raises(data.DataCorruptedError, match="left as it is") as caught:
        sources._obtain_tarball(tmp_path, sources.CIFAR10_URL, True, words.arg)
    assert str(local) in str(caught.value) and "\n" not in str(caught.value)
    assert local.exists() and (kind == "folder" or local.read_bytes() == b"not quite the tarball")


# --------------------------------------------------------------------------- second pass


def test_overwrite_removes_nothing_when_a_later_check_fails(tmp_path, capsys):
    out = tmp_path / "x"
    assert (
        run_cli(["train", "--model", "wang", "--epochs", "1", *T, "--out", str(out)], capsys)[0]
        == 0
    )
    before = sorted(p.name for p in out.iterdir())
    for bad in (["--budget", "1000"], ["--data", str(tmp_path / "nope")], ["--resume"]):
        code, _, err = run_cli(
            ["train", "--model", "wang", *T, "--out", str(out), "--overwrite", *bad], capsys
        )
        assert code == 2 and one_line(err), bad
        assert sorted(p.name for p in out.iterdir()) == before, bad


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train-images", "0"], "--train-images must be between 1 and 50,000"),
        (["--train-images", "10000000"], "--train-images must be between 1 and 50,000"),
        (["--augment", "my.aug"], "--augment: unknown augmentation"),
        (["--augment", "cutout:size=100"], "larger than the 32x32 images"),
        (["--train-images", "2", "--val-split", "0.1"], "holds out 0"),
        (["--budget", "-1"], "--budget must be a positive number"),
    ],
)
def test_more_mistakes_found_before_training(tmp_path, capsys, argv, message):
    code, out, err = run_cli(
        ["train", "--model", "wang", *T, "--out", str(tmp_path / "o"), *argv], capsys
    )
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()  # refused before the first step


def test_an_out_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    code, _, err = run_cli(
        ["train", "--model", "wang", *T, "--out", str(tmp_path / "afile" / "sub")], capsys
    )
    assert code == 2 and one_line(err) and "choose another --out" in err


def test_resuming_with_fewer_epochs_than_done_is_refused(tmp_path, capsys):
    out = tmp_path / "x"
    base = ["train", "--model", "wang", "--schedule", "constant", *T, "--out", str(out)]
    assert run_cli([*base, "--epochs", "2"], capsys)[0] == 0
    code, _, err = run_cli([*base, "--epochs", "1", "--resume"], capsys)
    assert code == 2 and "2 finished epochs, more than the 1" in err


def test_a_checkpoint_missing_its_entries_is_one_line(tmp_path):
    from course_utils.support.checkpoint import CheckpointMismatchError, load_checkpoint

    path = tmp_path / "c.pt"
    torch.save({"format_version": 2}, path)
    with pytest.raises(CheckpointMismatchError, match="lacks config"):
        load_checkpoint(path, ResNet([1], [4]))


def test_fit_never_overwrites_an_existing_checkpoint_unasked(tmp_path):
    from course_utils.train import fit

    path = tmp_path / "mine.pt"
    path.write_text("my precious")
    loader = DeviceLoader(synthetic_cifar10(64), 32, device="cpu")
    with pytest.raises(FileExistsError, match="nothing was overwritten"):
        fit(ResNet([1], [4]), loader, epochs=1, checkpoint=path, progress=False)
    assert path.read_text() == "my precious"
    with pytest.raises(ValueError, match="is a folder"):
        fit(ResNet([1], [4]), loader, epochs=1, checkpoint=tmp_path, progress=False)


def test_api_arguments_that_cannot_work_are_refused_at_the_door():
    from course_utils.config import ConfigError, TrainConfig
    from course_utils.mixup import Mixer
    from course_utils.train import evaluate, fit

    loader = DeviceLoader(synthetic_cifar10(64), 32, device="cpu")
    model = ResNet([1], [4])
    with pytest.raises(ConfigError, match="mixer= and mixup=0.4 both mix"):
        fit(model, loader, epochs=1, mixer=Mixer("cutmix", 1.0), mixup=0.4, progress=False)
    with pytest.raises(TypeError, match="on_epoch must be callable"):
        fit(model, loader, epochs=1, on_epoch=5, progress=False)
    with pytest.raises(ValueError, match="precision must be one of"):
        evaluate(
            model,
            DeviceLoader(synthetic_cifar10(64), 32, train=False, device="cpu"),
            precision="fp8",
        )
    with pytest.raises(ConfigError, match="augment must be a list"):
        fit(model, loader, config=TrainConfig(augment=None), epochs=1, progress=False)
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"amp": True})
    with pytest.raises(ValueError, match="alpha must be a number"):  # at fit's door
        fit(model, loader, epochs=1, mixer=Mixer("mixup", float("nan")), progress=False)
    history = fit(model, loader, None, {"epochs": 1, "lr": 0.05}, progress=False)  # a dict config
    assert history.config["lr"] == 0.05


def test_a_ready_built_optimizer_is_recorded_at_its_own_rate():
    from course_utils.train import fit

    model = ResNet([1], [4])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, DeviceLoader(synthetic_cifar10(64), 32, device="cpu"), epochs=1,
                  optimizer=optimizer, progress=False)  # fmt: skip
    assert history.config["lr"] == 0.01  # not the one-cycle schedule's starting rate


def test_model_and_augmentation_spec_mistakes_are_one_line():
    from course_utils.support import config_checks

    with pytest.raises(BlockShapeError, match="pass the class itself, e.g. activation=nn.ReLU"):
        ResNet([1], [8], activation=nn.ReLU())
    with pytest.raises(ValueError, match="must all be positive integers"):
        ResNet([1.5], [8])
    with pytest.raises(ValueError, match="num_classes must be a whole number >= 1"):
        ResNet([1], [8], num_classes=0)
    with pytest.raises(ValueError, match="needs a 'name' key"):
        config_checks.check_specs([{"size": 3}])


# --------------------------------------------------------------------------- third pass


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "adam", "optimizer_kwargs": {"betas": [2, 3]}}, "Invalid beta parameter"),
        ({"optimizer": "adam", "optimizer_kwargs": {"betas": [0.9]}}, "betas must be 2 numbers"),
        ({"optimizer": "adam", "optimizer_kwargs": {"amsgrad": "yes"}}, "True or False"),
        ({"schedule_kwargs": {"pct_start": 5}}, "onecycle schedule refuses"),
        ({"schedule": "plateau", "schedule_kwargs": {"mode": "maxx"}}, "mode must be .max."),
        ({"schedule": "plateau", "schedule_kwargs": {"patience": -1}}, "patience must be"),
        ({"schedule": "step", "schedule_kwargs": {"milestones": "ab"}}, "milestones must be"),
        ({"learning_rate": 0.1}, "did you mean lr"),
    ],
)
def test_optimizer_and_schedule_values_torch_refuses_are_config_errors(settings, message):
    from course_utils.config import ConfigError, TrainConfig
    from course_utils.support.config_checks import check_config

    with pytest.raises(ConfigError, match=message) as caught:
        check_config(TrainConfig(**settings))
    assert "\n" not in str(caught.value)


def test_a_model_with_too_few_classes_is_named_on_the_first_step():
    from course_utils.train import fit

    loader = DeviceLoader(synthetic_cifar10(64), 32, device="cpu")
    with pytest.raises(ValueError, match="gives 5 class scores, but the data has 10 classes"):
        fit(ResNet([1], [4], num_classes=5), loader, epochs=1, progress=False)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10), nn.Unflatten(1, (10, 1)))
    with pytest.raises(ValueError, match=r"shape \[batch, classes\]"):
        fit(flat, loader, epochs=1, progress=False)


def test_validation_on_training_batches_is_refused():
    from course_utils.train import evaluate, fit

    data = synthetic_cifar10(64)
    train_loader = DeviceLoader(data, 32, device="cpu")
    model = ResNet([1], [4])
    with pytest.raises(ValueError, match="val_loader is the training loader"):
        fit(model, train_loader, train_loader, epochs=1, progress=False)
    with pytest.raises(ValueError, match="val_loader is a training loader"):
        fit(model, train_loader, DeviceLoader(data, 32, device="cpu"), epochs=1, progress=False)
    with pytest.raises(ValueError, match="train=False"):
        evaluate(model, train_loader)
    with pytest.raises(ValueError, match="test_data holds training images"):
        recipes.run(recipes.get_recipe("wang"), data, data, model=model, epochs=1)


def test_evaluate_and_predict_refuse_arguments_of_the_wrong_kind():
    from course_utils.train import evaluate, predict

    data = synthetic_cifar10(16)
    loader = DeviceLoader(data, 8, train=False, device="cpu")
    model = ResNet([1], [4])
    with pytest.raises(TypeError, match="tta must be True or False, got 'yes'"):
        evaluate(model, loader, tta="yes")
    with pytest.raises(TypeError, match=r"e\.g\. data\.images\[:8\]\), got ImageData"):
        predict(model, data, loader)


def test_a_custom_augmentation_with_one_parameter_is_told_the_signature():
    with pytest.raises(TypeError, match=r"called as step\(images, generator\)"):
        DeviceLoader(synthetic_cifar10(64), 32, device="cpu", augment=[lambda images: images])


@pytest.mark.parametrize(("device", "message"), [("gpu", "not a device name"), ("cuda:7", "cuda")])
def test_a_device_that_is_not_here_is_one_line(device, message):
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(ValueError, match=message) as caught:
        DeviceLoader(synthetic_cifar10(16), 8, device=device)
    assert "\n" not in str(caught.value)


def test_unknown_model_names_are_plain_lines_before_anything_is_built():
    from course_utils.config import UnknownNameError

    recipe = recipes.get_recipe("wang").replace(batch_size=32)
    with pytest.raises(UnknownNameError) as caught:
        recipe.replace(model="nope")
    assert str(caught.value).startswith("unknown zoo model 'nope'")  # not quoted by KeyError
    data = synthetic_cifar10(64)
    with pytest.raises(UnknownNameError, match="unknown zoo model 'nope'"):
        recipes.run(recipe, data, synthetic_cifar10(32, split="test"), model="nope", epochs=1)


def test_a_batch_larger_than_the_training_part_is_worded_for_run(tmp_path):
    from course_utils.config import ConfigError

    data = synthetic_cifar10(64)
    test = synthetic_cifar10(32, split="test")
    with pytest.raises(ConfigError, match="batch_size 500 is larger than the 58") as caught:
        recipes.run(recipes.get_recipe("wang"), data, test, out=tmp_path / "o", batch_size=500)
    assert "drop_last" not in str(caught.value)
    assert not (tmp_path / "o").exists()  # refused before the output folder was made


def test_a_small_image_folder_trains_with_no_check_counts(tmp_path, capsys):
    from PIL import Image

    from course_utils.data import CIFAR10_CLASSES

    for split, count in (("train", 4), ("test", 2)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = tmp_path / "mine" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (32, 32), (25 * label, 10 * i, 0)).save(folder / f"{i}.png")
    base = ["train", "--model", "wang", "--smoke", "--data", str(tmp_path / "mine"),
            "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "o")]  # fmt: skip
    code, _, err = run_cli(base, capsys)
    assert code == 2 and one_line(err) and "--no-check-counts" in err
    code, out, _ = run_cli([*base, "--no-check-counts"], capsys)
    assert code == 0 and "40 train" in out


def test_a_stray_curves_figure_in_out_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "curves.png").write_bytes(b"my own figure")
    code, _, err = run_cli(["train", "--model", "wang", *T, "--out", str(out)], capsys)
    assert code == 2 and one_line(err) and "curves.png" in err
    assert (out / "curves.png").read_bytes() == b"my own figure"


def test_optimizer_settings_beside_a_ready_built_optimizer_are_named(capsys):
    from course_utils.config import TrainConfig
    from course_utils.train import fit

    model = ResNet([1], [4])
    built = torch.optim.Adam(model.parameters(), lr=0.002)
    loader = DeviceLoader(synthetic_cifar10(64), 32, device="cpu")
    with pytest.raises(ValueError, match="ready-built optimizer has its own optimizer_kwargs"):
        fit(model, loader, optimizer=built, optimizer_kwargs={"betas": [0.9, 0.99]})
    with pytest.raises(TypeError, match="val_loader got a TrainConfig: give the config by name"):
        fit(model, loader, TrainConfig())
    history = fit(model, loader, None, TrainConfig(optimizer="adam", lr=0.01), optimizer=built,
                  epochs=1, progress=False)  # fmt: skip
    assert "not the config's optimizer='adam', lr=0.01" in capsys.readouterr().out
    assert history.config["lr"] == 0.002


# --------------------------------------------------------------------------- fourth pass: CLI


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--seed", str(2**32)], "--seed must be at most 4294967295"),
        (["sweep", "--trials", "1", "--sampler-seed", "-1"], "--sampler-seed must be between"),
        (["sweep", "--trials", "1", "--train-images", "0"], "--train-images must be between 1"),
        (["sweep", "--trials", "1", "--train-images", str(10**7)], "between 1 and 50,000"),
    ],
)
def test_seeds_and_image_counts_out_of_range_are_one_line(tmp_path, capsys, argv, message):
    command, *rest = argv
    if command == "train":
        place = [*T, "--out", str(tmp_path / "o")]
    else:  # a sweep never opens the test set, so it has no --test-images
        place = [*T[:3], *T[7:], "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    code, _, err = run_cli([command, "--model", "wang", *place, *rest], capsys)
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("name", ["history.json", "checkpoint.pt", "curves.png"])
def test_a_folder_where_a_run_writes_a_file_is_refused_before_training(tmp_path, capsys, name):
    out = tmp_path / "x"
    (out / name).mkdir(parents=True)
    code, stdout, err = run_cli(["train", "--model", "wang", *T, "--out", str(out)], capsys)
    assert code == 2 and one_line(err) and f"{name} is a folder" in err
    assert "epoch" not in stdout


def test_an_empty_out_is_refused_and_a_tilde_is_expanded(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "--model", "wang", *T, "--out", ""], capsys)
    assert code == 2 and "give a folder name" in err and not any(tmp_path.iterdir())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code, _, _ = run_cli(["train", "--model", "wang", "--epochs", "1", *T, "--out=~/x"], capsys)
    assert code == 0 and (tmp_path / "home" / "x" / "history.json").is_file()
    assert not (tmp_path / "~").exists()


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, capsys, monkeypatch
):
    import errno

    from course_utils.support import checkpoint

    out = tmp_path / "x"
    base = ["train", "--model", "wang", "--schedule", "constant", *T, "--out", str(out)]
    assert run_cli([*base, "--epochs", "1"], capsys)[0] == 0
    kept = (out / "checkpoint.pt").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", full)
    code, _, err = run_cli([*base, "--epochs", "2", "--resume"], capsys)
    assert code == 1 and one_line(err) and "No space left on device" in err
    assert (out / "checkpoint.pt").read_bytes() == kept
    assert not list(out.glob(".checkpoint.pt.*"))  # no temporary file left behind


def test_checkpoints_are_readable_like_the_other_files(tmp_path):
    from course_utils.support.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", ResNet([1], [4]))
    assert path.stat().st_mode & 0o044 == 0o044


def _saved_run(tmp_path, capsys):
    out = tmp_path / "x"
    base = ["train", "--model", "wang", "--schedule", "constant", *T, "--out", str(out)]
    assert run_cli([*base, "--epochs", "1"], capsys)[0] == 0
    return out, base


@pytest.mark.parametrize(
    "damage",
    [
        {"format_version": "2"},
        {"config": None},
        {"history": None},
        {"epoch": -1},
        {"model": None},
        {"history.run": None},
        {"history.format_version": 1},
        {"history.extra": 1},
        {"config.epochs": None},
        {"rng": 5},
        {"extra": {"loader": {"nonsense": 1}}},
        {"nan weights": None},
    ],
    ids=lambda damage: next(iter(damage)),
)
def test_a_damaged_checkpoint_is_one_line_of_ours(tmp_path, capsys, damage):
    out, base = _saved_run(tmp_path, capsys)
    (out / "history.json").unlink()  # as if the run had been interrupted after epoch 1
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    for key, value in damage.items():
        if key == "nan weights":
            weight = next(k for k, t in saved["model"].items() if t.is_floating_point())
            saved["model"][weight] = torch.full_like(saved["model"][weight], float("nan"))
        elif "." in key:
            entry, field = key.split(".")
            saved[entry] = {**saved[entry], field: value}
        else:
            saved[key] = value
    torch.save(saved, out / "checkpoint.pt")
    code, _, err = run_cli([*base, "--epochs", "2", "--resume"], capsys)
    assert code == 2 and one_line(err), err
    assert "weights_only" not in err and ("damaged" in err or "not a course_utils" in err)


def test_resuming_a_finished_run_on_another_test_set_is_refused(tmp_path, capsys):
    out, base = _saved_run(tmp_path, capsys)
    before = (out / "history.json").read_text()
    code, _, err = run_cli([*base, "--epochs", "1", "--test-images", "32", "--resume"], capsys)
    assert code == 2 and one_line(err) and "images: 64 -> 32" in err
    assert (out / "history.json").read_text() == before


# --------------------------------------------------------------------------- fourth pass: data


def test_a_stray_text_file_in_a_class_folder_is_named(tmp_path):
    from PIL import Image

    from course_utils.data import CIFAR10_CLASSES, DataCorruptedError, load_image_folder

    for name in CIFAR10_CLASSES:
        (tmp_path / "f" / "train" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "f" / "train" / name / "0.png")
    (tmp_path / "f" / "train" / "cat" / "README.txt").write_text("notes")
    with pytest.raises(DataCorruptedError, match="train/cat/README.txt .* is not a PNG or JPEG"):
        load_image_folder(tmp_path / "f", expected_counts=None, root=tmp_path / "cache")


def test_a_cache_folder_that_cannot_be_written_only_slows_loading(tmp_path, capsys):
    from PIL import Image

    from course_utils.data import CIFAR10_CLASSES, load_image_folder

    for name in CIFAR10_CLASSES:
        (tmp_path / "f" / "train" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "f" / "train" / name / "0.png")
    (tmp_path / "a file").write_text("not a folder")
    data = load_image_folder(tmp_path / "f", expected_counts=None, root=tmp_path / "a file")
    assert len(data) == 10 and "Could not write the cache" in capsys.readouterr().out


def test_cifar10_source_hub_means_the_hub_as_the_argument_does(monkeypatch):
    from course_utils.support import hub, sources

    monkeypatch.setenv(sources.SOURCE_ENV, "hub")
    assert sources.named_source("auto", hub.HUB_REPO, hub.HUB_REVISION, words.arg)[:2] == (
        "hub",
        hub.HUB_REVISION,
    )


def test_a_folder_called_cifar10_is_pointed_at_when_the_keyword_finds_nothing(
    tmp_path, monkeypatch
):
    from course_utils.support import sources

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifar10").mkdir()
    assert "give its path: ./cifar10" in sources.missing_message(tmp_path, "no internet", words.arg)
