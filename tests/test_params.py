"""Tests for course_utils.params: counts by hand and by PyTorch, tables, budget, FLOPs."""

import pytest
import torch
from torch import nn

from course_utils import params
from course_utils.models import BasicBlock, ResNet


def tiny_resnet() -> ResNet:
    return ResNet([1, 2], [4, 8], stem_width=2)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("k", "c_in", "c_out", "bias"), [(3, 3, 16, False), (1, 8, 4, True)])
def test_conv_formula_matches_pytorch(k, c_in, c_out, bias):
    conv = nn.Conv2d(c_in, c_out, k, bias=bias)
    assert params.conv_params(k, c_in, c_out, bias=bias) == numel(conv)


def test_bn_formula_counts_scale_and_shift_not_running_stats():
    bn = nn.BatchNorm2d(12)
    assert params.bn_params(12) == numel(bn)
    assert sum(b.numel() for b in bn.buffers()) > 0  # running stats exist but are buffers


@pytest.mark.parametrize("bias", [True, False])
def test_linear_formula_matches_pytorch(bias):
    assert params.linear_params(256, 10, bias=bias) == numel(nn.Linear(256, 10, bias=bias))


def test_basic_block_formula_with_and_without_projection():
    same = 2 * (params.conv_params(3, 16, 16) + params.bn_params(16))
    assert params.count_parameters(BasicBlock(16, 16)) == same
    down = (
        params.conv_params(3, 16, 32)
        + params.conv_params(3, 32, 32)
        + params.conv_params(1, 16, 32)
        + 3 * params.bn_params(32)
    )
    assert params.count_parameters(BasicBlock(16, 32, stride=2)) == down


def test_count_parameters_can_skip_frozen_layers():
    model = tiny_resnet()
    model.stem.conv.weight.requires_grad_(False)
    frozen = model.stem.conv.weight.numel()
    assert params.count_parameters(model, trainable_only=False) == numel(model)
    assert params.count_parameters(model) == numel(model) - frozen


def test_compute_ledger_records_and_totals(capsys):
    ledger = params.ComputeLedger()
    model = tiny_resnet()
    first = ledger.add("a", model, 1000)
    ledger.add("b", model, 3000)
    assert first == pytest.approx(params.training_flops(model, 1000) / 1e15)
    assert ledger.total == pytest.approx(4 * first)
    assert f"a: {numel(model):,} parameters" in capsys.readouterr().out


def test_stage_parameters_splits_the_model_into_stem_stages_head():
    model = tiny_resnet()
    stages = params.stage_parameters(model)
    assert list(stages) == ["stem", "stage1", "stage2", "head"]
    assert sum(stages.values()) == numel(model)
    assert stages["stage2"] == numel(model.stages.stage2)
    assert stages["head"] == params.linear_params(8, 10)


def test_stage_parameters_reports_parameters_held_by_the_model_itself():
    model = nn.Sequential(nn.Linear(3, 2))
    model.scale = nn.Parameter(torch.ones(5))
    assert params.stage_parameters(model) == {"0": 8, "(model)": 5}


def test_summary_wraps_torchinfo_and_keeps_the_model_on_its_device():
    model = tiny_resnet()
    stats = params.summary(model)
    assert stats.total_params == numel(model)
    assert "Output Shape" in str(stats)
    assert next(model.parameters()).device.type == "cpu"
    assert model.training


def test_check_budget_returns_the_count_under_the_limit():
    model = tiny_resnet()
    assert params.check_budget(model, limit=numel(model) + 1) == numel(model)


def test_check_budget_names_count_excess_and_the_three_largest_layers():
    model = nn.Sequential(
        nn.Linear(10, 10),  # 110
        nn.Linear(10, 40),  # 440
        nn.Linear(40, 20),  # 820
        nn.Linear(20, 30),  # 630
        nn.Linear(30, 1),  # 31
    )
    with pytest.raises(params.BudgetExceededError) as info:
        params.check_budget(model, limit=1000)
    message = str(info.value)
    assert "2,031" in message and "1,000" in message and "1,031 over" in message
    assert "2 (820), 3 (630), 1 (440)" in message
    assert "0 (110)" not in message
    assert isinstance(info.value, ValueError)


def test_check_budget_treats_the_limit_itself_as_over():
    model = nn.Linear(9, 10)
    with pytest.raises(params.BudgetExceededError):
        params.check_budget(model, limit=100)


@pytest.mark.parametrize("batch", [1, 4])
def test_flops_of_a_conv_equal_the_hand_count_per_image(batch):
    k, c_in, c_out, size = 3, 3, 8, 32
    conv = nn.Conv2d(c_in, c_out, k, padding=1, bias=False)
    expected = 2 * k * k * c_in * c_out * size * size
    assert params.flops(conv, input_size=(batch, c_in, size, size)) == expected


def test_flops_of_a_linear_layer_and_training_rule_of_thumb():
    layer = nn.Linear(64, 10)
    assert params.flops(layer, input_size=(2, 64)) == 2 * 64 * 10
    per_image = params.flops(tiny_resnet())
    assert params.training_flops(tiny_resnet(), images=1000) == 3 * per_image * 1000


def test_flops_leave_the_model_and_its_mode_untouched():
    model = tiny_resnet()
    model.stages.stage1.eval()  # a mixed-mode model must come back as it was
    before = {name: p.clone() for name, p in model.state_dict().items()}
    params.flops(model)
    params.training_flops(model, 10)
    assert model.training and not model.stages.stage1.training
    assert model.stages.stage2.training
    for name, value in model.state_dict().items():
        assert value.device.type == "cpu"
        torch.testing.assert_close(value, before[name])
