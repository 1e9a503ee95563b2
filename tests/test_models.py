"""Tests for course_utils.models: the residual blocks and the configurable ResNet."""

from functools import partial

import pytest
import torch
from torch import nn

from course_utils.models import (
    BasicBlock,
    BlockShapeError,
    Bottleneck,
    Residual,
    ResNet,
    ResNet9,
    block_expansion,
)
from course_utils.params import count_parameters, stage_parameters
from course_utils.support import blocks
from course_utils.support.validate import require_int


def tiny_resnet(**kwargs) -> ResNet:
    """A 3-stage, 8-16-32-channel ResNet: quick to build and run on CPU."""
    return ResNet([1, 1, 1], [8, 16, 32], **kwargs)


def test_basic_block_keeps_shape_with_identity_shortcut():
    block = BasicBlock(8, 8)
    assert isinstance(block.shortcut, nn.Identity)
    assert block(torch.randn(2, 8, 16, 16)).shape == (2, 8, 16, 16)


def test_basic_block_projects_shortcut_when_shape_changes():
    block = BasicBlock(8, 16, stride=2)
    conv = block.shortcut[0]
    assert (conv.kernel_size, conv.stride, conv.out_channels) == ((1, 1), (2, 2), 16)
    assert isinstance(block.shortcut[1], nn.BatchNorm2d)
    assert block(torch.randn(2, 8, 16, 16)).shape == (2, 16, 8, 8)


def test_channel_change_alone_gets_a_projection():
    assert not isinstance(BasicBlock(8, 16, stride=1).shortcut, nn.Identity)


def test_all_convs_have_no_bias():
    for module in tiny_resnet(block=Bottleneck).modules():
        if isinstance(module, nn.Conv2d):
            assert module.bias is None


def test_basic_block_adds_the_identity():
    """With the residual branch silenced (last BN scale and shift zero), out = act(x)."""
    torch.manual_seed(0)
    block = BasicBlock(4, 4).eval()
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_bottleneck_expands_channels_by_four():
    block = Bottleneck(16, 8, stride=2)
    assert Bottleneck.expansion == 4
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert [conv.kernel_size for conv in (block.conv1, block.conv2, block.conv3)] == [
        (1, 1),
        (3, 3),
        (1, 1),
    ]
    assert block.conv2.stride == (2, 2)


def test_resnet_with_bottlenecks_feeds_four_times_the_width_to_the_head():
    model = tiny_resnet(block=Bottleneck)
    assert model.head.fc.in_features == 32 * 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_stages_halve_the_map_after_the_first():
    torch.manual_seed(0)
    model = ResNet([2, 1, 1], [8, 16, 32], stem_width=4, num_classes=7)
    out = model.stem(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4, 32, 32)
    sizes = []
    for stage in model.stages:
        out = stage(out)
        sizes.append(tuple(out.shape[1:]))
    assert sizes == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]
    assert [len(stage) for stage in model.stages] == [2, 1, 1]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_stem_width_defaults_to_first_width():
    assert tiny_resnet().stem.conv.out_channels == 8


def test_dropout_sits_before_the_head_only_when_asked():
    with_dropout = tiny_resnet(dropout=0.3)
    names = [name for name, _ in with_dropout.head.named_children()]
    assert names.index("dropout") == names.index("fc") - 1
    assert with_dropout.head.dropout.p == 0.3
    assert not any(isinstance(m, nn.Dropout) for m in tiny_resnet().modules())


def test_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match="dropout=1.5"):
        tiny_resnet(dropout=1.5)


def test_activation_factory_is_used_everywhere():
    model = tiny_resnet(activation=partial(nn.LeakyReLU, negative_slope=0.2))
    leaky = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert leaky and all(m.negative_slope == 0.2 for m in leaky)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


def test_construction_check_leaves_train_mode_and_bn_statistics_alone():
    model = tiny_resnet()
    assert model.training and all(m.training for m in model.modules())
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert bn.num_batches_tracked.item() == 0
        assert torch.all(bn.running_mean == 0)


class StudentBlock(nn.Module):
    """A pre-activation block written by a student, with no `expansion` attribute."""

    def __init__(self, in_channels, out_channels, stride, activation):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.act = activation()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x):
        return self.conv(self.act(self.bn(x))) + self.skip(x)


def test_a_student_block_with_the_same_signature_plugs_in():
    model = tiny_resnet(block=StudentBlock)
    assert sum(isinstance(m, StudentBlock) for m in model.modules()) == 3
    assert model.head.fc.in_features == 32
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


class IgnoresStride(StudentBlock):
    """A classic mistake: the main path forgets the stride (the shortcut keeps it)."""

    def __init__(self, in_channels, out_channels, stride, activation):
        super().__init__(in_channels, out_channels, 1, activation)


class WrongChannels(nn.Module):
    """Returns twice the channels it should (expansion left at its default of 1)."""

    def __init__(self, in_channels, out_channels, stride, activation):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, 3, stride, 1, bias=False)

    def forward(self, x):
        return self.conv(x)


def test_block_with_wrong_channels_is_named_with_both_shapes():
    with pytest.raises(BlockShapeError) as info:
        tiny_resnet(block=WrongChannels)
    message = str(info.value)
    assert "WrongChannels" in message
    assert "stage 1, block 1" in message
    assert "into (1, 16, 16, 16), expected (1, 8, 16, 16)" in message


def test_block_ignoring_stride_fails_in_the_second_stage():
    with pytest.raises(BlockShapeError, match=r"IgnoresStride \(stage 2, block 1\)"):
        tiny_resnet(block=IgnoresStride)


class IgnoresInChannels(WrongChannels):
    """Builds its conv for out_channels inputs, so it crashes when in_channels differ."""

    def __init__(self, in_channels, out_channels, stride, activation):
        nn.Module.__init__(self)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False)


def test_block_that_crashes_is_reported_as_a_shape_error():
    with pytest.raises(BlockShapeError, match=r"IgnoresInChannels \(stage 1, block 1\) failed"):
        ResNet([1], [8], stem_width=4, block=IgnoresInChannels)


def test_block_shape_error_is_a_value_error():
    assert issubclass(BlockShapeError, ValueError)


def test_partial_of_a_block_keeps_its_expansion():
    assert block_expansion(partial(Bottleneck)) == 4
    assert block_expansion(StudentBlock) == 1
    model = tiny_resnet(block=partial(Bottleneck))
    assert model.head.fc.in_features == 128


@pytest.mark.parametrize(
    ("blocks", "widths", "match"),
    [([1, 1], [8], "one block count and one width per stage"), ([], [], "at least one stage")],
)
def test_bad_stage_lists_are_rejected(blocks, widths, match):
    with pytest.raises(ValueError, match=match):
        ResNet(blocks, widths)


def test_resnet9_layout_fits_the_budget_and_scales_logits():
    torch.manual_seed(0)
    model = ResNet9()
    assert count_parameters(model) < 5_000_000
    stages = stage_parameters(model)
    assert list(stages) == ["stem", "stage1", "stage2", "stage3", "head"]
    assert max(stages, key=stages.get) == "stage3"  # the widest stage holds most weights
    x = torch.randn(2, 3, 32, 32)
    unscaled = ResNet9(logit_scale=1.0)
    unscaled.load_state_dict(model.state_dict())
    model.eval()
    unscaled.eval()
    assert model(x).shape == (2, 10)
    torch.testing.assert_close(model(x), 0.125 * unscaled(x))


def test_residual_unit_adds_its_input():
    unit = Residual(8)
    for module in unit.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.zeros_(module.weight)  # F(x) = relu(0) = 0, so the unit is the identity
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(unit(x), x)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, ValueError), ("2", TypeError)])
def test_the_block_count_check_words_its_refusals_as_validate_does(value, error):
    """support.blocks imports no course_utils module, so it has its own count check."""
    with pytest.raises(error) as ours:
        blocks.count("stride", value)
    with pytest.raises(error) as shared:
        require_int("stride", value, error=ValueError, type_error=TypeError)
    assert str(ours.value) == str(shared.value)
