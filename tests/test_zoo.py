"""Tests for course_utils.zoo: the five reports' models, rebuilt exactly, and their facts."""

import dataclasses
from functools import partial

import pytest
import torch
from torch import nn

from course_utils import params, zoo
from course_utils.models import BasicBlock, Bottleneck, ResNet

KEYS = [
    "pillai",
    "merabishvili",
    "rout",
    "sudrik",
    "sudrik_resnet10",
    "sudrik_resnet18",
    "sudrik_resnet20",
    "sudrik_resnet24",
    "sudrik_resnet32",
    "wang",
    "wang_deep",
    "resnet18",
    "capstone",
    "resnet9_page",
]


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    """Every zoo model, built once for the whole file."""
    torch.manual_seed(0)
    return {key: zoo.build(key) for key in KEYS}


def test_reports_and_builders_cover_the_same_keys():
    assert list(zoo.REPORTS) == KEYS
    assert all(report.key == key for key, report in zoo.REPORTS.items())


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(KeyError, match="sudrik_resnet18.*wang_deep"):
        zoo.build("resnet50")


def test_report_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        zoo.REPORTS["wang"].reported_accuracy = 99.0


@pytest.mark.parametrize(("key", "count"), [("sudrik", 4_922_826), ("wang", 4_977_226)])
def test_counts_equal_the_reported_numbers(models, key, count):
    assert params.count_parameters(models[key]) == count
    assert zoo.REPORTS[key].reported_params == count


def test_resnet18_has_the_standard_count(models):
    assert params.count_parameters(models["resnet18"]) == 11_173_962


def test_only_the_reported_counts_are_given():
    given = {key for key, report in zoo.REPORTS.items() if report.reported_params is not None}
    assert given == {"sudrik", "wang"}


def test_every_model_but_resnet18_is_under_budget(models):
    for key, model in models.items():
        under = params.count_parameters(model) < zoo.BUDGET
        assert under == (key != "resnet18"), key


def test_every_model_maps_cifar_images_to_ten_logits(models):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for key, model in models.items():
            assert model(images).shape == (2, 10), key


def test_reported_accuracies_follow_the_digest():
    accuracy = {key: report.reported_accuracy for key, report in zoo.REPORTS.items()}
    assert accuracy["pillai"] is None
    assert (accuracy["sudrik"], accuracy["wang"], accuracy["wang_deep"]) == (94.12, 93.81, 93.87)
    assert (accuracy["merabishvili"], accuracy["rout"]) == (94.16, 86.968)
    table1 = [accuracy[f"sudrik_resnet{n}"] for n in (10, 18, 20, 24, 32)]
    assert table1 == [81.61, 83.35, 83.63, 83.95, 82.80]


def stage_layout(model: nn.Module) -> tuple[list[int], list[int]]:
    """Blocks per stage and the output channels of each stage, read off the built model."""
    blocks = [sum(not isinstance(layer, nn.Dropout) for layer in s) for s in model.stages]
    channels = [
        [m for m in s.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features
        for s in model.stages
    ]
    return blocks, channels


@pytest.mark.parametrize(
    ("key", "stem", "blocks", "widths"),
    [
        ("merabishvili", 66, [3, 4, 3], [66, 132, 264]),
        ("sudrik", 64, [3, 2, 3, 2], [64, 128, 192, 256]),
        ("sudrik_resnet18", 64, [2, 2, 2, 2], [64, 157, 211, 270]),
        ("sudrik_resnet32", 32, [4, 4, 4, 3], [32, 64, 128, 256]),
        ("wang", 64, [2, 1, 1, 1], [64, 128, 256, 512]),
        ("wang_deep", 32, [6, 5, 4, 3], [32, 64, 128, 256]),
        ("pillai", 16, [3, 5, 3], [64, 128, 256]),
        ("rout", 32, [3, 3, 3], [256, 512, 1024]),
    ],
)
def test_models_are_built_from_the_reports_layout(models, key, stem, blocks, widths):
    model = models[key]
    assert model.stem.conv.out_channels == stem
    assert stage_layout(model) == (blocks, widths)
    assert model.head.fc.in_features == widths[-1]


def test_basic_block_models_use_basic_blocks(models):
    for key in ("merabishvili", "sudrik", "wang", "wang_deep", "resnet18"):
        assert all(isinstance(block, BasicBlock) for block in models[key].stages[1]), key


def test_rout_uses_bottlenecks_leaky_relu_and_dropout_after_each_stage(models):
    model = models["rout"]
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert sum(isinstance(m, nn.LeakyReLU) for m in model.modules()) == 1 + 9 * 3
    for stage in model.stages:
        assert all(isinstance(block, Bottleneck) for block in stage[:-1])
        assert isinstance(stage[-1], nn.Dropout) and stage[-1].p == zoo.ROUT_DROPOUT
    assert model.head.fc.in_features == 1024


def test_pillai_has_dropout_inside_blocks_and_square_projections(models):
    model = models["pillai"]
    blocks = [block for stage in model.stages for block in stage]
    assert all(isinstance(block, zoo.DropoutBlock) for block in blocks)
    assert all(sum(isinstance(m, nn.Dropout) for m in block.modules()) == 2 for block in blocks)
    projections = [b.shortcut for b in blocks if isinstance(b.shortcut, zoo.PaddedProjection)]
    shapes = [tuple(p.conv.weight.shape) for p in projections]
    assert shapes == [(64, 64, 1, 1), (128, 128, 1, 1), (256, 256, 1, 1)]
    convs_per_block = [sum(isinstance(m, nn.Conv2d) for m in b.modules()) for b in blocks]
    assert sum(convs_per_block) == 2 * len(blocks) + 3


def test_padded_projection_subsamples_and_zero_pads_before_the_conv():
    """With the 1x1 conv set to the identity and BN in eval at its initial state, the
    projection returns the subsampled input followed by zero channels."""
    torch.manual_seed(0)
    projection = zoo.PaddedProjection(2, 5, stride=2).eval()
    with torch.no_grad():
        projection.conv.weight.copy_(torch.eye(5).view(5, 5, 1, 1))
    x = torch.randn(1, 2, 4, 4)
    out = projection(x)
    assert out.shape == (1, 5, 2, 2)
    bn_scale = 1 / (1 + projection.bn.eps) ** 0.5
    torch.testing.assert_close(out[:, :2], x[:, :, ::2, ::2] * bn_scale)
    assert torch.all(out[:, 2:] == 0)


def test_padded_projection_refuses_to_shrink_channels():
    with pytest.raises(ValueError, match="cannot reduce channels"):
        zoo.PaddedProjection(8, 4, stride=1)


def test_dropout_block_dropout_rate_can_be_changed_with_partial():
    model = ResNet([1], [8], block=partial(zoo.DropoutBlock, p=0.3))
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.3}


def test_summary_has_one_row_per_model_with_budget_and_reports(models):
    table = zoo.summary()
    assert list(table["key"]) == KEYS
    assert list(table.columns) == [
        "key",
        "parameters",
        "gflops",
        "under_budget",
        "reported_params",
        "reported_accuracy",
    ]
    rows = table.set_index("key")
    assert rows.loc["sudrik", "parameters"] == rows.loc["sudrik", "reported_params"]
    assert list(rows["under_budget"]) == list(rows["parameters"] < 5_000_000)
    # wang drops one block from each of resnet18's stages 2-4, so it must cost less.
    assert 0 < rows.loc["wang", "gflops"] < rows.loc["resnet18", "gflops"]
    expected = params.flops(models["resnet18"]) / 1e9
    assert rows.loc["resnet18", "gflops"] == pytest.approx(expected)
