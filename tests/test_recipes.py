"""The reports' recipes as data, and recipes.run: validation held out, the test set once."""

import json

import pytest
import torch

from course_utils import params, settings, zoo
from course_utils.data import synthetic_cifar10
from course_utils.models import ResNet, ResNet9
from course_utils.recipes import RECIPES, TORCHVISION_CROP, Recipe, get_recipe, run


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar10(320, seed=0), synthetic_cifar10(96, seed=0, split="test")


def test_recipes_match_the_reports():
    assert set(RECIPES) == {"pillai", "merabishvili", "rout", "sudrik", "wang", "fast94", "page94"}
    pillai, rout, sudrik, wang = (
        get_recipe(k).config for k in ("pillai", "rout", "sudrik", "wang")
    )
    assert (pillai.optimizer, pillai.lr, pillai.weight_decay, pillai.batch_size) == (
        "adadelta",
        1e-4,
        1e-3,
        128,
    )
    assert (pillai.schedule, pillai.val_split, pillai.epochs) == ("plateau", 0.2, 50)
    assert rout.lookahead == {"k": 5, "alpha": 0.5} and rout.label_smoothing == 0.1
    assert (rout.lr, rout.momentum, rout.weight_decay, rout.epochs) == (0.05, 0.9, 1e-4, 400)
    assert [a if isinstance(a, str) else a["name"] for a in rout.augment] == [
        "crop",
        "flip",
        "rotate",
        "jitter",
        "erase",
    ]
    assert "approximat" not in get_recipe("rout").source
    assert (sudrik.optimizer, sudrik.lr, sudrik.batch_size, sudrik.mixup) == (
        "adadelta",
        0.1,
        64,
        1.0,
    )
    assert sudrik.augment == (TORCHVISION_CROP, "flip") and sudrik.weight_decay == 0
    assert (wang.schedule, wang.schedule_kwargs, wang.grad_clip) == (
        "onecycle",
        {"pct_start": 0.3},
        {"value": 0.1},
    )
    assert wang.augment[0]["padding_mode"] == "reflect" and wang.epochs == 70
    for recipe in RECIPES.values():
        assert recipe.model in zoo.REPORTS and recipe.source
        assert recipe.config.val_split > 0  # every recipe chooses on validation


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_runs_end_to_end(name, data):
    train_data, test_data = data
    recipe = get_recipe(name).replace(epochs=1, batch_size=32)
    result = run(recipe, train_data, test_data, model=ResNet([1], [4]), progress=False)
    history = result.history
    assert history.eval_split == "validation" and history.test["split"] == "test"
    assert history.config == recipe.config.to_dict() | {"augment": history.config["augment"]}
    assert history.run["train_images"] == 320 - round(320 * recipe.config.val_split)
    assert history.test["accuracy"] == result.test.accuracy
    assert history.test["images"] == len(test_data) and history.run["max_steps"] is None
    assert history.test["tta"] == recipe.config.tta


def test_run_never_evaluates_the_test_set_per_epoch(data, monkeypatch):
    from course_utils import recipes

    train_data, test_data = data
    splits = []
    real_evaluate = recipes.evaluate

    def spying_evaluate(model, loader, **kwargs):
        splits.append(loader.split)
        return real_evaluate(model, loader, **kwargs)

    monkeypatch.setattr(recipes, "evaluate", spying_evaluate)
    run(Recipe("r", "wang"), train_data, test_data, model=ResNet([1], [4]), epochs=3,
        batch_size=32, progress=False)  # fmt: skip
    assert splits == ["test"]  # once, at the end; per-epoch numbers come from validation


def test_run_seeds_the_model_it_builds(data, monkeypatch):
    monkeypatch.setattr(zoo, "build", lambda key: ResNet([1], [4]))
    train_data, test_data = data
    recipe = Recipe("r", "wang").replace(epochs=1, batch_size=32)
    runs = [run(recipe, train_data, test_data, progress=False, seed=s) for s in (0, 0, 1)]
    assert runs[0].history.step_loss == runs[1].history.step_loss
    assert runs[0].history.step_loss[0] != runs[2].history.step_loss[0]


def test_run_saves_and_refuses_to_overwrite(data, tmp_path):
    train_data, test_data = data
    recipe = Recipe("r", "wang").replace(epochs=1, batch_size=32)
    options = {"model": ResNet([1], [4]), "out": tmp_path / "r", "progress": False}
    run(recipe, train_data, test_data, **options)
    saved = json.loads((tmp_path / "r" / "history.json").read_text())
    assert saved["test"]["split"] == "test" and (tmp_path / "r" / "curves.png").is_file()
    with pytest.raises(FileExistsError, match="holds a finished run") as caught:
        run(recipe, train_data, test_data, **options)
    assert "choose another out, or add overwrite=True" in str(caught.value)  # Python's words
    assert "--" not in str(caught.value)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(FileExistsError, match="is a file"):
        run(recipe, train_data, test_data, **options | {"out": tmp_path / "file"})
    assert (tmp_path / "file").read_text() == "mine"


def test_a_dry_run_records_its_cap_and_the_test_images_it_evaluated(data, monkeypatch):
    monkeypatch.setattr(settings, "MAX_STEPS", 1)
    train_data, test_data = data
    recipe = Recipe("r", "wang").replace(epochs=1, batch_size=32)
    history = run(recipe, train_data, test_data, model=ResNet([1], [4]), progress=False).history
    assert history.run["max_steps"] == 1 and history.test["images"] == 32 < len(test_data)


def test_a_run_that_fails_before_writing_removes_the_folders_it_made(data, tmp_path, monkeypatch):
    from course_utils import recipes

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "fit", interrupted)
    train_data, test_data = data
    recipe = Recipe("r", "wang").replace(epochs=1, batch_size=32)
    mine = tmp_path / "mine"
    mine.mkdir()
    for out in (tmp_path / "runs" / "r", mine):
        with pytest.raises(KeyboardInterrupt):
            run(recipe, train_data, test_data, model=ResNet([1], [4]), out=out, progress=False)
    assert not (tmp_path / "runs").exists()  # made by the run, left empty: removed
    assert mine.is_dir()  # the user's own folder stays, empty or not


def test_a_student_augmentation_plugs_into_run(data):
    train_data, test_data = data
    calls = []

    def darken(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append(len(images))
        return images // 2

    recipe = Recipe("r", "wang").replace(epochs=1, batch_size=32)
    result = run(recipe, train_data, test_data, model=ResNet([1], [4]), augment=["flip", darken],
                 progress=False)  # fmt: skip
    assert calls and result.history.config["augment"][1].endswith("darken")


def test_fast94_fits_the_budget_and_airbench94s_compute():
    config = get_recipe("fast94").config
    model = zoo.build(get_recipe("fast94").model)
    assert params.check_budget(model) < 5_000_000
    train_images = round(50_000 * (1 - config.val_split))
    assert params.training_flops(model, train_images * config.epochs) <= 0.36e15
    assert config.val_split > 0 and config.tta  # honest evaluation, flip TTA


def test_page94_keeps_the_first_capstone_runnable(data):
    recipe = get_recipe("page94")
    assert recipe.model == "resnet9_page" and recipe.config.epochs == 30
    model = zoo.build(recipe.model)
    assert params.training_flops(model, 45_000 * recipe.config.epochs) <= 3e15
    train_data, test_data = data
    small = ResNet9(widths=(4, 8, 8, 8))
    result = run(recipe.replace(epochs=1, batch_size=64), train_data, test_data, model=small,
                 progress=False)  # fmt: skip
    assert len(result.history.epochs) == 1 and 0 <= result.test.accuracy <= 1


def test_unknown_recipe_lists_the_names():
    with pytest.raises(
        KeyError, match="choose one of: pillai, merabishvili, rout, sudrik, wang, fast94, page94"
    ):
        get_recipe("fast95")
