"""fit / evaluate / predict / History on tiny synthetic data and tiny ResNets (CPU)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils import settings
from course_utils.config import ConfigError, TrainConfig
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, synthetic_cifar10
from course_utils.loader import DeviceLoader, normalize
from course_utils.mixup import Mixer
from course_utils.models import ResNet
from course_utils.support import checkpoint as bookkeeping
from course_utils.support import words
from course_utils.support.checkpoint import CheckpointMismatchError, load_checkpoint
from course_utils.train import History, TrainingDiverged, evaluate, fit, predict

EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_sec",
    "elapsed",
}


@pytest.fixture(scope="module")
def datasets():
    train = synthetic_cifar10(320, seed=0, split="train")
    return train, synthetic_cifar10(160, seed=0, split="test")


@pytest.fixture
def loaders(datasets):
    train_data, test_data = datasets
    train = DeviceLoader(train_data, batch_size=32, device="cpu")
    test = DeviceLoader(test_data, batch_size=64, train=False, device="cpu")
    return train, test


def tiny_model(seed: int = 0) -> ResNet:
    torch.manual_seed(seed)
    return ResNet([1, 1], [8, 16])


def quiet_fit(model, train, val=None, **kwargs) -> History:
    return fit(model, train, val, progress=False, **kwargs)


def test_fit_reduces_the_loss_and_beats_chance(loaders):
    _, test = loaders
    train = DeviceLoader(synthetic_cifar10(1024, seed=1), batch_size=32, device="cpu")
    history = quiet_fit(tiny_model(), train, test, epochs=3, optimizer="adam", lr=0.01)
    first_steps = sum(history.step_loss[:5]) / 5
    assert history.final["train_loss"] < 0.9 * first_steps
    assert history.final["train_loss"] < history.epochs[0]["train_loss"]
    assert history.final["val_acc"] > 0.25  # 10 classes: chance is 0.1
    assert history.warnings == []  # a run that learned says nothing about it


def test_history_follows_the_contract(loaders, capsys):
    train, test = loaders
    history = quiet_fit(tiny_model(), train, test, epochs=2, name="tiny run")
    assert capsys.readouterr() == ("", "")  # progress=False prints nothing
    assert history.name == "tiny run" and history.source == "synthetic"
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    for row in history.epochs:
        assert set(row) == EPOCH_KEYS
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["val_acc"] <= 1
        assert row["images_per_sec"] == pytest.approx(train.num_images / row["seconds"], rel=0.2)
    assert history.epochs[1]["elapsed"] == pytest.approx(
        history.epochs[0]["seconds"] + history.epochs[1]["seconds"]
    )
    assert len(history.step_lr) == len(history.step_loss) == 2 * len(train)
    assert history.epochs[1]["lr"] == history.step_lr[-1]
    train_loss = sum(history.step_loss[len(train) :]) / len(train)  # equal batches
    assert history.epochs[1]["train_loss"] == pytest.approx(train_loss)
    run, config = history.run, history.config
    assert run["model"] == "ResNet" and run["parameters"] == sum(
        p.numel() for p in tiny_model().parameters()
    )
    assert (run["device"], run["precision"], run["train_images"]) == ("cpu", "fp32", 320)
    expected = TrainConfig(epochs=2, batch_size=32, augment=train.augment)
    assert config == expected.to_dict()  # the config, with the loader's batch and augmentations
    assert history.eval_split == "test"  # this fixture evaluates on a test split


def test_without_val_loader_val_metrics_are_none(loaders):
    train, _ = loaders
    history = quiet_fit(tiny_model(), train, epochs=1)
    assert history.final["val_loss"] is None and history.final["val_acc"] is None
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


def test_built_optimizer_is_used_as_given_and_recorded(loaders):
    train, _ = loaders
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = quiet_fit(model, train, epochs=2, optimizer=optimizer, schedule="constant")
    assert history.config["optimizer"] == "SGD (ready-built)"
    assert (history.config["lr"], history.config["momentum"]) == (0.05, 0.9)
    assert [row["lr"] for row in history.epochs] == [pytest.approx(0.05)] * 2
    assert optimizer.state  # the given optimizer did the steps (momentum buffers)


@pytest.mark.parametrize("conflict", [{"lr": 0.5}, {"weight_decay": 0.1}, {"momentum": 0.5}])
def test_built_optimizer_with_its_settings_given_again_is_refused(loaders, conflict):
    train, _ = loaders
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    key = next(iter(conflict))
    with pytest.raises(ConfigError, match=f"ready-built optimizer has its own {key}"):
        quiet_fit(model, train, epochs=1, optimizer=optimizer, **conflict)


def test_optimizer_built_on_another_model_is_refused(loaders):
    train, _ = loaders
    optimizer = torch.optim.SGD(tiny_model(1).parameters(), lr=0.01)
    with pytest.raises(ValueError, match="other parameters than this model's"):
        quiet_fit(tiny_model(), train, epochs=1, optimizer=optimizer)


def test_loader_settings_given_to_fit_are_refused_not_ignored(loaders):
    train, _ = loaders
    with pytest.raises(ConfigError, match="batch_size belongs to the training loader"):
        quiet_fit(tiny_model(), train, epochs=1, batch_size=64)
    assert quiet_fit(tiny_model(), train, epochs=1, batch_size=32).config["batch_size"] == 32


def test_unknown_or_unused_settings_are_refused(loaders):
    train, _ = loaders
    with pytest.raises(ConfigError, match="unknown training setting.*amp"):
        quiet_fit(tiny_model(), train, epochs=1, amp=True)
    with pytest.raises(ConfigError, match="optimizer_kwargs momentum are not arguments of adam"):
        quiet_fit(
            tiny_model(), train, epochs=1, optimizer="adam", optimizer_kwargs={"momentum": 0.5}
        )
    with pytest.raises(ConfigError, match="momentum is used by momentum and nesterov only"):
        quiet_fit(tiny_model(), train, epochs=1, optimizer="adam", momentum=0.5)


def test_same_seed_is_bit_identical_and_another_seed_differs(datasets):
    train_data, _ = datasets
    initial = tiny_model().state_dict()

    def run(seed: int) -> History:
        model = tiny_model(7)
        model.load_state_dict(initial)  # the same initial weights every time
        loader = DeviceLoader(train_data, batch_size=32, device="cpu")
        return quiet_fit(model, loader, epochs=2, seed=seed, mixup=0.4)

    first, again, other = run(0), run(0), run(1)
    assert first.step_loss == again.step_loss
    assert first.step_loss[0] != other.step_loss[0]  # already the first batch differs


def test_seed_reaches_the_loader_order(datasets):
    train_data, _ = datasets
    loader = DeviceLoader(train_data, batch_size=32, device="cpu", augment=[])
    first_labels = []
    for seed in (0, 1):
        quiet_fit(tiny_model(), loader, epochs=1, seed=seed)
        loader.set_epoch(0)
        first_labels.append(next(iter(loader))[1])
    assert not torch.equal(first_labels[0], first_labels[1])


def test_a_plain_torch_dataloader_trains(datasets):
    train_data, test_data = datasets
    train_set = TensorDataset(
        normalize(train_data.images, CIFAR10_MEAN, CIFAR10_STD), train_data.labels
    )
    test_set = TensorDataset(
        normalize(test_data.images, CIFAR10_MEAN, CIFAR10_STD), test_data.labels
    )
    train = DataLoader(train_set, batch_size=32, shuffle=True, drop_last=True)
    test = DataLoader(test_set, batch_size=64)
    history = quiet_fit(tiny_model(), train, test, epochs=2, optimizer="adam", lr=0.01)
    assert history.run["train_images"] == 320 and history.config["batch_size"] == 32
    assert history.final["train_loss"] < history.epochs[0]["train_loss"]
    assert history.eval_split is None  # a DataLoader does not say which split it holds


def test_on_epoch_can_stop_the_run(loaders):
    train, test = loaders
    seen = []
    history = quiet_fit(
        tiny_model(), train, test, epochs=5, on_epoch=lambda e, r: seen.append(e) or e == 2
    )
    assert seen == [1, 2] and len(history.epochs) == 2


def test_mixup_mixes_every_batch(loaders):
    train, _ = loaders
    calls = []

    class CountingMixer(Mixer):
        def __call__(self, x, y):
            mixed = super().__call__(x, y)
            calls.append(mixed[3])
            return mixed

    history = quiet_fit(tiny_model(), train, epochs=1, mixer=CountingMixer("cutmix", 1.0))
    assert len(calls) == len(train) and any(lam < 1 for lam in calls)
    assert history.run["mixer"].endswith("CountingMixer(kind='cutmix', alpha=1.0, prob=1.0)")
    assert quiet_fit(tiny_model(), train, epochs=1, mixup=0.5).config["mixup"] == 0.5


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
    else:  # the whole gradient's norm clipped
        assert change.norm() <= steps * lr * 1e-4 * 1.001
    assert history.config["grad_clip"] == grad_clip
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


def test_non_finite_batchnorm_statistics_are_never_checkpointed(loaders, tmp_path):
    train, _ = loaders
    path = tmp_path / "ckpt.pt"
    # NaN in the very last batch of epoch 2: the loss of that step is NaN too, but the
    # BatchNorm running statistics are updated by that forward pass before anything is seen.
    last = len(train)
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        quiet_fit(tiny_model(), PoisonedLoader(train, 2, last), epochs=3, checkpoint=path)
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_huge_learning_rate_diverges(loaders):
    train, _ = loaders
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+") as caught:
        quiet_fit(tiny_model(), train, epochs=1, optimizer="sgd", lr=1e12, schedule="constant")
    assert "(lr=1e+11) or clip the gradients (grad_clip=1)" in str(caught.value)


def test_a_divergence_from_the_command_line_names_its_flags(loaders):
    train, _ = loaders
    with words.command_line(), pytest.raises(TrainingDiverged) as caught:
        quiet_fit(tiny_model(), train, epochs=1, optimizer="sgd", lr=1e12, schedule="constant")
    assert "(--lr 1e+11) or clip the gradients (--grad-clip 1)" in str(caught.value)


def test_evaluate_confusion_and_per_class_accuracy(loaders):
    train, test = loaders
    model = tiny_model()
    quiet_fit(model, train, epochs=1)
    result = evaluate(model, test)
    n = test.num_images
    assert result.confusion.shape == (10, 10) and int(result.confusion.sum()) == n
    assert result.predictions.shape == result.targets.shape == (n,)
    assert result.classes == tuple(test.classes) and result.split == "test"
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


def test_evaluate_refuses_empty_loaders_and_wrong_class_counts(loaders):
    _, test = loaders
    with pytest.raises(ValueError, match="has no batch"):
        evaluate(tiny_model(), [])
    five_classes = ResNet([1], [8], num_classes=5)
    with pytest.raises(ValueError, match="5 class scores, but the data has 10 classes"):
        evaluate(five_classes, test)


def test_evaluate_keeps_the_model_mode(loaders):
    _, test = loaders
    model = tiny_model().train()
    evaluate(model, test)
    assert model.training


def test_tta_averages_the_softmax_of_both_mirrors(loaders):
    _, test = loaders
    model = tiny_model().eval()
    with torch.no_grad():
        manual = torch.cat(
            [(model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2 for x, _ in test]
        )
    result = evaluate(model, test, tta=True)
    assert torch.allclose(result.probabilities, manual, atol=1e-6)
    assert torch.equal(result.predictions, manual.argmax(dim=1))
    plain = evaluate(model, test)
    assert not torch.allclose(plain.probabilities, result.probabilities)


def test_predict_normalises_like_the_loader_it_is_given(datasets, loaders):
    _, test = loaders
    model = tiny_model().eval()
    images = datasets[1].images
    probabilities = predict(model, images[:5], test)
    assert torch.allclose(probabilities, evaluate(model, test).probabilities[:5], atol=1e-5)
    one = predict(model, images[0], test)
    assert one.shape == (1, 10) and torch.allclose(one[0], probabilities[0], atol=1e-6)
    other_stats = DeviceLoader(datasets[1], 64, train=False, device="cpu", mean=(0.5,) * 3)
    assert not torch.allclose(predict(model, images[:5], other_stats), probabilities)
    with pytest.raises(TypeError, match="uint8"):
        predict(model, images[:2].float(), test)


def test_history_save_load_round_trip_and_best_epoch(loaders, datasets, tmp_path):
    train, test = loaders
    history = quiet_fit(tiny_model(), train, test, epochs=2)
    loaded = History.load(history.save(tmp_path / "runs" / "history.json"))
    assert loaded == history
    with pytest.raises(ValueError, match="chosen on the test set"):
        history.best()  # val_* was measured on a test split here
    held_out = DeviceLoader(datasets[0].holdout(0.25, seed=0)[1], 64, train=False, device="cpu")
    validated = quiet_fit(tiny_model(), train, held_out, epochs=2)
    assert validated.eval_split == "validation"
    assert validated.best()["val_acc"] == max(r["val_acc"] for r in validated.epochs)
    assert validated.best("val_loss")["val_loss"] == min(r["val_loss"] for r in validated.epochs)
    with pytest.raises(ValueError, match="no value for 'top5'"):
        validated.best("top5")
    with pytest.raises(ValueError, match="no finished epoch"):
        _ = History("empty").final


def test_a_run_that_learned_nothing_says_so_in_its_history(loaders):
    train, test = loaders
    stuck = quiet_fit(tiny_model(), train, test, epochs=1, optimizer="sgd", lr=1e-6)
    assert len(stuck.warnings) == 1 and stuck.warnings[0].startswith("Learned nothing: ")
    assert (
        "not above chance (10%) by more than two standard errors (4.7 points on 160"
        in (stuck.warnings[0])
    )
    assert "try lr=1e-07 or lr=1e-05, or more epochs (epochs=2)" in stuck.warnings[0]


def test_divergence_is_named_in_the_words_of_the_tool_in_use():
    history = History("r", config={"lr": 10.0, "epochs": 2}, step_loss=[2.3, 40.0, 60.0])
    history.epochs = [{"train_loss": 50.0, "val_acc": 0.9}]
    (line,) = bookkeeping.run_warnings(history, classes=10, val_images=1000)
    assert line == (
        "Diverged: the training loss ended at 50, 22x its first value (2.3). Likely cause: the "
        "learning rate (10) is too high; try lr=1, or clip the gradients (grad_clip=1)."
    )
    with words.command_line():
        (line,) = bookkeeping.run_warnings(history, classes=10, val_images=1000)
    assert line.endswith("try --lr 1, or clip the gradients (--grad-clip 1).")
    history.epochs[0]["train_loss"] = 20.0  # below 10x its first value: no warning
    assert bookkeeping.run_warnings(history, classes=10, val_images=1000) == []


def test_a_history_saved_before_warnings_existed_still_loads(loaders, tmp_path):
    train, _ = loaders
    saved = quiet_fit(tiny_model(), train, epochs=1).to_dict()
    del saved["warnings"]
    (tmp_path / "old.json").write_text(json.dumps(saved))
    assert History.load(tmp_path / "old.json").warnings == []


def test_a_history_of_the_old_format_is_refused_in_one_line(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"name": "old", "config": {}, "epochs": [{"test_acc": 0.5}]}')
    with pytest.raises(ValueError, match="format 1.*train the run again"):
        History.load(path)


def test_channels_last_is_used_on_cpu_and_compile_is_gpu_only(loaders, capsys):
    train, _ = loaders
    model = tiny_model()
    history = quiet_fit(model, train, epochs=1, channels_last=True)
    assert history.run["precision"] == "fp32" and history.run["channels_last"] is True
    conv = next(p for p in model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert capsys.readouterr().out == ""
    model = tiny_model()
    quiet_fit(model, train, epochs=1, channels_last=False)
    assert all(p.is_contiguous() for p in model.parameters())
    quiet_fit(model, train, epochs=1, compile=True)
    assert "compile=True skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")],
)
def test_auto_precision_follows_the_gpu(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    chosen, reason = settings.choose_precision(torch.device("cuda"))
    assert chosen == expected and f"{capability[0]}.{capability[1]}" in reason
    assert settings.choose_precision(torch.device("cpu")) == ("fp32", "no CUDA GPU (cpu)")
    assert settings.choose_precision(torch.device("cuda"), "fp32")[0] == "fp32"


def test_fp16_runs_with_a_gradient_scaler_and_resumes_exactly(loaders, tmp_path):
    train, test = loaders
    options = {"epochs": 2, "precision": "fp16", "schedule": "constant", "seed": 3}
    whole = quiet_fit(tiny_model(), train, test, **options)
    assert whole.run["precision"] == "fp16"
    assert all(math.isfinite(loss) for loss in whole.step_loss)
    path = tmp_path / "fp16.pt"
    quiet_fit(tiny_model(), train, test, checkpoint=path, on_epoch=lambda *_: True, **options)
    assert "scale" in torch.load(path, weights_only=True)["extra"]["scaler"]
    resumed = quiet_fit(tiny_model(5), train, test, checkpoint=path, resume=True, **options)
    assert resumed.step_loss == whole.step_loss


def test_ema_weights_are_the_ones_evaluated_and_handed_back(loaders):
    train, test = loaders
    plain = quiet_fit(tiny_model(), train, test, epochs=1)
    model = tiny_model()
    history = quiet_fit(model, train, test, epochs=1, ema=0.9)
    assert history.config["ema"] == 0.9
    # Same data, seed and steps: only the averaging differs, and the model returns averaged.
    assert history.final["val_loss"] != pytest.approx(plain.final["val_loss"], rel=1e-6)
    assert evaluate(model, test).loss == pytest.approx(history.final["val_loss"], rel=1e-6)


def test_the_ema_weights_can_be_reloaded_from_the_checkpoint(loaders, tmp_path):
    train, test = loaders
    model = tiny_model()
    history = quiet_fit(model, train, test, epochs=1, ema=0.9, checkpoint=tmp_path / "c.pt")
    raw, averaged = tiny_model(3), tiny_model(4)
    load_checkpoint(tmp_path / "c.pt", raw)
    load_checkpoint(tmp_path / "c.pt", averaged, averaged=True)
    assert evaluate(averaged, test).loss == pytest.approx(history.final["val_loss"], rel=1e-6)
    assert evaluate(raw, test).loss != pytest.approx(history.final["val_loss"], rel=1e-6)


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
    assert [r["val_acc"] for r in resumed.epochs] == [r["val_acc"] for r in whole.epochs]


def test_resume_refuses_changed_settings_and_unextendable_schedules(loaders, tmp_path):
    train, test = loaders
    path = tmp_path / "ckpt.pt"
    quiet_fit(tiny_model(), train, test, epochs=1, schedule="onecycle", checkpoint=path)
    with pytest.raises(CheckpointMismatchError, match=r"lr: 0.1 -> 0.05"):
        quiet_fit(tiny_model(), train, test, epochs=1, lr=0.05, checkpoint=path, resume=True)
    with pytest.raises(CheckpointMismatchError, match="onecycle schedule.*cannot be extended"):
        quiet_fit(tiny_model(), train, test, epochs=3, checkpoint=path, resume=True)
    constant = tmp_path / "constant.pt"
    quiet_fit(tiny_model(), train, test, epochs=1, schedule="constant", checkpoint=constant)
    longer = quiet_fit(
        tiny_model(), train, test, epochs=2, schedule="constant", checkpoint=constant, resume=True
    )
    assert [row["epoch"] for row in longer.epochs] == [1, 2]


def test_resume_argument_errors(loaders, tmp_path, capsys):
    train, _ = loaders
    with pytest.raises(ValueError, match="checkpoint"):
        quiet_fit(tiny_model(), train, epochs=1, resume=True)
    quiet_fit(tiny_model(), train, epochs=1, checkpoint=tmp_path / "new.pt", resume=True)
    assert "starting from scratch" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="epochs must be a whole number >= 1"):
        quiet_fit(tiny_model(), train, epochs=0)


def test_max_steps_setting_caps_training_and_evaluation(loaders, monkeypatch):
    monkeypatch.setattr(settings, "MAX_STEPS", 2)
    train, test = loaders
    assert len(train) > 2 and len(test) > 2
    model = tiny_model()
    history = quiet_fit(model, train, test, epochs=2)
    assert len(history.step_loss) == 4  # 2 epochs x 2 steps, whatever len(train) is
    assert history.run["max_steps"] == 2  # the history says it was a capped dry run
    assert history.run["val_images"] == 2 * test.batch_size < test.num_images
    assert history.step_lr[-1] < 0.01 * max(history.step_lr)  # one-cycle annealed in 4 steps
    assert len(evaluate(model, test).targets) == 2 * test.batch_size
