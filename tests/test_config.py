"""TrainConfig: one home for every training default, and one clear line for every bad value."""

import ast
import inspect
import json
from pathlib import Path

import pytest
import torch

from course_utils import config, loader, recipes, train
from course_utils.config import ConfigError, TrainConfig
from course_utils.data import synthetic_cifar10
from course_utils.models import ResNet
from course_utils.support import cli
from course_utils.support.config_checks import check_config

PACKAGE = Path(config.__file__).parent


def test_defaults_round_trip_through_json():
    default = TrainConfig()
    assert TrainConfig.from_dict(json.loads(json.dumps(default.to_dict()))) == default
    changed = default.replace(lr=0.05, augment=["crop"])
    assert changed.augment == ("crop",) and default.differences(changed) == [
        "lr: 0.1 -> 0.05",
        "augment: ['crop', 'flip'] -> ['crop']",
    ]


def _defaults_of(function) -> dict:
    """Parameters of ``function`` whose default is a value (not None, not required)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default not in (inspect.Parameter.empty, None)
    }


@pytest.mark.parametrize(
    "function",
    [train.fit, train.evaluate, loader.DeviceLoader.__init__, recipes.run],
    ids=lambda f: f.__qualname__,
)
def test_no_training_default_is_restated_in_a_signature(function):
    restated = set(_defaults_of(function)) & set(config.field_names())
    assert not restated, f"{function.__qualname__} restates TrainConfig defaults: {restated}"


def test_the_command_line_takes_its_defaults_from_train_config():
    args = cli.build_parser().parse_args(["train", "--model", "wang"])
    for key in config.field_names():
        assert getattr(args, key, None) is None, f"--{key} has a default of its own"


def test_no_module_but_config_writes_the_default_literals():
    """The course's own defaults (SGD with Nesterov momentum, one-cycle, lr 0.1, 5e-4
    decay, batch 512) appear as keyword defaults only in config.py."""
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("config.py", "recipes.py", "data.py"):
            continue  # recipes set every field on purpose; data's seed makes the stand-in
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.arguments):
                names = [a.arg for a in node.args + node.kwonlyargs]
                values = [None] * (len(node.args) - len(node.defaults)) + node.defaults
                values += node.kw_defaults
                for name, value in zip(names, values, strict=True):
                    if name in config.field_names() and isinstance(value, ast.Constant):
                        assert value.value is None, f"{path.name}: {name}={value.value!r}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"epochs": 2.5}, "epochs must be a whole number >= 1"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
        ({"mixup": float("inf")}, "mixup must be a finite number"),
        ({"mixup": -1}, "mixup must be >= 0"),
        ({"val_split": 1.0}, r"val_split must be in \[0, 1\)"),
        ({"ema": 1.0}, r"ema must be in \(0, 1\)"),
        ({"precision": "fp8"}, "precision must be one of auto, bf16, fp16, fp32"),
        (
            {"optimizer": "adamm"},
            r"unknown optimizer 'adamm'; did you mean 'adam'\? choose one of: sgd",
        ),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum is used by momentum and nesterov"),
        ({"optimizer_kwargs": {"betas": (0.9, 0.99)}}, "betas are not arguments of nesterov"),
        ({"lookahead": {"k": 5}}, "lookahead needs exactly k and alpha"),
        ({"lookahead": {"k": 0, "alpha": 0.5}}, "lookahead k must be a whole number >= 1"),
        ({"schedule": "cosin"}, "unknown schedule 'cosin'"),
        ({"schedule_kwargs": {"warmup": 0.1}}, "warmup do not apply to the onecycle schedule"),
        ({"grad_clip": 0}, "grad_clip must be > 0"),
        ({"grad_clip": {"max": 1}}, "grad_clip takes value and/or norm"),
        ({"augment": ["crop", "blur"]}, "augment: "),
        ({"augment": [{"name": "cutout", "size": -1}]}, "augment: "),
        ({"tta": "yes"}, "tta must be True or False"),
        ({"learning_rate": 0.1}, "unknown training setting.*learning_rate.*TrainConfig has"),
    ],
)
def test_every_bad_value_is_one_clear_line(change, message):
    with pytest.raises(ConfigError, match=message) as caught:
        check_config(TrainConfig().replace(**change))  # refused at the door, in one line
    assert "\n" not in str(caught.value)


def test_building_a_config_checks_nothing_but_fit_refuses_it_before_training():
    bad = TrainConfig(lr=-1, augment=None)  # a plain data object: built without a trial run
    assert bad.lr == -1
    model = ResNet([1], [4])
    before = {key: value.clone() for key, value in model.state_dict().items()}
    loader_ = loader.DeviceLoader(synthetic_cifar10(64), 32, device="cpu")
    with pytest.raises(ConfigError, match="lr must be > 0"):
        train.fit(model, loader_, config=TrainConfig(lr=-1), epochs=1, progress=False)
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\)"):
        train.fit(model, loader_, epochs=1, momentum=1.5, progress=False)
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


def test_recipes_are_valid_configs():
    for recipe in recipes.RECIPES.values():
        check_config(recipe.config)
        assert TrainConfig.from_dict(recipe.config.to_dict()) == recipe.config
