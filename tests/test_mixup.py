"""Mixup, CutMix and their loss and accuracy (course_utils.mixup)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.mixup import (
    Mixer,
    cutmix,
    mixed_accuracy,
    mixed_loss,
    mixup,
    sample_lambda,
    soft_targets,
)
from course_utils.support.config_checks import check_mix, check_mixer


def batch(n: int = 8, size: int = 8):
    """Random float images and labels 0..n-1, so y_b reveals the permutation used."""
    torch.manual_seed(0)
    return torch.randn(n, 3, size, size), torch.arange(n)


def test_mixup_is_the_convex_combination_with_the_permuted_batch():
    x, y = batch()
    mixed, y_a, y_b, lam = mixup(x, y, lam=0.3, generator=torch.Generator().manual_seed(2))
    assert lam == 0.3
    assert torch.equal(y_a, y)
    assert sorted(y_b.tolist()) == y.tolist() and not torch.equal(y_b, y)
    torch.testing.assert_close(mixed, 0.3 * x + 0.7 * x[y_b])


def test_mixing_is_repeatable_with_a_seed():
    x, y = batch()
    first = mixup(x, y, generator=torch.Generator().manual_seed(5))
    second = mixup(x, y, generator=torch.Generator().manual_seed(5))
    assert first[3] == second[3] and torch.equal(first[0], second[0])
    torch.manual_seed(3)
    global_first = sample_lambda(0.4)
    torch.manual_seed(3)
    assert sample_lambda(0.4) == global_first


def test_soft_targets_put_lam_and_one_minus_lam_on_the_two_labels():
    y_a = torch.tensor([0, 1, 2, 3])
    y_b = torch.tensor([1, 1, 0, 2])
    targets = soft_targets(y_a, y_b, 0.7, num_classes=4)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(4))
    assert targets[0, 0] == 0.7 and targets[0, 1] == pytest.approx(0.3)
    assert targets[1, 1] == 1.0  # both labels agree
    assert targets[3, 3] == 0.7 and targets[3, 2] == pytest.approx(0.3)
    assert (targets > 0).sum() == 7


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_pastes_one_box_and_lam_is_the_unpasted_area(seed):
    n, size = 6, 16
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, size, size)
    y = torch.arange(n)
    mixed, y_a, y_b, lam = cutmix(x, y, lam=0.75, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(y_a, y)
    pasted = mixed != x  # image i keeps value i outside the box, shows y_b[i] inside it
    for i in range(n):
        assert torch.equal(mixed[i][pasted[i]], torch.full_like(mixed[i][pasted[i]], y_b[i]))
    moved = [i for i in range(n) if y_b[i] != i]
    box = pasted[moved[0], 0]
    for i in moved:
        assert torch.equal(pasted[i, 0], box) and torch.equal(pasted[i, 1], box)
    rows, cols = box.any(dim=1).nonzero(), box.any(dim=0).nonzero()
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert box.sum() == height * width  # a filled rectangle
    assert lam == pytest.approx(1 - box.sum().item() / size**2)
    assert lam >= 0.75  # a box cropped at the border only shrinks


def test_mixed_loss_equals_cross_entropy_against_soft_targets():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    y_a, y_b = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 1, 3, 0, 2])
    loss = mixed_loss(nn.CrossEntropyLoss(), logits, y_a, y_b, 0.35)
    expected = F.cross_entropy(logits, soft_targets(y_a, y_b, 0.35, num_classes=4))
    torch.testing.assert_close(loss, expected)


def test_mixed_accuracy_weights_each_label_by_its_share():
    y_a, y_b = torch.tensor([0, 1, 2, 3]), torch.tensor([3, 2, 1, 0])
    predicts_a = F.one_hot(y_a, 4).float()
    predicts_b = F.one_hot(y_b, 4).float()
    assert mixed_accuracy(predicts_a, y_a, y_b, 0.8).item() == pytest.approx(0.8)
    assert mixed_accuracy(predicts_b, y_a, y_b, 0.8).item() == pytest.approx(0.2)
    half_right = torch.cat([predicts_a[:2], predicts_b[2:]])
    assert mixed_accuracy(half_right, y_a, y_b, 0.8).item() == pytest.approx(0.5)


def test_alpha_zero_means_no_mixing():
    x, y = batch()
    assert sample_lambda(0.0) == 1.0
    for mix in (mixup, cutmix, Mixer("cutmix", alpha=0.0)):
        mixed, y_a, y_b, lam = mix(x, y) if isinstance(mix, Mixer) else mix(x, y, alpha=0.0)
        assert lam == 1.0 and torch.equal(mixed, x) and torch.equal(y_a, y)


def test_beta_samples_have_mean_one_half_and_alpha_sets_the_spread():
    generator = torch.Generator().manual_seed(0)
    uniform = torch.tensor([sample_lambda(1.0, generator) for _ in range(2000)])
    peaked = torch.tensor([sample_lambda(0.2, generator) for _ in range(2000)])
    assert uniform.min() >= 0 and uniform.max() <= 1
    assert uniform.mean().item() == pytest.approx(0.5, abs=0.03)
    assert uniform.var().item() == pytest.approx(1 / 12, abs=0.01)  # Beta(1, 1) is uniform
    assert peaked.mean().item() == pytest.approx(0.5, abs=0.05)
    assert ((peaked > 0.1) & (peaked < 0.9)).float().mean() < 0.5


def test_mixer_calls_the_chosen_kind_with_its_probability():
    x, y = batch(n=16)
    torch.manual_seed(1)
    mixed, _, y_b, lam = Mixer("mixup", alpha=1.0)(x, y)
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[y_b])
    never = Mixer("cutmix", alpha=1.0, prob=0.0)
    assert all(never(x, y)[3] == 1.0 for _ in range(5))
    torch.manual_seed(2)
    half = [Mixer("mixup", prob=0.5)(x, y)[3] < 1.0 for _ in range(200)]
    assert 70 < sum(half) < 130


def test_user_mistakes_raise_clear_errors():
    x, y = batch()
    with pytest.raises(ValueError, match="unknown mixing kind"):
        check_mixer(Mixer("mixcut"))
    with pytest.raises(TypeError, match="float images"):
        check_mix(x.to(torch.uint8), y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_mix(x, y, lam=1.5)
