"""Fault injection on the Python API: a bad argument is refused where it is given, by one
exception whose one-line message names it (sweep, models, augment, mixup, params, plots,
data)."""

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from course_utils import augment, params, plots
from course_utils.augment import Cutout, HorizontalFlip, RandomCrop
from course_utils.config import UnknownNameError
from course_utils.data import channel_stats, synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.mixup import Mixer
from course_utils.models import BasicBlock, BlockShapeError, ResNet, ResNet9, shortcut
from course_utils.recipes import get_recipe
from course_utils.support import sweep
from course_utils.support.config_checks import check_augment, check_mix, check_mixer, check_specs
from course_utils.train import History

matplotlib.use("Agg")

DATA = synthetic_cifar10(64)
IMAGES = DATA.images[:4]
TINY = get_recipe("wang").replace(batch_size=16, epochs=1)


def tiny_net() -> nn.Module:
    return ResNet([1], [4])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def refused(call, error: type[Exception], message: str) -> None:
    """``call()`` raises ``error`` with ``message`` in a one-line message."""
    with pytest.raises(error) as caught:
        call()
    text = str(caught.value)
    assert message in text, text
    assert "\n" not in text.strip(), text


def objective(**changes) -> sweep.Objective:
    return sweep.Objective(TINY, DATA, **{"model": tiny_net, **changes})


# --------------------------------------------------------------------------- sweep


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "a search space is a dict of TrainConfig fields"),
        (["lr"], "a search space is a dict of TrainConfig fields"),
        ({"optimizer": "adam"}, "optimizer: give a list of choices"),
        ({"lr": {"low": 0.01, "high": 1, "log": "no"}}, "log must be True or False"),
        ({"lr": {"low": 0.1, "high": 1, "grid": "abc"}}, "grid must be a list of numbers"),
    ],
)
def test_search_space_refuses_specs_of_the_wrong_kind(spec, message):
    refused(lambda: sweep.search_space(spec), sweep.SweepError, message)


def test_a_recipe_name_is_accepted_as_a_recipe():
    assert sweep.default_space("wang") == sweep.default_space(get_recipe("wang"))
    named = sweep.Objective("wang", synthetic_cifar10(800), model=tiny_net)
    assert named.recipe == get_recipe("wang")
    refused(lambda: sweep.default_space(5), sweep.SweepError, "recipe must be a Recipe")


def test_an_objective_and_a_grid_sampler_take_a_search_space_as_a_dict():
    spec = {"lr": {"low": 0.01, "high": 0.1}}
    assert objective(space=spec).space == sweep.search_space(spec)
    assert type(sweep.make_sampler("grid", {"lr": [0.1]})).__name__ == "GridSampler"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"model": "nope"}, UnknownNameError, "unknown zoo model 'nope'"),
        ({"model": 5}, sweep.SweepError, "model must be a zoo key"),
        ({"model": ResNet}, sweep.SweepError, "cannot be called with no arguments"),
        (
            {"augment": ["crp"]},
            sweep.SweepError,
            "augment: unknown augmentation 'crp'; did you mean 'crop'?",
        ),
        (
            {"model": lambda: ResNet([1], [4], num_classes=3)},
            sweep.SweepError,
            "but the data has 10 classes: build it with num_classes=10",
        ),
        ({"model": lambda: torch.zeros(1)}, sweep.SweepError, "not a network"),
    ],
)
def test_an_objective_refuses_a_model_or_augmentation_that_would_fail_every_trial(
    changes, error, message
):
    refused(lambda: objective(**changes), error, message)


def test_an_objective_needs_image_data_not_a_loader():
    loader = DeviceLoader(DATA, 16, device="cpu")
    refused(lambda: sweep.Objective(TINY, loader, model=tiny_net), sweep.SweepError,
            "train_data must be the ImageData training split")  # fmt: skip


def test_an_objective_leaves_the_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    objective()
    assert torch.equal(torch.rand(3), expected)


def test_open_storage_refuses_a_number():
    refused(lambda: sweep.open_storage(5), sweep.SweepError, "storage must be a database URL")


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        ((None, "objective"), {}, "a study needs a name"),
        (("s", None), {}, "open_study needs an Objective"),
        (("s", "objective"), {"sampler": 5}, "sampler must be one of grid, random, tpe"),
        (("s", "objective"), {"pruner": 5}, "pruner must be one of median, halving, none"),
        (("s", "objective"), {"sampler": "random", "seed": "x"}, "seed must be a whole number"),
    ],
)
def test_open_study_refuses_bad_arguments_before_creating_a_study(arguments, options, message):
    name, target = arguments
    target = objective() if target == "objective" else target
    call = lambda: sweep.open_study(name, target, "sqlite:///:memory:", **options)  # noqa: E731
    refused(call, sweep.SweepError, message)


def test_a_config_holding_augmentation_objects_is_recorded_in_the_study():
    for pipeline in ([Cutout(4)], [lambda images, generator: images]):
        target = sweep.Objective(TINY.replace(augment=pipeline), DATA, model=tiny_net)
        study = sweep.open_study("s", target, "sqlite:///:memory:")
        assert len(study.user_attrs["setup"]["config"]["augment"]) == 1


@pytest.mark.parametrize("trials", ["2", 1.5])
def test_add_trials_needs_a_whole_number(trials):
    target = objective()
    study = sweep.open_study("s", target, "sqlite:///:memory:")
    refused(lambda: sweep.add_trials(study, target, trials), sweep.SweepError, "a whole number")


def test_best_recipe_needs_a_completed_trial_of_the_same_recipe():
    target = objective(space={"lr": [0.01]})
    study = sweep.open_study("s", target, "sqlite:///:memory:", sampler="grid")
    refused(lambda: sweep.best_recipe(study, TINY), sweep.SweepError, "has no completed trial")
    sweep.add_trials(study, target, 1)
    assert sweep.best_recipe(study, TINY).config.lr == 0.01
    refused(lambda: sweep.best_recipe(study, "wang"), sweep.SweepError,
            "swept another recipe (it differs in epochs, batch_size)")  # fmt: skip


@pytest.mark.parametrize("quantile", [2.0, 0, "0.25"])
def test_importance_evaluator_needs_a_quantile_in_0_1(quantile):
    refused(lambda: sweep.importance_evaluator(quantile), sweep.SweepError, "a number in (0, 1)")


# --------------------------------------------------------------------------- models


class ForgetsSuper(nn.Module):
    def __init__(self, in_channels, width, stride, activation):
        self.conv = nn.Conv2d(in_channels, width, 3, stride, 1)


class OnlyTrainModeBreaks(nn.Module):
    def __init__(self, in_channels, width, stride, activation):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, stride, 1)

    def forward(self, x):
        return self.conv(x)[:, :1] if self.training else self.conv(x)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: ResNet(2, 4), TypeError, "blocks and widths must be lists"),
        (lambda: ResNet([1], [4], stem_width=0), ValueError, "stem_width must be a whole number"),
        (lambda: ResNet([1], [4], stem_width="x"), TypeError, "stem_width must be a whole"),
        (lambda: ResNet([1], [4], dropout="0.1"), TypeError, "dropout must be a number"),
        (lambda: ResNet([1], [4], activation="relu"), BlockShapeError, "such as nn.ReLU"),
        (lambda: ResNet([1], [4], activation=torch.relu), BlockShapeError, "such as nn.ReLU"),
        (lambda: ResNet([1], [4], block=ForgetsSuper), BlockShapeError, "super().__init__()"),
        (lambda: ResNet([1], [4], block=OnlyTrainModeBreaks), BlockShapeError, "in train mode"),
        (lambda: ResNet9((64, 128, 256)), ValueError, "widths must be 4 channel counts"),
        (lambda: ResNet9((0, 8, 8, 8)), ValueError, "every width must be a whole number"),
        (lambda: ResNet9((4, 4, 4, 4), num_classes=0), ValueError, "num_classes must be"),
        (lambda: ResNet9((4, 4, 4, 4), logit_scale=0), ValueError, "logit_scale must be"),
        (lambda: BasicBlock(4, 4, stride=0), ValueError, "stride must be a whole number >= 1"),
        (lambda: shortcut(4, 8, 0), ValueError, "stride must be a whole number >= 1"),
    ],
)
def test_models_refuse_bad_arguments_when_built(build, error, message):
    refused(build, error, message)


def test_the_train_mode_check_leaves_batchnorm_statistics_alone():
    model = ResNet([1, 1], [4, 8])
    assert all(int(bn.num_batches_tracked) == 0 for bn in model.modules()
               if isinstance(bn, nn.BatchNorm2d))  # fmt: skip
    assert model.training


# --------------------------------------------------------------------------- augment


class NoSample(augment.Augmentation):
    pass


def mutated_flip() -> HorizontalFlip:
    flip = HorizontalFlip()
    flip.p = 5
    return flip


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: check_specs([{"name": ["crop"]}]), ValueError, "unknown augmentation ['crop']"),
        (
            lambda: check_augment([RandomCrop(40, "constant")], IMAGES),
            ValueError,
            "constant padding must be",
        ),
        (
            lambda: check_augment([Cutout(4)], IMAGES, "seed"),
            TypeError,
            "generator must be a torch.Generator",
        ),
        (lambda: check_augment([], IMAGES, 3), TypeError, "must be a torch.Generator"),
        (lambda: check_specs([NoSample()]), NotImplementedError, "NoSample must define sample()"),
        (lambda: NoSample()(IMAGES), NotImplementedError, "NoSample must define sample()"),
        (lambda: check_specs([mutated_flip()]), ValueError, "p must be a number"),
        (
            lambda: check_augment([mutated_flip()], IMAGES),
            ValueError,
            "p must be a number in [0.0, 1.0], got 5",
        ),
    ],
)
def test_augmentations_refuse_bad_specs_generators_and_fields(call, error, message):
    refused(call, error, message)


# --------------------------------------------------------------------------- mixup


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: check_mixer(Mixer("mixup", "1")), TypeError, "alpha must be a number >= 0"),
        (lambda: check_mixer(Mixer("mixup", None)), TypeError, "alpha must be a number >= 0"),
        (lambda: check_mixer(Mixer("mixup", -1.0)), ValueError, "alpha must be a number >= 0"),
        (
            lambda: check_mixer(Mixer("mixup", 1.0, "0.5")),
            TypeError,
            "prob is a probability in [0, 1]",
        ),
        (
            lambda: check_mix(IMAGES.float(), DATA.labels[:4], alpha=-1),
            ValueError,
            "alpha must be",
        ),
    ],
)
def test_mixing_refuses_bad_alpha_and_prob(build, error, message):
    refused(build, error, message)


# --------------------------------------------------------------------------- params


def test_a_rerun_cell_replaces_its_ledger_entry_and_says_so(capsys):
    ledger = params.ComputeLedger()
    ledger.add("x", tiny_net(), 100)
    first = ledger.total
    ledger.add("x", tiny_net(), 200)
    assert ledger.total == pytest.approx(2 * first) and list(ledger.pflops) == ["x"]
    assert "replaces the earlier run" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: params.count_parameters([torch.zeros(3)]), TypeError, "needs a model"),
        (lambda: params.check_budget(tiny_net(), "5M"), TypeError, "limit is a number"),
        (lambda: params.flops(tiny_net(), (3, 32, 32)), ValueError, "cannot run on an input"),
        (lambda: params.flops(ResNet), TypeError, "not the class ResNet"),
        (lambda: params.ComputeLedger().add("x", tiny_net(), -100), ValueError, "images is how"),
        (lambda: params.ComputeLedger().add("x", "resnet", 100), TypeError, "needs a model"),
        (lambda: params.summary(tiny_net(), (32, 32)), ValueError, "cannot run on an input"),
    ],
)
def test_params_refuse_bad_models_sizes_and_ledger_entries(call, error, message):
    refused(call, error, message)


# --------------------------------------------------------------------------- plots


def history(epochs=({"epoch": 1, "train_loss": 1.0, "train_acc": 0.5},)) -> History:
    return History(name="h", epochs=list(epochs))


def test_plot_history_reads_a_dict_from_to_dict():
    figure = plots.plot_history(history().to_dict())
    assert len(figure.axes) == 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: plots.plot_history(history(), metrics=[]), ValueError, "metrics is empty"),
        (lambda: plots.plot_history(history(), x="time"), ValueError, "has no 'elapsed'"),
        (lambda: plots.plot_history(history([{"train_loss": 1.0}])), ValueError, "no 'epoch'"),
        (lambda: plots.plot_confusion(torch.eye(3), None), TypeError, "needs the class names"),
        (
            lambda: plots.plot_per_class(torch.tensor([0.5, float("nan")]), ["a", "b"]),
            ValueError,
            "the accuracy of class 'b' is NaN",
        ),
        (lambda: plots.plot_per_class([], []), ValueError, "accuracies is empty"),
        (lambda: plots.show_images(IMAGES[:0]), ValueError, "the batch of images is empty"),
        (
            lambda: plots.show_images(IMAGES[:2], labels=[0, 12], classes=DATA.classes),
            ValueError,
            "label 12 has no class name",
        ),
        (lambda: plots.show_images(IMAGES, nrow=2.5), TypeError, "a whole number; got 2.5"),
    ],
)
def test_plots_refuse_bad_histories_and_values(call, error, message):
    refused(call, error, message)


def test_save_figure_refuses_a_folder_and_writes_nothing_beside_it(tmp_path):
    figure, _ = plt.subplots()
    folder = tmp_path / "figures"
    folder.mkdir()
    refused(lambda: plots.save_figure(figure, folder), ValueError, "needs a file name")
    refused(lambda: plots.save_figure(figure, tmp_path / "plain"), ValueError, "format suffix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


# --------------------------------------------------------------------------- data


def image_data(classes):
    return type(DATA)(DATA.images[:2], torch.tensor([0, 1]), classes, "synthetic", "train")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: image_data("abc"), TypeError, "got the string 'abc'"),
        (lambda: image_data(("cat", "cat")), ValueError, "'cat' appears more than once"),
        (lambda: DATA.holdout(0.5, seed="a"), TypeError, "holdout's seed must be a whole"),
        (lambda: DATA.holdout("0.1", seed=0), TypeError, "fraction must be a number in (0, 1)"),
        (lambda: DATA.subset(10.5), TypeError, "subset(n) must be a whole number"),
        (lambda: DATA.subset("10"), TypeError, "subset(n) must be a whole number"),
        (lambda: channel_stats([1, 2, 3]), TypeError, "(a tensor), got list"),
        (lambda: channel_stats(DATA.images[:0]), ValueError, "give at least one image"),
        (lambda: channel_stats(DATA.images, batch_size=0), ValueError, "batch_size must be"),
        (lambda: channel_stats(DATA), TypeError, "channel_stats(data.images)"),
        (lambda: synthetic_cifar10(10.0), TypeError, "n must be a whole number"),
    ],
)
def test_data_refuses_bad_classes_fractions_counts_and_images(call, error, message):
    refused(call, error, message)


def test_the_halving_pruner_refuses_the_median_pruners_numbers():
    pytest.importorskip("optuna")
    refused(lambda: sweep.make_pruner("halving", startup_trials=3), sweep.SweepError,
            "belong to the median pruner")  # fmt: skip
