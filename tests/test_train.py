"""fit / evaluate / predict / History on tiny synthetic data and tiny ResNets (CPU)."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.mixup import Mixer
from course_utils.models import ResNet
from course_utils.train import History, TrainingDiverged, evaluate, fit, predict

EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "seconds",
    "images_per_sec",
    "elapsed",
}


@pytest.fixture(scope="module")
def datasets():
    return synthetic_cifar10(320, seed=0, train=True), synthetic_cifar10(160, seed=0, train=False)


@pytest.fixture
def loaders(datasets):
    train_data, test_data = datasets
    train = DeviceLoader(train_data, batch_size=32, device="cpu", seed=0)
    test = DeviceLoader(test_data, batch_size=64, train=False, device="cpu")
    return train, test


def tiny_model(seed: int = 0) -> ResNet:
    torch.manual_seed(seed)
    return ResNet([1, 1], [8, 16])


def quiet_fit(model, train, test=None, **kwargs) -> History:
    return fit(model, train, test, progress=False, **kwargs)


def test_fit_reduces_the_loss_and_beats_chance(loaders):
    _, test = loaders
    train = DeviceLoader(synthetic_cifar10(1024, seed=1), batch_size=32, device="cpu")
    history = quiet_fit(tiny_model(), train, test, epochs=3, optimizer="adam", lr=0.01)
    first_steps = sum(history.step_loss[:5]) / 5
    assert history.final["train_loss"] < 0.9 * first_steps
    assert history.final["train_loss"] < history.epochs[0]["train_loss"]
    assert history.final["test_acc"] > 0.25  # 10 classes: chance is 0.1


def test_history_follows_the_contract(loaders, capsys):
    train, test = loaders
    history = quiet_fit(tiny_model(), train, test, epochs=2, name="tiny run")
    assert capsys.readouterr() == ("", "")  # progress=False prints nothing
    assert history.name == "tiny run" and history.source == "synthetic"
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    for row in history.epochs:
        assert set(row) == EPOCH_KEYS
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1
        assert row["images_per_sec"] == pytest.approx(train.num_images / row["seconds"], rel=0.2)
    assert history.epochs[1]["elapsed"] == pytest.approx(
        history.epochs[0]["seconds"] + history.epochs[1]["seconds"]
    )
    assert len(history.step_lr) == len(history.step_loss) == 2 * len(train)
    assert history.epochs[1]["lr"] == history.step_lr[-1]
    train_loss = sum(history.step_loss[len(train) :]) / len(train)  # equal batches
    assert history.epochs[1]["train_loss"] == pytest.approx(train_loss)
    config = history.config
    assert config["model"] == "ResNet" and config["parameters"] == sum(
        p.numel() for p in tiny_model().parameters()
    )
    assert config["optimizer"] == "nesterov" and config["schedule"] == "onecycle"
    assert (config["epochs"], config["batch_size"], config["device"]) == (2, 32, "cpu")
    for key in ("lr", "mixup", "label_smoothing", "amp", "channels_last", "weight_decay"):
        assert key in config


def test_without_test_loader_test_metrics_are_none(loaders):
    train, _ = loaders
    history = quiet_fit(tiny_model(), train, epochs=1)
    assert history.final["test_loss"] is None and history.final["test_acc"] is None
    assert history.best("train_acc") == history.final


def test_per_step_schedule_changes_lr_within_an_epoch(loaders):
    train, _ = loaders
    history = quiet_fit(tiny_model(), train, epochs=2, lr=0.4, schedule="onecycle")
    steps = len(train)
    assert len(set(history.step_lr[:steps])) == steps  # a new lr every step
    assert max(history.step_lr) == pytest.approx(0.4, rel=0.05)
    assert history.step_lr[-1] < 0.01


def test_per_epoch_schedule_changes_lr_between_epochs(loaders):
    train, _ = loaders
    history = quiet_fit(
        tiny_model(),
        train,
        epochs=2,
        lr=0.1,
        schedule="step",
        schedule_kwargs={"milestones": [1], "gamma": 0.1},
    )
    steps = len(train)
    assert history.step_lr[:steps] == [pytest.approx(0.1)] * steps
    assert history.step_lr[steps:] == [pytest.approx(0.01)] * steps
    assert [row["lr"] for row in history.epochs] == [pytest.approx(0.1), pytest.approx(0.01)]


def test_built_optimizer_and_torch_scheduler_are_used_as_given(loaders):
    train, _ = loaders
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = quiet_fit(model, train, epochs=2, optimizer=optimizer, schedule=scheduler)
    assert history.config["optimizer"] == "SGD" and history.config["schedule"] == "StepLR"
    assert [row["lr"] for row in history.epochs] == [pytest.approx(0.05), pytest.approx(0.025)]
    assert optimizer.state  # the given optimizer did the steps (momentum buffers)


def test_mixup_mixes_every_batch(loaders):
    train, _ = loaders
    calls = []

    class CountingMixer(Mixer):
        def __call__(self, x, y):
            mixed = super().__call__(x, y)
            calls.append(mixed[3])
            return mixed

    history = quiet_fit(tiny_model(), train, epochs=1, mixup=CountingMixer("mixup", 1.0))
    assert len(calls) == len(train) and any(lam < 1 for lam in calls)
    assert history.config["mixup"] == {"kind": "mixup", "alpha": 1.0}
    alpha_only = quiet_fit(tiny_model(), train, epochs=1, mixup=0.5)
    assert alpha_only.config["mixup"] == {"kind": "mixup", "alpha": 0.5}


@pytest.mark.parametrize("grad_clip", [{"value": 1e-4}, 1e-4])
def test_gradient_clipping_bounds_every_update(loaders, grad_clip):
    train, _ = loaders
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    lr, steps = 0.5, len(train)
    history = quiet_fit(
        model,
        train,
        epochs=1,
        optimizer="sgd",
        lr=lr,
        weight_decay=0.0,
        schedule="constant",
        grad_clip=grad_clip,
    )
    change = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )
    if isinstance(grad_clip, dict):  # every gradient entry clipped to +-value
        assert change.abs().max() <= steps * lr * 1e-4 * 1.001  # float32 rounding
        assert history.config["grad_clip"] == {"value": 1e-4}
    else:  # the whole gradient's norm clipped
        assert change.norm() <= steps * lr * 1e-4 * 1.001
        assert history.config["grad_clip"] == {"norm": 1e-4}
    assert change.abs().max() > 0


class PoisonedLoader:
    """Wraps a loader and fills one batch (1-based epoch and step) with NaN."""

    def __init__(self, loader, epoch: int, step: int) -> None:
        self.loader, self.epoch, self.step, self.seen = loader, epoch, step, 0

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.seen += 1
        for step, (x, y) in enumerate(self.loader, 1):
            if (self.seen, step) == (self.epoch, self.step):
                x = torch.full_like(x, math.nan)
            yield x, y


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_checkpoint(loaders, tmp_path):
    train, _ = loaders
    path = tmp_path / "ckpt.pt"
    with pytest.raises(TrainingDiverged, match="epoch 2, step 3") as caught:
        quiet_fit(tiny_model(), PoisonedLoader(train, 2, 3), epochs=3, checkpoint=path)
    assert "Lower the learning rate" in str(caught.value)
    assert (caught.value.epoch, caught.value.step) == (2, 3)
    history = caught.value.history
    assert len(history.step_loss) == len(history.step_lr) == len(train) + 3
    assert math.isnan(history.step_loss[-1]) and len(history.epochs) == 1
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_huge_learning_rate_diverges(loaders):
    train, _ = loaders
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+"):
        quiet_fit(tiny_model(), train, epochs=1, optimizer="sgd", lr=1e12, schedule="constant")


def test_evaluate_confusion_and_per_class_accuracy(loaders):
    train, test = loaders
    model = tiny_model()
    quiet_fit(model, train, epochs=1)
    result = evaluate(model, test)
    n = test.num_images
    assert result.confusion.shape == (10, 10) and int(result.confusion.sum()) == n
    assert result.predictions.shape == result.targets.shape == (n,)
    assert result.classes == tuple(test.classes)
    for c in range(10):
        of_class = result.targets == c
        expected = (result.predictions[of_class] == c).float().mean()
        assert result.per_class_accuracy[c] == pytest.approx(float(expected), nan_ok=True)
        assert int(result.confusion[c].sum()) == int(of_class.sum())
    assert result.accuracy == pytest.approx(
        float((result.predictions == result.targets).float().mean())
    )
    logits = torch.cat([model.eval()(x) for x, _ in test]).detach()
    assert result.loss == pytest.approx(F.cross_entropy(logits, result.targets).item(), rel=1e-5)
    assert torch.allclose(result.probabilities, logits.softmax(dim=1), atol=1e-6)
    assert torch.allclose(result.confidences, result.probabilities.max(dim=1).values)
    mistakes = result.most_confident_mistakes(3)
    assert all(result.predictions[i] != result.targets[i] for i in mistakes)
    assert result.confidences[mistakes].tolist() == sorted(
        result.confidences[mistakes].tolist(), reverse=True
    )


def test_evaluate_keeps_the_model_mode(loaders):
    _, test = loaders
    model = tiny_model().train()
    evaluate(model, test)
    assert model.training


def test_tta_flip_averages_the_softmax_of_both_mirrors(loaders):
    _, test = loaders
    model = tiny_model().eval()
    with torch.no_grad():
        manual = torch.cat(
            [(model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2 for x, _ in test]
        )
    result = evaluate(model, test, tta_flip=True)
    assert torch.allclose(result.probabilities, manual, atol=1e-6)
    assert torch.equal(result.predictions, manual.argmax(dim=1))
    plain = evaluate(model, test)
    assert not torch.allclose(plain.probabilities, result.probabilities)


def test_predict_matches_evaluate_on_uint8_images(datasets, loaders):
    _, test = loaders
    model = tiny_model().eval()
    probabilities = predict(model, datasets[1].images[:5])
    assert torch.allclose(probabilities, evaluate(model, test).probabilities[:5], atol=1e-5)
    one = predict(model, datasets[1].images[0])
    assert one.shape == (1, 10) and torch.allclose(one[0], probabilities[0], atol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        predict(model, datasets[1].images[:2].float())


def test_history_save_load_round_trip(loaders, tmp_path):
    train, test = loaders
    history = quiet_fit(tiny_model(), train, test, epochs=2)
    loaded = History.load(history.save(tmp_path / "runs" / "history.json"))
    assert loaded == history
    frame = loaded.to_frame()
    assert len(frame) == 2 and set(frame.columns) == EPOCH_KEYS
    assert history.best("test_acc")["test_acc"] == max(r["test_acc"] for r in history.epochs)
    assert history.best("test_loss")["test_loss"] == min(r["test_loss"] for r in history.epochs)
    with pytest.raises(ValueError, match="no value for 'top5'"):
        history.best("top5")
    with pytest.raises(ValueError, match="no finished epoch"):
        _ = History("empty").final


def test_gpu_only_options_are_off_on_cpu(loaders, capsys):
    train, _ = loaders
    model = tiny_model()
    auto = quiet_fit(model, train, epochs=1)
    assert auto.config["amp"] is False and auto.config["channels_last"] is False
    assert capsys.readouterr().out == ""
    forced = quiet_fit(model, train, epochs=1, amp=True, channels_last=True, compile=True)
    assert forced.config["amp"] is False and forced.config["channels_last"] is False
    notes = capsys.readouterr().out
    assert "amp=True skipped" in notes and "channels_last=True skipped" in notes
    assert "compile=True skipped" in notes
    assert all(p.is_contiguous() for p in model.parameters())


def test_ema_weights_are_the_ones_evaluated_and_handed_back(loaders):
    train, test = loaders
    plain = quiet_fit(tiny_model(), train, test, epochs=1)
    model = tiny_model()
    history = quiet_fit(model, train, test, epochs=1, ema=0.9)
    assert history.config["ema"] == 0.9
    # Same data, seed and steps: only the averaging differs, and the model returns averaged.
    assert history.final["test_loss"] != pytest.approx(plain.final["test_loss"], rel=1e-6)
    assert evaluate(model, test).loss == pytest.approx(history.final["test_loss"], rel=1e-6)


def test_resume_continues_a_run_exactly(loaders, tmp_path):
    train, test = loaders
    path = tmp_path / "ckpt.pt"
    whole = quiet_fit(tiny_model(), train, test, epochs=2, schedule="constant", seed=1)
    quiet_fit(tiny_model(), train, test, epochs=1, schedule="constant", seed=1, checkpoint=path)
    resumed = quiet_fit(
        tiny_model(5),
        train,
        test,
        epochs=2,
        schedule="constant",
        seed=1,
        checkpoint=path,
        resume=True,
    )
    assert resumed.step_loss == whole.step_loss
    assert [r["test_acc"] for r in resumed.epochs] == [r["test_acc"] for r in whole.epochs]


def test_resume_argument_errors(loaders, tmp_path, capsys):
    train, _ = loaders
    with pytest.raises(ValueError, match="checkpoint"):
        quiet_fit(tiny_model(), train, epochs=1, resume=True)
    quiet_fit(tiny_model(), train, epochs=1, checkpoint=tmp_path / "new.pt", resume=True)
    assert "starting from scratch" in capsys.readouterr().out
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        quiet_fit(tiny_model(), train, epochs=0)


def test_max_steps_setting_caps_training_and_evaluation(loaders, monkeypatch):
    from course_utils import settings

    monkeypatch.setattr(settings, "MAX_STEPS", 2)
    train, test = loaders
    assert len(train) > 2 and len(test) > 2
    model = tiny_model()
    history = quiet_fit(model, train, test, epochs=2)
    assert len(history.step_loss) == 4  # 2 epochs x 2 steps, whatever len(train) is
    assert history.step_lr[-1] < 0.01 * max(history.step_lr)  # one-cycle annealed in 4 steps
    assert len(evaluate(model, test).targets) == 2 * test.batch_size
