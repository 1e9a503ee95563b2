"""Optimizer and schedule factories, Lookahead and gradient clipping (course_utils.optim)."""

import copy
import io
import math

import pytest
import torch
from torch import nn

from course_utils.config import ConfigError, TrainConfig
from course_utils.optim import (
    OPTIMIZERS,
    Lookahead,
    Schedule,
    clip_gradients,
    make_optimizer,
    make_scheduler,
)
from course_utils.support.config_checks import check_config

LA = {"k": 5, "alpha": 0.5}


def quadratic_loss(w: torch.Tensor) -> torch.Tensor:
    return (w**2).sum()


@pytest.mark.parametrize(
    ("name", "lookahead"), [*((n, None) for n in OPTIMIZERS), ("momentum", LA)]
)
def test_every_optimizer_reduces_a_quadratic(name, lookahead):
    w = torch.tensor([3.0, -2.0], requires_grad=True)
    # Adadelta scales its steps itself; lr=1.0 is its usual setting (torch's default).
    lr = 1.0 if name == "adadelta" else 0.1
    optimizer = make_optimizer(name, [w], lr=lr, weight_decay=0.0, lookahead=lookahead)
    start = quadratic_loss(w).item()
    for _ in range(30):
        optimizer.zero_grad()
        quadratic_loss(w).backward()
        optimizer.step()
    assert quadratic_loss(w).item() < 0.95 * start


def test_sgd_variants_set_momentum_and_nesterov():
    params = [nn.Parameter(torch.zeros(2))]
    plain = make_optimizer("sgd", params, lr=0.1, weight_decay=0.0).param_groups[0]
    heavy_ball = make_optimizer("momentum", params, lr=0.1, weight_decay=0.0).param_groups[0]
    nesterov = make_optimizer(
        "nesterov", params, lr=0.1, weight_decay=0.0, momentum=0.8
    ).param_groups[0]
    assert plain["momentum"] == 0 and not plain["nesterov"]
    assert heavy_ball["momentum"] == 0.9 and not heavy_ball["nesterov"]
    assert nesterov["momentum"] == 0.8 and nesterov["nesterov"]


def test_weight_decay_and_extra_arguments_reach_the_optimizer():
    params = [nn.Parameter(torch.zeros(2))]
    adam = make_optimizer("adam", params, lr=0.01, weight_decay=1e-4, betas=(0.8, 0.99))
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["weight_decay"] == 1e-4
    assert adam.param_groups[0]["betas"] == (0.8, 0.99)


def test_optimizer_errors_are_clear_and_nothing_is_dropped():
    params = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="adadelta"):
        make_optimizer("adamax", params, lr=0.1, weight_decay=0.0)
    # Called directly, torch itself refuses what does not fit; the config is checked at the door.
    with pytest.raises(ValueError, match="Invalid learning rate"):
        make_optimizer("sgd", params, lr=-0.1, weight_decay=0.0)
    with pytest.raises(TypeError, match="momentum"):
        make_optimizer("adam", params, lr=0.1, weight_decay=0.0, momentum=0.5)
    with pytest.raises(TypeError, match="betas"):
        make_optimizer("rmsprop", params, lr=0.1, weight_decay=0.0, betas=(0.9, 0.99))
    for settings, message in (
        ({"optimizer": "sgd", "lr": -0.1}, "lr must be > 0"),
        ({"optimizer": "adam", "momentum": 0.5}, "momentum is used by momentum and nesterov"),
        ({"optimizer": "rmsprop", "optimizer_kwargs": {"betas": (0.9, 0.99)}}, "betas are not"),
    ):
        with pytest.raises(ConfigError, match=message):
            check_config(TrainConfig(**settings))


def test_lookahead_wraps_the_named_optimizer():
    params = [nn.Parameter(torch.zeros(2))]
    wrapped = make_optimizer(
        "sgd", params, lr=0.1, weight_decay=0.0, lookahead={"k": 3, "alpha": 0.5}
    )
    assert isinstance(wrapped, Lookahead) and isinstance(wrapped.base, torch.optim.SGD)
    assert wrapped.k == 3 and wrapped.param_groups is wrapped.base.param_groups
    with pytest.raises(ConfigError, match="lookahead alpha"):  # checked at the door
        check_config(TrainConfig(lookahead={"k": 3, "alpha": 1.5}))


def test_lookahead_matches_hand_computed_steps():
    # Loss 0.5 * w^2 has gradient w, so each SGD step (lr 0.1) multiplies w by 0.9.
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    optimizer = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
    expected = [
        0.9,  # fast step 1: 1.0 * 0.9
        0.905,  # fast step 2: 0.81; slow = 1.0 + 0.5 * (0.81 - 1.0) = 0.905; fast = slow
        0.8145,  # fast step 3: 0.905 * 0.9
        0.819025,  # fast step 4: 0.73305; slow = 0.905 + 0.5 * (0.73305 - 0.905); fast = slow
    ]
    for value in expected:
        optimizer.zero_grad()
        (0.5 * w**2).sum().backward()
        optimizer.step()
        assert w.item() == pytest.approx(value, abs=1e-12)
    assert optimizer.slow_weights[w].item() == pytest.approx(0.819025, abs=1e-12)


def make_run(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    optimizer = make_optimizer(
        "momentum", model, lr=0.1, weight_decay=0.0, lookahead={"k": 3, "alpha": 0.5}
    )
    return model, optimizer


def train(model, optimizer, batches):
    for x, y in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_lookahead_state_dict_round_trip_continues_identically():
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 4, generator=generator), torch.arange(8) % 3) for _ in range(9)]
    model, optimizer = make_run()
    train(model, optimizer, batches[:4])  # mid-window: 4 steps with k = 3
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    train(model, optimizer, batches[4:])

    resumed_model, resumed_optimizer = make_run(seed=123)  # different initial weights
    buffer.seek(0)
    saved = torch.load(buffer)
    resumed_model.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    assert resumed_optimizer.fast_steps == 4
    train(resumed_model, resumed_optimizer, batches[4:])
    for original, resumed in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(original, resumed)


def test_lookahead_works_with_schedulers_and_deepcopy():
    model, optimizer = make_run()
    schedule = make_scheduler("cosine", optimizer, epochs=1, steps_per_epoch=4)
    train(model, optimizer, [(torch.randn(2, 4), torch.tensor([0, 1]))])
    schedule.step()
    assert optimizer.base.param_groups[0]["lr"] == pytest.approx(
        0.1 * (1 + math.cos(math.pi / 4)) / 2
    )
    copied = copy.deepcopy(optimizer)
    assert copied.k == 3 and copied.fast_steps == 1
    assert copied.param_groups is copied.base.param_groups


def learning_rates(schedule: Schedule, optimizer, steps: int, metrics=None) -> list[float]:
    """The lr in force at each of ``steps`` steps (or epochs), stepping the schedule after each."""
    rates = []
    for i in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: a no-op, but schedulers expect it before their step
        schedule.step(None if metrics is None else metrics[i])
    return rates


def fresh_optimizer(lr: float = 0.1, name: str = "nesterov"):
    return make_optimizer(name, [nn.Parameter(torch.zeros(2))], lr=lr, weight_decay=0.0)


def test_onecycle_peaks_at_max_lr_after_the_warm_up():
    optimizer = fresh_optimizer(lr=0.4)
    schedule = make_scheduler("onecycle", optimizer, epochs=5, steps_per_epoch=20)
    rates = learning_rates(schedule, optimizer, 100)
    peak = max(range(100), key=rates.__getitem__)
    assert schedule.per_step
    assert rates[peak] == pytest.approx(0.4)
    assert abs(peak - 30) <= 1  # pct_start 0.3 of 100 steps
    assert rates[0] == pytest.approx(0.4 / 25)  # OneCycleLR's div_factor
    assert rates[-1] < 0.4 / 1000


def test_onecycle_leaves_optimizers_without_momentum_alone():
    optimizer = fresh_optimizer(name="adadelta")
    make_scheduler("onecycle", optimizer, epochs=1, steps_per_epoch=10)
    assert "momentum" not in optimizer.param_groups[0]


def test_cosine_decays_monotonically_to_about_zero():
    optimizer = fresh_optimizer(lr=0.2)
    schedule = make_scheduler("cosine", optimizer, epochs=4, steps_per_epoch=10)
    rates = learning_rates(schedule, optimizer, 40) + [optimizer.param_groups[0]["lr"]]
    assert rates[0] == pytest.approx(0.2)
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] < 1e-6


def test_step_schedule_drops_by_gamma_at_half_and_three_quarters():
    optimizer = fresh_optimizer(lr=0.1)
    schedule = make_scheduler("step", optimizer, epochs=8, steps_per_epoch=50)
    assert not schedule.per_step
    rates = learning_rates(schedule, optimizer, 8)
    assert rates == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_plateau_halves_after_patience_epochs_without_improvement():
    optimizer = fresh_optimizer(lr=0.1)
    default = make_scheduler("plateau", optimizer, epochs=10, steps_per_epoch=5).scheduler
    assert (default.mode, default.factor, default.patience) == ("max", 0.5, 10)

    optimizer = fresh_optimizer(lr=0.1)
    schedule = make_scheduler("plateau", optimizer, epochs=10, steps_per_epoch=5, patience=2)
    accuracy = [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7]
    rates = learning_rates(schedule, optimizer, 7, metrics=accuracy)
    rates.append(optimizer.param_groups[0]["lr"])
    # Best at epoch 2; epochs 3-5 do not improve; the third (> patience) halves the lr.
    assert rates == pytest.approx([0.1] * 5 + [0.05] * 3)
    with pytest.raises(ValueError, match="validation accuracy"):
        schedule.step()


def test_constant_schedule_keeps_the_learning_rate():
    optimizer = fresh_optimizer(lr=0.03)
    schedule = make_scheduler("constant", optimizer, epochs=3, steps_per_epoch=2)
    assert learning_rates(schedule, optimizer, 3) == pytest.approx([0.03] * 3)


def test_schedule_state_dict_resumes_the_curve():
    optimizer = fresh_optimizer(lr=0.1)
    schedule = make_scheduler("onecycle", optimizer, 2, 10, pct_start=0.3)
    learning_rates(schedule, optimizer, 7)
    saved = copy.deepcopy({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()})
    expected = learning_rates(schedule, optimizer, 5)

    resumed_optimizer = fresh_optimizer(lr=0.1)
    resumed = make_scheduler("onecycle", resumed_optimizer, 2, 10, pct_start=0.3)
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["schedule"])
    assert learning_rates(resumed, resumed_optimizer, 5) == pytest.approx(expected)
    assert expected[0] != pytest.approx(0.1 / 25)  # not restarted from the first warm-up step


def test_schedule_names_and_arguments_are_checked():
    with pytest.raises(ValueError, match="onecycle.*plateau"):
        make_scheduler("linear", fresh_optimizer(), 1, 1)
    with pytest.raises(TypeError, match="pct_start"):  # Python refuses it, called directly
        make_scheduler("cosine", fresh_optimizer(), 1, 1, pct_start=0.2)
    with pytest.raises(ConfigError, match="pct_start do not apply to the cosine schedule"):
        check_config(TrainConfig(schedule="cosine", schedule_kwargs={"pct_start": 0.2}))


def test_clip_by_value_and_by_norm_are_exact():
    by_value = nn.Parameter(torch.zeros(3))
    by_value.grad = torch.tensor([3.0, -0.05, -2.0])
    assert clip_gradients([by_value], value=0.1) is None
    assert torch.equal(by_value.grad, torch.tensor([0.1, -0.05, -0.1]))

    by_norm = nn.Parameter(torch.zeros(2))
    by_norm.grad = torch.tensor([3.0, 4.0])
    total = clip_gradients([by_norm], norm=1.0)
    assert total.item() == pytest.approx(5.0)
    torch.testing.assert_close(by_norm.grad, torch.tensor([0.6, 0.8]))

    model = nn.Linear(2, 1)
    model.weight.grad = torch.tensor([[0.5, 0.5]])  # bias has no gradient: skipped
    assert clip_gradients(model, norm=10.0).item() == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ConfigError, match="grad_clip value must be > 0"):  # at the door
        check_config(TrainConfig(grad_clip={"value": -1.0}))


def test_onecycle_with_a_one_step_warm_up_is_one_clear_error():
    with pytest.raises(ValueError, match="cannot warm up over exactly 1 of its 5 steps"):
        make_scheduler("onecycle", fresh_optimizer(), epochs=1, steps_per_epoch=5, pct_start=0.2)
    make_scheduler("onecycle", fresh_optimizer(), epochs=1, steps_per_epoch=7, pct_start=0.2)
