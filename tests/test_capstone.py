"""The capstone network: residual, under budget, whitening set from training images only,
BatchNorm's fixed scale and faster shift."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import params, zoo
from course_utils.capstone import BatchNorm, CapstoneNet, DownBlock, PatchWhitening


def correlated_images(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are strongly correlated, like photos."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, 34, 34, generator=generator)
    smooth = F.avg_pool2d(noise, 3, stride=1)  # 32x32, neighbours share most of their pixels
    return smooth + smooth.mean(1, keepdim=True)  # channels share a common part


def test_the_capstone_is_residual_under_budget_and_listed_in_the_zoo():
    model = zoo.build("capstone")
    assert isinstance(model, CapstoneNet) and params.count_parameters(model) < zoo.BUDGET
    blocks = [m for m in model.modules() if isinstance(m, DownBlock)]
    assert len(blocks) == 3
    assert all(any(isinstance(m, nn.Conv2d) for m in b.shortcut.modules()) for b in blocks)
    row = zoo.summary().set_index("key").loc["capstone"]
    assert row["under_budget"] and 0.2 < row["gflops"] < 0.3
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_block_adds_its_shortcut():
    block = DownBlock(4, 8).eval()
    x = torch.randn(2, 4, 8, 8)
    residual = block.bn2(block.conv2(F.gelu(block.bn1(block.pool(block.conv1(x))))))
    assert torch.allclose(block(x), F.gelu(residual + block.shortcut(x)))
    assert block(x).shape == (2, 8, 4, 4)


def test_whitening_is_fitted_on_the_first_training_batch_and_decorrelates_patches():
    layer = PatchWhitening()
    images = correlated_images()
    layer.eval()
    layer(images)
    assert not layer.ready  # evaluation never fits it: only training images do
    layer.train()
    out = layer(images) - layer.conv.bias[None, :, None, None]
    assert layer.ready
    half = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)  # the other 12 are the negatives
    covariance = half.T @ half / len(half)
    off_diagonal = covariance - torch.diag(covariance.diag())
    assert off_diagonal.abs().max() < 1e-3  # decorrelated
    assert ((covariance.diag() > 0.9) & (covariance.diag() < 1.01)).all()  # unit variance, but
    # the faintest direction, damped by eps
    assert torch.allclose(out[:, 12:], -out[:, :12], atol=1e-4)
    before = layer.conv.weight.clone()
    layer(correlated_images(seed=1))  # later batches leave the filters alone
    assert torch.equal(layer.conv.weight, before)
    assert not layer.conv.weight.requires_grad and layer.conv.bias.requires_grad


def test_whitening_is_fitted_in_float32_under_mixed_precision():
    images = correlated_images()
    exact, mixed = PatchWhitening().train(), PatchWhitening().train()
    exact(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as fit trains on a GPU (bf16 there)
        mixed(images)
    assert torch.allclose(mixed.conv.weight, exact.conv.weight, rtol=1e-4, atol=1e-4)


def test_a_loaded_capstone_keeps_its_whitening():
    trained = CapstoneNet(widths=(8, 8, 8)).train()
    trained(correlated_images(8))
    fresh = CapstoneNet(widths=(8, 8, 8)).train()
    fresh.load_state_dict(trained.state_dict())
    assert fresh.whiten.ready
    fresh(torch.zeros(8, 3, 32, 32))  # would fit to blank images if it had forgotten
    assert torch.equal(fresh.whiten.conv.weight, trained.whiten.conv.weight)


def test_batchnorm_scale_is_fixed_and_its_shift_learns_64x_faster():
    torch.manual_seed(0)
    ours, plain = BatchNorm(4, bias_lr=64.0), nn.BatchNorm2d(4, eps=1e-12, momentum=0.4)
    ours.bias.data.fill_(0.1 / 8)  # stored divided by sqrt(64): the same shift of 0.1
    plain.bias.data.fill_(0.1)
    x, target = torch.randn(16, 4, 3, 3), torch.randn(16, 4, 3, 3)
    assert torch.allclose(ours(x), plain(x), atol=1e-6)
    lr = 0.01
    for module, rate in ((ours, lr), (plain, 64 * lr)):
        F.mse_loss(module(x), target).backward()
        with torch.no_grad():
            module.bias -= rate * module.bias.grad
    assert torch.allclose(ours.bias * 8, plain.bias, atol=1e-6)
    assert ours.weight.grad is None and not ours.weight.requires_grad
    assert torch.equal(ours.running_mean, plain.running_mean)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (64, 256)}, "widths must be 3 channel counts"),
        ({"widths": (0, 8, 8)}, "every width must be a whole number"),
        ({"logit_scale": 0}, "logit_scale must be a number > 0"),
    ],
)
def test_bad_capstone_arguments_are_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CapstoneNet(**kwargs)
