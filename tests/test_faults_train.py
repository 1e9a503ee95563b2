"""Fault injection, the training API: what fit, evaluate, DeviceLoader, TrainConfig,
recipes.run and checkpoints do with arguments that cannot work (one clear error, before
training where it can be known) and with runs that must not be mixed on resume."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import recipes
from course_utils.augment import Cutout
from course_utils.config import ConfigError, TrainConfig
from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.support.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from course_utils.support.config_checks import check_config
from course_utils.train import evaluate, fit, predict

RUN = {"epochs": 1, "progress": False, "schedule": "constant"}


def data(n=64, split="train", seed=0):
    return synthetic_cifar10(n, seed=seed, split=split)


def loader(n=64, **kwargs):
    return DeviceLoader(data(n), 32, device="cpu", **kwargs)


def tiny(**kwargs):
    torch.manual_seed(0)
    return ResNet([1], [4], **kwargs)


def one_line(error: BaseException) -> bool:
    return "\n" not in str(error)


class Softmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny()

    def forward(self, x):
        return self.net(x).softmax(1)


class Detached(Softmax):
    def forward(self, x):
        return self.net(x).detach()


def other_classes():
    """An evaluation loader whose classes are not the training data's."""
    from course_utils.data import ImageData

    held = data(32, split="test")
    renamed = ImageData(held.images, held.labels, [f"c{i}" for i in range(10)], "synthetic", "test")
    return DeviceLoader(renamed, 16, train=False, device="cpu")


def pairs(batches):
    """A list loader (it has a len) of the given batches."""
    return list(batches)


x32, y32 = next(iter(loader()))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: fit(ResNet, loader(), **RUN), TypeError, "build it first"),
        (lambda: fit(lambda x: x, loader(), **RUN), TypeError, "must be a torch nn.Module"),
        (lambda: fit(nn.ReLU(), loader(), **RUN), ValueError, "no trainable parameters"),
        (lambda: fit(tiny().double(), loader(), **RUN), TypeError, "model.float()"),
        (lambda: fit(tiny(), data(), **RUN), TypeError, "wrap it in a loader"),
        (lambda: fit(tiny(), iter(loader()), **RUN), TypeError, "has no len()"),
        (lambda: fit(tiny(), [], **RUN), ValueError, "train_loader has no batch"),
        (lambda: fit(tiny(), loader(), [], **RUN), ValueError, "val_loader has no batch"),
        (
            lambda: fit(tiny(), pairs([(x32, y32, y32)]), **RUN),
            TypeError,
            "pairs, got a tuple of 3",
        ),
        (lambda: fit(tiny(), pairs([{"x": x32}]), **RUN), TypeError, "pairs, got a dict"),
        (lambda: fit(tiny(), pairs([((x32 * 50).byte(), y32)]), **RUN), TypeError, "float batch"),
        (lambda: fit(tiny(), pairs([(x32, y32.float())]), **RUN), TypeError, "class indices"),
        (lambda: fit(tiny(), pairs([(x32, y32 - 1)]), **RUN), ValueError, "indices >= 0"),
        (
            lambda: fit(tiny(), pairs([(x32.permute(0, 2, 3, 1), y32)]), **RUN),
            ValueError,
            "permute",
        ),  # fmt: skip
        (lambda: fit(Softmax(), loader(), **RUN), ValueError, "returns probabilities"),
        (lambda: fit(Detached(), loader(), **RUN), ValueError, "has no gradient"),
        (lambda: fit(tiny(), loader(), loss="cross_entropy", **RUN), TypeError, "must be callable"),
        (
            lambda: fit(tiny(), loader(), loss=nn.CrossEntropyLoss, **RUN),
            TypeError,
            "pass an instance",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), loss=nn.CrossEntropyLoss(reduction="none"), **RUN),
            ValueError,
            "must return one number",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), loss=nn.CrossEntropyLoss(), label_smoothing=0.2, **RUN),
            ConfigError,
            "applies to the default loss only",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), mixer=lambda x, y: (x, y), **RUN),
            TypeError,
            "must return \\(x, y, y_mixed, lam\\)",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), mixer=lambda x, y: (x, y, y, 2.0), **RUN),
            ValueError,
            "in \\[0, 1\\]",
        ),  # fmt: skip
        (lambda: fit(tiny(), loader(), checkpoint=5, **RUN), TypeError, "a file path"),
        (lambda: fit(tiny(), loader(), checkpoint="", **RUN), TypeError, "a file path"),
        (
            lambda: fit(tiny(), loader(), on_epoch=lambda epoch: None, **RUN),
            TypeError,
            "on_epoch\\(epoch, record\\)",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), on_epoch=lambda e, r: "no", **RUN),
            TypeError,
            "must return True",
        ),  # fmt: skip
        (lambda: fit(tiny(), loader(), progress="no", epochs=1), TypeError, "progress must be"),
        (lambda: fit(tiny(), loader(), val_split=0.3, **RUN), ConfigError, "used by recipes.run"),
        (lambda: fit(tiny(), loader(), tta=True, **RUN), ConfigError, "used by recipes.run"),
        (lambda: fit(tiny(), loader(), other_classes(), **RUN), ValueError, "other classes"),
    ],
)
def test_fit_refuses_what_cannot_train_with_one_clear_error(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert one_line(caught.value)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: evaluate(tiny(), data()), TypeError, "wrap it in a loader"),
        (lambda: evaluate("model", loader(train=False)), TypeError, "must be a torch nn.Module"),
        (lambda: evaluate(tiny(), loader(train=False), num_classes=0), ValueError, "num_classes"),
        (
            lambda: evaluate(tiny(), loader(train=False), num_classes=5),
            ValueError,
            "num_classes=5",
        ),  # fmt: skip
        (lambda: evaluate(tiny(), pairs([(x32, y32 - 1)])), ValueError, "indices >= 0"),
        (lambda: evaluate(tiny(), pairs([((x32 * 50).byte(), y32)])), TypeError, "float batch"),
        (
            lambda: evaluate(nn.Sequential(tiny(), nn.Flatten(0)), loader(train=False)),
            ValueError,
            "class scores",
        ),  # fmt: skip
        (
            lambda: predict(tiny(), data().images.permute(0, 2, 3, 1), loader()),
            ValueError,
            "permute",
        ),  # fmt: skip
        (lambda: DeviceLoader(data(), 32, train="no"), TypeError, "train must be True or False"),
        (
            lambda: DeviceLoader(data(), 32, train=False, drop_last=True),
            ValueError,
            "keeps every image",
        ),  # fmt: skip
        (lambda: DeviceLoader(data(), 32, mean=(125, 123, 114)), ValueError, "divide 0-255"),
        (lambda: DeviceLoader(data(), 32, std=(float("nan"), 0.2, 0.2)), ValueError, "finite"),
        (lambda: DeviceLoader(data(), 32, device="meta"), ValueError, "holds no data"),
        (lambda: loader().set_seed(2**70), ValueError, "seed must be"),
        (lambda: loader().load_state_dict({}), ValueError, "a DeviceLoader state"),
    ],
)
def test_evaluation_and_loaders_refuse_what_cannot_work(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert one_line(caught.value)


def test_evaluation_mistakes_are_found_on_the_results():
    result = evaluate(tiny(), loader(train=False))
    with pytest.raises(ValueError, match="whole number >= 0"):
        result.most_confident_mistakes(-1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer_kwargs": {1: 2}}, "arguments by name"),
        ({"optimizer": "adam", "optimizer_kwargs": {"foreach": "yes"}}, "True, False or None"),
        ({"schedule": "cosine", "schedule_kwargs": {"eta_min": -1.0}}, "eta_min is the final"),
        ({"schedule": "cosine", "schedule_kwargs": {"eta_min": 5.0}}, "eta_min is the final"),
        ({"schedule_kwargs": {"cycle_momentum": "no"}}, "True, False or None"),
        ({"optimizer": "sgd", "schedule_kwargs": {"cycle_momentum": True}}, "none to cycle"),
        ({"schedule": "step", "schedule_kwargs": {"gamma": -1}}, "gamma multiplies"),
        ({"schedule": "step", "epochs": 5, "schedule_kwargs": {"milestones": [9]}}, "never fire"),
        ({"schedule": "plateau", "schedule_kwargs": {"mode": "min"}}, "mode must be 'max'"),
        ({"momentum": 0.0}, "nesterov cannot be built: Nesterov momentum requires a momentum"),
    ],
)
def test_schedules_and_optimizers_that_would_misbehave_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message) as caught:
        check_config(TrainConfig(**settings))
    assert one_line(caught.value)


def test_a_config_takes_numpy_numbers_hashes_and_records_objects_as_json():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.25), augment=(Cutout(4), "flip"))
    assert type(config.epochs) is int and type(config.lr) is float
    assert hash(config) == hash(TrainConfig.from_dict(config.to_dict()))
    assert json.loads(json.dumps(config.to_dict()))["augment"][0]["name"] == "cutout"
    for call, message in (
        (lambda: config.replace({"lr": 0.1}), "settings by name"),
        (lambda: TrainConfig.from_dict(None), "takes a dict"),
        (lambda: config.differences({}), "two TrainConfigs"),
    ):
        with pytest.raises(TypeError, match=message):
            call()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "sgd", "lr": float("nan")}, "lr must be a finite number"),
        ({"momentum": 5}, r"momentum must be in \[0, 1\)"),
        ({"lookahead": {"k": 2.5, "alpha": 0.5}}, "lookahead k must be a whole number >= 1"),
        ({"grad_clip": {"norm": float("nan")}}, "grad_clip norm must be a finite number"),
    ],
)
def test_optimizer_numbers_are_checked_at_the_door(settings, message):
    """make_optimizer, Lookahead and clip_gradients take their numbers as given; the door
    (check_config, which fit calls) refuses the ones that cannot work."""
    with pytest.raises(ConfigError, match=message):
        check_config(TrainConfig(**settings))
    with pytest.raises(ConfigError, match=message):
        fit(tiny(), loader(), **{**RUN, **settings})


# --------------------------------------------------------------------------- resume


def _first_epoch(path, model=None, train_loader=None, **kwargs):
    return fit(model or tiny(), train_loader or loader(), checkpoint=path, **RUN, **kwargs)


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"model": lambda: tiny(activation=nn.GELU)}, "architecture changed"),
        ({"model": lambda: tiny(dropout=0.1)}, "architecture changed"),
        ({"loss": lambda: nn.CrossEntropyLoss(label_smoothing=0.1)}, "loss"),
        ({"mixer": lambda: __import__("course_utils").mixup.Mixer("cutmix", 1.0)}, "mixer"),
        ({"train_loader": lambda: DeviceLoader(data(seed=1), 32, device="cpu")}, "data changed"),
    ],
    ids=["activation", "dropout", "loss", "mixer", "other images"],
)
def test_resume_refuses_a_changed_model_loss_mixer_or_data(tmp_path, change, differs):
    path = tmp_path / "run.pt"
    _first_epoch(path)
    built = {key: make() for key, make in change.items()}
    if "model" not in built:
        built["model"] = tiny()
    with pytest.raises(CheckpointMismatchError, match=differs) as caught:
        fit(built.pop("model"), built.pop("train_loader", loader()), checkpoint=path,
            resume=True, **RUN | {"epochs": 2}, **built)  # fmt: skip
    assert one_line(caught.value)


def test_resume_must_be_a_bool(tmp_path):
    path = tmp_path / "run.pt"
    _first_epoch(path)
    with pytest.raises(TypeError, match="resume must be True or False"):
        _first_epoch(path, resume="no")


def test_a_tilde_checkpoint_lands_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _first_epoch("~/run.pt")
    assert (tmp_path / "run.pt").is_file() and not (tmp_path / "~").exists()


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_refuse_non_finite_weights_and_other_kinds_of_state(tmp_path):
    model = tiny()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="not finite"):
        save_checkpoint(tmp_path / "nan.pt", model)
    assert not (tmp_path / "nan.pt").exists()
    model = tiny()
    adam = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "adam.pt", model, adam, history=None)
    with pytest.raises(CheckpointMismatchError, match="optimizer state is of another kind"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="loads into a model"):
        load_checkpoint(path, None)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this machine"):
            load_checkpoint(path, model, map_location="cuda")


def test_save_checkpoint_takes_a_history_object(tmp_path):
    history = fit(tiny(), loader(), **RUN)
    path = save_checkpoint(tmp_path / "h.pt", tiny(), history=history)
    assert load_checkpoint(path, tiny())["history"]["name"] == history.name


# --------------------------------------------------------------------------- recipes.run


def test_run_refuses_a_test_set_of_another_kind_and_takes_names_and_builders(tmp_path):
    wang = recipes.get_recipe("wang").replace(epochs=1, batch_size=32)
    test = data(32, split="test")
    from course_utils.data import ImageData

    renamed = ImageData(test.images, test.labels, [f"c{i}" for i in range(10)], "synthetic", "test")
    with pytest.raises(ValueError, match="differ in classes"):
        recipes.run(wang, data(), renamed, model=tiny(), progress=False)
    with pytest.raises(TypeError, match="run takes a Recipe"):
        recipes.run(None, data(), test)
    with pytest.raises(TypeError, match="Recipe's config must be a TrainConfig"):
        recipes.Recipe("r", "wang", config=None)
    result = recipes.run("wang", data(), test, model=lambda: tiny(), epochs=1, batch_size=32,
                         progress=False)  # fmt: skip
    assert result.history.name == "wang" and isinstance(result.model, ResNet)


def test_overwrite_keeps_the_old_run_when_the_new_one_fails_on_its_first_step(tmp_path):
    wang = recipes.get_recipe("wang").replace(epochs=1, batch_size=32)
    out = tmp_path / "o"
    recipes.run(wang, data(), data(32, split="test"), model=tiny(), out=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="5 class scores"):
        recipes.run(wang, data(), data(32, split="test"), model=tiny(num_classes=5), out=out,
                    overwrite=True, progress=False)  # fmt: skip
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    recipes.run(wang, data(), data(32, split="test"), model=tiny(), out=out, overwrite=True,
                progress=False, lr=0.005)  # fmt: skip
    assert json.loads((out / "history.json").read_text())["config"]["lr"] == 0.005
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # nothing set aside is left


# --------------------------------------------------------------------------- sixth pass


class GpuLoader(list):
    device = "gpu"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: __import__("course_utils").optim.make_optimizer("nesterov", tiny(), 0.1, 0, 0),
            ValueError,
            "Nesterov momentum requires",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").optim.make_optimizer("sgd", [], 0.1, 0),
            ValueError,
            "empty parameter list",
        ),  # fmt: skip
        (
            lambda: recipes.run(
                "wang", data(), data(32, split="test"), model=ResNet, epochs=1, batch_size=32
            ),
            TypeError,
            "cannot be built with no arguments",
        ),  # fmt: skip
        (
            lambda: DeviceLoader(
                data(), 32, augment=[__import__("torchvision").transforms.RandomHorizontalFlip()]
            ),
            TypeError,
            "a torchvision transform works on one image",
        ),  # fmt: skip
        (lambda: DeviceLoader(data(), 32, augment="flip"), TypeError, "augment must be a list"),
        (
            lambda: fit(
                tiny(),
                loader(),
                mixer=lambda x, y: (x, y, nn.functional.one_hot(y, 10), 0.5),
                **RUN,
            ),
            ValueError,
            "class indices like y",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").settings.seed_everything("0"),
            ValueError,
            "seed must be a whole number",
        ),  # fmt: skip
        (
            lambda: check_config(TrainConfig(optimizer="sgd", momentum=0.9)),
            ConfigError,
            "plain SGD has none",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").loader.normalize(
                data(8).images.float(), (0.5,) * 3, (0.2,) * 3
            ),
            ValueError,
            "in \\[0, 1\\]",
        ),  # fmt: skip
        (lambda: fit(tiny(), GpuLoader([(x32, y32)]), **RUN), ValueError, "not a device name"),
    ],
)
def test_sixth_pass_mistakes_are_one_clear_error(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert one_line(caught.value)


def test_a_history_and_a_checkpoint_are_not_taken_for_each_other(tmp_path):
    from course_utils.support.checkpoint import read_checkpoint
    from course_utils.train import History

    history = fit(tiny(), loader(), checkpoint=tmp_path / "run.pt", **RUN)
    history.save(tmp_path / "history.json")
    with pytest.raises(ValueError, match="not a history JSON file"):
        History.load(tmp_path / "run.pt")
    with pytest.raises(CheckpointMismatchError) as caught:
        read_checkpoint(tmp_path / "history.json")
    assert "Delete" not in str(caught.value) and "give the run's checkpoint.pt" in str(caught.value)


def test_a_new_schedule_or_optimizer_starts_from_its_own_defaults(tmp_path, capsys):
    from _cli import run_cli

    wang = recipes.get_recipe("wang")
    assert wang.replace(schedule="cosine").config.schedule_kwargs == {}
    fast = recipes.get_recipe("fast94").replace(optimizer="adam")
    assert fast.config.momentum is None and fast.config.optimizer_kwargs == {}
    argv = ["train", "--recipe", "wang", "--schedule", "cosine", "--smoke", "--data", "synthetic",
            "--train-images", "128", "--test-images", "64", "--batch-size", "32",
            "--no-progress", "--out", str(tmp_path / "o")]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err


def test_resume_refuses_an_edited_augmentation_of_the_same_name(tmp_path):
    def shift(images, generator):
        return images

    path = tmp_path / "run.pt"
    _first_epoch(path, train_loader=loader(augment=[shift]))

    def shift(images, generator):  # noqa: F811 - the cell edited and run again
        return images.flip(-1)

    with pytest.raises(CheckpointMismatchError, match="augment_code changed"):
        fit(tiny(), loader(augment=[shift]), checkpoint=path, resume=True, **RUN | {"epochs": 2})


def test_a_schedule_state_of_another_kind_names_the_schedule(tmp_path):
    from course_utils.optim import make_optimizer, make_scheduler

    model = tiny()
    optimizer = make_optimizer("nesterov", model, 0.1, 0.0)
    cosine = make_scheduler("cosine", optimizer, 2, 4)
    path = save_checkpoint(tmp_path / "c.pt", model, optimizer, cosine)
    fresh = make_optimizer("nesterov", model, 0.1, 0.0)
    onecycle = make_scheduler("onecycle", fresh, 2, 4)
    with pytest.raises(CheckpointMismatchError, match="learning-rate schedule state"):
        load_checkpoint(path, model, fresh, onecycle)


class LyingLoader(list):
    def __len__(self):
        return 5


def test_a_loader_whose_len_is_wrong_is_named_after_its_first_epoch():
    with pytest.raises(ValueError, match="yielded 1 batches, but its len\\(\\) is 5"):
        fit(tiny(), LyingLoader([(x32, y32)]), **RUN)


def test_an_image_cache_that_does_not_match_the_folder_is_rebuilt(tmp_path, capsys):
    from PIL import Image

    from course_utils.data import CIFAR10_CLASSES, load_image_folder

    for name in CIFAR10_CLASSES:
        (tmp_path / "f" / "train" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), (20 * i, 0, 0)).save(
                tmp_path / "f" / "train" / name / f"{i}.png"
            )
    first = load_image_folder(tmp_path / "f", expected_counts=None, root=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*train*.npz")
    with np.load(cache) as stored:
        kept = {key: stored[key] for key in stored.files}
    np.savez(cache, **kept | {"images": kept["images"][:10], "labels": kept["labels"][:10]})
    again = load_image_folder(tmp_path / "f", expected_counts=None, root=tmp_path / "cache")
    assert len(again) == len(first) == 20
    assert "10 images for 20 files; rebuilding it" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Using a target size")  # torch's own, before it fails
def test_grayscale_images_and_a_regression_loss_are_named_before_torch_fails():
    gray = pairs([(x32[:, :1], y32)])
    with pytest.raises(ValueError, match="no convolution of the model takes 1"):
        fit(tiny(), gray, **RUN)
    with pytest.raises(ValueError, match="MSELoss\\(\\) failed on class scores") as caught:
        fit(tiny(), loader(), loss=nn.MSELoss(), **RUN)
    assert one_line(caught.value)


def test_resuming_a_tilde_checkpoint_continues_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    _first_epoch("~/run.pt")
    history = fit(tiny(), loader(), checkpoint="~/run.pt", resume=True, **RUN | {"epochs": 2})
    assert len(history.epochs) == 2 and "Resumed from" in capsys.readouterr().out


# --------------------------------------------------------------------------- final pass


class InputLast(nn.Module):
    """A correct model whose input convolution is registered second."""

    def __init__(self):
        super().__init__()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.conv2(self.conv1(x)).mean((2, 3)))


def test_a_model_whose_input_layer_is_registered_later_trains():
    history = fit(InputLast(), loader(), **RUN)
    assert len(history.epochs) == 1


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: predict(tiny(), data(4).images[:, :1], loader()),
            ValueError,
            "1 channel\\(s\\), the loader's statistics",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), loss=nn.BCEWithLogitsLoss(), **RUN),
            ValueError,
            "failed on class scores",
        ),  # fmt: skip
        (
            lambda: fit(tiny(), loader(), mixer=lambda x, y: (x, y, y, torch.rand(len(y))), **RUN),
            ValueError,
            "one number for the batch",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").loader.normalize(
                __import__("course_utils").loader.normalize(data(8).images, (0.5,) * 3, (0.2,) * 3),
                (0.5,) * 3,
                (0.2,) * 3,
            ),
            ValueError,
            "already normalised",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").train.History.from_dict([1]),
            ValueError,
            "not a History",
        ),  # fmt: skip
        (
            lambda: __import__("course_utils").train.History.from_dict(TrainConfig().to_dict()),
            ValueError,
            "not a History",
        ),  # fmt: skip
        (
            lambda: recipes.run("wang", data(), data(32, split="test"), augment="flip"),
            TypeError,
            "augment must be a list",
        ),  # fmt: skip
    ],
)
def test_final_pass_mistakes_are_one_clear_error(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert one_line(caught.value)


def test_a_diverged_model_is_named_before_training_again():
    model = tiny()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="weights are not finite"):
        fit(model, loader(), **RUN)


def test_numpy_seeds_are_taken():
    __import__("course_utils").settings.seed_everything(np.int64(3))
    first = torch.rand(1)
    __import__("course_utils").settings.seed_everything(3)
    assert torch.equal(first, torch.rand(1))


@pytest.mark.parametrize("kind", ["closure", "partial", "object"])
def test_resume_refuses_an_augmentation_whose_settings_changed(tmp_path, kind):
    import functools

    def roll(images, generator, shift=0):
        return images.roll(shift, -1)

    class Roll:
        def __init__(self, shift):
            self.shift = shift

        def __call__(self, images, generator):
            return images.roll(self.shift, -1)

    def factory(shift):
        return lambda images, generator: images.roll(shift, -1)

    make = {"closure": factory, "partial": lambda s: functools.partial(roll, shift=s),
            "object": Roll}[kind]  # fmt: skip
    path = tmp_path / "run.pt"
    _first_epoch(path, train_loader=loader(augment=[make(0)]))
    fit(tiny(), loader(augment=[make(0)]), checkpoint=path, resume=True, **RUN)  # the same: fine
    with pytest.raises(CheckpointMismatchError, match="augment_code changed"):
        fit(tiny(), loader(augment=[make(1)]), checkpoint=path, resume=True, **RUN | {"epochs": 2})
