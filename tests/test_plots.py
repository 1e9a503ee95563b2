"""Figures from course_utils.plots, drawn headless on fake History-like objects."""

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import plots, settings

matplotlib.use("Agg")

CLASSES = ["plane", "car", "bird"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def fake_history(name="run", source="cifar10", epochs=4, with_test=True, steps=6, split="test"):
    """A History-like object with the contract's fields (see course_utils/train.py)."""
    records = [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "train_acc": 0.2 * e,
            "val_loss": 2.2 / e if with_test else None,
            "val_acc": 0.18 * e if with_test else None,
            "lr": 0.1 / e,
            "seconds": 3.0,
            "images_per_sec": 1000.0,
            "elapsed": 3.0 * e,
        }
        for e in range(1, epochs + 1)
    ]
    return SimpleNamespace(
        name=name,
        config={"model": "Tiny"},
        source=source,
        eval_split=split,
        epochs=records,
        step_lr=[0.1 * (1 - i / steps) for i in range(steps)],
        step_loss=[2.0 - 0.1 * i for i in range(steps)],
    )


def legend_texts(axis):
    return [text.get_text() for text in axis.get_legend().get_texts()]


def test_plot_history_draws_train_dashed_and_test_solid_per_metric():
    history = fake_history(name="resnet")
    figure = plots.plot_history(history, title="Baseline")
    loss_axis, acc_axis = figure.axes
    assert len(figure.axes) == 2
    assert [line.get_linestyle() for line in loss_axis.lines] == ["--", "-"]
    assert legend_texts(acc_axis) == ["resnet train", "resnet test"]
    assert acc_axis.get_ylabel() == "accuracy (%)" and acc_axis.get_xlabel() == "epoch"
    assert loss_axis.get_title() == "Loss" and figure.get_suptitle() == "Baseline"
    train_acc = acc_axis.lines[0].get_ydata()
    np.testing.assert_allclose(train_acc, [20.0, 40.0, 60.0, 80.0])  # fractions shown as %


def test_plot_history_overlays_runs_one_colour_each():
    runs = [fake_history(name="small"), fake_history(name="wide", with_test=False)]
    figure = plots.plot_history(runs, metrics=("acc",))
    (axis,) = figure.axes
    assert len(axis.lines) == 3  # "wide" has no test curve
    small_train, small_test, wide_train = axis.lines
    assert small_train.get_color() == small_test.get_color() != wide_train.get_color()
    assert legend_texts(axis) == ["small train", "small test", "wide train"]


def test_plot_history_against_time_and_single_metrics():
    figure = plots.plot_history(fake_history(), metrics=["loss", "images_per_sec"], x="time")
    loss_axis, speed_axis = figure.axes
    np.testing.assert_allclose(loss_axis.lines[0].get_xdata(), [3.0, 6.0, 9.0, 12.0])
    assert loss_axis.get_xlabel() == "training time (s)"
    assert len(speed_axis.lines) == 1 and speed_axis.get_ylabel() == "training images / s"
    with pytest.raises(ValueError, match="no metric 'f1'"):
        plots.plot_history(fake_history(), metrics="f1")


def test_synthetic_runs_are_labelled_in_every_panel():
    synthetic = plots.plot_history(fake_history(source="synthetic"))
    assert all(plots.SYNTHETIC_NOTE in axis.get_title() for axis in synthetic.axes)
    real = plots.plot_history(fake_history(source="cifar10"))
    assert not any(plots.SYNTHETIC_NOTE in axis.get_title() for axis in real.axes)
    lr_figure = plots.plot_lr(fake_history(source="synthetic"))
    assert plots.SYNTHETIC_NOTE in lr_figure.axes[0].get_title()


def test_a_dry_run_is_labelled_in_every_figure(monkeypatch):
    capped = fake_history()
    capped.run = {"max_steps": 2}  # what fit records under COURSE_MAX_STEPS=2
    for figure in (plots.plot_history(capped), plots.plot_lr(capped)):
        assert all("dry run, COURSE_MAX_STEPS=2" in axis.get_title() for axis in figure.axes)
    assert "dry run" not in plots.plot_history(fake_history()).axes[0].get_title()
    assert plots.titled("Curves", "cifar10") == "Curves"
    monkeypatch.setattr(settings, "MAX_STEPS", 2)  # figures a dry run's lecture titles itself
    assert plots.titled("Curves", "synthetic") == (
        "Curves\n(synthetic stand-in data; dry run, COURSE_MAX_STEPS=2: 2 batches per epoch "
        "and evaluation)"
    )


def test_plot_lr_draws_one_line_per_run_over_steps():
    runs = [fake_history(name="onecycle", steps=6), fake_history(name="cosine", steps=9)]
    figure = plots.plot_lr(runs)
    (axis,) = figure.axes
    assert [len(line.get_xdata()) for line in axis.lines] == [6, 9]
    assert legend_texts(axis) == ["onecycle", "cosine"]
    assert axis.get_xlabel() == "optimizer step" and axis.get_ylabel() == "learning rate"
    assert axis.get_title() == "Learning-rate schedule"


def test_plots_draw_on_given_axes():
    figure, (left, right) = plt.subplots(1, 2)
    assert plots.plot_lr(fake_history(), ax=right) is figure
    assert len(right.lines) == 1 and not left.lines


def test_plot_confusion_normalises_rows():
    matrix = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 0, 5]])
    figure = plots.plot_confusion(matrix, CLASSES)
    heatmap_axis = figure.axes[0]
    assert len(figure.axes) == 2  # the heatmap and its colour bar
    shown = np.asarray(heatmap_axis.collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    assert shown[0, 1] == pytest.approx(0.2)
    assert heatmap_axis.get_xlabel() == "predicted class"
    assert heatmap_axis.get_ylabel() == "true class"
    assert [t.get_text() for t in heatmap_axis.get_xticklabels()] == CLASSES
    counts = plots.plot_confusion(matrix, CLASSES, normalize=False, title="Counts", note="n")
    assert np.asarray(counts.axes[0].collections[0].get_array()).max() == 8
    assert counts.axes[0].get_title() == "Counts\n(n)"
    with pytest.raises(ValueError, match="3x3"):
        plots.plot_confusion(torch.zeros(2, 2), CLASSES)


def test_plot_per_class_draws_one_bar_per_class_in_percent():
    figure = plots.plot_per_class([0.9, 0.5, 0.7], CLASSES, note=plots.source_note("synthetic"))
    (axis,) = figure.axes
    widths = [bar.get_width() for bar in axis.patches]
    np.testing.assert_allclose(widths, [90.0, 50.0, 70.0])
    assert [t.get_text() for t in axis.get_yticklabels()] == CLASSES
    assert axis.get_xlabel() == "accuracy (%)" and legend_texts(axis) == ["mean over classes 70.0%"]
    assert plots.SYNTHETIC_NOTE in axis.get_title()
    from_mapping = plots.plot_per_class({"cat": 0.4, "dog": 0.6})
    assert len(from_mapping.axes[0].patches) == 2
    with pytest.raises(ValueError, match="divide percentages by 100"):
        plots.plot_per_class([90.0, 50.0, 70.0], CLASSES)


def test_show_images_lays_out_a_titled_grid():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    figure = plots.show_images(images, labels, CLASSES, nrow=4)
    assert len(figure.axes) == 12  # 3 rows of 4, the last two left empty
    drawn = [axis for axis in figure.axes if axis.images]
    assert [axis.get_title() for axis in drawn] == [CLASSES[i] for i in labels]
    np.testing.assert_allclose(
        drawn[0].images[0].get_array(), images[0].permute(1, 2, 0).numpy() / 255
    )


def test_show_images_undoes_the_normalisation():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 8)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    normalised = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    figure = plots.show_images(normalised, titles=["a", "b"], mean=mean, std=std)
    shown = figure.axes[1].images[0].get_array()
    np.testing.assert_allclose(shown, images[1].permute(1, 2, 0).numpy(), atol=1e-6)
    assert figure.axes[1].get_title() == "b"
    with pytest.raises(ValueError, match="both mean and std"):
        plots.show_images(normalised, mean=mean)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        plots.show_images(torch.rand(2, 8, 8, 3))


def test_save_figure_creates_folders(tmp_path):
    figure = plots.plot_lr(fake_history())
    path = plots.save_figure(figure, tmp_path / "figures" / "lr.png")
    assert path.is_file() and path.stat().st_size > 0


def test_held_out_curves_are_named_by_their_split():
    history = fake_history("run", source="cifar10", split="validation")
    figure = plots.plot_history(history)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["run train", "run validation"]
    plt.close(figure)
    unknown = plots.plot_history(fake_history("run", split=None))
    assert unknown.axes[0].get_legend_handles_labels()[1] == ["run train", "run held-out"]


def test_titled_names_the_stand_in():
    assert plots.titled("Curves", "cifar10") == "Curves"
    assert plots.titled("Curves", "synthetic") == "Curves\n(synthetic stand-in data)"


def test_log_loss_axis_labels_plain_numbers_on_a_base_2_log_scale():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3, 4], [4.5, 2.2, 1.3, 1.1])
    plots.log_loss_axis(ax)
    fig.canvas.draw()
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "loss (log scale)"
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert {"1.5", "2.0", "3.0", "4.0"} <= set(labels), labels  # plain numbers, not 2^x
    plt.close(fig)
